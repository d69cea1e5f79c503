"""Benchmark: splineviz's exact partition against regioncam, side by side.

Time: both tools in ONE process per net, interleaved, the order alternating from repeat to repeat,
gc before each call, after one untimed warm-up call each (on net A for the slowest nets, which
would otherwise be traced once more). Reported: the median of the per-repeat
ratios (splineviz / regioncam) and their range, with each tool's median time. A change of machine
load then hits both tools of a repeat alike instead of going straight into the ratio.

Memory: each (tool, net) in a process of its own, so that neither tool's memory pollutes the
other's: one untimed warm-up, freed heap handed back (malloc_trim), the kernel's peak resident set
reset (/proc/self/clear_refs, Linux), then the growth of that peak over one call. (The slowest
nets are warmed up on net A instead, so that they are not traced twice.) Run with
glibc mapping every block of a page or more on its own (MALLOC_MMAP_THRESHOLD_=4096), so that
freed memory leaves the resident set at once and the peak is what the tool holds; the default
allocator's number (which counts every heap page a run touches) is reported too. Nets both tools
trace in under a second are measured in MEMORY_RUNS processes per tool, and the median is reported:
their growths are a fraction of a MiB, and move by up to twofold from one process to the next.

On the MNIST plane both tools take the plane in every call: splineviz restricts its first layer to
it, and regioncam's first layer is folded onto it (nets.regioncam_runner).

Region counts must agree on every net (asserted), but for regions less than 16 float32 steps
across, which regioncam (float32 only) cannot resolve: those are counted and named in the table.

splineviz runs with its compiled kernels where numba is there (SPLINEVIZ_NUMBA=0: numpy alone);
--numpy-too times it on numpy alone as well, as a third tool in the same interleaved repeats, and
reports that run's ratio to regioncam and the median per-repeat ratio compiled / numpy.

    python bench/partition.py [--nets A B ...] [--repeats 5] [--no-memory] [--no-default-allocator] [--append]
                              [--numpy-too]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nets import NETS, ROOT, below_float32, regioncam_runner, splineviz_runner  # noqa: E402

DEFAULT_NETS = list(NETS)
WARM_UP_ON_A = {"D", "2-1024-2", "2-512-512-2"}  # too slow to trace twice for memory; warmed up on net A
MEMORY_RUNS = 5  # processes per tool and allocator for nets both tools trace in under a second (median)
TARGETS = {"C": 0.15, "D": 0.15, "2-1024-2": 0.15, "2-512-512-2": 0.15, "A": 0.7, "MNIST plane": 0.7}

MEMORY_WORKER = r"""
import ctypes, json, sys, gc
sys.path.insert(0, {bench!r})
from nets import NETS, splineviz_runner, regioncam_runner
tool, name = sys.argv[1], sys.argv[2]
runner = splineviz_runner if tool == "splineviz" else regioncam_runner
run = runner(NETS[name]())
(runner(NETS["A"]()) if name in {slow!r} else run)()  # warm-up: imports and first-use code paths

def status_kib(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))

gc.collect()
ctypes.CDLL("libc.so.6").malloc_trim(0)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak resident set to the current one
base = status_kib("VmRSS")
regions = run()
print(json.dumps({{"regions": regions, "peak_mib": (status_kib("VmHWM") - base) / 1024}}))
"""

PAGE_MAPPED = {"MALLOC_MMAP_THRESHOLD_": "4096"}


def numpy_alone(run: Callable[[], int]) -> Callable[[], int]:
    """The same trace with splineviz's compiled kernels switched off (numpy alone)."""
    from splineviz.partition import kernels

    def run_numpy() -> int:
        previous = kernels.use(False)
        try:
            return run()
        finally:
            kernels.use(previous)
    return run_numpy


def time_net(name: str, repeats: int, min_seconds: float, numpy_too: bool = False) -> dict:
    """Interleaved timing of both tools (and splineviz on numpy alone, if asked) on one net, in this process."""
    net = NETS[name]()
    tools = {"splineviz": splineviz_runner(net), "regioncam": regioncam_runner(net)}
    if numpy_too:
        tools["splineviz numpy"] = numpy_alone(tools["splineviz"])
    slow = name in WARM_UP_ON_A
    warm_up = {"splineviz": splineviz_runner(NETS["A"]()), "regioncam": regioncam_runner(NETS["A"]())} if slow else tools
    regions = {tool: run() for tool, run in warm_up.items()}  # imports and first-use code paths (numba's JIT)
    gc.collect()
    gc.freeze()  # what the imports left is never collected again: gc before each call then takes microseconds
    times: dict[str, list[float]] = {tool: [] for tool in tools}
    start = time.perf_counter()
    r = 0
    while r < repeats or (time.perf_counter() - start < min_seconds and r < 200):
        order = list(tools) if r % 2 == 0 else list(tools)[::-1]
        for tool in order:
            gc.collect()
            t = time.perf_counter()
            regions[tool] = tools[tool]()
            times[tool].append(time.perf_counter() - t)
        r += 1
    tiny = 0 if regions["splineviz"] == regions["regioncam"] else below_float32(net)
    # float32 (regioncam) cannot hold regions a few float32 steps across: they are the only allowed difference
    assert regions["splineviz"] - tiny <= regions["regioncam"] <= regions["splineviz"], \
        f"{name}: region counts differ: {regions}, {tiny} of splineviz's below float32 resolution"
    gc.unfreeze()
    ratios = np.array(times["splineviz"]) / np.array(times["regioncam"])
    row = {"net": name, "regions": regions["splineviz"], "regioncam_regions": regions["regioncam"],
           "below_float32": tiny, "repeats": r,
           "splineviz_s": float(np.median(times["splineviz"])), "regioncam_s": float(np.median(times["regioncam"])),
           "ratio": float(np.median(ratios)), "ratio_min": float(ratios.min()), "ratio_max": float(ratios.max())}
    if numpy_too:
        assert regions["splineviz numpy"] == regions["splineviz"], f"{name}: the kernels and numpy disagree: {regions}"
        alone = np.array(times["splineviz numpy"])
        row |= {"numpy_s": float(np.median(alone)), "numpy_ratio": float(np.median(alone / np.array(times["regioncam"]))),
                "compiled_vs_numpy": float(np.median(np.array(times["splineviz"]) / alone))}
    return row


def memory(tool: str, name: str, env: dict, runs: int = 1) -> float:
    """The median growth over `runs` processes (growths under a MiB move by up to twofold from one to the next)."""
    code = MEMORY_WORKER.format(bench=str(Path(__file__).resolve().parent), slow=sorted(WARM_UP_ON_A))
    growths = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code, tool, name], check=True, capture_output=True, text=True,
                             env={**os.environ, **env})
        growths.append(json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"])
    return float(np.median(growths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=DEFAULT_NETS, choices=DEFAULT_NETS)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats at least (fast nets: 3 s of them)")
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-default-allocator", dest="default_allocator", action="store_false",
                        help="measure memory with the page-mapped allocator only (saves two runs of each tool)")
    parser.add_argument("--append", action="store_true", help="add these nets' rows to the existing results")
    parser.add_argument("--numpy-too", action="store_true",
                        help="time splineviz on numpy alone too (compiled kernels off), interleaved with the others")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()
    rows = json.loads(args.out.with_suffix(".json").read_text()) if args.append else []
    rows = [r for r in rows if r["net"] not in args.nets]
    for name in args.nets:
        row = time_net(name, args.repeats, args.min_seconds, args.numpy_too)
        if not args.no_memory:
            runs = MEMORY_RUNS if max(row["splineviz_s"], row["regioncam_s"]) < 1.0 else 1
            for tool in ("splineviz", "regioncam"):
                row[f"{tool}_mib"] = memory(tool, name, PAGE_MAPPED, runs)
                row[f"{tool}_default_mib"] = memory(tool, name, {}, runs) if args.default_allocator else float("nan")
            row["mem_ratio"] = row["splineviz_mib"] / max(row["regioncam_mib"], 1e-9)
            row["default_mem_ratio"] = row["splineviz_default_mib"] / max(row["regioncam_default_mib"], 1e-9)
        rows.append(row)
        rows.sort(key=lambda r: DEFAULT_NETS.index(r["net"]))
        print(json.dumps(row), flush=True)
        args.out.write_text(report(rows, args))  # after every net: a long run leaves what it has measured
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print(f"wrote {args.out}")


def report(rows: list[dict], args: argparse.Namespace) -> str:
    has_memory = "mem_ratio" in rows[0]
    header = ["net", "regions", "repeats", "time splineviz", "time regioncam", "time ratio (median)", "ratio range",
              "target"]
    if has_memory:
        header += ["peak MiB splineviz", "peak MiB regioncam", "memory ratio", "default-allocator ratio"]
    header += ["numpy alone: time ratio", "compiled / numpy"]
    table = []
    for r in rows:
        peer_regions = r.get("regioncam_regions", r["regions"])
        counts = f"{r['regions']:,}" if peer_regions == r["regions"] else \
            f"{r['regions']:,} vs {peer_regions:,} ({r['below_float32']} below float32 resolution)"
        cells = [r["net"] + (f" ({r['note']})" if r.get("note") else ""), counts, str(r["repeats"]), _seconds(r["splineviz_s"]), _seconds(r["regioncam_s"]),
                 f"{r['ratio']:.2f}", f"{r['ratio_min']:.2f}–{r['ratio_max']:.2f}",
                 f"≤ {TARGETS[r['net']]}" if r["net"] in TARGETS else ""]
        if has_memory:
            cells += [_mib(r["splineviz_mib"]), _mib(r["regioncam_mib"]), f"{r['mem_ratio']:.3f}",
                      "not measured" if r["default_mem_ratio"] != r["default_mem_ratio"] else f"{r['default_mem_ratio']:.3f}"]
        cells += [f"{r['numpy_ratio']:.2f}", f"{r['compiled_vs_numpy']:.2f}"] if "numpy_ratio" in r else ["", ""]
        table.append(cells)
    import numpy
    from splineviz.partition import kernels
    engine = f"compiled kernels (numba {sys.modules['numba'].__version__})" if kernels.available() else \
        "numpy alone (SPLINEVIZ_NUMBA=0 or no numba)"
    return "\n".join([
        "# Partition benchmark: splineviz vs regioncam",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `python bench/partition.py` on {platform.machine()}, Python "
        f"{platform.python_version()}, numpy {numpy.__version__}, splineviz engine: {engine}, "
        f"{len(os.sched_getaffinity(0))} cores (shared with "
        f"other work: load average {os.getloadavg()[0]:.1f} at the end). Both tools trace the partition and the "
        "decision boundary; splineviz in float64, regioncam in float32 (its only mode). Time: both tools in one "
        "process per net, interleaved with alternating order, gc before each call, after a warm-up call (on net A "
        "for D, 2-1024-2 and 2-512-512-2); the "
        "median of the per-repeat ratios and their range. Memory: growth of the peak resident set over one call "
        f"after a warm-up (the median of {MEMORY_RUNS} processes per tool for nets both tools trace in under a "
        "second, where growths under a MiB move by up to twofold from one process to the next), each tool in a "
        "process of its own, with every block of a page or more mapped on its own "
        "(MALLOC_MMAP_THRESHOLD_=4096) so that freed memory leaves at once; the default allocator's ratio beside it. "
        "The MNIST plane: splineviz restricts its first layer to the plane in every call, and regioncam's first "
        "layer is folded onto the plane in every call too. "
        "Region counts agree on every net (the bench asserts it), except where splineviz finds regions less than 16 "
        "float32 steps across, which regioncam's float32 cannot hold; the table names them. The last two columns "
        "(nets run with --numpy-too): splineviz with its compiled kernels switched off, timed as a third tool in "
        "the same interleaved repeats: its median ratio to regioncam, and the median per-repeat ratio of compiled "
        "to numpy-only time (below 1: the kernels are faster).",
        "",
        *_markdown_table(header, table),
        "",
        "Targets (issue 10): time ratio ≤ 0.15 on C, D, 2-1024-2, 2-512-512-2; ≤ 0.7 on A and the MNIST plane; "
        "memory ratio ≤ 1/8 on every net.",
        "",
    ])


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(cells) + " |" for cells in [header, ["---"] * len(header), *rows]]


def _seconds(value: float) -> str:
    return f"{value * 1000:.2f} ms" if value < 1 else f"{value:.2f} s"


def _mib(value: float) -> str:
    """Whole MiB, but two decimals below 10 MiB where rounding would hide the difference."""
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


if __name__ == "__main__":
    main()
