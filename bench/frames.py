"""Benchmark: a frame the browser can paint (trace + Frame + JSON text) against regioncam's bare trace.

For every net, both in one process, interleaved with alternating order, gc before each call, after
a warm-up call each; reported: the median of the per-repeat ratios and their range, each side's
median time, where splineviz's time goes (trace, Frame.from_partition, json.dumps of to_json) and
the JSON size. regioncam traces the partition and its decision boundary and returns nothing drawable.

    python bench/frames.py [--nets A B C D] [--repeats 5]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nets import NETS, ROOT, Net, _init, regioncam_runner  # noqa: E402

from splineviz.frame import Frame  # noqa: E402
from splineviz.partition import Affine, ReLU, trace  # noqa: E402

FRAME_NETS = {"2-16-16-2": lambda: Net("2-16-16-2", _init([2, 16, 16, 2], 6)), **NETS}
DEFAULT = ["2-16-16-2", "A", "B", "C", "D"]


def frame_runner(net: Net):
    ops = []
    for i, (w, b) in enumerate(net.layers):
        ops.append(Affine(w, b))
        if i < len(net.layers) - 1:
            ops.append(ReLU())

    def run() -> tuple[int, list[float], int]:
        t0 = time.perf_counter()
        p = trace(ops, bounds=net.bounds)
        t1 = time.perf_counter()
        frame = Frame.from_partition(p, net.bounds, epoch=0)
        t2 = time.perf_counter()
        text = json.dumps(frame.to_json())
        t3 = time.perf_counter()
        return p.n_regions, [t1 - t0, t2 - t1, t3 - t2], len(text)
    return run


def measure(name: str, repeats: int, min_seconds: float) -> dict:
    net = FRAME_NETS[name]()
    ours, peer = frame_runner(net), regioncam_runner(net)
    regions, _, size = ours()
    assert peer() == regions, f"{name}: region counts differ"
    times: dict[str, list] = {"ours": [], "peer": [], "parts": []}
    start, r = time.perf_counter(), 0
    while r < repeats or (time.perf_counter() - start < min_seconds and r < 200):
        for tool in (("ours", "peer") if r % 2 == 0 else ("peer", "ours")):
            gc.collect()
            t = time.perf_counter()
            if tool == "ours":
                times["parts"].append(ours()[1])
            else:
                peer()
            times[tool].append(time.perf_counter() - t)
        r += 1
    ratios = np.array(times["ours"]) / np.array(times["peer"])
    parts = np.median(np.array(times["parts"]), axis=0)
    return {"net": name, "regions": regions, "repeats": r, "ours_s": float(np.median(times["ours"])),
            "peer_s": float(np.median(times["peer"])), "ratio": float(np.median(ratios)),
            "ratio_min": float(ratios.min()), "ratio_max": float(ratios.max()),
            "trace_s": float(parts[0]), "frame_s": float(parts[1]), "json_s": float(parts[2]), "json_mb": size / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=DEFAULT, choices=list(FRAME_NETS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "FRAMES.md")
    args = parser.parse_args()
    rows = []
    for name in args.nets:
        rows.append(measure(name, args.repeats, args.min_seconds))
        print(json.dumps(rows[-1]), flush=True)
        write(rows, args.out)
    print(f"wrote {args.out}")


def write(rows: list[dict], out: Path) -> None:
    header = ["net", "regions", "repeats", "trace + Frame + JSON", "regioncam trace", "ratio (median)", "range",
              "trace", "Frame.from_partition", "json.dumps", "JSON MB"]
    table = [[r["net"], f"{r['regions']:,}", str(r["repeats"]), _s(r["ours_s"]), _s(r["peer_s"]), f"{r['ratio']:.2f}",
              f"{r['ratio_min']:.2f}–{r['ratio_max']:.2f}", _s(r["trace_s"]), _s(r["frame_s"]), _s(r["json_s"]),
              f"{r['json_mb']:.2f}"] for r in rows]
    out.write_text("\n".join([
        "# Frames benchmark: a paintable frame against regioncam's bare trace",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `python bench/frames.py` on {platform.machine()}, Python "
        f"{platform.python_version()}, {len(os.sched_getaffinity(0))} cores (shared with other work: load average "
        f"{os.getloadavg()[0]:.1f} at the end). splineviz: trace (float64) + `Frame.from_partition` + "
        "`json.dumps(frame.to_json())`; regioncam (float32): partition and decision boundary, nothing drawable. "
        "Both in one process, interleaved with alternating order, gc before each call; median of per-repeat ratios "
        "and their range; the split of splineviz's time is the median of each part.",
        "",
        *["| " + " | ".join(c) + " |" for c in [header, ["---"] * len(header), *table]],
        "",
        "Target (issue 10): ratio ≤ 0.35 on net C.",
        "",
    ]))


def _s(value: float) -> str:
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


if __name__ == "__main__":
    main()
