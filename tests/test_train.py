"""train: reproducibility, snapshots, resumption, masks, progress, cancellation, metrics, the MNIST cache."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from splineviz.data import make_dataset
from splineviz.nets import mlp, model_from_state
from splineviz.partition import Cancelled
from splineviz.train import MNIST_RECIPES, TrainConfig, cached_mnist_model, evaluate, fit

torch.set_num_threads(1)  # tiny nets: threads only add contention
XSHAPE = make_dataset("xshape", n=400)


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def dropout_net(seed: int = 0) -> nn.Sequential:
    """Dropout and BatchNorm make hidden randomness and running statistics part of what must reproduce."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))


def test_training_learns_and_snapshot_zero_is_the_initial_model():
    model = mlp(2, (20,), 2, seed=0)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    result = fit(model, XSHAPE, TrainConfig(epochs=30, lr=0.05, batch_size=64, momentum=0.9))
    assert [s.epoch for s in result.snapshots] == list(range(31))
    assert [s.step for s in result.snapshots] == [5 * e for e in range(31)]  # 320 points, batches of 64
    assert states_equal(result.snapshots[0].state, initial)
    assert states_equal(result.snapshots[-1].state, model.state_dict()) and result.model is model
    first, last = result.snapshots[0], result.snapshots[-1]
    assert last.train_loss < first.train_loss and last.train_metric > 0.85 and last.test_metric > 0.85


def test_same_seed_same_run_other_seed_other_run():
    runs = [fit(dropout_net(), XSHAPE, TrainConfig(epochs=3, batch_size=50, seed=s)) for s in (1, 1, 2)]
    assert all(states_equal(a.state, b.state) for a, b in zip(runs[0].snapshots, runs[1].snapshots))
    assert not states_equal(runs[0].snapshots[-1].state, runs[2].snapshots[-1].state)


def test_training_leaves_the_global_rng_alone():
    model = dropout_net()
    torch.manual_seed(5)
    before = torch.get_rng_state()
    fit(model, XSHAPE, TrainConfig(epochs=1))
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("optimizer,momentum", [("sgd", 0.9), ("adam", 0.0)])
def test_resuming_equals_one_long_run(optimizer, momentum):
    config = dict(lr=0.01, batch_size=64, optimizer=optimizer, momentum=momentum, seed=3, snapshot_every=4)
    long = fit(dropout_net(), XSHAPE, TrainConfig(epochs=4, **config))
    first = fit(dropout_net(), XSHAPE, TrainConfig(epochs=2, **config))
    resumed = fit(dropout_net(seed=99), XSHAPE, TrainConfig(epochs=2, **config), resume_from=first)
    assert [(s.epoch, s.step) for s in resumed.snapshots] == [(s.epoch, s.step) for s in long.snapshots]
    for a, b in zip(long.snapshots, resumed.snapshots):
        assert states_equal(a.state, b.state) and a.train_loss == b.train_loss


def test_per_step_snapshots_come_between_epoch_snapshots():
    result = fit(mlp(seed=1), XSHAPE, TrainConfig(epochs=2, batch_size=100, snapshot_every=3))
    # 320 training points -> 4 steps per epoch; extra snapshots at steps 3 and 6
    assert [(s.epoch, s.step) for s in result.snapshots] == [(0, 0), (0, 3), (1, 4), (1, 6), (2, 8)]


def test_a_single_leftover_sample_joins_the_last_batch():
    # 320 points in batches of 319 would leave one sample, on which BatchNorm cannot train
    result = fit(dropout_net(), XSHAPE, TrainConfig(epochs=2, batch_size=319))
    assert [s.step for s in result.snapshots] == [0, 1, 2]


def test_masked_weights_stay_zero():
    model = mlp(2, (12, 12), 2, seed=2)
    masks = {"0.weight": (torch.rand(12, 2, generator=torch.Generator().manual_seed(0)) > 0.5).float(),
             "2.bias": torch.zeros(12)}
    result = fit(model, XSHAPE, TrainConfig(epochs=3, batch_size=32, momentum=0.9, weight_decay=1e-3), masks=masks)
    for snap in result.snapshots:
        assert (snap.state["0.weight"][masks["0.weight"] == 0] == 0).all()
        assert (snap.state["2.bias"] == 0).all()
    assert (model[0].weight[masks["0.weight"] == 1] != 0).all()
    with pytest.raises(ValueError, match="unknown parameter '9.weight'"):
        fit(model, XSHAPE, TrainConfig(epochs=1), masks={"9.weight": torch.ones(1)})
    with pytest.raises(ValueError, match="shape"):
        fit(model, XSHAPE, TrainConfig(epochs=1), masks={"0.weight": torch.ones(2, 12)})


def test_progress_reports_fractions_up_to_one():
    reports = []
    fit(mlp(seed=0), XSHAPE, TrainConfig(epochs=4), progress=lambda f, msg: reports.append((f, msg)))
    assert [f for f, _ in reports] == [0.25, 0.5, 0.75, 1.0]
    assert reports[-1][1].startswith("epoch 4: loss")


def test_cancel_is_checked_every_step_and_stops_cleanly():
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 10

    with pytest.raises(Cancelled, match="after 10 steps"):
        fit(mlp(seed=0), XSHAPE, TrainConfig(epochs=5, batch_size=32), cancel=cancel)
    assert len(calls) == 11


def test_regression_on_the_sawtooth_reports_rms_error():
    data = make_dataset("sawtooth", n=300)
    model = mlp(1, (32, 32), 1, seed=0)
    result = fit(model, data, TrainConfig(epochs=60, lr=0.02, batch_size=32, optimizer="adam"))
    last = result.snapshots[-1]
    with torch.no_grad():
        pred = model(torch.as_tensor(data.x_train)).numpy()
    rmse = np.sqrt(((pred - data.y_train) ** 2).mean())
    assert last.train_metric == pytest.approx(rmse, rel=1e-5)
    assert last.train_loss == pytest.approx(rmse**2, rel=1e-4)
    assert last.train_metric < 0.5 * result.snapshots[0].train_metric


def test_evaluate_agrees_with_numpy():
    model = mlp(2, (8,), 2, seed=4)
    state = fit(model, XSHAPE, TrainConfig(epochs=2)).snapshots[1].state
    snapshot_model = model_from_state(state, model)
    w = [snapshot_model[i].weight.detach().double().numpy() for i in (0, 2)]
    b = [snapshot_model[i].bias.detach().double().numpy() for i in (0, 2)]
    logits = np.maximum(XSHAPE.x_test @ w[0].T + b[0], 0) @ w[1].T + b[1]
    assert evaluate(snapshot_model, XSHAPE) == pytest.approx((logits.argmax(1) == XSHAPE.y_test).mean())
    with pytest.raises(ValueError, match="split must be"):
        evaluate(model, XSHAPE, "validation")


def test_bad_configs_are_explained():
    with pytest.raises(ValueError, match="lr must be > 0.*optimizer must be"):
        TrainConfig(lr=0, optimizer="rmsprop")
    with pytest.raises(ValueError, match="snapshot_every"):
        TrainConfig(snapshot_every=0)


def test_mnist_models_are_cached(tmp_path):
    for name in MNIST_RECIPES:
        model, accuracy = cached_mnist_model(name, tmp_path)
        assert accuracy > 0.85, name
        files = list(tmp_path.glob(f"{name}-*.pt"))
        assert len(files) == 1
        stamp = files[0].stat().st_mtime_ns
        again, same_accuracy = cached_mnist_model(name, tmp_path)
        assert files[0].stat().st_mtime_ns == stamp  # read, not retrained
        assert same_accuracy == accuracy and states_equal(model.state_dict(), again.state_dict())
    files[0].write_bytes(b"truncated")  # a corrupt cache entry is retrained, reproducibly
    retrained, retrained_accuracy = cached_mnist_model(name, tmp_path)
    assert retrained_accuracy == accuracy and states_equal(model.state_dict(), retrained.state_dict())
    with pytest.raises(ValueError, match="unknown MNIST recipe"):
        cached_mnist_model("resnet", tmp_path)


def test_snapshots_stream_as_they_are_taken():
    seen = []
    first = fit(mlp(seed=1), XSHAPE, TrainConfig(epochs=2, batch_size=100, snapshot_every=3), on_snapshot=seen.append)
    assert seen == first.snapshots and [s.masks for s in seen] == [None] * 5
    more = []
    masks = {"0.bias": torch.ones(16)}
    resumed = fit(first.model, XSHAPE, TrainConfig(epochs=1, batch_size=100), resume_from=first, masks=masks,
                  on_snapshot=more.append)
    assert more == resumed.snapshots[len(seen):] and [(s.epoch, s.step) for s in more] == [(3, 12)]
    assert more[0].masks.keys() == {"0.bias"}
