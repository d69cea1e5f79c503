"""How fast, and at what memory cost, the app refuses requests that are too big (issue 9's D1 and D6).

Usage: python bench/app_bounds.py [--repeats 5]  -> writes bench/BOUNDS_RESULTS.md

Each case runs in a fresh process, as in a background job: imports and one small valid upload first (so that
code paths are warm), then the kernel's peak resident set is reset (/proc/self/clear_refs) and the case runs.
Reported: median wall time to the refusal, and the peak's growth over the resident set before the case.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "BOUNDS_RESULTS.md"
CASES = {
    "D1: upload of mlp(2, (16, 20000), 2)": "wide",
    "D6: 200 MB tensor in a deflate zip": "bomb",
    "D6, without the app's limits (load_model(raw))": "bomb-unbounded",
}


def _saved(obj) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def payload(case: str) -> bytes:
    import torch

    from splineviz.nets import mlp

    if case == "wide":
        return _saved(mlp(2, (16, 20000), 2).state_dict())
    raw = _saved({"0.weight": torch.zeros(50_000_000), "0.bias": torch.zeros(2)})
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    return out.getvalue()


def _kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def worker(case: str, path: str) -> None:
    """One measurement in this process; prints JSON."""
    from splineviz.nets import load_model, mlp
    from splineviz.web.jobs.playground import upload_run
    from splineviz.web.state import PlaygroundConfig

    raw = Path(path).read_bytes()
    upload_run(_saved(mlp(2, (8,), 2).state_dict()), PlaygroundConfig())  # warm-up: a small valid upload
    Path("/proc/self/clear_refs").write_text("5")
    before = _kib("VmRSS")
    start = time.perf_counter()
    try:
        if case == "bomb-unbounded":
            load_model(raw)
            outcome = "read (no limits)"
        else:
            upload_run(raw, PlaygroundConfig())
            outcome = "accepted"
    except Exception as exc:  # noqa: BLE001 - the refusal is what is measured
        outcome = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_growth_mib": (_kib("VmHWM") - before) / 1024, "outcome": outcome,
                      "size": len(raw)}))


def measure(case: str, repeats: int, tmp: Path) -> dict:
    path = tmp / f"{case}.bin"
    if not path.exists():
        path.write_bytes(payload(case.replace("-unbounded", "")))
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, __file__, "--worker", case, str(path)], capture_output=True, text=True,
                             cwd=REPO, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "growth": statistics.median(r["peak_growth_mib"] for r in runs),
            "max_growth": max(r["peak_growth_mib"] for r in runs), "outcome": runs[-1]["outcome"],
            "size": runs[-1]["size"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        results = {name: measure(case, args.repeats, Path(tmp)) for name, case in CASES.items()}
    load = os.getloadavg()
    lines = ["# Refusing oversized requests (bench/app_bounds.py)", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load[0]:.1f}. Each case in a "
             f"fresh process after imports and one small upload, {args.repeats} repeats; peak growth = VmHWM "
             "(reset before the case) minus VmRSS before it.", "",
             "| case | file | time to answer (median) | peak memory growth (median, max) | outcome |",
             "|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['size'] / 1e6:.2f} MB | {r['seconds']:.3f} s | {r['growth']:.1f} MiB, "
                     f"{r['max_growth']:.1f} MiB | {r['outcome'][:110]} |")
    OUT.write_text("\n".join(lines) + "\n")
    print(OUT.read_text())


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
