"""Mutation testing over a committed list of planted bugs: does the suite catch each one?

Every mutant in ``bench/mutants/*.json`` names a file, an exact snippet of it (unique in the file, so anchors survive
edits elsewhere in the file) and its replacement. For each mutant the runner copies the repository's tracked files
into a temporary tree once per worker (never touching the working tree), writes the mutated file there, and runs only
the tests that cover that module (``TESTS`` below) with ``-x`` and a per-test timeout. Outcomes:

* ``killed``   a test failed or errored (collection errors included: the bug broke an import);
* ``timeout``  a test ran past the per-test limit (a looping bug): caught, as CI would catch it;
* ``survived`` every selected test passed: either the suite misses the bug or the mutant is equivalent (its JSON
  entry then says why, under ``"equivalent"``).

Score = (killed + timeout) / (mutants - equivalent). Results go to ``bench/MUTATION.json`` (latest outcome of every
mutant, and a log of runs) and ``bench/MUTATION.md``. Slow (minutes per module): run it by hand, not in CI::

    nice -n 5 python bench/mutation.py                 # every mutant of every set
    nice -n 5 python bench/mutation.py --set blind     # only bench/mutants/blind.json
    python bench/mutation.py --only eb-window-max-gt   # some mutants by id (merged into the results)
    python bench/mutation.py --check                   # only check that every snippet applies
    python bench/mutation.py --report                  # only rewrite MUTATION.md (e.g. after marking equivalents)
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "bench" / "mutants"
RESULTS = ROOT / "bench" / "MUTATION.json"
REPORT = ROOT / "bench" / "MUTATION.md"
PER_TEST_TIMEOUT = 240  # seconds: on a machine shared by many jobs the slowest mapped test takes ~2 min; a
# limit near that would count slowness as a catch

# Module (path prefix; the longest match wins) -> the test files that cover it, fastest and most direct first, so
# that -x stops early on a killed mutant.
TESTS: dict[str, list[str]] = {
    "splineviz/partition/": ["tests/test_partition.py", "tests/test_degenerate.py", "tests/test_arrangement.py",
                             "tests/test_partition_data.py", "tests/test_trace_api.py"],
    "splineviz/partition/interval.py": ["tests/test_interval.py"],
    "splineviz/partition/geometry.py": ["tests/test_partition_data.py", "tests/test_partition.py",
                                        "tests/test_trace_api.py"],
    "splineviz/partition/domain.py": ["tests/test_partition.py", "tests/test_trace_api.py",
                                      "tests/test_partition_data.py"],
    "splineviz/prune/": ["tests/test_prune.py", "tests/test_schedule.py", "tests/test_doctests_torch_side.py"],
    "splineviz/earlybird.py": ["tests/test_earlybird.py", "tests/test_schedule.py",
                               "tests/test_doctests_torch_side.py"],
    "splineviz/nets.py": ["tests/test_nets.py", "tests/test_bounds.py", "tests/test_trace_api.py"],
    # the app's slow end-to-end jobs (minutes each: training to a ticket, sweeps, experiments) are left to the suite
    "splineviz/web/": ["tests/test_bounds.py", "tests/test_app.py", "-k",
                       "not earlybird_finds and not finetune_and_sweep and not experiment_results_are and not "
                       "mnist_slice_and_hover and not frame_stride_caps and not prune_view_removes"],
}


def tests_for(mutant: dict) -> list[str]:
    if "tests" in mutant:
        return list(mutant["tests"])
    prefix = max((p for p in TESTS if mutant["file"].startswith(p)), key=len, default=None)
    if prefix is None:
        raise SystemExit(f"{mutant['id']}: no tests mapped to {mutant['file']}")
    return TESTS[prefix]


def load_mutants(sets: list[str] | None) -> list[dict]:
    mutants = []
    for path in sorted(MUTANTS.glob("*.json")):
        if sets and path.stem not in sets:
            continue
        for m in json.loads(path.read_text()):
            mutants.append({**m, "set": path.stem})
    ids = [m["id"] for m in mutants]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise SystemExit(f"duplicate mutant ids: {duplicated}")
    return mutants


def check(mutants: list[dict]) -> list[str]:
    """Problems with the list: snippets that do not occur exactly once, replacements equal to the original."""
    problems = []
    for m in mutants:
        text = (ROOT / m["file"]).read_text()
        n = text.count(m["original"])
        if n != 1:
            problems.append(f"{m['id']}: the original snippet occurs {n} times in {m['file']}")
        if m["original"] == m["replacement"]:
            problems.append(f"{m['id']}: replacement equals the original")
    return problems


def copy_tree(dest: Path, rev: str | None = None) -> None:
    """The repository's tracked and untracked-but-not-ignored files as the working tree has them now, or as commit
    ``rev`` had them (to score an older suite against today's mutants)."""
    if rev is not None:
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        return
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    for name in files:
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


# Third-party modules the tests import, loaded once in the runner: every mutant's pytest is a fork of this process,
# so it starts without paying for torch's import again (splineviz itself is never imported here, so each fork
# imports the mutated tree).
PRELOAD = ("numpy", "torch", "shapely", "hypothesis", "pytest", "plotly.graph_objects", "dash", "selenium.webdriver",
           "safetensors.torch", "sklearn.cluster")


def preload() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def start_tests(tree: Path, tests: list[str], timeout: int, log: Path) -> int:
    """Fork a child that runs pytest on ``tests`` in ``tree`` (output to ``log``); returns its pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 3
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.chdir(tree)
        sys.path[:] = [str(tree)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
        sys.dont_write_bytecode = True
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        import pytest

        code = int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=-ra", f"--timeout={timeout}",
                                *tests]))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def outcome_of(status: int | None, log: Path) -> tuple[str, str]:
    """(outcome, first failing test or reason) from a child's wait status (None: killed at the run's limit)."""
    if status is None:
        return "timeout", "the whole run passed its limit"
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return "survived", ""
    out = log.read_text(errors="replace")
    failed = re.search(r"^(?:FAILED|ERROR) (\S+)", out, re.M)
    if re.search(r"Timeout \(?>[\d.]+s|\+{5,} Timeout", out):  # pytest-timeout's signal and thread methods
        return "timeout", failed.group(1) if failed else "per-test timeout"
    if failed:
        return "killed", failed.group(1)
    if code == 2:  # pytest was interrupted (the run is being stopped): no outcome
        return "interrupted", ""
    last = [line for line in out.strip().splitlines() if line.strip()][-1:] or ["?"]
    return "killed", f"pytest exit {code}: {last[0][:120]}"


class Worker:
    """One temporary copy of the tree; a mutant is applied to it, its tests run in a forked child, and undone."""

    def __init__(self, rev: str | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="splineviz-mutation-"))
        copy_tree(self.dir, rev)
        self.log = self.dir / "pytest.log"
        self.pid: int | None = None

    def start(self, mutant: dict | None, tests: list[str], timeout: int) -> None:
        self.mutant, self.tests, self.timeout = mutant, tests, timeout
        if mutant is not None:
            path = self.dir / mutant["file"]
            self.original = path.read_text()
            if self.original.count(mutant["original"]) != 1:
                raise SystemExit(f"{mutant['id']}: its snippet does not occur once in {mutant['file']} of this tree")
            path.write_text(self.original.replace(mutant["original"], mutant["replacement"], 1))
        self.started = time.perf_counter()
        self.pid = start_tests(self.dir, tests, timeout, self.log)

    def poll(self) -> dict | None:
        """The result once the child has finished (or was killed at the run's limit), else None."""
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        seconds = time.perf_counter() - self.started
        if pid == 0:
            if seconds < self.timeout * 4 + 120 * len(self.tests):
                return None
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            status = None
        if self.mutant is not None:
            (self.dir / self.mutant["file"]).write_text(self.original)
        self.pid = None
        outcome, detail = outcome_of(status, self.log)
        return {"outcome": outcome, "detail": detail, "seconds": round(seconds, 1)}

    def close(self) -> None:
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        shutil.rmtree(self.dir, ignore_errors=True)


def run_all(workers: list[Worker], jobs: list[tuple[dict | None, list[str]]], timeout: int):
    """Yield (job, result) as children finish, at most one child per worker at a time."""
    pending, busy = list(jobs), {}
    while pending or busy:
        for worker in workers:
            if worker.pid is None and pending:
                job = pending.pop(0)
                worker.start(job[0], job[1], timeout)
                busy[worker] = job
        time.sleep(0.2)
        for worker, job in list(busy.items()):
            result = worker.poll()
            if result is not None:
                del busy[worker]
                yield job, result


def baseline(workers: list[Worker], mutants: list[dict], timeout: int) -> None:
    """Every selected test group must pass unmutated, or no outcome would mean anything."""
    groups = sorted({tuple(tests_for(m)) for m in mutants})
    for (_, tests), result in run_all(workers, [(None, list(g)) for g in groups], timeout):
        print(f"baseline {' '.join(tests)}: {result['outcome']} {result['detail']} ({result['seconds']:.0f} s)",
              flush=True)
        if result["outcome"] != "survived":
            raise SystemExit(f"the unmutated tree fails {result['detail']}: fix that first")


def interleave(mutants: list[dict]) -> list[dict]:
    """Round-robin over files, so that a run stopped early has sampled every module."""
    by_file: dict[str, list[dict]] = {}
    for m in mutants:
        by_file.setdefault(m["file"], []).append(m)
    queues = list(by_file.values())
    out = []
    while queues:
        out += [q.pop(0) for q in queues]
        queues = [q for q in queues if q]
    return out


def save(ran: dict[str, dict]) -> dict:
    """Merge these outcomes into the results file (re-read first: another run may have written it)."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": [], "mutants": {}}
    results["mutants"].update(ran)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    return results


def score(rows: list[dict]) -> tuple[int, int, int]:
    """(caught, non-equivalent, equivalent)."""
    equivalent = sum(1 for r in rows if r.get("equivalent"))
    caught = sum(1 for r in rows if r["outcome"] in ("killed", "timeout") and not r.get("equivalent"))
    return caught, len(rows) - equivalent, equivalent


def write_report(results: dict, mutants: list[dict]) -> None:
    by_id = {m["id"]: m for m in mutants}
    rows = [{**by_id[i], **r} for i, r in results["mutants"].items() if i in by_id]
    lines = ["# Mutation testing", "",
             "Planted bugs (`bench/mutants/*.json`) run against the tests that cover their module by "
             "`bench/mutation.py` (see README, *Mutation testing*). Generated file: edit the mutants or the runner, "
             "not this.", "",
             "Score = caught (killed or timed out) / mutants that are not equivalent.", "",
             "| set | module | mutants | not run | equivalent | caught | survived | score |",
             "|---|---|---|---|---|---|---|---|"]
    not_run = [m for m in mutants if m["id"] not in results["mutants"]]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows + [{**m, "outcome": "not run"} for m in not_run]:
        module = r["file"].removeprefix("splineviz/").split("/")[0].removesuffix(".py")
        set_name = "blind" if r["set"] == "blind" else "main"  # the main set is split into one file per module
        groups.setdefault((set_name, module), []).append(r)
        groups.setdefault((set_name, "all"), []).append(r)
    for (set_name, module), group in sorted(groups.items(), key=lambda kv: (kv[0][0] == "blind", kv[0][1] == "all",
                                                                            kv[0][1])):
        ran = [r for r in group if r["outcome"] != "not run"]
        caught, real, eq = score(ran)
        survived = sum(1 for r in ran if r["outcome"] == "survived" and not r.get("equivalent"))
        pct = f"{100 * caught / real:.0f} %" if real else "-"
        bold = "**" if module == "all" else ""
        lines.append(f"| {set_name} | {bold}{module}{bold} | {len(group)} | {len(group) - len(ran)} | {eq} | "
                     f"{caught} | {survived} | {bold}{pct}{bold} |")
    lines += ["", "## Runs", "", "| date (UTC) | set | mutants | caught | equivalent | score | minutes | note |",
              "|---|---|---|---|---|---|---|---|"]
    for run in results["runs"]:
        lines.append(f"| {run['date']} | {run['sets']} | {run['n']} | {run['caught']} | {run['equivalent']} | "
                     f"{run['score']} | {run['minutes']} | {run.get('note', '')} |")
    survivors = [r for r in rows if r["outcome"] == "survived"]
    lines += ["", "## Surviving mutants", "",
              "Each is either equivalent (why: below) or not yet caught (listed as such).", ""]
    for r in survivors:
        verdict = f"equivalent: {r['equivalent']}" if r.get("equivalent") else "**not caught**"
        verdict += f" {r['after']}" if r.get("after") else ""  # what was done after the run
        lines.append(f"- `{r['id']}` ({r['file']}): `{r['original']}` → `{r['replacement']}`. {r['why']}. "
                     f"{verdict}")
    if not survivors:
        lines.append("None.")
    if not_run:
        lines += ["", "## Not run", "", "Listed, never applied (time ran out): "
                  + ", ".join(f"`{m['id']}`" for m in not_run) + "."]
    lines += ["", "## Every mutant", "", "| id | set | kind | outcome | caught by | s |", "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["set"], r["file"], r["id"])):
        lines.append(f"| `{r['id']}` | {r['set']} | {r['kind']} | {r['outcome']}"
                     f"{' (equivalent)' if r.get('equivalent') else ''} | {r['detail'].replace('|', '/')} | "
                     f"{r['seconds']} |")
    REPORT.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", dest="sets", help="a file stem in bench/mutants (repeatable)")
    parser.add_argument("--only", nargs="+", help="mutant ids")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (each in its own tree copy)")
    parser.add_argument("--timeout", type=int, default=PER_TEST_TIMEOUT, help="per-test limit, seconds")
    parser.add_argument("--no-baseline", action="store_true", help="skip running the unmutated tests first")
    parser.add_argument("--check", action="store_true", help="only check that every snippet applies")
    parser.add_argument("--report", action="store_true", help="only rewrite the report from the results file")
    parser.add_argument("--rev", help="test the tree of this commit instead of the working tree")
    parser.add_argument("--note", default="", help="a note for this run in the report's log")
    args = parser.parse_args(argv)

    everything = load_mutants(None)
    problems = check(everything)
    if problems:
        raise SystemExit("\n".join(problems))
    if args.check:
        print(f"{len(everything)} mutants apply")
        return
    if args.report:
        write_report(json.loads(RESULTS.read_text()), everything)
        return
    chosen = [m for m in load_mutants(args.sets) if not args.only or m["id"] in args.only]
    if args.only and len(chosen) != len(set(args.only)):
        raise SystemExit(f"unknown ids: {sorted(set(args.only) - {m['id'] for m in chosen})}")
    ran: dict[str, dict] = {}
    stopped = False
    preload()
    workers = [Worker(args.rev) for _ in range(max(1, args.jobs))]
    start = time.perf_counter()
    try:
        if not args.no_baseline:
            baseline(workers, chosen, args.timeout)
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # kill PID: stop, keep and log what ran
        jobs = [(m, tests_for(m)) for m in interleave(chosen)]
        for k, ((mutant, _), result) in enumerate(run_all(workers, jobs, args.timeout), 1):
            if result["outcome"] == "interrupted":
                continue
            ran[mutant["id"]] = result
            save(ran)  # as it goes: a stopped run keeps what it measured
            print(f"[{k}/{len(chosen)}] {mutant['id']}: {result['outcome']} {result['detail']} "
                  f"({result['seconds']} s)", flush=True)
    except KeyboardInterrupt:
        stopped = True
    finally:
        for w in workers:
            w.close()
    results = save(ran)
    done = [m for m in chosen if m["id"] in ran]
    rows = [{**m, **ran[m["id"]]} for m in done]
    caught, real, eq = score(rows)
    results["runs"].append({
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "sets": ", ".join(sorted({m["set"] for m in chosen})) + (" (--only)" if args.only else "")
                + (f" @ {args.rev}" if args.rev else ""),
        "n": len(done), "caught": caught, "equivalent": eq,
        "score": f"{100 * caught / real:.0f} %" if real else "-",
        "minutes": round((time.perf_counter() - start) / 60, 1),
        "note": args.note + (f" (stopped after {len(done)} of {len(chosen)})" if stopped else "")})
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    write_report(results, everything)
    print(f"caught {caught} of {real} non-equivalent mutants ({eq} equivalent); report: {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
