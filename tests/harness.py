"""Run the real app and a headless Chromium against it: shared by the browser tests and bench/app_latency.py.

The app runs as ``python app.py`` in a subprocess, exactly as a user starts it, so background callbacks
use their real process model (diskcache children, or Celery workers). Process helpers without a browser
(free ports, waiting) stay in ``splineviz.web.testing``, which ``splineviz.web.stack`` uses too.
"""
from __future__ import annotations

import contextlib
import http.client
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit
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


class FaultProxy:
    """A loopback HTTP proxy in front of a served app that can make the page's requests fail.

    ``fail(status)`` answers Dash's job polls (requests to _dash-update-component carrying ``job=``) with that HTTP
    status instead of passing them on, or every callback request with ``polls_only=False``; ``fail(None)``
    passes everything again. ``refused`` counts the requests it answered itself.
    """

    POLL = re.compile(r"_dash-update-component.*[?&]job=")
    HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}

    def __init__(self, target: str) -> None:
        self.target = urlsplit(target)
        self.status: int | None = None
        self.polls_only = True
        self.refused = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy._forward(self)

            do_POST = do_GET

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # the app going away mid-request: the browser sees it
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fail(self, status: int | None, polls_only: bool = True) -> None:
        self.status, self.polls_only = status, polls_only

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _refuses(self, path: str) -> bool:
        if self.status is None:
            return False
        return bool(self.POLL.search(path)) if self.polls_only else "_dash-update-component" in path

    def _forward(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        if self._refuses(request.path):
            self.refused += 1
            status, headers, data = self.status, [], b""
        else:
            upstream = http.client.HTTPConnection(self.target.hostname, self.target.port, timeout=600)
            try:
                upstream.request(request.command, request.path, body=body,
                                 headers={k: v for k, v in request.headers.items() if k.lower() not in self.HOP})
                answer = upstream.getresponse()
                status, headers, data = answer.status, answer.getheaders(), answer.read()
            finally:
                upstream.close()
        request.send_response(status)
        for key, value in headers:
            if key.lower() not in self.HOP:
                request.send_header(key, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)


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


def epoch_shown(driver) -> int:
    """The Playground's epoch counter; 0 while it shows its placeholder "–" (no run yet, or just reset)."""
    shown = element_text(driver, "pg-stat-epoch")
    return int(shown) if shown.isdigit() else 0


def upload(driver, upload_id: str, path: Path) -> None:
    """Choose a file in a dcc.Upload, once its (lazily loaded) file input is on the page."""
    from selenium.webdriver.common.by import By

    selector = f"#{upload_id} input[type=file]"
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, selector), 30, message=f"the {upload_id} file input")
    driver.find_element(By.CSS_SELECTOR, selector).send_keys(str(path))


def marker_x(driver, name: str, graph_id: str):
    """The epoch a curves graph's marker (the layout shape called ``name``) is drawn at: its layout value, where
    the line drawn on the page is too (pages move the drawn line instead of redrawing the figure, see
    splineviz-5m-marker.js); None where they differ or there is no marker."""
    return driver.execute_script(f"""
        const gd = document.querySelector('#{graph_id} .js-plotly-plot');
        const k = gd && gd.layout ? (gd.layout.shapes || []).findIndex(s => s.name === '{name}') : -1;
        if (k < 0) return null;
        const x = gd.layout.shapes[k].x0, xa = gd._fullLayout.xaxis;
        const path = gd.querySelector(`.shapelayer path[data-index="${{k}}"]`);
        const drawn = path ? parseFloat(path.getAttribute('d').slice(1)) : NaN;
        return Math.abs(drawn - (xa._offset + xa.l2p(x))) < 1 ? x : null;""")
