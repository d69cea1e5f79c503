"""Fixtures shared by the test modules: the served app and a headless Chromium (see harness.py)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pytest

from harness import SHOTS, RunningApp, chrome, running_app
from splineviz.partition import kernels


@pytest.fixture(scope="session", autouse=True)
def loaded_kernels() -> None:
    """Compile or load the kernels once, as the app does at start (web.app.create_app): otherwise the first test to
    trace pays numba's compile (a minute on a fresh clone), which the Playground's run estimate would count."""
    from splineviz.partition.tracer import load_kernels

    load_kernels()


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



@contextmanager
def kernels_set(on: bool) -> Iterator[bool]:
    """The compiled kernels on or off inside the block (on only where numba is there); yields whether they are on."""
    previous = kernels.use(on)
    try:
        yield kernels.available()
    finally:
        kernels.use(previous)


@pytest.fixture(params=["compiled", "numpy"], scope="module")
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test with the compiled kernels (numba) and with numpy alone, the reference they must equal.

    "compiled" is skipped where numba is missing or switched off (SPLINEVIZ_NUMBA=0). Module-scoped,
    so that hypothesis tests can use it: `pytestmark = pytest.mark.usefixtures("engine")`.
    """
    with kernels_set(request.param == "compiled") as on:
        if request.param == "compiled" and not on:
            pytest.skip("numba is not installed or SPLINEVIZ_NUMBA=0")
        yield request.param


@pytest.fixture(scope="module")
def numpy_alone() -> Iterator[None]:
    """numpy's own paths (the one-pass arrangement), which the compiled kernels bypass."""
    with kernels_set(False):
        yield


@pytest.fixture(scope="module")
def compiled() -> Iterator[None]:
    """The compiled kernels on, whatever other modules left behind."""
    with kernels_set(True):
        yield
