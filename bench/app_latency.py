"""How the app answers in the browser: slider latency and replay on a small net, the 6x64 Spirals training
run, replay at ~60k regions (and at 40 to 8k regions: how the rate falls with what is painted) and the paper
CNN's ~321k-region MNIST slice; plus server-side build times.

Usage: nice -n 5 python bench/app_latency.py [--epochs 100] [--presses 30]  -> writes bench/APP_RESULTS.md

Browser numbers are measured inside the page: a keydown on a slider handle starts the clock and the
graph's next ``splineviz:painted`` event (the worker's picture landed) stops it, so WebDriver overhead is
excluded. The main thread's longest task comes from a PerformanceObserver for ``longtask`` entries (tasks
over 50 ms); a "scripted round trip" is one WebDriver call into the page, which waits for the running task
to end. The browser is headless Chromium with software GL (swiftshader) on a shared 2-core machine, so a
desktop browser with a GPU paints faster.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from splineviz.figures import partition_figure  # noqa: E402
from splineviz.frame import Frame  # noqa: E402
from splineviz.nets import mlp, to_ops  # noqa: E402
from splineviz.partition import trace  # noqa: E402
sys.path.insert(0, str(REPO / "tests"))
from harness import chrome, element_text, running_app, wait_for  # noqa: E402

OUT = REPO / "bench" / "APP_RESULTS.md"
OTHER_SECTIONS = ("Pruning runs",)  # sections of OUT that other benches write (pruning_anim.py), kept as they are
ARCH = (16, 16, 16)

HOOK = """
window.__lat = [];
window.__replay = [];
const gd = document.querySelector('#pg-graph .js-plotly-plot');
gd.addEventListener('splineviz:painted', () => {
  const now = performance.now();
  window.__replay.push(now);
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
        partition = trace(ops, bounds=bounds)
        t1 = time.perf_counter()
        frame = Frame.from_partition(partition, bounds)
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


# Counts tasks that start after window.__since: the observer also reports the page load's (buffered), later.
LONGTASKS = """
window.__longest = 0; window.__longtasks = 0; window.__since = performance.now();
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.startTime < window.__since) continue;
    window.__longtasks += 1; window.__longest = Math.max(window.__longest, e.duration);
  }
}).observe({type: 'longtask', buffered: true});
"""
RESET_LONGTASKS = "window.__longest = 0; window.__longtasks = 0; window.__since = performance.now();"
PAINTS = """
window.__paints = [];
document.querySelector('#%s .js-plotly-plot').addEventListener('splineviz:painted',
  (e) => window.__paints.push({t: performance.now(), ms: e.detail.ms.total, cells: e.detail.cells}));
"""


def _longest(driver) -> str:
    longest, count = driver.execute_script("return [window.__longest, window.__longtasks]")
    return f"{longest:.0f} ms ({count} tasks over 50 ms)"


def _reset_longtasks(driver) -> None:
    driver.execute_script(RESET_LONGTASKS)


def _round_trip(driver) -> float:
    """Seconds for one scripted call into the page: a busy main thread holds it until its task ends."""
    t0 = time.perf_counter()
    driver.execute_script("return performance.now()")
    return time.perf_counter() - t0


def spirals_training(url: str, epochs: int, watch_s: float) -> dict[str, str]:
    """The 6x64 Spirals run the issue froze on: longest task and slowest round trip while training, then Pause."""
    from selenium.webdriver.common.by import By

    driver = chrome()
    try:
        driver.get(f"{url}/?dataset=spirals&layers=6&width=64&epochs={epochs}")
        wait_for(lambda: element_text(driver, "pg-stat-epoch") == "0", 120, message="the first frame")
        initial = element_text(driver, "pg-stat-regions")
        driver.execute_script(LONGTASKS)
        _reset_longtasks(driver)
        driver.find_element(By.ID, "pg-play").click()
        warned = wait_for(lambda: element_text(driver, "pg-confirm-text") or "Pause" in element_text(driver, "pg-play"),
                          30, message="training or a large-run warning")
        if warned is not True and "Pause" not in element_text(driver, "pg-play"):
            driver.find_element(By.ID, "pg-confirm").click()  # "Train anyway"
        start, trips = time.perf_counter(), []
        while time.perf_counter() - start < watch_s and element_text(driver, "pg-stat-epoch") != str(epochs):
            trips.append(_round_trip(driver))
            time.sleep(0.25)
        epoch_at_pause = element_text(driver, "pg-stat-epoch")
        training = _longest(driver)
        _reset_longtasks(driver)
        t0 = time.perf_counter()
        driver.find_element(By.ID, "pg-play").click()
        wait_for(lambda: "Train" in element_text(driver, "pg-play"), 60, 0.02, message="Pause to answer")
        pause_s = time.perf_counter() - t0
        time.sleep(10)
        after = element_text(driver, "pg-stat-epoch")
        return {"6x64 Spirals: regions at epoch 0 / when paused": f"{initial} / {element_text(driver, 'pg-stat-regions')}",
                "6x64 Spirals: epochs trained while watched": f"{epoch_at_pause} in {watch_s:.0f} s "
                                                              f"(epoch {after} 10 s after Pause)",
                "6x64 Spirals: longest main-thread task while training": training,
                "6x64 Spirals: longest main-thread task in the 10 s after Pause (the shown frame's unit strip, "
                "hover and link are built once training stops)": _longest(driver),
                "6x64 Spirals: slowest scripted round trip while training":
                    f"{1000 * max(trips):.0f} ms (median {1000 * statistics.median(trips):.0f} ms, n={len(trips)})",
                "6x64 Spirals: Pause click -> button answers": f"{1000 * pause_s:.0f} ms"}
    finally:
        driver.quit()


def cnn_slice(url: str) -> dict[str, str]:
    """The paper CNN's full [0,1]^2 slice on the MNIST page: open it, zoom, pan, zoom out; longest task."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver = chrome()
    try:
        driver.get(f"{url}/mnist?arch=paper_cnn&extent=1.0&mn_epochs=1")
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#mn-thumbs-a img"), 60, message="thumbnails")
        driver.execute_script(LONGTASKS)
        driver.find_element(By.ID, "mn-train").click()
        wait_for(lambda: driver.execute_script(
            "const ps = window.splineviz.painter.all('mn-graph');"
            "return ps.length && ps[0].frame && ps[0].painted && !ps[0].busy && !ps[0].pending"),
            1500, 0.5, message="the slice painted")
        regions, cells = driver.execute_script(
            "const f = window.splineviz.painter.all('mn-graph')[0].frame;"
            "return [f.n_regions, Math.round(atob(f.cells.offsets.bdata).length / 4) - 1]")
        opened = _longest(driver)
        _reset_longtasks(driver)
        driver.execute_script(PAINTS % "mn-graph")
        area = driver.find_element(By.CSS_SELECTOR, "#mn-graph .nsewdrag")
        ActionChains(driver).move_to_element_with_offset(area, -60, -60).click_and_hold() \
            .move_by_offset(60, 40).move_by_offset(60, 40).release().perform()  # box zoom
        time.sleep(2)
        driver.execute_script("Plotly.relayout(document.querySelector('#mn-graph .js-plotly-plot'), {dragmode: 'pan'})")
        time.sleep(1)
        chain = ActionChains(driver).move_to_element(area).click_and_hold()
        for _ in range(10):
            chain = chain.move_by_offset(8, 5).pause(0.05)
        chain.release().perform()  # pan: plotly reports ranges while dragging, the painter follows
        time.sleep(2)
        ActionChains(driver).double_click(area).perform()  # back to the whole slice
        time.sleep(3)
        paints = driver.execute_script("return window.__paints.map(p => p.ms)")
        return {"paper CNN slice: regions / class cells": f"{regions:,} / {cells:,}",
                "paper CNN slice: longest main-thread task, training + trace + first paint": opened,
                "paper CNN slice: longest main-thread task, zoom + pan + zoom out": _longest(driver),
                "paper CNN slice: repaints after zoom/pan in the worker":
                    (f"{len(paints)}, median {statistics.median(paints):.0f} ms, max {max(paints):.0f} ms"
                     if paints else "none")}
    finally:
        driver.quit()


REPLAY = """
const [layout, style, seconds, done] = arguments, frames = window.__frames;
const sv = window.splineviz;
(async () => {
  const host = document.createElement('div');
  host.id = 'bench-graph';
  host.style.cssText = 'position:fixed;left:0;top:0;width:700px;height:700px;z-index:9999;background:#fff';
  const inner = document.createElement('div');
  host.appendChild(inner);
  document.body.appendChild(host);
  await Plotly.newPlot(inner, [], sv.painter.layout(Object.assign({}, layout, {width: 700, height: 700})));
  const p = sv.painter.of('bench-graph', 0, style);
  await p.show(frames[0], {shade: 'class', decision: true});
  const times = [];
  inner.addEventListener('splineviz:painted', () => times.push(performance.now()));
  """ + RESET_LONGTASKS + """
  const player = new sv.Replay(30), waits = [];
  const show = (i) => {
    const t = performance.now();
    return p.show(frames[i], {shade: 'class', decision: true}).then(() => waits.push(performance.now() - t));
  };
  const loop = () => player.start(0, frames.length, show, loop);
  loop();
  setTimeout(() => { player.onStop = null; player.stop(false); done({times: times, waits: waits}); }, 1000 * seconds);
})().catch((e) => done({error: String(e && e.stack || e)}));
"""


def replay_rate(url: str, width: int, n_frames: int, seconds: float, label: str = "replay") -> dict[str, str]:
    """Playback of recorded frames of ~60k regions through the app's Replay and painter (as the Playground's
    Replay button does), more frames than the painter caches, so that every step decodes and uploads anew."""
    import plotly.graph_objects as go

    from splineviz.figures import STYLE, partition_layout
    from splineviz.web.tracing import trace_frame

    bounds = (-3.0, 3.0, -3.0, 3.0)
    frames = [trace_frame(mlp(2, (width,) * 4, 2, seed=seed), bounds, epoch=seed) for seed in range(n_frames)]
    regions = [f["n_regions"] for f in frames]
    driver = chrome()
    try:
        driver.get(url + "/mnist")
        wait_for(lambda: driver.execute_script("return !!(window.Plotly && window.splineviz && window.splineviz.Replay)"),
                 60, message="the app's scripts")
        driver.execute_script("window.__frames = [];")
        for frame in frames:
            driver.execute_script("window.__frames.push(arguments[0])", frame)
        driver.execute_script(LONGTASKS)
        driver.set_script_timeout(seconds + 120)
        out = driver.execute_async_script(REPLAY, json.loads(go.Figure(layout=partition_layout(bounds)).to_json())["layout"],
                                          STYLE, seconds)
        if "error" in out:
            raise RuntimeError(out["error"])
        t, waits = out["times"], out["waits"]
        rate = f"{(len(t) - 1) / ((t[-1] - t[0]) / 1000):.1f} fps" if len(t) > 1 else "under 1 frame"
        return {f"{label}: frames": f"{n_frames} frames of 2-{width}x4-2 nets, {min(regions):,}-{max(regions):,} regions",
                f"{label}: frame rate": f"{rate} ({len(t)} frames painted in {seconds:.0f} s)",
                f"{label}: show -> painted per frame": _ms(waits) if waits else "none finished",
                f"{label}: longest main-thread task": _longest(driver)}
    finally:
        driver.quit()


def small_net(url: str, epochs: int, presses: int) -> dict[str, str]:
    """The default 3x16 moons run: training wall time, slider -> painted latency, replay rate."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = chrome()
    try:
        driver.get(f"{url}/?epochs={epochs}")
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
            results[f"{slider} slider -> frame painted"] = _ms(latencies)
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


SECTIONS = {"small": lambda url, a: small_net(url, a.epochs, a.presses),
            "spirals": lambda url, a: spirals_training(url, 300, 90.0),  # still training when Pause is pressed
            "replay": lambda url, a: replay_rate(url, 110, 8, 20.0),
            # how the rate falls with the regions painted (software GL draws every cell and segment on the CPU)
            "replay-scale": lambda url, a: {k: v for width in (4, 16, 40)
                                            for k, v in replay_rate(url, width, 8, 10.0, f"replay 2-{width}x4-2").items()},
            "cnn": lambda url, a: cnn_slice(url)}


def browser_side(args: argparse.Namespace) -> dict[str, str]:
    results: dict[str, str] = {}
    with running_app() as app:
        for name in args.only or SECTIONS:
            part = SECTIONS[name](app.url, args)
            part[f"{name}: load average while measured"] = f"{os.getloadavg()[0]:.1f}"
            print("\n".join(f"{k}: {v}" for k, v in part.items()), flush=True)
            results.update(part)
    return results


def _rows(text: str, heading: str) -> dict[str, str]:
    """The "| measurement | result |" rows under a heading of an earlier results file (kept by --only runs)."""
    section = text.split(heading, 1)[1].split("\n## ", 1)[0] if heading in text else ""
    rows = [line.strip("|").split(" | ", 1) for line in section.splitlines() if line.startswith("| ")]
    return {k.strip(): v.strip() for k, v in rows if k.strip() not in ("measurement", "step")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--presses", type=int, default=30)
    parser.add_argument("--only", nargs="*", choices=list(SECTIONS), help="browser sections to run (default: all)")
    args = parser.parse_args()
    server = server_side()
    browser = {**(_rows(OUT.read_text(), "## Browser") if args.only and OUT.exists() else {}), **browser_side(args)}
    load = os.getloadavg()
    lines = ["# App latency (bench/app_latency.py)", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs shared with other work, load average {load[0]:.1f} at "
             "the end of the run (each section's own below); "
             "headless Chromium with software GL (swiftshader). Slider and first replay rows: net 2-16-16-16-2 "
             "(moons, 3x16 ReLU).", "",
             "## Browser (measured in the page: keydown -> splineviz:painted; PerformanceObserver longtask)", "",
             "| measurement | result |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in browser.items()]
    lines += ["", "## Server side (Python, one core)", "", "| step | time |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in server.items()]
    earlier = OUT.read_text() if OUT.exists() else ""
    others = ["## " + part for part in earlier.split("\n## ")[1:] if part.startswith(OTHER_SECTIONS)]
    OUT.write_text("\n".join(lines) + "\n" + "".join("\n" + part.rstrip() + "\n" for part in others))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
