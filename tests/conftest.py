"""Fixtures shared by the test modules: the served app and a headless Chromium (see harness.py)."""
from __future__ import annotations

from typing import Iterator

import pytest

from harness import SHOTS, RunningApp, chrome, running_app


@pytest.fixture(scope="module")
def served_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """``python app.py`` with its own job cache, one per test module; its log goes next to the screenshots."""
    cache = tmp_path_factory.mktemp("cache")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running_app(env={"SPLINEVIZ_CACHE_DIR": str(cache)}, log=SHOTS / "app.log") as app:
        yield app


@pytest.fixture(scope="module")
def app_url(served_app: RunningApp) -> str:
    return served_app.url


@pytest.fixture
def driver():
    d = chrome()
    yield d
    d.quit()
