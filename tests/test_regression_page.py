"""The app's 1-D regression page, server side: the knots its job records are where the trained net bends.

Oracle: the trained torch model evaluated in float64 on a fine grid; its slope between grid neighbours changes only
in the cells around a knot, so clusters of second differences locate every bend independently of the tracer.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from splineviz import trace
from splineviz.web.jobs.regression import BOUNDS, RegressionSpec, partition, train
from splineviz.web.pages.regression import spec_of, view

GRID = 2**18 + 1  # grid step 2 / 2**18, about 7.6e-6
SLOPE_TOL = 1e-6  # slope changes below this are float noise (float64 slopes err by about 1e-11 here)


def bends(model: torch.nn.Module) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grid, outputs, [lo, hi] cells of the grid where the slope changes), from a dense float64 evaluation."""
    exact = copy.deepcopy(model).double().eval()
    x = np.linspace(*BOUNDS, GRID)
    with torch.no_grad():
        y = exact(torch.from_numpy(x[:, None])).numpy()[:, 0]
    slopes = np.diff(y) / np.diff(x)
    changed = np.flatnonzero(np.abs(np.diff(slopes)) > SLOPE_TOL)  # slope i -> i+1 changes around x[i+1]
    clusters = np.split(changed, np.flatnonzero(np.diff(changed) > 1) + 1) if len(changed) else []
    cells = np.array([[x[c[0]], x[c[-1] + 2]] for c in clusters]).reshape(-1, 2)
    return x, y, cells


@pytest.mark.parametrize("widths", [(8,), (6, 6)])
def test_recorded_knots_are_where_the_trained_net_changes_slope(widths) -> None:
    torch.set_num_threads(1)
    spec = RegressionSpec(widths=widths, epochs=15, lr=0.01, noise=0.05, seed=3)
    model, records = train(spec)
    assert [r["epoch"] for r in records] == list(range(spec.epochs + 1))
    final = records[-1]
    knots = np.asarray(final["x"][1:-1])
    x, y, cells = bends(model)
    assert len(cells) >= 2  # the net bends: the test is not vacuous
    # every bend of the net holds exactly one recorded knot ...
    for lo, hi in cells:
        assert np.count_nonzero((knots >= lo - 1e-12) & (knots <= hi + 1e-12)) == 1, (lo, hi)
    # ... and a recorded knot outside every bend is one where the slope really does not change: a unit switching
    # where no path carries it to the output (the oracle's slopes a few cells either side agree)
    h = x[1] - x[0]
    for k in knots:
        if not np.any((k >= cells[:, 0] - 1e-12) & (k <= cells[:, 1] + 1e-12)):
            i = int(np.searchsorted(x, k))
            left = (y[i - 3] - y[i - 5]) / (2 * h)
            right = (y[i + 4] - y[i + 2]) / (2 * h)
            assert abs(left - right) < SLOPE_TOL * 10, k
    # the recorded outputs at the breakpoints are the net's, and the pieces are the tracer's
    with torch.no_grad():
        at = copy.deepcopy(model).double()(torch.tensor(final["x"], dtype=torch.float64)[:, None]).numpy()[:, 0]
    np.testing.assert_allclose(final["y"], at, atol=1e-5)
    direct = trace(model, bounds=BOUNDS)
    rebuilt = partition(final)
    assert rebuilt.n_regions == direct.n_regions == len(final["x"]) - 1
    assert final["counts"] == direct.layer_region_counts and final["counts"][-1] == rebuilt.n_regions
    np.testing.assert_allclose(rebuilt.slopes, direct.slopes, rtol=1e-6, atol=1e-9)


def test_the_view_draws_the_fit_and_the_chosen_layers_knots() -> None:
    torch.set_num_threads(1)
    spec = spec_of(" 5 ,4 ", "3", "0.03", "0.1", "1")  # text as a control sends it
    assert spec == RegressionSpec(widths=(5, 4), epochs=3, lr=0.03, noise=0.1, seed=1)
    _, records = train(spec)
    names = lambda out: {t.name for t in out["figure"].data}  # noqa: E731
    both, first = view(spec, records[-1], 1), view(spec, records[-1], 0)
    assert {"fit", "target", "train data", "layer 1 knots", "layer 2 knots"} <= names(both)
    assert "layer 1 knots" in names(first) and "layer 2 knots" not in names(first)
    assert f"{len(records[-1]['x']) - 1:,} linear pieces" in str(both["summary"])


def test_bad_control_values_are_bounded() -> None:
    spec = spec_of("0, 999, x, 3, 3, 3, 3, 3, 3", "-5", "7", "9", "nan")
    assert spec.widths == (1, 64, 3, 3, 3, 3) and spec.epochs == 1 and spec.lr == 0.1
    assert spec.noise == 0.5 and spec.seed == 0
    assert spec_of("", None, None, None, None).widths == (16,)
