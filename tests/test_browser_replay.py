"""The replay player (assets/splineviz-5-replay.js) keeps time in the page: at most 30 frames a second, never two
frames in flight, the next frame as soon as a slow one is painted (not at the next animation frame), and a paint
that settles after the player was restarted does not advance the new run.

The page's clock and animation frames are simulated (60 Hz, 1 ms steps), so that the timings are exact: the
real ones stall whenever the app's page is busy."""
from __future__ import annotations

import pytest

from harness import HAS_CHROMIUM, severe_console_errors, wait_for

pytestmark = pytest.mark.browser
if not HAS_CHROMIUM:
    pytest.skip("needs Chromium and chromedriver", allow_module_level=True)

# runs `setup` (players on the simulated clock, logging to `log`), then the clock for `ms` ms; returns the log
SIMULATE = """
const [setup, ms, done] = arguments;
const sv = window.splineviz;
let clock = 0, queued = [], timers = [];
performance.now = () => clock;  // an own property over Performance.prototype.now, deleted at the end
window.requestAnimationFrame = (cb) => { queued.push(cb); return queued.length; };
window.cancelAnimationFrame = () => {};  // a cancelled player ignores its callbacks (handle null / new run)
const after = (delay) => new Promise((resolve) => timers.push([clock + delay, resolve]));
const log = [];
(async () => {
  new Function("sv", "after", "log", setup)(sv, after, log);
  for (let t = 1; t <= ms; t++) {
    clock = t;
    const due = timers.filter((timer) => timer[0] <= t);
    timers = timers.filter((timer) => timer[0] > t);
    for (const timer of due) timer[1]();
    await new Promise((resolve) => setTimeout(resolve, 0));  // let the settled paints' callbacks run
    if (Math.floor(t * 60 / 1000) !== Math.floor((t - 1) * 60 / 1000)) {  // an animation frame
      const callbacks = queued;
      queued = [];
      for (const cb of callbacks) cb(clock);
    }
  }
  delete performance.now;
  done(log);
})().catch((e) => done({error: String(e && e.stack || e)}));
"""

# frames 1..11 with paints of `paint` ms: [frame, started, settled]
PLAY = """
const player = new sv.Replay(30);
let inFlight = 0;
player.start(0, 12, (i) => {
  const entry = [i, performance.now(), null, ++inFlight];
  log.push(entry);
  return after(%d).then(() => { inFlight--; entry[2] = performance.now(); });
}, () => log.push("stopped"));
"""

RESTART = """
const player = new sv.Replay(30);
player.start(0, 10, (i) => { log.push("a" + i); return after(150); }, () => {});
after(60).then(() => {
  player.stop(false);
  // still playing when a1 settles (at about 184 ms)
  player.start(0, 8, (i) => { log.push("b" + i); return after(1); }, () => log.push("stopped"));
});
"""


@pytest.fixture
def page(driver, app_url: str):
    driver.get(app_url + "/mnist")
    wait_for(lambda: driver.execute_script("return !!(window.splineviz && window.splineviz.Replay)"), 60,
             message="the app's scripts")
    driver.set_script_timeout(120)
    return driver


def simulate(page, setup: str, ms: int) -> list:
    out = page.execute_async_script(SIMULATE, setup, ms)
    assert "error" not in out, out
    return out


def test_slow_frames_follow_each_other_at_once_and_never_overlap(page) -> None:
    log = simulate(page, PLAY % 55, 1000)
    assert log[-1] == "stopped" and [entry[0] for entry in log[:-1]] == list(range(1, 12))
    assert max(entry[3] for entry in log[:-1]) == 1  # never a second frame before the first is painted
    gaps = [after[1] - before[2] for before, after in zip(log, log[1:-1])]
    # 55 ms paints, a 33 ms interval: each frame starts when the last is painted, not at the next animation
    # frame (up to 16.7 ms later)
    assert gaps == [0] * 10, gaps
    assert severe_console_errors(page) == []


def test_fast_frames_keep_to_30_fps(page) -> None:
    log = simulate(page, PLAY % 1, 1000)
    starts = [entry[1] for entry in log[:-1]]
    assert len(starts) == 11
    assert all(33 <= b - a <= 34 for a, b in zip(starts, starts[1:])), starts  # every other frame at 60 Hz


def test_a_paint_settling_after_a_restart_does_not_advance_the_new_run(page) -> None:
    log = simulate(page, RESTART, 600)
    assert log == ["a1"] + [f"b{i}" for i in range(1, 8)] + ["stopped"], log
