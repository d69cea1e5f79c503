"""Slider-to-redraw latency and playback frame rate of the app, plus server-side figure build times.

Usage: python bench/app_latency.py [--epochs 100] [--presses 30]  -> writes bench/APP_RESULTS.md

Browser numbers are measured inside the page: a keydown on a slider handle starts the clock and the
graph's next ``plotly_afterplot`` event stops it, so WebDriver overhead is excluded; replay counts the
page's ``splineviz:replayframe`` events (frames painted on the replay canvas). The browser is
headless Chromium with software GL (swiftshader), so a desktop browser with a GPU is faster.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from splineviz.figures import partition_figure, partition_frame  # noqa: E402
from splineviz.nets import mlp, to_ops  # noqa: E402
from splineviz.partition import trace  # noqa: E402
sys.path.insert(0, str(REPO / "tests"))
from harness import chrome, element_text, running_app, wait_for  # noqa: E402

OUT = REPO / "bench" / "APP_RESULTS.md"
ARCH = (16, 16, 16)

HOOK = """
window.__lat = [];
window.__plots = [];
window.__replay = [];
const gd = document.querySelector('#pg-graph .js-plotly-plot');
gd.addEventListener('splineviz:replayframe', () => window.__replay.push(performance.now()));
gd.on('plotly_afterplot', () => {
  const now = performance.now();
  window.__plots.push(now);
  if (window.__pending != null) { window.__lat.push(now - window.__pending); window.__pending = null; }
});
for (const id of ['pg-epoch', 'pg-layer']) {
  document.querySelector('#' + id + ' [role=slider]').addEventListener('keydown',
    () => { window.__pending = performance.now(); }, true);
}
"""


def _ms(values: list[float]) -> str:
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
    return f"median {statistics.median(values):.1f} ms, p90 {p90:.1f} ms, max {values[-1]:.1f} ms (n={len(values)})"


def server_side(repeats: int = 30) -> dict[str, str]:
    """Trace, frame and figure build times for a trained-size 2-16-16-16-2 net (seeded init)."""
    ops = to_ops(mlp(2, ARCH, 2, seed=0))
    bounds = (-3.0, 3.0, -3.0, 3.0)
    timings: dict[str, list[float]] = {"trace": [], "frame": [], "figure (class shading)": [],
                                       "figure (code shading)": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        partition = trace(ops, domain=bounds)
        t1 = time.perf_counter()
        frame = partition_frame(partition, bounds)
        t2 = time.perf_counter()
        partition_figure(frame)
        t3 = time.perf_counter()
        partition_figure(frame, shade="code")
        t4 = time.perf_counter()
        for key, dt in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            timings[key].append(1000 * dt)
    result = {key: _ms(values) for key, values in timings.items()}
    result["regions"] = str(partition.n_regions)
    return result


def browser_side(epochs: int, presses: int) -> dict[str, str]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with running_app() as app:
        driver = chrome()
        try:
            driver.get(f"{app.url}/?epochs={epochs}")
            wait_for(lambda: element_text(driver, "pg-stat-epoch") == "0", 60, message="the first frame")
            start = time.perf_counter()
            driver.find_element(By.ID, "pg-play").click()
            wait_for(lambda: element_text(driver, "pg-stat-epoch") == str(epochs), 600, 0.2, message="training")
            train_s = time.perf_counter() - start
            regions = element_text(driver, "pg-stat-regions")
            driver.execute_script(HOOK)
            results = {"training to epoch %d (live redraw)" % epochs: f"{train_s:.1f} s wall, final {regions} regions"}
            for slider, key in (("pg-epoch", Keys.ARROW_LEFT), ("pg-layer", None)):
                handle = driver.find_element(By.CSS_SELECTOR, f"#{slider} [role=slider]")
                handle.click()
                time.sleep(0.5)
                driver.execute_script("window.__lat = []; window.__pending = null;")
                for i in range(presses):
                    handle.send_keys(key or (Keys.ARROW_LEFT if i % 2 == 0 else Keys.ARROW_RIGHT))
                    time.sleep(0.15)
                latencies = driver.execute_script("return window.__lat")
                results[f"{slider} slider -> figure redrawn"] = _ms(latencies)
            driver.find_element(By.CSS_SELECTOR, "#pg-epoch [role=slider]").send_keys(Keys.HOME)
            time.sleep(0.5)
            driver.execute_script("window.__replay = [];")
            driver.find_element(By.ID, "pg-replay").click()
            time.sleep(3.0)
            frames = driver.execute_script("return window.__replay")
            span = (frames[-1] - frames[0]) / 1000 if len(frames) > 1 else float("nan")
            results["replay frame rate"] = (f"{(len(frames) - 1) / span:.1f} fps over {span:.1f} s "
                                            f"({len(frames)} frames painted)")
            return results
        finally:
            driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--presses", type=int, default=30)
    args = parser.parse_args()
    server = server_side()
    browser = browser_side(args.epochs, args.presses)
    load = os.getloadavg()
    lines = ["# App latency (bench/app_latency.py)", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load[0]:.1f} during the run; "
             "headless Chromium with software GL (swiftshader). Net 2-16-16-16-2 (moons, 3x16 ReLU).", "",
             "## Browser (measured in the page: keydown -> plotly_afterplot)", "",
             "| measurement | result |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in browser.items()]
    lines += ["", "## Server side (Python, one core)", "", "| step | time |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in server.items()]
    OUT.write_text("\n".join(lines) + "\n")
    print(OUT.read_text())


if __name__ == "__main__":
    main()
