"""Experiments: registry/CLI behaviour, the K-means algorithm against scikit-learn, and every quick mode end to end."""
from __future__ import annotations

import csv
import math
import pickle

import numpy as np
import pytest

from splineviz.experiments import EXPERIMENTS, UnknownExperimentError, run
from splineviz.experiments.__main__ import main
from splineviz.experiments.kmeans import kmeans, prune_centroids, recovered_fraction
from splineviz.experiments.xshape import diagonal_coverage, diagonal_deviation
from splineviz.partition import Cancelled

EXPECTED = {  # name -> columns of the main table
    "kmeans": {"init", "k_start", "inertia_mean", "recovered_mean"},
    "sawtooth": {"method", "scope", "ratio", "n", "final_units_mean", "train_l2_mean", "train_l2_sd", "solved"},
    "xshape": {"method", "scope", "sparsity", "n", "achieved_mean", "acc_pruned_mean", "acc_mean", "x_shaped"},
    "spline_groups": {"method", "scope", "n", "sparsity_mean", "change_pruned_mean", "acc_pruned_mean", "acc_mean"},
    "eb_trajectory": {"threshold", "window", "n", "ticket_mean", "ticket_acc_mean", "fired"},
    "eb_validation": {"setting", "rule", "variant", "n", "fired", "ticket_mean", "acc_mean"},
    "spline_p_ablation": {"P", "method", "scope", "n", "sparsity_mean", "change_mean", "acc_pruned_mean", "acc_mean"},
    "eb_vs_pretraining": {"method", "sparsity", "n", "test_acc_mean", "relative_cost_mean"},
    "mnist_slice": {"model", "n", "test_acc_mean", "regions_mean", "decision_segments_mean"},
    "cifar_eb": {"arch", "epoch", "test_acc", "spline_dist_prev", "bn_mask_dist_prev", "spline_eb_epoch"},
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
def test_quick_mode_writes_figures_tables_and_progress(name, quick_run):
    result, calls = quick_run(name)
    suffixes = {p.suffix for p in result.figures}
    assert {".html", ".png"} <= suffixes and all(p.is_file() and p.stat().st_size > 0 for p in result.figures)
    assert {".csv", ".md"} <= {p.suffix for p in result.tables} and all(p.is_file() for p in result.tables)
    assert result.rows and EXPECTED[name] <= set(result.rows[0])
    assert calls and calls[-1][0] == 1.0 and all(0.0 <= f <= 1.0 for f, _ in calls)
    assert [f for f, _ in calls] == sorted(f for f, _ in calls)
    assert result.summary


def rows_by(result, *keys):
    return {tuple(r[k] for k in keys): r for r in result.rows}


def test_quick_kmeans_overparametrised_random_init_matches_kmeanspp(quick_run):
    by = rows_by(quick_run("kmeans")[0], "init", "k_start")
    assert all(r["seeds"] == 3 for r in by.values())
    assert by["random", 256]["inertia_mean"] <= 1.1 * by["kmeans++", 64]["inertia_mean"]
    assert by["random", 64]["inertia_mean"] >= 1.5 * by["random", 256]["inertia_mean"]
    assert by["random", 256]["recovered_mean"] >= 0.95 > by["random", 64]["recovered_mean"]


def test_quick_sawtooth_prunes_to_four_units(quick_run):
    result = quick_run("sawtooth")[0]
    by = rows_by(result, "method", "scope", "ratio")
    for method, scope in (("node", "layerwise"), ("random", "layerwise"), ("weight", "layerwise"),
                          ("weight", "global")):  # 75 % of 32 weights leave 8: at most 4 units with both
        assert by[method, scope, 4]["final_units_mean"] <= 4 and by[method, scope, 4]["n"] == 2
    runs = list(csv.DictReader((result.out_dir / "sawtooth_runs.csv").open()))
    for run in runs:  # at ratio 1 nothing is pruned: the pruned net is the trained one
        if run["ratio"] == "1":
            assert float(run["pruned_train_l2"]) == pytest.approx(float(run["wide_train_l2"]), rel=1e-6)
        assert 0 <= float(run["train_l2"]) < 1.0  # the target lies in [0, 1]; a diverged fit would not


def test_quick_xshape_scores_every_method(quick_run):
    by = rows_by(quick_run("xshape")[0], "method", "scope", "sparsity")
    dense = by["dense", "-", 0.0]
    assert dense["acc_mean"] >= 0.9 and dense["x_shaped"] != "0/2"
    assert by["node", "layerwise", 0.95]["x_shaped"] == "0/2"  # one unit cannot draw an X
    assert by["node", "layerwise", 0.95]["achieved_mean"] == pytest.approx(0.95)   # 19 of 20 units
    for scope in ("layerwise", "global"):
        assert by["weight", scope, 0.5]["achieved_mean"] == pytest.approx(0.5, abs=0.02)
    spline = by["spline", "layerwise", 0.5]
    assert spline["achieved_mean"] <= 0.5 and spline["acc_pruned_mean"] >= dense["acc_mean"] - 0.05


def test_quick_spline_groups_stay_within_the_tolerance(quick_run):
    by = rows_by(quick_run("spline_groups")[0], "method", "scope")
    spline = by["spline", "-"]
    assert spline["change_pruned_mean"] <= 0.01 and spline["sparsity_mean"] > 0
    for scope in ("global", "layerwise"):
        assert by["random", scope]["change_pruned_mean"] >= spline["change_pruned_mean"]
        for method in ("node", "weight", "random"):
            assert by[method, scope]["sparsity_mean"] == pytest.approx(spline["sparsity_mean"], abs=0.05)


def test_quick_eb_rule_sweep_is_monotone_in_the_threshold(quick_run):
    result = quick_run("eb_trajectory")[0]
    runs = list(csv.DictReader((result.out_dir / "eb_rule_sweep_runs.csv").open()))
    for seed in {r["seed"] for r in runs}:
        for window in {r["window"] for r in runs}:
            sel = sorted((float(r["threshold"]), float(r["ticket"])) for r in runs
                         if r["seed"] == seed and r["window"] == window)
            fired = [t for _, t in sel if not math.isnan(t)]
            assert fired == sorted(fired, reverse=True)  # a looser threshold never fires later
            assert all(t >= int(window) for t in fired)  # nor before its window is full
            assert [math.isnan(t) for _, t in sel] == sorted(math.isnan(t) for _, t in sel)[::-1]


def test_quick_eb_validation_compares_tickets_with_the_end(quick_run):
    result = quick_run("eb_validation")[0]
    by = rows_by(result, "setting", "rule", "variant")
    for setting in ("toy", "mnist cnn"):
        dense = by[setting, "dense", "dense"]
        end = by[setting, "end of training", "node"]
        assert 0.5 <= dense["acc_mean"] <= 1 and end["acc_pruned_mean"] <= dense["acc_mean"] + 0.05
    epochs = {"toy": 12, "mnist cnn": 6}  # quick mode
    for row in result.rows:
        if row["rule"] in ("dense", "end of training") or row["fired"] == "0/2":
            continue
        earliest = 2 if row["rule"].startswith("BN") else 3  # BN rule: window 3 in quick mode, 2 earlier masks
        assert earliest <= row["ticket_mean"] <= epochs[row["setting"]], row


def test_quick_spline_p_ablation_baselines_match_its_sparsity(quick_run):
    result = quick_run("spline_p_ablation")[0]
    by = rows_by(result, "P", "method", "scope")
    for P in (0.5, 0.9):
        assert by[P, "spline", "-"]["change_mean"] <= 0.01
        for method in ("node", "random"):
            for scope in ("layerwise", "global"):
                assert by[P, method, scope]["sparsity_mean"] == pytest.approx(by[P, "spline", "-"]["sparsity_mean"],
                                                                             abs=0.07)
    free = [by[P, "spline (no tolerance)", "-"]["sparsity_mean"] for P in (0.5, 0.9)]
    assert free[0] >= free[1]  # a lower P admits every merge a higher one does


def test_quick_eb_vs_pretraining_costs(quick_run):
    by = rows_by(quick_run("eb_vs_pretraining")[0], "method", "sparsity")
    assert by["dense", 0.0]["relative_cost_mean"] == 1.0
    assert by["layerwise pretraining", 0.0]["relative_cost_mean"] < 1.0
    costs = [by["spline EB + node", s]["relative_cost_mean"] for s in (0.3, 0.5, 0.7)]
    assert costs == sorted(costs, reverse=True) and costs[0] <= 1.0


def test_quick_mnist_slice_counts_regions(quick_run):
    (row,) = quick_run("mnist_slice")[0].rows
    assert row["model"] == "mnist_mlp" and row["test_acc_mean"] >= 0.85
    assert row["n"] == 1 and row["regions_mean"] >= 2


def test_quick_cifar_records_distances_per_epoch(quick_run):
    rows = quick_run("cifar_eb")[0].rows
    assert len(rows) == 6 and {r["arch"][:9] for r in rows} == {"vgg16", "preresnet"}
    for row in rows:
        if row["epoch"] > 0:
            assert 0 <= row["spline_dist_prev"] <= 1 and 0 <= row["bn_mask_dist_prev"] <= 1


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
