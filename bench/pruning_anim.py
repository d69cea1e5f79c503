"""Pruning while training at the sizes the Playground offers (issue 16, item 6): a gradual and an early-bird run on
6x64 Spirals (the largest net the controls build) and, for scale, on 3x32, as the Pruning page's job runs them.

Usage: nice -n 5 python bench/pruning_anim.py [--epochs 40] [--only gradual-6x64 ...] [--browser] [--interleaved 2]
  -> writes the "Pruning runs" sections of bench/APP_RESULTS.md

Server side, each case runs in its own process (``--child``), so that its peak resident memory (``ru_maxrss``) is the
job's: the run goes through ``web.jobs.pruning.scheduled_run`` with the page's ``stream`` callback, which times
every streamed payload and measures its JSON size (what the page polls), the page's ``keep`` (frames apart, as
``web.framestore`` keeps them; here in memory), and a Recorder that times each pruning step's decision change.
``--browser`` also runs the 6x64 gradual run on the Pruning page in headless Chromium
and records the longest main-thread task (PerformanceObserver ``longtask``, as bench/app_latency.py) and the slowest
scripted round trip while it streams.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "bench" / "APP_RESULTS.md"
HEADING = "## Pruning runs (bench/pruning_anim.py)"
CASES = {  # name -> (Playground config, schedule spec)
    "gradual-3x32": ({"dataset": "spirals", "layers": 3, "width": 32}, {"kind": "gradual"}),
    "gradual-6x64": ({"dataset": "spirals", "layers": 6, "width": 64}, {"kind": "gradual"}),
    "earlybird-6x64": ({"dataset": "spirals", "layers": 6, "width": 64}, {"kind": "earlybird"}),
    "side-by-side-6x64": ({"dataset": "spirals", "layers": 6, "width": 64}, {"kind": "gradual", "compare": "method:spline"}),
}


def child(name: str, epochs: int, parallel: bool) -> dict:
    """One case in this process: the job's own numbers."""
    import torch
    from plotly.io.json import to_json_plotly

    from splineviz.web.jobs import earlybird as eb_jobs, playground as pg_jobs, pruning as pr_jobs
    from splineviz.web.state import PlaygroundConfig

    torch.set_num_threads(1)
    config, spec_values = CASES[name]
    spec_values = dict(spec_values)
    compare = spec_values.pop("compare", "none")
    run, _ = pg_jobs.start_run(PlaygroundConfig(**config))
    spec = pr_jobs.ScheduleSpec(epochs=epochs, **spec_values)
    changes: list[float] = []

    class Timed(eb_jobs.DistanceRecorder if spec.kind == "earlybird" else pr_jobs.Recorder):
        def _event(self, *args, **kw):
            t0 = time.perf_counter()
            try:
                return super()._event(*args, **kw)
            finally:
                changes.append(time.perf_counter() - t0)

    streams: list[tuple[float, int, float]] = []  # (seconds since start, JSON bytes, seconds to encode)
    start = time.perf_counter()

    def stream(partial: list) -> None:
        t0 = time.perf_counter()
        size = len(to_json_plotly(pr_jobs.animation_store(run, partial, "bench")))
        streams.append((t0 - start, size, time.perf_counter() - t0))

    specs = pr_jobs.compare_specs(spec, compare)
    estimate = pr_jobs.estimate(run, specs)
    kept: dict[tuple[int, int], str] = {}
    runs = pr_jobs.scheduled_run(run, specs, stream=stream, recorder=Timed, parallel=parallel,
                                 keep=lambda k, i, text: kept.setdefault((k, i), text))
    wall = time.perf_counter() - start
    final = len(to_json_plotly(pr_jobs.animation_store(run, runs, "bench")))
    runs = [{**r, "frames": {i: json.loads(kept[k, i]) for i in range(r["n_frames"])}} for k, r in enumerate(runs)]
    gaps = [b[0] - a[0] for a, b in zip(streams, streams[1:])]
    traces = [f["stats"]["trace_s"] for r in runs for f in r["frames"].values()]
    regions = [f["n_regions"] for r in runs for f in r["frames"].values()]
    return {"case": name + (" (one after the other)" if len(runs) > 1 and not parallel else ""), "epochs": epochs,
            "estimate_s": estimate.seconds, "estimate_frames": estimate.frames, "wall_s": wall, "frames": sum(r["n_frames"] for r in runs),
            "events": sum(len(r["events"]) for r in runs), "tickets": [r["ticket"] for r in runs],
            "regions": [min(regions), max(regions)], "trace_s": [statistics.median(traces), max(traces)],
            "gap_s": [statistics.median(gaps), max(gaps)] if gaps else [0, 0],
            "stream_bytes": [statistics.median(s[1] for s in streams), max(s[1] for s in streams)],
            "stream_encode_s": max(s[2] for s in streams), "final_bytes": final,
            "frame_bytes": [statistics.median(map(len, kept.values())), max(map(len, kept.values()))],
            "change_s": [statistics.median(changes), max(changes)] if changes else None,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "load": os.getloadavg()[0]}


def interleaved(repeats: int, epochs: int = 10) -> str:
    """Two runs side by side (6x64, node beside spline, gradual every 2 epochs) in threads against one after the
    other, in this one process, interleaved in alternating order: the median of per-repeat wall-time ratios."""
    import torch

    from splineviz.web.jobs import playground as pg_jobs, pruning as pr_jobs
    from splineviz.web.state import PlaygroundConfig

    torch.set_num_threads(1)
    run, _ = pg_jobs.start_run(PlaygroundConfig(**CASES["side-by-side-6x64"][0]))
    specs = pr_jobs.compare_specs(pr_jobs.ScheduleSpec(epochs=epochs, start=2, end=8, every=2), "method:spline")
    ratios, cpu = [], {True: [], False: []}
    for rep in range(repeats):
        wall = {}
        for parallel in ((True, False) if rep % 2 == 0 else (False, True)):
            t0, c0 = time.perf_counter(), time.process_time()
            pr_jobs.scheduled_run(run, specs, parallel=parallel)
            wall[parallel] = time.perf_counter() - t0
            cpu[parallel].append(time.process_time() - c0)
        ratios.append(wall[True] / wall[False])
        print(f"repeat {rep}: threads {wall[True]:.1f} s, one after the other {wall[False]:.1f} s", flush=True)
    return (f"| side by side: threads / one after the other, 6x64, {epochs} epochs, interleaved (load "
            f"{os.getloadavg()[0]:.1f}) | wall ratio median {statistics.median(ratios):.2f} (range {min(ratios):.2f}–"
            f"{max(ratios):.2f}, n={repeats}); CPU seconds {statistics.median(cpu[True]):.1f} vs "
            f"{statistics.median(cpu[False]):.1f} |")


def row(r: dict) -> str:
    mb = lambda n: f"{n / 1e6:.2f} MB"  # noqa: E731
    change = "–" if r["change_s"] is None else f"{r['change_s'][0]:.2f} / {r['change_s'][1]:.2f} s"
    return (f"| {r['case']} (load {r['load']:.1f}) | {r['epochs']} | {r['wall_s']:.1f} s (estimate {r['estimate_s']:.1f} s) | "
            f"{r['frames']} ({r['events']} events) | "
            f"{r['regions'][0]:,}–{r['regions'][1]:,} | {r['trace_s'][0]:.2f} / {r['trace_s'][1]:.2f} s | "
            f"{r['gap_s'][0]:.2f} / {r['gap_s'][1]:.2f} s | {mb(r['stream_bytes'][0])} / {mb(r['stream_bytes'][1])} | "
            f"{mb(r['final_bytes'])} | {mb(r['frame_bytes'][0])} / {mb(r['frame_bytes'][1])} | {change} | "
            f"{r['peak_rss_mib']:.0f} MiB |")


PAGES = {  # browser runs: page, its query, its ids (estimate, run button, status line, alert)
    "6x64 gradual on the Pruning page": ("pruning", "pr_epochs", ("pr-estimate", "pr-run", "pr-info", "pr-alert")),
    "6x64 early-bird on the Early-bird page": ("earlybird", "eb_epochs", ("eb-estimate", "eb-run", "eb-info", "eb-alert")),
}


def browser(epochs: int) -> dict[str, str]:
    """Each page's 6x64 Spirals run in headless Chromium: the estimate it showed, when the first frame and the end
    came, the longest main-thread task and the slowest scripted round trip while it streamed."""
    from selenium.webdriver.common.by import By

    sys.path[:0] = [str(REPO / "tests"), str(REPO / "bench")]
    from app_latency import LONGTASKS, _longest, _round_trip  # noqa: E402
    from harness import chrome, element_text, running_app, wait_for  # noqa: E402

    found: dict[str, str] = {}
    with running_app() as app:
        for name, (page, key, (estimate, run, info, alert)) in PAGES.items():
            driver = chrome()
            try:
                driver.get(f"{app.url}/{page}?dataset=spirals&layers=6&width=64&{key}={epochs}")
                wait_for(lambda: element_text(driver, "pg-stat-epoch") == "0", 120, message="the Playground's model")
                wait_for(lambda: "regions" in element_text(driver, estimate), 120, message="the run's estimate")
                told = element_text(driver, estimate)
                driver.execute_script(LONGTASKS)  # the run's tasks alone: those of the page load are left out
                start = time.perf_counter()
                driver.find_element(By.ID, run).click()
                running = lambda: driver.execute_script(f"return document.getElementById('{run}').disabled")  # noqa: E731
                wait_for(running, 30, message="the run to start")
                trips, first = [], None
                while running():
                    trips.append(_round_trip(driver))
                    if first is None and "epoch" in element_text(driver, info):
                        first = time.perf_counter() - start
                    time.sleep(0.25)
                wall = time.perf_counter() - start
                wait_for(lambda: f"epoch {epochs} ·" in element_text(driver, info), 120, message="the last epoch shown")
                shown = time.perf_counter() - start
                found.update({
                    f"{name}: estimate shown before the run": told,
                    f"{name}: first frame shown / job ended / last epoch shown": f"{first or float('nan'):.1f} s / "
                                                                             f"{wall:.1f} s / {shown:.1f} s",
                    f"{name}: longest main-thread task": _longest(driver),
                    f"{name}: slowest scripted round trip": f"{1000 * max(trips):.0f} ms (median "
                                                          f"{1000 * statistics.median(trips):.0f} ms, n={len(trips)})",
                    f"{name}: alert": element_text(driver, alert) or "none"})
                print("\n".join(f"{k}: {v}" for k, v in found.items() if k.startswith(name)), flush=True)
            finally:
                driver.quit()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--only", nargs="*", choices=list(CASES))
    parser.add_argument("--browser", action="store_true")
    parser.add_argument("--interleaved", type=int, default=0, metavar="REPEATS",
                        help="also time two runs side by side in threads against one after the other")
    parser.add_argument("--child", choices=list(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--sequential", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.epochs, not args.sequential)))
        return
    results = []
    runs = [(name, []) for name in (CASES if args.only is None else args.only)]
    runs += [(name, ["--sequential"]) for name, _ in runs if "compare" in CASES[name][1]]
    for name, extra in runs:
        out = subprocess.run([sys.executable, __file__, "--child", name, "--epochs", str(args.epochs), *extra],
                             capture_output=True, text=True, check=True, cwd=REPO)
        results.append(json.loads(out.stdout.splitlines()[-1]))
        print(row(results[-1]), flush=True)
    lines = [HEADING, "",
             f"{os.cpu_count()} CPUs shared with other work (load average at the end of each row's run in its first "
             "column: the job gets a share of a core, so wall times are several times an idle machine's); one "
             "process per case, torch on one thread, as a job process runs. Spirals, 2-input nets, Playground seed 0, "
             "default schedule controls (sparsity 50 %, node pruning; gradual from epoch 5 to 25 every 5; early-bird "
             "threshold 0.16). median / max per column. Stream gap: time between two streamed payloads (a frame "
             "traced, its training and any pruning step). Stream: one streamed payload's JSON (what the page polls; "
             "numbers only). Final: the finished run's JSON (its frames only while they total under 4 MiB). Frame: "
             "one frame's JSON, which the page fetches on its own (web.framestore).", "",
             "| case | epochs | wall | frames | regions | trace+frame | stream gap | stream | final | frame | decision "
             "change per step | peak RSS |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    text = OUT.read_text() if OUT.exists() else ""
    earlier = text.split(HEADING, 1)[1].split("\n## ", 1)[0] if HEADING in text else ""
    fresh = {r["case"] for r in results}
    kept = [line for line in earlier.splitlines() if line.startswith("| ") and not line.startswith("| case")
            and not line.startswith(("| in the browser", "| measurement")) and ":" not in line.split("|")[1]
            and line.split("|")[1].strip().split(" (load")[0] not in fresh]
    lines += kept + [row(r) for r in results]
    browser_rows = [line for line in earlier.splitlines() if line.startswith("| ") and ":" in line.split("|")[1]]
    if args.interleaved:
        side = interleaved(args.interleaved)
        browser_rows = [r for r in browser_rows if "interleaved" not in r] + [side]
    if args.browser:
        found = browser(args.epochs)
        browser_rows = [f"| {k} | {v} (load {os.getloadavg()[0]:.1f}) |" for k, v in found.items()]
    if browser_rows:
        lines += ["", "| measurement | result |", "|---|---|", *browser_rows]
    before = text.split(HEADING, 1)[0].rstrip()
    after = text.split(HEADING, 1)[1].split("\n## ", 1) if HEADING in text else []
    rest = ("\n\n## " + after[1]) if len(after) > 1 else ""
    OUT.write_text(before + "\n\n" + "\n".join(lines) + "\n" + rest)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
