"""Load on the real app under gunicorn (2 workers): 8 clients x 20 mixed requests, on diskcache and on Celery + Redis.

Each client is one browser tab speaking Dash's HTTP protocol (splineviz.web.client): it loads the Playground, then
sends a fixed mix of page, layout, dependency, asset and health requests, new sessions (a synchronous callback that
traces a partition) and training chunks (a background job, started and polled until it answers). Everything runs on
loopback, with bounded counts and time limits, and stops by itself. Writes bench/LOAD_RESULTS.md.

    python bench/load.py [--clients 8] [--requests 20] [--backends diskcache celery]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from splineviz.web.client import DashClient  # noqa: E402
from splineviz.web.stack import Redis, celery_worker, gunicorn, serve, stack_env, wait_ready  # noqa: E402

# one client's 20 requests; a "train" is one background job (its latency: start to result, polls included)
MIX = ["page", "layout", "session", "train", "deps", "asset", "train", "health", "session", "train",
       "page", "layout", "asset", "train", "session", "health", "train", "page", "session", "train"]
CHUNK_EPOCHS = 5
JOB_LIMIT_S = 180.0


class Tab:
    """One client: a page load's state, and the Playground's session and training callbacks."""

    def __init__(self, url: str, index: int) -> None:
        self.client = DashClient(url, timeout=60)
        self.client.load("/playground")
        self.values = self.client.initial_values()
        self.values["session-id.data"] = f"{index:032x}"  # a tab's session id: 32 hex digits
        self.asset = "/assets/" + sorted(p.name for p in (ROOT / "assets").iterdir() if p.is_file())[0]
        self.run: dict | None = None
        self.done = 0

    def new_session(self) -> bool:
        dep = self.client.find("pg-session.data", "pg-reset.n_clicks")
        response = self.client.call(self.client.payload(dep, {**self.values, "pg-reset.n_clicks": 1},
                                                        ["pg-reset.n_clicks"]))
        if response.status_code != 200:
            return False
        self.run, self.done = response.json()["response"]["pg-session"]["data"]["run"], 0
        return True

    def train(self) -> str:
        """One training chunk; "ok", "error" or "lost" (no answer, a 204, or a lost-job message)."""
        if self.run is None and not self.new_session():
            return "error"
        epochs = int(self.values.get("pg-epochs.value") or 100)
        tick = {"n": self.done + 1, "run_id": self.run["id"], "done": self.done, "target": epochs,
                "epochs": CHUNK_EPOCHS}
        self.client.http.post(self.client.base + "/_splineviz/beat", data=self.values["session-id.data"],
                              timeout=10)  # as the page's script does: a tab never heard of for 20 s has gone
        dep = self.client.find("pg-chunk.data", "pg-tick.data")
        outcome = self.client.run_job(self.client.payload(dep, {**self.values, "pg-tick.data": tick,
                                                                "model.data": self.run}, ["pg-tick.data"]),
                                      interval=0.2, limit=JOB_LIMIT_S)
        if outcome.kind in ("silent", "timeout"):
            return "lost"
        if outcome.kind != "result":
            return "error"
        chunk = outcome.value.get("pg-chunk", {}).get("data") or {}
        if "run" not in chunk:
            done = outcome.value.get("pg-done", {}).get("data") or {}
            return "lost" if done.get("lost") else "error"
        self.run, self.done = chunk["run"], self.done + CHUNK_EPOCHS
        return "ok"

    def request(self, kind: str) -> str:
        if kind == "train":
            return self.train()
        if kind == "session":
            return "ok" if self.new_session() else "error"
        path = {"page": "/playground", "layout": "/_dash-layout", "deps": "/_dash-dependencies",
                "asset": self.asset, "health": "/healthz"}[kind]
        return "ok" if self.client.get(path).status_code == 200 else "error"


def client_run(url: str, index: int, n_requests: int) -> list[tuple[str, str, float]]:
    """(kind, status, seconds) for each request of one client; the mix is rotated per client."""
    results = []
    try:
        tab = Tab(url, index)
    except Exception as exc:  # noqa: BLE001 - a client that cannot even load counts as errors
        return [("page", f"error: {exc}", 0.0)] * n_requests
    for i in range(n_requests):
        kind = MIX[(i + index) % len(MIX)]
        start = time.perf_counter()
        try:
            status = tab.request(kind)
        except Exception as exc:  # noqa: BLE001 - recorded, not raised: the run goes on
            status = f"error: {type(exc).__name__}"
        results.append((kind, status, time.perf_counter() - start))
    return results


def run_backend(backend: str, clients: int, n_requests: int, workdir: Path) -> dict:
    redis = worker = None
    env = stack_env(SPLINEVIZ_CACHE_DIR=str(workdir / "cache"))
    if backend == "celery":
        redis = Redis(workdir)
        redis.start()
        env = stack_env(broker=redis.url, SPLINEVIZ_CACHE_DIR=str(workdir / "cache"))
        worker = celery_worker("splineviz.web.worker", env, workdir / "worker.log", concurrency=2)
        worker.start()
    web, url = gunicorn("app:server", env, workdir / "web.log", workers=2)
    try:
        serve(web, url, timeout=180)
        if worker is not None:
            wait_ready(worker, 180)
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            per_client = list(pool.map(lambda i: client_run(url, i, n_requests), range(clients)))
        wall = time.perf_counter() - start
    finally:
        web.stop()
        if worker is not None:
            worker.stop()
        if redis is not None:
            redis.stop()
    rows = [r for client in per_client for r in client]
    return {"backend": backend, "rows": rows, "wall": wall}


def summary(result: dict) -> list[dict]:
    by_kind: dict[str, list] = defaultdict(list)
    for kind, status, seconds in result["rows"]:
        by_kind[kind].append((status, seconds))
    by_kind["all"] = [(s, t) for _, s, t in result["rows"]]
    out = []
    for kind in ["all", "page", "layout", "deps", "asset", "health", "session", "train"]:
        items = by_kind.get(kind, [])
        if not items:
            continue
        times = sorted(t for _, t in items)
        out.append({"backend": result["backend"], "kind": kind, "n": len(items),
                    "p50": statistics.median(times), "p95": times[min(len(times) - 1, int(0.95 * len(times)))],
                    "errors": sum(s.startswith("error") for s, _ in items), "lost": sum(s == "lost" for s, _ in items)})
    return out


def write(results: list[dict], clients: int, n_requests: int, path: Path) -> None:
    lines = [f"# Load: {clients} clients x {n_requests} mixed requests, gunicorn with 2 sync workers", "",
             "`python bench/load.py` (loopback only). Requests per client, rotated: "
             f"{', '.join(MIX)}. `train` = one background job of {CHUNK_EPOCHS} epochs on the default "
             "2-16-16-16-2 Playground net, started and polled every 0.2 s until it answers (its time includes "
             "queueing behind the others); `session` = the synchronous new-session callback (builds and traces a "
             "net). Lost = a job that ended in silence (HTTP 204), never answered, or answered with a lost-job "
             "message. Celery: one Redis, one worker with concurrency 2, on the same 2 cores.", "",
             "| backend | requests | n | p50 | p95 | errors | lost |", "|---|---|---|---|---|---|---|"]
    for result in results:
        for row in summary(result):
            lines.append(f"| {row['backend']} | {row['kind']} | {row['n']} | {row['p50']:.3f} s | {row['p95']:.3f} s "
                         f"| {row['errors']} | {row['lost']} |")
    lines += [""] + [f"- {r['backend']}: all {len(r['rows'])} requests took {r['wall']:.1f} s of wall time"
                     for r in results]
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--backends", nargs="+", default=["diskcache", "celery"], choices=["diskcache", "celery"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "LOAD_RESULTS.md")
    args = parser.parse_args()
    results = []
    for backend in args.backends:
        with tempfile.TemporaryDirectory(prefix=f"splineviz-load-{backend}-") as tmp:
            results.append(run_backend(backend, args.clients, args.requests, Path(tmp)))
    write(results, args.clients, args.requests, args.out)


if __name__ == "__main__":
    main()
