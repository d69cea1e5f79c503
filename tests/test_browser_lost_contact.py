"""Job pages that lose contact with the server while a job runs (issue 9): the page says so and its controls
come back; polls that fail only briefly are retried and the job finishes without a false alarm.

Dash ends a job's poll chain at its first failed request, and holds back the pages' own callbacks while a job
runs; the poll watch in assets/splineviz-6-jobs.js (under Dash, in window.fetch) is what is tested here. The
faults are real: the server process is stopped (SIGSTOP: polls get no answer) or killed with its jobs (no
connection), or a proxy between browser and server answers the polls with HTTP 503 (tests/harness.py,
FaultProxy). Screenshots go to out/screenshots/lost-contact-*.png.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from harness import HAS_CHROMIUM, FaultProxy, chrome, running_app, severe_console_errors, shot, wait_for
from harness import element_text as text
from splineviz.web.params import LIMITS

pytestmark = pytest.mark.browser
if not HAS_CHROMIUM:
    pytest.skip("needs Chromium and chromedriver", allow_module_level=True)

# the watch gives up after LIMITS.lost_silence_s of failing polls; the rest is room for a loaded machine
MESSAGE_WITHIN_S = LIMITS.lost_silence_s + 60


def disabled(driver, element_id: str) -> bool:
    return driver.execute_script(f"return document.getElementById('{element_id}').disabled")


def visible(driver, element_id: str) -> bool:
    return driver.execute_script(f"return getComputedStyle(document.getElementById('{element_id}')).visibility") \
        == "visible"


def start(driver, button_id: str, label_id: str) -> None:
    """Press a job's start button and wait until the job reports progress (it runs on the server)."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, button_id).click()
    wait_for(lambda: disabled(driver, button_id), 30, message="the job to start")
    wait_for(lambda: text(driver, label_id), 120, message="the job's first progress report")


def assert_controls_back(driver, start_id: str, cancel_id: str, row_id: str) -> None:
    assert not disabled(driver, start_id), "the start button is still disabled"
    assert disabled(driver, cancel_id), "the cancel button is still enabled"
    assert not visible(driver, row_id), "the progress bar still shows"


def network_errors_only(driver) -> list[str]:
    """Severe console messages other than the failed requests this test caused."""
    return [m for m in severe_console_errors(driver) if "Failed to load resource" not in m]


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory):
    """The app behind a FaultProxy; yields the proxy (its url is the app's)."""
    with running_app(env={"SPLINEVIZ_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))},
                     log=tmp_path_factory.mktemp("log") / "app.log") as app:
        proxy = FaultProxy(app.url)
        try:
            yield proxy
        finally:
            proxy.close()


def open_pruning(driver, url: str) -> None:
    driver.get(url + "/pruning?layers=3&width=16&pr_epochs=300&g_start=10&g_end=250&g_every=10")
    wait_for(lambda: text(driver, "pg-stat-epoch") == "0", 60, message="the Playground's model")


def test_mnist_training_says_so_when_the_server_stops_answering(tmp_path: Path) -> None:
    """The server process stops (SIGSTOP): polls hang unanswered. The page says it lost contact and gives the
    controls back, keeping the images chosen; once the server runs again, Train works."""
    from selenium.webdriver.common.by import By

    with running_app(env={"SPLINEVIZ_CACHE_DIR": str(tmp_path / "cache")}, log=tmp_path / "app.log") as app:
        driver = chrome()
        try:
            driver.get(app.url + "/mnist?mn_epochs=50")
            wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#mn-thumbs-a img"), 60, message="thumbnails")
            held = (text(driver, "mn-caption-a"), text(driver, "mn-caption-b"))
            start(driver, "mn-train", "mn-progress-label")
            os.kill(app.pid, signal.SIGSTOP)
            try:
                message = wait_for(lambda: "lost contact" in text(driver, "mn-alert") and text(driver, "mn-alert"),
                                   MESSAGE_WITHIN_S, 0.2, message="the lost-contact message")
                shot(driver, "lost-contact-mnist")
                assert message == (f"Training the classifier: lost contact with the server for "
                                   f"{LIMITS.lost_silence_s:.0f} s (no answer); the job may be lost. "
                                   "Press Train classifier to run it again.")
                assert_controls_back(driver, "mn-train", "mn-cancel", "mn-progress-row")
                assert (text(driver, "mn-caption-a"), text(driver, "mn-caption-b")) == held  # the chosen images
            finally:
                os.kill(app.pid, signal.SIGCONT)
            driver.find_element(By.ID, "mn-train").click()  # Retry
            wait_for(lambda: text(driver, "mn-alert") == "", 30, message="the message to go with the new job")
            wait_for(lambda: disabled(driver, "mn-train"), 30, message="the new job to start")
            wait_for(lambda: not disabled(driver, "mn-train"), 300, 0.5, message="the new job to finish")
            assert text(driver, "mn-alert") == ""
            assert "test accuracy" in text(driver, "mn-model-info")  # the newly trained classifier
        finally:
            driver.quit()


def test_pruning_run_says_so_when_polls_fail(driver, proxied: FaultProxy) -> None:
    """Every poll of the pruning run answered with HTTP 503: the page says it lost contact, the controls come
    back and the animation streamed so far stays; a start that cannot reach the server says so at once."""
    from selenium.webdriver.common.by import By

    open_pruning(driver, proxied.url)
    start(driver, "pr-run", "pr-run-progress-label")
    wait_for(lambda: text(driver, "pr-info"), 120, message="a first streamed frame")
    proxied.fail(503)
    try:
        message = wait_for(lambda: "lost contact" in text(driver, "pr-alert") and text(driver, "pr-alert"),
                           MESSAGE_WITHIN_S, 0.2, message="the lost-contact message")
        shot(driver, "lost-contact-pruning")
        assert message == (f"The pruning run: lost contact with the server for {LIMITS.lost_silence_s:.0f} s "
                           "(HTTP 503); the job may be lost. Press Run to run it again.")
        assert proxied.refused >= 2  # the failed poll was sent again before the watch gave up
        assert_controls_back(driver, "pr-run", "pr-run-cancel", "pr-run-progress-row")
        assert "· epoch" in text(driver, "pr-info")  # the streamed run is still shown

        proxied.fail(503, polls_only=False)  # now the start itself fails
        driver.find_element(By.ID, "pr-run").click()
        message = wait_for(lambda: "start" in text(driver, "pr-alert") and text(driver, "pr-alert"), 60, 0.2,
                           message="the failed start's message")
        assert message == ("The pruning run: could not reach the server to start it (HTTP 503). "
                           "Press Run to run it again.")
        assert_controls_back(driver, "pr-run", "pr-run-cancel", "pr-run-progress-row")
        shot(driver, "lost-contact-pruning-start")
    finally:
        proxied.fail(None)


def test_polls_that_recover_in_time_raise_no_alarm(driver, proxied: FaultProxy) -> None:
    """Polls answered with HTTP 503 for a few seconds, then served again: the run goes on and finishes with
    no message."""
    open_pruning(driver, proxied.url)
    start(driver, "pr-run", "pr-run-progress-label")
    refused = proxied.refused
    proxied.fail(503)
    try:
        wait_for(lambda: proxied.refused > refused + 1, 30, 0.05, message="polls to fail")
        time.sleep(2)  # a short outage, well under LIMITS.lost_silence_s
    finally:
        proxied.fail(None)
    wait_for(lambda: not disabled(driver, "pr-run"), 600, 0.5, message="the run to finish")
    wait_for(lambda: "· epoch 300 ·" in text(driver, "pr-info"), 60, message="the run's last epoch")
    shot(driver, "lost-contact-recovered")
    assert text(driver, "pr-alert") == ""
    assert network_errors_only(driver) == []


def test_earlybird_run_says_so_when_the_server_is_gone(tmp_path: Path) -> None:
    """The server and its job processes are killed mid-run (SIGKILL): polls find no connection. The page says
    so, its controls come back, and what it streamed of the run stays."""
    import psutil

    with running_app(env={"SPLINEVIZ_CACHE_DIR": str(tmp_path / "cache")}, log=tmp_path / "app.log") as app:
        driver = chrome()
        try:
            driver.get(app.url + "/earlybird?layers=5&width=48&eb_epochs=500")
            wait_for(lambda: text(driver, "pg-stat-epoch") == "0", 60, message="the shared model")
            start(driver, "eb-run", "eb-progress-label")
            wait_for(lambda: text(driver, "eb-info"), 120, message="a first streamed frame")
            # the job processes too: they hold the server's listening socket, which would take connections unanswered
            for process in [*psutil.Process(app.pid).children(recursive=True), psutil.Process(app.pid)]:
                process.kill()
            message = wait_for(lambda: "lost contact" in text(driver, "eb-alert") and text(driver, "eb-alert"),
                               MESSAGE_WITHIN_S, 0.2, message="the lost-contact message")
            shot(driver, "lost-contact-earlybird")
            assert message == (f"The early-bird run: lost contact with the server for {LIMITS.lost_silence_s:.0f} s "
                               "(no connection); the job may be lost. Press Run to run it again.")
            assert_controls_back(driver, "eb-run", "eb-cancel", "eb-progress-row")
            assert "· epoch" in text(driver, "eb-info")
        finally:
            driver.quit()
