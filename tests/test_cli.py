"""python -m splineviz trace: every output format and the error paths, run as a user would (subprocess)."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import shapely
import torch

import splineviz
from splineviz.nets import mlp, paper_cnn

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "splineviz", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=240, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    paths = {"mlp2": folder / "mlp2.pt", "mlp1": folder / "mlp1.pt", "cnn": folder / "cnn.pt",
             "conv": folder / "conv.pt", "junk": folder / "junk.pt"}
    torch.save(mlp(2, (8, 8), 3, seed=1).state_dict(), paths["mlp2"])
    torch.save(mlp(1, (6, 6), 2, seed=2).state_dict(), paths["mlp1"])
    torch.save(paper_cnn().state_dict(), paths["cnn"])
    torch.save({"conv.weight": torch.zeros(4, 1, 3, 3)}, paths["conv"])
    paths["junk"].write_bytes(b"not a model")
    return paths


def test_geojson_svg_and_html(saved, tmp_path):
    want = splineviz.trace(mlp(2, (8, 8), 3, seed=1), bounds=(-2, 2, -1, 1))
    for suffix in ("geojson", "svg", "html"):
        out = tmp_path / f"p.{suffix}"
        done = run("trace", saved["mlp2"], "--bounds", -2, 2, -1, 1, "--out", out)
        assert done.returncode == 0, done.stderr
        assert f"{want.n_regions:,} regions" in done.stdout
    features = json.loads((tmp_path / "p.geojson").read_text())["features"]
    regions = [shapely.geometry.shape(f["geometry"]) for f in features if f["properties"]["kind"] == "region"]
    assert len(regions) == want.n_regions
    assert np.isclose(sum(r.area for r in regions), 8.0)  # they tile the 4 x 2 box
    svg = ET.parse(tmp_path / "p.svg").getroot()
    paths = svg.findall("{http://www.w3.org/2000/svg}path")
    assert [p.get("data-layer") for p in paths if p.get("class") == "layer"] == ["0", "1"]
    cells = sum(p.get("d").count("M") for p in paths if p.get("class") == "cells")
    assert cells == len(want.class_cells()[0])
    html = (tmp_path / "p.html").read_text()
    assert "Plotly.newPlot" in html and '<script src="http' not in html  # plotly.js inline: works offline
    assert len(html) > 3_000_000


def test_one_input_model_and_progress_bar(saved, tmp_path):
    out = tmp_path / "knots.svg"
    done = run("trace", saved["mlp1"], "--bounds", -1, 1, "--out", out, "--progress", "always")
    assert done.returncode == 0, done.stderr
    want = splineviz.trace(mlp(1, (6, 6), 2, seed=2), bounds=(-1, 1))
    assert f"{want.n_regions:,} pieces" in done.stdout
    assert "100.0%" in done.stderr and "layer 1" in done.stderr
    svg = ET.parse(out).getroot()
    outputs = [p for p in svg.findall("{http://www.w3.org/2000/svg}path") if p.get("class") == "output"]
    assert len(outputs) == 2 and outputs[0].get("d").count("L") == want.n_regions  # one segment per piece
    refused = run("trace", saved["mlp1"], "--bounds", -1, 1, "--out", tmp_path / "knots.geojson")
    assert refused.returncode == 2 and "GeoJSON holds 2-D partitions" in refused.stderr


def test_png(saved, tmp_path):
    out = tmp_path / "p.png"
    done = run("trace", saved["mlp2"], "--out", out)
    assert done.returncode == 0, done.stderr
    header = out.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", header[16:24])[0] > 500


def test_png_without_a_browser_fails_before_tracing(saved, tmp_path):
    done = run("trace", saved["mlp2"], "--out", tmp_path / "p.png", env={"BROWSER_PATH": str(tmp_path / "none")})
    assert done.returncode == 2 and not (tmp_path / "p.png").exists()
    assert "PNG export needs Chromium" in done.stderr and ".svg, .html or .geojson" in done.stderr
    assert "wrote" not in done.stdout


def test_mnist_plane_with_an_architecture(saved, tmp_path):
    out = tmp_path / "slice.geojson"
    done = run("trace", saved["cnn"], "--architecture", '{"type": "paper_cnn"}', "--plane-images", "mnist:0",
               "mnist:1", "--bounds", 0, 0.05, 0, 0.05, "--classes", 6, 9, "--out", out)
    assert done.returncode == 0, done.stderr
    from splineviz.data import mnist
    from splineviz.partition import Plane

    x = mnist().x_test
    plane = Plane.through_images(x[0].reshape(1, 28, 28), x[1].reshape(1, 28, 28))
    want = splineviz.trace(paper_cnn(), bounds=(0, 0.05, 0, 0.05), plane=plane, decision_classes=(6, 9))
    assert f"{want.n_regions:,} regions" in done.stdout


@pytest.mark.parametrize("args,message", [
    (["--out", "p.txt"], "one of .geojson, .svg, .png, .html"),
    (["--out", "missing/p.svg"], "/missing does not exist"),
    (["--out", "p.svg", "--bounds", 1, 2, 3], "--bounds takes 4 numbers"),
    (["--out", "p.svg", "--bounds", -1, 1], "interval, for networks with one input; this one takes 2"),
    (["--out", "p.svg", "--plane-images", "mnist:0", "mnist:1"], "plane's points are shaped 1x28x28"),
    (["--out", "p.svg", "--plane-images", "mnist:0"], "2 images (plane through the origin) or 3"),
    (["--out", "p.svg", "--plane-images", "mnist:0", "mnist:99999"], "test split has indices"),
    (["--out", "p.svg", "--plane-images", "a.png", "b.png"], ".npy files (numpy.save) or mnist:INDEX"),
    (["--out", "p.svg", "--budget", 5], "budget of 5 regions"),
    (["--out", "p.svg", "--architecture", "{"], "--architecture is not valid JSON"),
])
def test_errors(saved, tmp_path, args, message):
    args = [tmp_path / a if isinstance(a, str) and a.startswith(("p.", "missing/")) else a for a in args]
    done = run("trace", saved["mlp2"], *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("model,message", [
    ("junk", "is not a readable PyTorch state dict"),
    ("conv", "convolutions need an architecture or an ONNX file"),  # the app's loader, the app's message
    ("missing", "cannot read"),
])
def test_model_errors_are_the_apps(saved, tmp_path, model, message):
    done = run("trace", saved.get(model, tmp_path / "missing.pt"), "--out", tmp_path / "p.svg")
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_ctrl_c_cancels_a_long_trace(tmp_path):
    """SIGINT once the progress bar has started: exit code 130, a message, and no output file."""
    import signal

    model = tmp_path / "wide.pt"
    torch.save(mlp(2, (256, 256, 256), 2).state_dict(), model)
    out = tmp_path / "p.geojson"
    proc = subprocess.Popen([sys.executable, "-m", "splineviz", "trace", str(model), "--out", str(out),
                             "--progress", "always"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=False)
    try:
        assert proc.stderr.read(1) == b"\r"  # the first progress report
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and b"cancelled" in err and not out.exists()
