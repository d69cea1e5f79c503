"""Faults and bad input from a real browser: the page tells the user, and nothing is left running.

A job process killed with SIGKILL (as an out-of-memory kill would) is reported and training continues from
the last model received; an oversized upload is refused with a message before it is sent; a link with
out-of-range values opens a working page with clamped values; a tab that closes stops its jobs; a tab over
its job quota is told so. Screenshots go to out/screenshots/ for a human look.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from harness import HAS_CHROMIUM, chrome, epoch_shown, running_app, severe_console_errors, shot, upload, wait_for
from harness import element_text as text

pytestmark = pytest.mark.browser
if not HAS_CHROMIUM:
    pytest.skip("needs Chromium and chromedriver", allow_module_level=True)


def job_processes(server_pid: int) -> list[psutil.Process]:
    """Live background-job processes of a diskcache app: its children that are neither finished nor zombies."""
    alive = []
    for child in psutil.Process(server_pid).children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.NoSuchProcess:
            continue
    return alive


def open_playground(driver, url: str) -> None:
    driver.get(url)
    wait_for(lambda: text(driver, "pg-stat-epoch") == "0", 60, message="the first partition")


def test_a_killed_job_is_reported_and_training_continues(driver, served_app) -> None:
    from selenium.webdriver.common.by import By

    open_playground(driver, served_app.url + "/?epochs=2000")  # chunks of 140 epochs: seconds each
    driver.find_element(By.ID, "pg-play").click()
    wait_for(lambda: epoch_shown(driver) > 0, 120, message="a first chunk")
    victim = wait_for(lambda: job_processes(served_app.pid), 30, 0.05, message="a running chunk")[0]
    os.kill(victim.pid, signal.SIGKILL)
    message = wait_for(lambda: "The job was lost" in text(driver, "pg-alert") and text(driver, "pg-alert"), 5, 0.05,
                       message="the lost-job message within 5 s")
    shot(driver, "fault-job-killed")
    k = epoch_shown(driver)
    assert message.startswith("The job was lost: ") and f"press Train to continue from epoch {k}." in message
    assert text(driver, "pg-play") == "▶ Train"
    driver.find_element(By.ID, "pg-play").click()
    wait_for(lambda: epoch_shown(driver) > k, 120, message="training to continue after the lost job")
    assert text(driver, "pg-alert") == ""
    driver.find_element(By.ID, "pg-play").click()  # pause
    assert severe_console_errors(driver) == []


def test_an_oversized_upload_is_refused_with_a_message(driver, served_app, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    open_playground(driver, served_app.url)
    big = tmp_path / "huge.pt"
    big.write_bytes(b"\0" * (9 * 2**20))
    upload(driver, "pg-upload", big)
    message = wait_for(lambda: text(driver, "pg-alert"), 30, message="an upload refusal")
    assert message == "Could not load huge.pt: the file is 9.0 MiB, over the limit of 8.0 MiB."
    shot(driver, "fault-upload-too-large")
    assert epoch_shown(driver) == 0 and text(driver, "pg-upload-progress-label") == ""  # nothing was sent or started


def test_a_too_wide_upload_is_refused_with_a_message(driver, served_app, tmp_path: Path) -> None:
    """D1 from the page: the job refuses mlp(2, (16, 20000), 2) by its widths and says why."""
    import torch
    from selenium.webdriver.common.by import By

    from splineviz.nets import mlp

    open_playground(driver, served_app.url)
    path = tmp_path / "wide.pt"
    torch.save(mlp(2, (16, 20000), 2).state_dict(), path)
    upload(driver, "pg-upload", path)
    message = wait_for(lambda: text(driver, "pg-alert"), 60, message="an upload refusal")
    assert message.startswith("Could not load wide.pt: a layer of 20,000 units is over the limit of 1,024")
    shot(driver, "fault-upload-too-wide")


def test_an_upload_without_hidden_layers_is_drawn(driver, served_app, tmp_path: Path) -> None:
    """D8: Linear(2, 2) alone is one region and one decision line, drawn and trainable."""
    import torch
    from selenium.webdriver.common.by import By

    from splineviz.nets import mlp

    open_playground(driver, served_app.url)
    path = tmp_path / "linear.pt"
    torch.save(mlp(2, (), 2, seed=1).state_dict(), path)
    upload(driver, "pg-upload", path)
    wait_for(lambda: text(driver, "pg-alert") == "Loaded linear.pt: 2-2 linear.", 60, message="the upload")
    wait_for(lambda: text(driver, "pg-stat-regions") == "1", 30, message="one region")  # the stats follow the alert
    wait_for(lambda: "decision boundary" in text(driver, "pg-legend") and "layer 1" not in text(driver, "pg-legend"),
             30, message="a legend without layers")
    lines, decision = wait_for(lambda: driver.execute_script(
        "const p = window.splineviz.painter.all('pg-graph')[0];"
        "return p && p.frame && p.painted ? [p.frame.lines.length, atob(p.frame.decision.bdata).length / 16] : null"),
        30, message="the painted frame")
    assert lines == 0 and decision >= 1  # no layer lines, one decision line (f4 x0 y0 x1 y1 per segment)
    driver.find_element(By.ID, "pg-step").click()
    wait_for(lambda: epoch_shown(driver) == 1, 60, message="a training step of the linear model")
    shot(driver, "fault-upload-linear")
    assert severe_console_errors(driver) == []


def test_bad_link_values_are_clamped(driver, served_app) -> None:
    """D5: ?epochs=1000000000 becomes the Epochs control's 2000; Step then trains 2000/150 -> 14 epochs."""
    from selenium.webdriver.common.by import By

    driver.get(served_app.url + "/?epochs=1000000000&layers=40&width=7&noise=oops")
    wait_for(lambda: "epochs=2000" in driver.current_url, 30, message="the URL to be rewritten with clamped values")
    assert "layers=6" in driver.current_url and "width=6" in driver.current_url and "noise" not in driver.current_url
    assert driver.find_element(By.ID, "pg-epochs").get_attribute("value") == "2000"
    wait_for(lambda: "layer 6 boundaries" in text(driver, "pg-legend"), 60, message="a six-layer network")
    driver.find_element(By.ID, "pg-step").click()
    wait_for(lambda: epoch_shown(driver) == 14, 60, message="one step of 14 epochs")
    shot(driver, "fault-bad-link-clamped")
    assert severe_console_errors(driver) == []


def test_job_quota_and_closing_the_tab_stop_jobs(tmp_path: Path) -> None:
    """A tab may run one job here (SPLINEVIZ_JOBS_PER_SESSION=1): a second is refused with a message; leaving
    the page stops the first within seconds, though it had about a minute of work left."""
    from selenium.webdriver.common.by import By

    env = {"SPLINEVIZ_CACHE_DIR": str(tmp_path / "cache"), "SPLINEVIZ_JOBS_PER_SESSION": "1"}
    with running_app(env=env, log=tmp_path / "app.log") as app:
        driver = chrome()
        try:
            driver.get(app.url + "/earlybird?layers=5&width=48&eb_epochs=500")
            wait_for(lambda: text(driver, "pg-stat-epoch") == "0", 60, message="the shared model")
            driver.find_element(By.ID, "eb-run").click()
            wait_for(lambda: "epoch" in text(driver, "eb-progress-label"), 60, message="the early-bird run")
            driver.find_element(By.ID, "nav-mnist").click()
            wait_for(lambda: any(e.is_displayed() for e in driver.find_elements(By.ID, "mn-train")), 30,
                     message="the MNIST page (mounted on its first visit)")
            driver.find_element(By.ID, "mn-train").click()
            message = wait_for(lambda: text(driver, "mn-alert"), 30, message="the quota refusal")
            assert message.startswith("Training the classifier failed: this tab already runs 1 job,")
            shot(driver, "fault-quota")
            assert len(job_processes(app.pid)) >= 1
            driver.get("about:blank")  # the tab leaves: its beacon says goodbye
            wait_for(lambda: not job_processes(app.pid), 15, 0.2, message="the early-bird job to stop")
        finally:
            driver.quit()
        assert "stopped because its browser tab was closed" in (tmp_path / "app.log").read_text()
