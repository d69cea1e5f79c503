"""Own data (CSV uploads, clicked points) and the training options that go with it: train/test ratio, batch size
and the L1 penalty, checked against hand computations."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from splineviz.data import from_csv, from_points, make_dataset
from splineviz.train import TrainConfig, fit

torch.set_num_threads(1)


def all_rows(d):
    return np.concatenate([d.x_train, d.x_test]), np.concatenate([d.y_train, d.y_test])


def rows_as_set(x, y):
    return sorted((round(float(a), 6), round(float(b), 6), int(c)) for (a, b), c in zip(x, y))


@pytest.mark.parametrize("text", [
    "x,y,label\n0.5,1,2\n-1,2.5,7\n3,-0.25,2\n0,0,7\n",
    "0.5,1,2\n-1,2.5,7\n3,-0.25,2\n0,0,7\n",                       # no header
    "label;X;Y\r\n2;0.5;1\r\n7;-1;2.5\r\n2;3;-0.25\r\n7;0;0\r\n",  # semicolons, other order, CRLF
    "\ufeffx\ty\tclass\n0.5\t1\t2\n\n-1\t2.5\t7\n3\t-0.25\t2\n0\t0\t7\n",  # tabs, BOM, a blank line
])
def test_csv_rows_become_points_and_classes(text):
    d = from_csv(text, test_fraction=0.25, seed=1)
    assert (len(d.x_train), len(d.x_test)) == (3, 1) and d.n_classes == 2 and d.class_names == ("2", "7")
    assert rows_as_set(*all_rows(d)) == rows_as_set([(0.5, 1), (-1, 2.5), (3, -0.25), (0, 0)], [0, 1, 0, 1])
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64 and d.task == "classification"
    lo_x, hi_x, lo_y, hi_y = d.bounds
    assert lo_x < -1 and hi_x > 3 and lo_y < -0.25 and hi_y > 2.5


def test_csv_string_labels_files_and_paths(tmp_path):
    text = "x,y,label\n0,0,zebra\n1,1,ant\n2,2,zebra\n3,3,moth\n"
    path = tmp_path / "points.csv"
    path.write_text(text)
    for source in (text, text.encode(), io.StringIO(text), path, str(path)):
        d = from_csv(source, test_fraction=0)
        assert d.class_names == ("ant", "moth", "zebra")
        assert rows_as_set(*all_rows(d)) == rows_as_set([(0, 0), (1, 1), (2, 2), (3, 3)], [2, 0, 2, 1])
    assert from_csv(path).name == "points.csv"


@pytest.mark.parametrize("text,match", [
    ("", "no rows"),
    ("a,b,c\n1,2,3\n", "header a, b, c lacks columns x, y and label"),
    ("1,2,3,4\n5,6,7,8\n", "row 1 has 4 values"),
    ("1,2\n", "row 1 has 2 values"),
    ("x,y,label\n1,2,0\n1,oops,1\n", r"row 3: x and y must be numbers, got '1', 'oops'"),
    ("x,y,label\n1,2,0\nnan,1,1\n", r"row 3 has a missing or infinite coordinate \(nan, 1\)"),
    ("x,y,label\n1,2,0\n1,inf,1\n", "row 3 has a missing or infinite"),
    ("x,y,label\n1,2,0\n1,3,\n", "row 3 has no label"),
    ("x,y,label\n1,2,a\n3,4,a\n", "every row has label 'a'; a classifier needs at least two classes"),
    ("".join(f"{i},{i},{i}\n" for i in range(12)), "12 classes are over the limit of 10"),
    ("".join(f"{i},{i},{i % 2}\n" for i in range(10_001)), "10,001 rows are over the limit of 10,000"),
])
def test_bad_csv_is_refused_naming_the_row(text, match):
    with pytest.raises(ValueError, match=match):
        from_csv(text + ("\n" if "\n" not in text else ""))


def test_csv_limits_and_unreadable_files(tmp_path):
    with pytest.raises(ValueError, match="over the limit of 5"):
        from_csv("".join(f"{i},{i},{i % 2}\n" for i in range(6)), max_rows=5)
    with pytest.raises(ValueError, match="too long for 5 rows"):
        from_csv("0,0,0\n" + " " * 2000 + "\n", max_rows=5)
    with pytest.raises(ValueError, match="not UTF-8"):
        from_csv(b"x,y,label\n\xff\xfe,1,1\n")
    with pytest.raises(ValueError, match="cannot read"):
        from_csv(tmp_path / "missing.csv")


def test_clicked_points():
    d = from_points([[0, 0], [1, 0], [0, 1], [2, 2], [3, 1]], [0, 1, 2, 1, 0], test_fraction=0.4, seed=3,
                    bounds=(-3, 3, -3, 3), class_names=["red", "blue", "green"])
    assert (len(d.x_train), len(d.x_test)) == (3, 2) and d.n_classes == 3 and d.bounds == (-3, 3, -3, 3)
    assert from_points([[0, 0], [1, 1]], [0.0, 1.0]).y_train.dtype == np.int64  # JSON numbers from a browser
    assert rows_as_set(*all_rows(d)) == rows_as_set([[0, 0], [1, 0], [0, 1], [2, 2], [3, 1]], [0, 1, 2, 1, 0])
    for points, labels, match in [([[0, 0]], [0], "at least two classes"), ([], [], "got none"),
                                  ([[0, 0, 0]], [0], r"shaped \(n, 2\)"), ([[0, 0], [1, 1]], [0.5, 1], "class indices"),
                                  ([[0, np.nan], [1, 1]], [0, 1], "point 1 has a missing"),
                                  ([[0, 0], [1, 1]], [0, 11], "12 classes are over")]:
        with pytest.raises(ValueError, match=match):
            from_points(np.array(points, dtype=float).reshape(-1, len(points[0]) if points else 2), labels)


@pytest.mark.parametrize("fraction,n_test", [(0.0, 0), (0.5, 50), (0.3, 30)])
def test_make_dataset_takes_the_train_test_ratio(fraction, n_test):
    d = make_dataset("moons", n=100, test_fraction=fraction)
    assert (len(d.x_train), len(d.x_test)) == (100 - n_test, n_test)


# ----------------------------------------------------------------------------------------------- training options

def test_batch_size_is_honoured():
    data = make_dataset("moons", n=125, test_fraction=0.2)  # 100 training points
    for batch_size, sizes in [(30, [30, 30, 30, 10]), (33, [33, 33, 34]), (256, [100]), (1, [1] * 100)]:
        model = nn.Sequential(nn.Linear(2, 2))
        seen = []
        model.register_forward_hook(lambda m, inputs, out: seen.append(len(inputs[0])) if m.training else None)
        result = fit(model, data, TrainConfig(epochs=2, batch_size=batch_size))
        assert seen == sizes * 2 and result.snapshots[-1].step == 2 * len(sizes)


def test_l1_is_the_hand_computed_subgradient_step():
    """One full-batch SGD step on a linear softmax classifier, computed by hand in float64."""
    data = from_points([[1.0, 2.0], [-1.0, 0.5], [0.5, -1.5], [2.0, 1.0]], [0, 1, 1, 0], test_fraction=0)
    model = nn.Sequential(nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.3, -0.2], [0.0, 0.5]]))  # one zero weight: |w| has subgradient 0
        model[0].bias.copy_(torch.tensor([0.1, -0.1]))
    w0, b0 = model[0].weight.detach().double().numpy().copy(), model[0].bias.detach().double().numpy().copy()
    lr, l1 = 0.5, 0.2
    result = fit(model, data, TrainConfig(epochs=1, lr=lr, batch_size=4, l1=l1))
    x, y = data.x_train.astype(np.float64), data.y_train
    logits = x @ w0.T + b0
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1  # d(mean cross-entropy)/d(logits) * n
    grad_w = p.T @ x / len(y) + l1 * np.sign(w0)
    grad_b = p.mean(axis=0)  # no L1 on biases
    state = result.snapshots[-1].state
    np.testing.assert_allclose(state["0.weight"].numpy(), w0 - lr * grad_w, rtol=0, atol=1e-6)
    np.testing.assert_allclose(state["0.bias"].numpy(), b0 - lr * grad_b, rtol=0, atol=1e-6)
