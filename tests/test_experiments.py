"""Experiments: registry/CLI behaviour, the K-means algorithm against scikit-learn, and every quick mode end to end."""
from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from splineviz.experiments import EXPERIMENTS, UnknownExperimentError, run
from splineviz.experiments.__main__ import main
from splineviz.experiments.kmeans import kmeans, prune_centroids, recovered_fraction
from splineviz.experiments.xshape import diagonal_coverage, diagonal_deviation
from splineviz.partition import Cancelled

EXPECTED = {  # name -> (columns of the main table, number of rows in quick mode)
    "kmeans": ({"init", "k_start", "inertia_mean", "recovered_mean"}, 6),
    "sawtooth": ({"method", "ratio", "start_width", "final_width", "train_l2_mean"}, 4),
    "xshape": ({"sparsity", "units_kept", "test_acc", "n_regions", "boundary_deviation", "diagonal_coverage",
                "x_shaped"}, 7),
    "eb_trajectory": ({"epoch", "train_acc", "test_acc", "dist_prev", "ticket"}, 13),
    "spline_p_ablation": ({"P", "sparsity", "spline_acc", "node_acc"}, 2),
    "eb_vs_pretraining": ({"method", "sparsity", "test_acc", "relative_cost"}, 5),
    "mnist_slice": ({"model", "test_acc", "regions", "regions_layer1", "decision_segments"}, 1),
    "cifar_eb": ({"arch", "epoch", "test_acc", "spline_dist_prev", "bn_mask_dist_prev", "spline_eb_epoch"}, 6),
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny nets and 64-centroid K-means gain nothing from threads, and on a busy 2-core machine OpenMP/torch
    thread barriers spin and make them ~10x slower; one thread keeps the whole file well under two minutes."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory):
    """A CIFAR-10 directory in the real pickle format with 20 random images per batch."""
    root = tmp_path_factory.mktemp("cifar")
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, 20).tolist()}
        (root / name).write_bytes(pickle.dumps(batch))
    return root


def test_registry_covers_the_issue():
    assert set(EXPECTED) == set(EXPERIMENTS)


def test_cli_list_describes_every_experiment(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name, entry in EXPERIMENTS.items():
        assert name in out and entry.description in out


def test_unknown_experiment_is_a_clear_error(capsys):
    with pytest.raises(UnknownExperimentError, match="choose one of: kmeans"):
        run("no_such_experiment")
    assert main(["no_such_experiment"]) == 2
    assert "unknown experiment 'no_such_experiment'" in capsys.readouterr().err


def test_unknown_and_misplaced_options_are_rejected(capsys, tmp_path):
    with pytest.raises(TypeError, match="no option"):
        run("kmeans", quick=True, out_dir=tmp_path, colour="red")
    assert main(["kmeans", "--quick", "--out", str(tmp_path), "--arch", "vgg16"]) == 2
    assert "do not apply" in capsys.readouterr().err


def test_cancel_stops_a_run(tmp_path):
    with pytest.raises(Cancelled):
        run("kmeans", quick=True, out_dir=tmp_path, cancel=lambda: True)


# ------------------------------------------------------------------------------------------------ K-means


def _grid_data(seed=0, per=20, std=0.1):
    from splineviz.data import grid_centers

    rng = np.random.default_rng(seed)
    centres = grid_centers()
    labels = np.arange(64 * per) % 64
    return centres[labels] + std * rng.standard_normal((len(labels), 2)), centres


def test_kmeanspp_matches_scikit_learn():
    from sklearn.cluster import KMeans

    x, _ = _grid_data()
    ours = np.mean([kmeans(x, 64, 64, "kmeans++", np.random.default_rng(s)).inertia for s in range(5)])
    sk = np.mean([KMeans(64, init="k-means++", n_init=1, random_state=s).fit(x).inertia_ / len(x)
                  for s in range(5)])
    assert ours == pytest.approx(sk, rel=0.25)


def test_pruned_overparametrised_random_init_matches_kmeanspp():
    x, centres = _grid_data(seed=1)
    fits = {key: [kmeans(x, 64, k0, init, np.random.default_rng(s)) for s in range(4)]
            for key, (k0, init) in {"random": (64, "random"), "pp": (64, "kmeans++"),
                                    "pruned": (256, "random")}.items()}
    inertia = {key: np.mean([f.inertia for f in fs]) for key, fs in fits.items()}
    assert all(len(f.centroids) == 64 for fs in fits.values() for f in fs)
    assert inertia["pruned"] <= 1.05 * inertia["pp"]
    assert inertia["random"] >= 1.5 * inertia["pruned"]
    assert np.mean([recovered_fraction(f.centroids, centres) for f in fits["pruned"]]) == 1.0


def test_pruning_removes_duplicate_and_empty_centroids_first():
    x, centres = _grid_data()
    extra = np.vstack([centres, centres[:3] + 1e-9, [[50.0, 50.0]]])  # 3 duplicates and one far, empty centroid
    kept = prune_centroids(x, extra, 4)
    assert len(kept) == 64
    assert recovered_fraction(kept, centres) == 1.0
    assert np.abs(kept).max() < 10


def test_x_criterion_on_exact_shapes():
    diagonals = np.array([[[-5, -5], [5, 5]], [[-5, 5], [5, -5]]], dtype=float)
    assert diagonal_deviation(diagonals) == pytest.approx(0.0, abs=1e-12)
    assert diagonal_coverage(diagonals) == 1.0
    horizontal = np.array([[[-5, 1], [5, 1]]], dtype=float)
    assert diagonal_deviation(horizontal) > 1.0 and diagonal_coverage(horizontal) < 0.2
    assert math.isinf(diagonal_deviation(np.zeros((0, 2, 2))))


# ------------------------------------------------------------------------------------------------ quick modes


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, tiny_cifar):
    """Each quick experiment run once per test module: (result, progress calls)."""
    cache = {}

    def get(name):
        if name not in cache:
            calls = []
            options = {"cifar_dir": str(tiny_cifar)} if name == "cifar_eb" else {}
            result = run(name, quick=True, out_dir=tmp_path_factory.mktemp(name),
                         progress=lambda f, m: calls.append((f, m)), **options)
            cache[name] = result, calls
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(EXPECTED))
def test_quick_mode_writes_figures_and_a_sane_table(name, quick_run):
    result, calls = quick_run(name)

    suffixes = {p.suffix for p in result.figures}
    assert {".html", ".png"} <= suffixes and all(p.is_file() and p.stat().st_size > 0 for p in result.figures)
    assert {".csv", ".md"} <= {p.suffix for p in result.tables} and all(p.is_file() for p in result.tables)
    columns, n_rows = EXPECTED[name]
    assert len(result.rows) == n_rows and columns <= set(result.rows[0])
    for row in result.rows:
        numbers = [v for v in row.values() if isinstance(v, (int, float))]
        if row.get("epoch") != 0:  # epoch 0 has no previous epoch to compare with
            assert all(math.isfinite(v) for v in numbers), row
    assert calls and calls[-1][0] == 1.0 and all(0.0 <= f <= 1.0 for f, _ in calls)
    assert result.summary


def test_quick_xshape_keeps_the_x_dense_and_loses_it_at_one_unit(quick_run):
    rows = quick_run("xshape")[0].rows
    assert rows[0]["x_shaped"] and rows[0]["test_acc"] >= 0.9
    assert rows[-1]["units_kept"] == 1 and not rows[-1]["x_shaped"]


def test_cifar_needs_an_existing_directory(tmp_path):
    with pytest.raises(ValueError, match="--cifar-dir"):
        run("cifar_eb", quick=True, out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        run("cifar_eb", quick=True, out_dir=tmp_path, cifar_dir=str(tmp_path / "missing"))


def test_cifar_models_have_the_paper_shapes():
    import torch

    from splineviz.experiments._cifar_models import build

    vgg = build("vgg16", width=1 / 16)
    assert vgg(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in vgg.modules()) == 13
    resnet = build("preresnet101", width=1 / 8)
    assert sum(isinstance(m, torch.nn.ReLU) for m in resnet.modules()) == 3 * 33 + 1
    with pytest.raises(ValueError, match="9n\\+2"):
        build("preresnet100")


def test_cli_reports_a_missing_cifar_directory(tmp_path, capsys):
    assert main(["cifar_eb", "--quick", "--out", str(tmp_path), "--cifar-dir", str(tmp_path / "nope")]) == 1
    assert "no CIFAR-10 python batches" in capsys.readouterr().err
