"""The Docker image: built from the lock files, it serves the app (healthy), runs an experiment, and runs a Celery
worker that trains a real Playground chunk. Needs a Docker daemon and a base image; skipped without them.

Docker Hub is out of reach on the build machines, so the base is ``splineviz-base`` (scripts/docker_base.sh: Debian's
python3 from debootstrap) unless SPLINEVIZ_DOCKER_BASE names another; where pip's find-links folder holds the CPU
torch wheel, it is served on loopback as the torch index (the image still installs torch from one index, by hash).
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from splineviz.web.client import DashClient
from splineviz.web.stack import REDIS, Redis
from splineviz.web.testing import REPO, free_port, wait_for, wait_until_up

IMAGE = "splineviz-test"
SECRET = "docker-test-secret-0123456789abcdef"
BASE = os.environ.get("SPLINEVIZ_DOCKER_BASE", "splineviz-base")
TORCH_INDEX_PORT = 38765


def _docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


def _usable() -> str | None:
    """Why the Docker tests cannot run here, or None."""
    if shutil.which("docker") is None:
        return "no docker client"
    try:
        if _docker("info", timeout=20, check=False).returncode != 0:
            return "no Docker daemon (CI starts one with scripts/docker_ci.sh)"
        if _docker("image", "inspect", BASE, timeout=20, check=False).returncode != 0:
            return f"no base image {BASE} (make it with scripts/docker_base.sh)"
    except subprocess.TimeoutExpired:
        return "the Docker daemon does not answer"
    return None


pytestmark = pytest.mark.docker
if (_reason := _usable()) is not None:
    pytest.skip(_reason, allow_module_level=True)


def _torch_wheel() -> Path | None:
    """The CPU torch wheel the lock names, if pip's find-links folder on this machine has it."""
    lock = (REPO / "requirements-torch.lock").read_text()
    version = next(line.split("==")[1].split()[0] for line in lock.splitlines() if line.startswith("torch=="))
    found = subprocess.run(["pip", "config", "get", "global.find-links"], capture_output=True, text=True)
    for folder in found.stdout.split():
        wheels = sorted(Path(folder).glob(f"torch-{version}-cp311-*x86_64.whl"))
        if wheels:
            return wheels[0]
    return None


@pytest.fixture(scope="module")
def torch_index(tmp_path_factory: pytest.TempPathFactory) -> str | None:
    """A one-package index on loopback serving the local torch wheel (None: use the Dockerfile's default)."""
    wheel = _torch_wheel()
    if wheel is None:
        yield None
        return
    root = tmp_path_factory.mktemp("torch-index")
    (root / "torch").mkdir()
    (root / "torch" / wheel.name).symlink_to(wheel)
    (root / "torch" / "index.html").write_text(f'<a href="{wheel.name}">{wheel.name}</a>\n')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    try:  # the same URL each run keeps Docker's cache of the install layer (the index is a build argument)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", TORCH_INDEX_PORT), handler)
    except OSError:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def image(torch_index: str | None) -> str:
    args = ["build", "--network", "host", "-t", IMAGE, "--build-arg", f"BASE={BASE}"]
    if BASE == "splineviz-base":  # it carries this machine's CA bundle for pip
        args += ["--build-arg", "CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt"]
    if torch_index:
        args += ["--build-arg", f"TORCH_INDEX={torch_index}"]
    built = _docker(*args, str(REPO), timeout=1800, check=False)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return IMAGE


@pytest.fixture
def containers():
    """Start detached containers with start(*args); all are removed after the test."""
    started: list[str] = []

    def start(*args: str) -> str:
        cid = _docker("run", "-d", "--network", "host", *args).stdout.strip()
        started.append(cid)
        return cid

    yield start
    for cid in started:
        _docker("rm", "-f", cid, check=False)


def _normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them: pip freeze writes typing_extensions, the lock typing-extensions."""
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.timeout(1800)
def test_the_image_has_every_package_by_hash_and_no_browser(image: str) -> None:
    listed = _docker("run", "--rm", image, "sh", "-c", "pip freeze; command -v chromium chrome || true").stdout
    pins = {_normalized(line.split("==")[0]) for line in listed.splitlines() if "==" in line}
    locked = {_normalized(line.split("==")[0]) for name in ("requirements.lock", "requirements-torch.lock")
              for line in (REPO / name).read_text().splitlines() if "==" in line and not line.startswith(" ")}
    assert locked - {"setuptools", "pip"} <= pins and "torch" in pins
    assert "chromium" not in listed and "nvidia" not in listed.lower()


@pytest.mark.timeout(600)
def test_the_image_runs_an_experiment_offline(image: str) -> None:
    done = _docker("run", "--rm", "--network", "none", image, "python", "-m", "splineviz.experiments", "xshape",
                   "--quick", "--out", "/tmp/run", timeout=500, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "xshape_partitions.png" in done.stdout and "drawn with matplotlib" in done.stderr


@pytest.mark.timeout(600)
def test_the_image_refuses_two_workers_without_a_key(image: str) -> None:
    done = _docker("run", "--rm", "--network", "none", image, timeout=300, check=False)
    assert done.returncode != 0
    assert "SPLINEVIZ_SECRET_KEY is not set" in done.stdout + done.stderr


@pytest.mark.timeout(900)
@pytest.mark.skipif(REDIS is None, reason="needs redis-server")
def test_the_image_serves_the_app_healthy_with_a_celery_worker(image: str, containers, tmp_path) -> None:
    redis = Redis(tmp_path)
    redis.start()
    try:
        port = free_port()
        env = ["-e", f"SPLINEVIZ_SECRET_KEY={SECRET}", "-e", f"SPLINEVIZ_CELERY_BROKER={redis.url}"]
        containers(*env, image, "celery", "-A", "splineviz.web.worker", "worker", "--concurrency", "1",
                   "--without-gossip", "--without-mingle")
        web = containers(*env, "-e", f"PORT={port}", "--health-interval", "2s", "--health-start-period", "120s",
                         image,
                         "gunicorn", "app:server", "--bind", f"127.0.0.1:{port}", "--workers", "2")
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url + "/healthz", timeout=240)
        state = lambda: json.loads(_docker("inspect", "--format", "{{json .State.Health.Status}}", web).stdout)  # noqa: E731
        wait_for(lambda: state() == "healthy", 120, 1, message="Docker to call the container healthy")
        client = DashClient(url)
        client.load("/playground")
        values = {**client.initial_values(), "pg-reset.n_clicks": 1, "session-id.data": "d0c4e2" + "0" * 26}
        session = client.call(client.payload(client.find("pg-session.data", "pg-reset.n_clicks"),
                                             values, ["pg-reset.n_clicks"])).json()
        run = session["response"]["pg-session"]["data"]["run"]
        tick = {"n": 1, "run_id": run["id"], "done": 0, "target": 100, "epochs": 2}
        client.http.post(url + "/_splineviz/beat", data=values["session-id.data"], timeout=10)  # the tab is open
        outcome = client.run_job(client.payload(client.find("pg-chunk.data", "pg-tick.data"),
                                                {**values, "pg-tick.data": tick, "model.data": run},
                                                ["pg-tick.data"]), limit=300)
        assert outcome.kind == "result", outcome
        chunk = outcome.value["pg-chunk"]["data"]
        assert [f["stats"]["epoch"] for f in chunk["frames"]] == [1, 2]  # trained by the worker in its container
    finally:
        redis.stop()

