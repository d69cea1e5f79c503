"""The 1-D regression view: fits drawn from the exact interval trace, knots per layer numbered from 1."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from splineviz.data import from_points, make_dataset, sawtooth
from splineviz.experiments.sawtooth import FINAL_WIDTH, task
from splineviz.figures import regression_figure
from splineviz.partition import Affine, ReLU
from splineviz.partition.interval import trace_interval


def two_layer_net():
    """f(x) = relu(relu(x) - 0.5) + relu(-x - 0.25): knots by hand at x = 0 and -0.25 (layer 1), 0.5 (layer 2)."""
    return [Affine([[1.0], [-1.0]], [0.0, -0.25]), ReLU(),
            Affine([[1.0, 0.0], [0.0, 1.0]], [-0.5, 0.0]), ReLU(), Affine([[1.0, 1.0]], [0.0])]


def by_name(fig):
    return {t.name: t for t in fig.data}


def test_knots_per_layer_sit_where_computed_by_hand():
    p = trace_interval(two_layer_net(), (-1, 1))
    data = make_dataset("sawtooth", n=20)
    fig = regression_figure(p, data, target=sawtooth, title="net")
    go.Figure(fig.to_dict())  # validates
    traces = by_name(fig)
    assert {"train data", "test data", "target", "fit", "layer 1 knots", "layer 2 knots"} <= set(traces)
    np.testing.assert_allclose(sorted(traces["layer 1 knots"].x), [-0.25, 0.0])
    np.testing.assert_allclose(traces["layer 1 knots"].y[np.argsort(traces["layer 1 knots"].x)], [0.0, 0.0])
    np.testing.assert_allclose(traces["layer 2 knots"].x, [0.5])
    assert sorted(traces["layer 1 knots"].customdata.tolist()) == [1, 2]  # units from 1
    # the fit is exactly the hand-written function at its breakpoints: -1, -0.25, 0, 0.5, 1
    fit = traces["fit"]
    np.testing.assert_allclose(fit.x, [-1, -0.25, 0, 0.5, 1])
    hand = lambda x: np.maximum(np.maximum(x, 0) - 0.5, 0) + np.maximum(-x - 0.25, 0)  # noqa: E731
    np.testing.assert_allclose(fit.y, hand(np.asarray(fit.x)))
    assert len(traces["train data"].x) == 16 and len(traces["test data"].x) == 4
    only_first = by_name(regression_figure(p, up_to_layer=0))
    assert "layer 1 knots" in only_first and "layer 2 knots" not in only_first and "train data" not in only_first


def test_outputs_and_data_without_a_test_split():
    p = trace_interval([Affine([[1.0], [2.0]], [0.0, -1.0]), ReLU(), Affine([[1.0, 0.0], [0.0, -1.0]], [0, 0])],
                       (-2, 2))
    data = from_points([[0, 0], [1, 1]], [0, 1], test_fraction=0)  # any x/y arrays will do
    data.x_train, data.y_train = np.array([[0.5], [1.5]]), np.array([[0.5, -2.0], [1.5, -2.0]])
    data.x_test, data.y_test = np.empty((0, 1)), np.empty((0, 2))
    traces = by_name(regression_figure(p, data, output=1))
    np.testing.assert_allclose(traces["train data"].y, [-2.0, -2.0])
    assert "test data" not in traces
    np.testing.assert_allclose(traces["layer 1 knots"].x, [0.0, 0.5])


def test_the_sawtooth_experiment_keeps_exact_fits():
    out = task(seed=0, ratio=1, quick=True)
    node = out["curves"]["node layerwise"]
    x, y = np.asarray(node["x"]), np.asarray(node["y"])
    assert x[0] == -1 and x[-1] == 1 and np.all(np.diff(x) > 0)
    assert len(x) - 2 <= FINAL_WIDTH  # one hidden layer of 4 units: at most 4 knots
    # between breakpoints the fit is linear, so midpoints interpolate; the slopes change only at knots
    slopes = np.diff(y) / np.diff(x)
    assert np.all(np.abs(np.diff(slopes)) > 1e-9)
