"""Spline Early-Bird tickets in VGG-16 and PreResNet-101 on CIFAR-10 (paper Fig. 8).

Trains each network with the Early-Bird paper's recipe (SGD 0.1, momentum 0.9, wd 1e-4, 160 epochs, lr / 10 at
50 % and 75 %, batch 256, crop + flip) and records, after every epoch, the sign pattern of every ReLU input (BN
outputs) on a fixed probe batch of test images. The spline distance between epochs and the ticket rule are those of
``splineviz.earlybird``; the classic BN-|gamma| mask rule is reported alongside for comparison.

Probe patterns of a deep conv net are large (PreResNet-101: millions of signs per image), so each layer keeps a
fixed random subset of at most ``BITS_PER_LAYER`` (probe image, channel, position) signs, drawn once. The distance is
a fraction, so 8,192 samples estimate it to about +-0.006 (1 sd) — far below the 0.16 ticket threshold.
"""
from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from splineviz.earlybird import bn_mask, bn_mask_distance, detect_ticket, detect_ticket_bn, hamming_fractions
from splineviz.experiments._cifar_models import build
from splineviz.experiments._common import Context

BITS_PER_LAYER = 8192
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
BN_PRUNE_RATIO = 0.5


@dataclass
class Cifar:
    x_train: np.ndarray  # (n, 3, 32, 32) uint8
    y_train: np.ndarray  # (n,) int64
    x_test: np.ndarray
    y_test: np.ndarray


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open("rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return data, np.asarray(batch[b"labels"], dtype=np.int64)


def load_cifar10(directory: str | Path) -> Cifar:
    """Read the python-pickle CIFAR-10 batches from ``directory`` or its ``cifar-10-batches-py`` subfolder."""
    root = Path(directory).expanduser()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for candidate in (root, root / "cifar-10-batches-py"):
        if all((candidate / n).is_file() for n in names):
            train = [_read_batch(candidate / n) for n in names[:-1]]
            x_test, y_test = _read_batch(candidate / "test_batch")
            return Cifar(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), x_test, y_test)
    missing = [n for n in names if not (root / n).is_file()]
    raise FileNotFoundError(f"no CIFAR-10 python batches in {root} (missing {', '.join(missing)}); download "
                            "cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, extract it and "
                            "pass --cifar-dir path/to/cifar-10-batches-py")


class SignRecorder:
    """Forward pre-hooks on every ReLU: a fixed random subset of the signs of its input on the probe batch."""

    def __init__(self, model: nn.Module, seed: int) -> None:
        self._relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
        self._rng = np.random.default_rng(seed)
        self._index: list[torch.Tensor] = []
        self._bits: list[torch.Tensor] = []

    def _hook(self, layer: int):
        def record(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            flat = inputs[0].reshape(-1)
            if len(self._index) <= layer:  # first call: draw this layer's sample once, reuse it every epoch
                k = min(BITS_PER_LAYER, flat.numel())
                self._index.append(torch.as_tensor(self._rng.choice(flat.numel(), k, replace=False),
                                                   device=flat.device))
            self._bits.append((flat[self._index[layer]] > 0).cpu())
        return record

    @torch.no_grad()
    def __call__(self, model: nn.Module, probe: torch.Tensor) -> list[np.ndarray]:
        handles = [m.register_forward_pre_hook(self._hook(i)) for i, m in enumerate(self._relus)]
        was_training = model.training
        model.eval()
        try:
            self._bits = []
            model(probe)
        finally:
            model.train(was_training)
            for h in handles:
                h.remove()
        return [b.numpy() for b in self._bits]


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random 32x32 crop of the 4-pixel zero-padded image and random horizontal flip, per sample."""
    n = len(x)
    padded = nn.functional.pad(x, (4, 4, 4, 4))
    dy, dx = torch.randint(0, 9, (2, n), generator=gen).to(x.device)
    ar = torch.arange(32, device=x.device)
    rows = (dy[:, None] + ar)[:, None, :, None]
    cols = (dx[:, None] + ar)[:, None, None, :]
    flip = (torch.rand(n, generator=gen) < 0.5).to(x.device)
    cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    sample = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(3, device=x.device)[None, :, None, None]
    return padded[sample, channel, rows, cols]


def _normalise(x_uint8: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(CIFAR_MEAN, device=x_uint8.device)[:, None, None]
    std = torch.tensor(CIFAR_STD, device=x_uint8.device)[:, None, None]
    return (x_uint8.float() / 255 - mean) / std


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    model.eval()
    correct = sum(int((model(_normalise(x[i:i + batch])).argmax(1) == y[i:i + batch]).sum())
                  for i in range(0, len(x), batch))
    model.train()
    return correct / len(x)


def train_with_eb(ctx: Context, arch: str, data: Cifar, epochs: int, width: float, batch: int, device: torch.device,
                  n_probe: int, span: tuple[float, float]) -> tuple[list[dict], np.ndarray, int | None]:
    """Train one network; return per-epoch metrics (0 = init), the (E, E) spline distance matrix and its ticket."""
    gen = torch.Generator().manual_seed(ctx.seed)  # batch order and augmentation
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's global RNG
        torch.manual_seed(ctx.seed)
        model = build(arch, width).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [epochs // 2, 3 * epochs // 4], 0.1)
    x_tr, y_tr = torch.as_tensor(data.x_train, device=device), torch.as_tensor(data.y_train, device=device)
    x_te, y_te = torch.as_tensor(data.x_test, device=device), torch.as_tensor(data.y_test, device=device)
    probe = _normalise(x_te[:n_probe])
    recorder = SignRecorder(model, ctx.seed)
    bits = [recorder(model, probe)]
    masks = [bn_mask(model, BN_PRUNE_RATIO)]
    rows = [dict(arch=arch, epoch=0, lr=0.1, train_loss=float("nan"), train_acc=float("nan"),
                 test_acc=_accuracy(model, x_te, y_te, 512), seconds=0.0)]
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = torch.randperm(len(x_tr), generator=gen).to(device)
        total, correct, seen = 0.0, 0, 0
        lr = opt.param_groups[0]["lr"]
        for i in range(0, len(order), batch):
            ctx.check_cancel()
            idx = order[i:i + batch]
            xb, yb = _normalise(_augment(x_tr[idx], gen)), y_tr[idx]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                out = model(xb)
                loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            correct += int((out.argmax(1) == yb).sum())
            seen += len(idx)
        sched.step()
        bits.append(recorder(model, probe))
        masks.append(bn_mask(model, BN_PRUNE_RATIO))
        rows.append(dict(arch=arch, epoch=epoch, lr=lr, train_loss=total / seen, train_acc=correct / seen,
                         test_acc=_accuracy(model, x_te, y_te, 512), seconds=time.perf_counter() - start))
        frac = span[0] + (span[1] - span[0]) * epoch / epochs
        ctx.step(frac, f"{arch} epoch {epoch}/{epochs}: loss {rows[-1]['train_loss']:.3f}, "
                       f"test acc {rows[-1]['test_acc']:.3f}, {rows[-1]['seconds']:.1f} s")
    n_layers = len(bits[0])
    matrix = sum(hamming_fractions(np.stack([b[layer] for b in bits])) for layer in range(n_layers)) / n_layers
    for e, row in enumerate(rows):
        row["spline_dist_prev"] = float(matrix[e, e - 1]) if e else float("nan")
        row["bn_mask_dist_prev"] = bn_mask_distance(masks[e], masks[e - 1]) if e else float("nan")
    spline_eb, bn_eb = detect_ticket(matrix), detect_ticket_bn(masks)
    for row in rows:
        row["spline_eb_epoch"] = -1 if spline_eb is None else spline_eb
        row["bn_eb_epoch"] = -1 if bn_eb is None else bn_eb
    return rows, matrix, spline_eb


def _heatmaps(ctx: Context, matrices: dict[str, np.ndarray], tickets: dict[str, int | None]) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(matrices), subplot_titles=[
        f"{a} (spline EB: {'none' if tickets[a] is None else f'epoch {tickets[a]}'})" for a in matrices])
    for i, (arch, m) in enumerate(matrices.items(), start=1):
        fig.add_trace(go.Heatmap(z=m, colorscale="Viridis", zmin=0, zmax=float(max(x.max() for x in
                                                                                 matrices.values())),
                                 showscale=i == len(matrices)), row=1, col=i)
        fig.update_xaxes(title_text="epoch", row=1, col=i)
        fig.update_yaxes(title_text="epoch", autorange="reversed", row=1, col=i)
    fig.update_layout(title="Spline Early-Bird: sign-pattern distance between epochs (CIFAR-10)")
    ctx.figure(fig, "cifar_eb_heatmap")


def run(ctx: Context) -> None:
    if not ctx.options.get("cifar_dir"):
        raise ValueError("cifar_eb needs a local CIFAR-10 copy: pass --cifar-dir DIR (python batches "
                         "data_batch_1..5 and test_batch)")
    data = load_cifar10(ctx.options["cifar_dir"])
    archs = [a.strip() for a in str(ctx.options["arch"]).split(",") if a.strip()]
    device = torch.device(ctx.options["device"] or ("cuda" if torch.cuda.is_available() else "cpu"))
    if ctx.quick:  # same code path, tiny networks and data: seconds on a CPU
        epochs, width, batch, n_probe = ctx.options["epochs"] or 2, 1 / 16, 64, 16
        data = Cifar(data.x_train[:512], data.y_train[:512], data.x_test[:256], data.y_test[:256])
        archs = ["preresnet11" if a.startswith("preresnet") else a for a in archs]
    else:
        epochs, width, batch, n_probe = ctx.options["epochs"] or 160, 1.0, 256, 100
    ctx.step(0.0, f"CIFAR-10: {len(data.x_train)} train / {len(data.x_test)} test images, {archs} on {device}")
    rows: list[dict] = []
    matrices: dict[str, np.ndarray] = {}
    tickets: dict[str, int | None] = {}
    for i, arch in enumerate(archs):
        arch_rows, matrices[arch], tickets[arch] = train_with_eb(ctx, arch, data, epochs, width, batch, device,
                                                                 n_probe, (i / len(archs), (i + 1) / len(archs)))
        rows += arch_rows
    ctx.table(rows, "cifar_eb")
    _heatmaps(ctx, matrices, tickets)
    ctx.result.summary = "; ".join(
        f"{a}: spline EB ticket {'none' if tickets[a] is None else f'at epoch {tickets[a]}'}, final test acc "
        f"{[r for r in rows if r['arch'] == a][-1]['test_acc']:.3f}" for a in archs)
