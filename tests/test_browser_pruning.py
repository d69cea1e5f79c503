"""Pruning while training in headless Chromium (issue 16; issue 12's early-bird threshold and replay): a gradual
schedule beside spline pruning and an early-bird run, end to end, from a shared link.

Each run is watched while its job runs (frames and distances arrive before it ends), then replayed: the replay
moves the epoch slider and the curves' marker, and the steps after a pruning event name the units drawn as ghosts.
Screenshots go to out/screenshots/ (pruning-*.png, earlybird-*.png) for a human look.
"""
from __future__ import annotations

import re

import pytest

from harness import HAS_CHROMIUM, marker_x, severe_console_errors, shot, wait_for
from harness import element_text as text

pytestmark = pytest.mark.browser
if not HAS_CHROMIUM:
    pytest.skip("needs Chromium and chromedriver", allow_module_level=True)


def shown_epochs(driver, info_id: str) -> list[int]:
    """The epoch on each panel's status line."""
    return [int(e) for e in re.findall(r"· epoch (\d+) ·", text(driver, info_id))]


def running(driver, button_id: str) -> bool:
    return driver.execute_script(f"return document.getElementById('{button_id}').disabled")


def watch_run(driver, button_id: str, probe) -> list:
    """Click ``button_id`` and collect ``probe()`` while its job runs (the button is disabled meanwhile)."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, button_id).click()
    wait_for(lambda: running(driver, button_id), 30, message="the job to start")
    seen = []
    wait_for(lambda: seen.append(probe()) or not running(driver, button_id), 300, interval=0.2,
             message="the job to finish")
    return seen


def slider_value(driver, slider_id: str) -> int:
    return int(driver.execute_script(
        f"return document.querySelector('#{slider_id} [role=slider]').getAttribute('aria-valuenow')"))


def described_step(driver, prefix: str) -> int | None:
    """The step the status lines describe (they are written after the slider moves)."""
    return driver.execute_script(
        f"const line = document.querySelector('#{prefix}-info .anim-line'); "
        "return line && line.dataset.step !== undefined ? parseInt(line.dataset.step) : null;")


def step_until(driver, prefix: str, wanted: str) -> None:
    """Move the epoch slider from the first step with the keyboard until the status line says ``wanted``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    handle = driver.find_element(By.CSS_SELECTOR, f"#{prefix}-step [role=slider]")
    handle.send_keys(Keys.HOME)
    wait_for(lambda: slider_value(driver, f"{prefix}-step") == 0 and described_step(driver, prefix) == 0, 10,
             message="the first step")
    for _ in range(200):
        if wanted in text(driver, f"{prefix}-info"):
            return
        before = slider_value(driver, f"{prefix}-step")
        handle.send_keys(Keys.ARROW_RIGHT)
        wait_for(lambda: slider_value(driver, f"{prefix}-step") > before, 10, message="the next step")
        wait_for(lambda: described_step(driver, prefix) == slider_value(driver, f"{prefix}-step"), 10,
                 message="the step's status")  # else the lines of the step before could be read as this one's
    raise AssertionError(f"no step says {wanted!r}")


def replay_moves_the_slider(driver, prefix: str, curves: str, last_epoch: int) -> None:
    """Replay from the first step: the epoch slider moves forward with it and the curves' marker ends on the
    last epoch."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    last = int(driver.execute_script(
        f"return document.querySelector('#{prefix}-step [role=slider]').getAttribute('aria-valuemax')"))
    driver.find_element(By.CSS_SELECTOR, f"#{prefix}-step [role=slider]").send_keys(Keys.HOME)
    wait_for(lambda: slider_value(driver, f"{prefix}-step") == 0, 10, message="the first step")
    driver.find_element(By.ID, f"{prefix}-replay").click()
    values = []
    wait_for(lambda: values.append(slider_value(driver, f"{prefix}-step")) or (
        values[-1] == last and text(driver, f"{prefix}-replay") == "▶ Replay"), 60, interval=0.02,
        message="the replay to end on the last step")
    assert values == sorted(values) and len(set(values)) >= 3, values  # the slider went along, forwards
    wait_for(lambda: marker_x(driver, "replay-marker", curves) == last_epoch, 10, message="the marker on the last epoch")


def test_gradual_schedule_beside_spline_pruning_streams_animates_and_replays(driver, app_url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(app_url + "/pruning?layers=2&width=8&pr_epochs=40&g_start=4&g_end=24&g_every=4"
                         "&compare=method%3Aspline")
    wait_for(lambda: text(driver, "pg-stat-epoch") == "0", 60, message="the Playground's model")
    assert driver.find_element(By.ID, "pr-run-epochs").get_attribute("value") == "40"  # the link set the controls
    assert not driver.find_element(By.ID, "pr-at-row").is_displayed()  # one-shot's field hidden for gradual
    # the cost is told before the run: 2 runs, 40 epochs + 5 pruning steps (epochs 4 .. 24) each
    wait_for(lambda: "2 runs side by side" in text(driver, "pr-estimate"), 30, message="the run's estimate")
    assert re.search(r"each 47 frames, from [\d,]+ regions at initialisation to about [\d,]+ once trained "
                     r"without pruning .* 6 pruning steps: (about \d+ s|under a second) \(pruning usually leaves "
                     r"fewer regions\)\.", text(driver, "pr-estimate")), \
        text(driver, "pr-estimate")
    seen = watch_run(driver, "pr-run", lambda: shown_epochs(driver, "pr-info"))
    live = {tuple(s) for s in seen if s}
    assert any(max(s) < 40 for s in live), "no frame was shown before the run ended"
    assert len({s[0] for s in live}) >= 2, "the animation did not follow the run"
    assert text(driver, "pr-alert") == ""
    wait_for(lambda: shown_epochs(driver, "pr-info") == [40, 40], 30, message="both runs at their last epoch")
    painted = driver.execute_script(
        "return [...document.querySelectorAll('#pr-anim .sv-paint')].filter(c => c.style.display !== 'none').length")
    assert painted == 2
    curves = driver.execute_script("""
        const gd = document.querySelector('#pr-anim-curves .js-plotly-plot');
        return {shapes: gd.layout.shapes.length, traces: gd.data.length};""")
    assert curves["shapes"] >= 1 + 2 * 3 and curves["traces"] >= 8  # events of both runs, 4 curves each
    shot(driver, "pruning-gradual-done")

    replay_moves_the_slider(driver, "pr", "pr-anim-curves", 40)
    step_until(driver, "pr", "removed (dashed)")
    wait_for(lambda: marker_x(driver, "replay-marker", "pr-anim-curves") == shown_epochs(driver, "pr-info")[0], 10,
             message="the curves' marker at the epoch shown")
    assert re.search(r"pruned at epoch \d+ to \d+ %: \d+ units? removed \(dashed\); the decision moved on",
                     text(driver, "pr-info"))
    shot(driver, "pruning-gradual-event")
    driver.execute_script("document.getElementById('pr-anim-curves').scrollIntoView()")
    shot(driver, "pruning-gradual-curves")

    # a new estimate (another pilot: 30 epochs) marks its line busy while it is computed, then not
    driver.execute_script(
        "window.__busy = []; new MutationObserver(() => window.__busy.push(document.getElementById('pr-estimate')"
        ".getAttribute('aria-busy'))).observe(document.getElementById('pr-estimate'), {attributes: true, "
        "attributeFilter: ['aria-busy']});")
    field = driver.find_element(By.ID, "pr-run-epochs")
    field.clear()
    field.send_keys("30\n")
    wait_for(lambda: "each 37 frames" in text(driver, "pr-estimate"), 60, message="the 30-epoch estimate")
    wait_for(lambda: driver.execute_script("return window.__busy")[-1:] == ["false"], 10, message="the line not busy")
    assert "true" in driver.execute_script("return window.__busy")
    assert severe_console_errors(driver) == []


def test_earlybird_run_fills_in_live_and_the_threshold_applies_at_once(driver, app_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(app_url + "/earlybird?layers=2&width=8&eb_epochs=40&eb_threshold=0.1")
    wait_for(lambda: text(driver, "pg-stat-epoch") == "0", 60, message="the Playground's model")
    sizes = watch_run(driver, "eb-run", lambda: driver.execute_script("""
        const gd = document.querySelector('#eb-heatmap .js-plotly-plot');
        const trace = gd && gd._fullData && gd._fullData[0];  // decoded: the figure sends typed arrays
        return trace && trace.z ? trace.z.length : 0;"""))
    assert any(0 < n < 41 for n in sizes), "the distance matrix did not fill in during the run"
    assert text(driver, "eb-alert") == ""
    wait_for(lambda: "Ticket at epoch" in text(driver, "eb-summary"), 30, message="the ticket")
    ticket = int(re.search(r"Ticket at epoch (\d+)", text(driver, "eb-summary")).group(1))
    assert shown_epochs(driver, "eb-info") == [40]

    def threshold_line() -> float:
        return driver.execute_script("""
            const gd = document.querySelector('#eb-curve .js-plotly-plot');
            return gd.layout.shapes.find(s => s.name === 'threshold').y0;""")

    assert threshold_line() == pytest.approx(0.1)
    shot(driver, "earlybird-done")
    handle = driver.find_element(By.CSS_SELECTOR, "#eb-threshold [role=slider]")
    handle.click()
    for _ in range(5):
        handle.send_keys(Keys.ARROW_RIGHT)
    wait_for(lambda: abs(threshold_line() - 0.15) < 1e-9, 20, message="the threshold line to move")
    assert not running(driver, "eb-run")  # applied to the computed distances: no new run
    wait_for(lambda: "At threshold 0.15 the rule fires at epoch" in text(driver, "eb-summary"), 20,
             message="where the rule fires at the new threshold")
    fires = int(re.search(r"At threshold 0.15 the rule fires at epoch (\d+)", text(driver, "eb-summary")).group(1))
    assert fires <= ticket

    replay_moves_the_slider(driver, "eb", "eb-curve", 40)
    step_until(driver, "eb", "early-bird ticket at epoch")
    assert shown_epochs(driver, "eb-info") == [ticket]  # the first step saying so: the pruned ticket
    wait_for(lambda: marker_x(driver, "replay-marker", "eb-curve") == ticket, 10, message="the curve's marker at the ticket")
    shot(driver, "earlybird-ticket")
    driver.execute_script("document.getElementById('eb-heatmap').scrollIntoView()")
    shot(driver, "earlybird-distances")
    assert severe_console_errors(driver) == []


def test_a_run_over_the_region_budget_is_refused_before_it_starts(driver, tmp_path) -> None:
    """An app whose pruning runs may start from at most 50 regions: the Playground's default net (hundreds) is told
    so beside Run, and Run refuses it with the same words, on both pages."""
    from selenium.webdriver.common.by import By

    from harness import running_app

    env = {"SPLINEVIZ_RUN_REGIONS": "50", "SPLINEVIZ_CACHE_DIR": str(tmp_path / "cache")}
    with running_app(env=env) as app:
        for page, estimate, run, alert in (("pruning", "pr-estimate", "pr-run", "pr-alert"),
                                           ("earlybird", "eb-estimate", "eb-run", "eb-alert")):
            driver.get(f"{app.url}/{page}")
            wait_for(lambda: "Too large" in text(driver, estimate), 60, message="the refusal beside Run")
            words = text(driver, estimate)
            assert "more than 50 regions at initialisation" in words and "fewer or narrower layers" in words
            assert "refused" in driver.find_element(By.ID, estimate).get_attribute("class")
            driver.find_element(By.ID, run).click()
            wait_for(lambda: "Too large for a pruning run" in text(driver, alert), 30, message="the refusal")
            assert words in text(driver, alert)
            assert not running(driver, run)
            shot(driver, f"{page}-refused")
        assert severe_console_errors(driver) == []


def test_frames_a_run_lacks_are_fetched_and_one_the_server_lost_is_named(driver, tmp_path) -> None:
    """A finished run as a large run's result arrives, its frames apart (web.framestore): the page fetches each
    frame it lacks and animates them all; a frame the server no longer has is said to be missing, not skipped in
    silence."""
    import json
    import uuid

    from plotly.io.json import to_json_plotly

    from harness import running_app
    from splineviz.web import framestore
    from splineviz.web.jobs import playground as pg_jobs, pruning as pr_jobs
    from splineviz.web.state import PlaygroundConfig

    run = pg_jobs.start_run(PlaygroundConfig(layers=2, width=8, epochs=6))[0]
    kept: dict = {}
    runs = pr_jobs.scheduled_run(run, [pr_jobs.ScheduleSpec(kind="oneshot", epochs=6, at=3)],
                                 keep=lambda k, i, frame: kept.setdefault((k, i), frame))
    token, cache, lost = uuid.uuid4().hex, tmp_path / "cache", (0, 2)
    store = framestore.DiskFrames(f"{cache}-frames")
    for (k, i), frame in kept.items():
        if (k, i) != lost:
            store.put(token, k, i, frame)
    result = json.loads(to_json_plotly(pr_jobs.animation_store(run, [dict(r, frames={}) for r in runs], token)))
    with running_app(env={"SPLINEVIZ_CACHE_DIR": str(cache)}) as app:
        driver.get(f"{app.url}/pruning")
        wait_for(lambda: text(driver, "pg-stat-epoch") == "0", 60, message="the page")
        driver.execute_script("window.dash_clientside.set_props('pr-runs', {data: arguments[0]})", result)
        wait_for(lambda: "1 frame could not be loaded" in text(driver, "pr-info"), 30, message="the lost frame named")
        steps = len(kept) - 1  # one step per frame (the pruning step's two sides are two), less the lost frame
        assert int(driver.execute_script(
            "return document.querySelector('#pr-step [role=slider]').getAttribute('aria-valuemax')")) == steps - 1
        assert shown_epochs(driver, "pr-info") == [6]
        step_until(driver, "pr", "pruned at epoch 3")
        shot(driver, "pruning-fetched-frames")
        gone = f"{framestore.FRAMES_PATH}/{token}/{lost[0]}/{lost[1]} - Failed to load resource"  # the lost frame's 404
        assert [e for e in severe_console_errors(driver) if gone not in e] == []
