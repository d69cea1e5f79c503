"""PNG export never hangs: no browser, or one that never answers, falls back to matplotlib within the time limit."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import psutil
import pytest
from PIL import Image

from splineviz import png as _plots
from splineviz.web.testing import REPO

RED, BLUE = (214, 39, 40), (31, 119, 180)


def _figure():
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("left", "right"))
    fig.add_trace(go.Scatter(x=[-1, 1], y=[-1, 1], mode="lines", line=dict(color="#d62728", width=4)), row=1, col=1)
    fig.add_trace(go.Scatter(x=[0, 1, 2], y=[2, 0, 1], mode="markers", marker=dict(color="rgb(31, 119, 180)", size=12)),
                  row=1, col=2)
    fig.update_layout(width=600, height=300)
    return fig


def _pixels(path, colour) -> np.ndarray:
    """(x, y) of the pixels within a small distance of ``colour``."""
    image = np.asarray(Image.open(path).convert("RGB"), dtype=int)
    ys, xs = np.nonzero(np.abs(image - np.array(colour)).sum(axis=2) < 40)
    return np.c_[xs, ys]


@pytest.fixture
def fresh_export(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(_plots, "_export", {"kaleido": None, "reason": None})


def test_matplotlib_draws_each_trace_in_its_subplot(tmp_path) -> None:
    path = tmp_path / "f.png"
    _plots.matplotlib_png(_figure(), path, 600, 300)
    assert Image.open(path).size == (600, 300)
    red, blue = _pixels(path, RED), _pixels(path, BLUE)
    assert len(red) > 50 and len(blue) > 50
    assert red[:, 0].max() < 300 < blue[:, 0].min()  # the line on the left subplot, the markers on the right
    # the line goes up to the right: pixel rows fall (image y grows downwards) as columns grow
    assert np.corrcoef(red[:, 0], red[:, 1])[0, 1] < -0.9


def test_no_browser_falls_back_at_once(tmp_path, monkeypatch: pytest.MonkeyPatch, fresh_export) -> None:
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))
    with pytest.warns(UserWarning, match="no Chromium found"):
        assert _plots.write_png(_figure(), tmp_path / "a.png") == "matplotlib"
    assert _plots.write_png(_figure(), tmp_path / "b.png") == "matplotlib"  # one warning, then quietly
    assert len(_pixels(tmp_path / "a.png", RED)) > 50


def test_a_browser_that_never_answers_is_killed_and_replaced(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                                            fresh_export) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexec sleep 86398\n")  # starts, then never speaks the DevTools protocol
    fake.chmod(0o755)
    monkeypatch.setenv("BROWSER_PATH", str(fake))
    monkeypatch.setenv("SPLINEVIZ_PNG_START_TIMEOUT", "3")
    with pytest.warns(UserWarning, match="kaleido did not answer within 3 s"):
        assert _plots.write_png(_figure(), tmp_path / "a.png") == "matplotlib"
    assert len(_pixels(tmp_path / "a.png", RED)) > 50
    hung = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "86398"]]
    assert hung == []  # the fake browser went with its kaleido


def test_an_experiment_finishes_without_a_browser(tmp_path) -> None:
    env = {"BROWSER_PATH": str(tmp_path / "no-such-chromium"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "splineviz.experiments", "xshape", "--quick", "--out",
                           str(tmp_path / "run")], cwd=REPO, env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "drawn with matplotlib" in done.stderr
    pngs = sorted((tmp_path / "run").glob("*.png"))
    assert pngs and all(len(_pixels(p, RED)) > 0 for p in pngs)  # the red decision boundary is drawn
