"""Run the real app and a headless Chromium against it: shared by the browser tests and bench/app_latency.py.

The app runs as ``python app.py`` in a subprocess, exactly as a user starts it, so background callbacks
use their real process model (diskcache children, or Celery workers). Process helpers without a browser
(free ports, waiting) stay in ``splineviz.web.testing``, which ``splineviz.web.stack`` uses too.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from splineviz.web.testing import REPO, free_port, wait_for, wait_until_up  # noqa: F401 - re-exported for tests

SHOTS = Path(os.environ.get("SPLINEVIZ_SCREENSHOTS", REPO / "out" / "screenshots"))
CHROMIUM = os.environ.get("SPLINEVIZ_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SPLINEVIZ_CHROMEDRIVER", "/usr/bin/chromedriver")
HAS_CHROMIUM = Path(CHROMIUM).exists()
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--use-gl=angle", "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader", "--disable-dev-shm-usage", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1600,1000")


@dataclass(frozen=True)
class RunningApp:
    """A served app: its base URL and the server process (whose children are the diskcache jobs)."""

    url: str
    pid: int


@contextlib.contextmanager
def running_app(args: Sequence[str] = (), env: dict[str, str] | None = None, port: int | None = None,
                log: Path | None = None) -> Iterator[RunningApp]:
    """``python app.py --port P *args`` in a subprocess; yields it (URL and pid) and stops it afterwards."""
    port = port or free_port()
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--port", str(port), *args], cwd=REPO,
                            env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url + "/", proc=proc)
        yield RunningApp(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            out.close()


def chrome():
    """A headless Chromium (software GL) that records the page's console log."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def severe_console_errors(driver) -> list[str]:
    """Console messages at SEVERE level (uncaught errors, failed requests)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def shot(driver, name: str) -> Path:
    """Save a screenshot for a human look (SHOTS, default out/screenshots/NAME.png)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def element_text(driver, element_id: str) -> str:
    """Text of an element, or "" while the page has not rendered it yet."""
    return driver.execute_script(
        f"const e = document.getElementById('{element_id}'); return e ? e.textContent : ''")


def upload(driver, upload_id: str, path: Path) -> None:
    """Choose a file in a dcc.Upload, once its (lazily loaded) file input is on the page."""
    from selenium.webdriver.common.by import By

    selector = f"#{upload_id} input[type=file]"
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, selector), 30, message=f"the {upload_id} file input")
    driver.find_element(By.CSS_SELECTOR, selector).send_keys(str(path))
