"""Notebook plots: figures carry exactly the partition's geometry; animations play offline from their frames."""
from __future__ import annotations

import numpy as np
import pytest

import splineviz
from splineviz.data import make_dataset
from splineviz.nets import mlp
from splineviz.plot import animate, plot_interval, plot_partition
from splineviz.train import TrainConfig, fit


def pieces(trace) -> int:
    """Polylines or polygons in a NaN-separated trace."""
    return int(np.isnan(np.asarray(trace.x, dtype=float)).sum())


def by_name(fig, name):
    return next(t for t in fig.data if t.name == name)


def test_partition_figure_holds_the_exact_geometry():
    p = splineviz.trace(mlp(2, (10, 10), 3, seed=0), bounds=(-2, 2, -2, 2))
    data = make_dataset("gaussians", seed=0)
    fig = p.plot(points=data.x_train[:50], labels=data.y_train[:50])
    polygons, classes = p.class_cells()
    for c in np.unique(classes):
        cells = by_name(fig, f"class {c}")
        assert pieces(cells) == np.count_nonzero(classes == c) and cells.fill == "toself"
    for layer in range(p.n_layers):
        line = by_name(fig, f"layer {layer}")
        assert pieces(line) == len(p.segments(layer))
        x = np.asarray(line.x, dtype=float)
        np.testing.assert_array_equal(x[~np.isnan(x)], p.segments(layer)[:, :, 0].ravel())
    assert pieces(by_name(fig, "decision boundary")) == len(p.decision_boundary) > 0
    shown = sum(len(t.x) for t in fig.data if t.name.startswith("points"))
    assert shown == 50
    only = plot_partition(p, layers=[1], decision=False, cells=False)
    assert [t.name for t in only.data] == ["layer 1"]
    with pytest.raises(IndexError, match="layers \\[5\\] out of range"):
        p.plot(layers=[5])
    with pytest.raises(ValueError, match="3 labels for 50 points"):
        p.plot(points=data.x_train[:50], labels=[0, 1, 2])


def test_interval_figure_draws_the_curves_and_knots():
    p = splineviz.trace(mlp(1, (8, 8), 3, seed=2), bounds=(-3, 3))
    fig = p.plot(points=(np.linspace(-3, 3, 7), np.zeros(7)))
    for j in range(3):
        np.testing.assert_array_equal(by_name(fig, f"output {j}").y, p.values[:, j])
    for layer in range(2):
        assert pieces(by_name(fig, f"layer {layer} knots")) == len(p.knots(layer))
    assert pieces(by_name(fig, "decision points")) == len(p.decision_boundary)
    assert len(by_name(fig, "data").x) == 7
    regression = plot_interval(splineviz.trace(mlp(1, (8,), 1), bounds=(-1, 1)))
    assert not any(t.name.startswith(("class", "decision")) for t in regression.data)


def test_animate_models_snapshots_and_train_results():
    models = [mlp(2, (8,), 2, seed=s) for s in range(3)]
    fig = animate(models, bounds=(-2, 2, -2, 2))
    counts = [splineviz.trace(m, bounds=(-2, 2, -2, 2)).n_regions for m in models]
    assert [f.name for f in fig.frames] == ["0", "1", "2"]
    assert [f.layout.title.text for f in fig.frames] == [f"{n}: {c:,} regions" for n, c in zip("012", counts)]
    assert [list(s.args[0]) for s in fig.layout.sliders[0].steps] == [["0"], ["1"], ["2"]]
    assert all(len(f.data) == len(fig.frames[0].data) for f in fig.frames)  # frames line up trace by trace
    data = make_dataset("moons", n=200, seed=0)
    result = fit(mlp(2, (6,), 2, seed=0), data, TrainConfig(epochs=2, lr=0.1))
    trained = animate(result, bounds=(-2, 3, -2, 2), points=data.x_train, labels=data.y_train)
    assert [f.name for f in trained.frames] == ["epoch 0", "epoch 1", "epoch 2"]
    assert sum(t.name.startswith("points") for t in trained.data) == 2  # fixed traces after the animated ones
    again = animate(result.snapshots, model=result.model, bounds=(-2, 3, -2, 2), names=["a", "b", "c"])
    assert [f.name for f in again.frames] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="need model="):
        animate([s.state for s in result.snapshots])
    one_d = animate([mlp(1, (5,), 1, seed=s) for s in range(2)], bounds=(-1, 1), points=([0.0], [0.0]))
    assert len(one_d.frames) == 2
    with pytest.raises(ValueError, match="1-D and 2-D"):
        animate([mlp(1, (5,), 1), mlp(2, (5,), 1)])
    with pytest.raises(ValueError, match="nothing to animate"):
        animate([])


@pytest.mark.browser
def test_exported_animation_plays_in_a_browser_without_a_server(tmp_path):
    """Each slider step's animate call, made as the slider makes it, redraws the layer lines of that frame."""
    from harness import chrome

    models = [mlp(2, (4 + 4 * s,), 2, seed=s) for s in range(3)]
    fig = animate(models, bounds=(-2, 2, -2, 2))
    page = tmp_path / "animation.html"
    fig.write_html(page, include_plotlyjs=True)
    want = [len(np.asarray(by_name(f, "layer 0").x)) for f in fig.frames]
    driver = chrome()
    try:
        driver.get(page.as_uri())
        script = """
            const done = arguments[arguments.length - 1];
            const gd = document.querySelector('.plotly-graph-div');
            const step = gd.layout.sliders[0].steps[arguments[0]];
            Plotly.animate(gd, ...step.args).then(() => done(gd._fullData.find(t => t.name === 'layer 0').x.length));
        """
        seen = [driver.execute_async_script(script, k) for k in (2, 0, 1)]
    finally:
        driver.quit()
    assert seen == [want[2], want[0], want[1]] and len(set(want)) == 3
