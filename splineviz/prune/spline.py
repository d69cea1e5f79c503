"""Spline pruning: merge units whose input-space boundaries are redundant, keeping the function they compute.

The paper ("Max-Affine Spline Insights Into Deep Network Pruning") prunes units whose partition boundaries nearly
coincide with another unit's: such a boundary subdivides nothing new. Its exact formula was not recoverable, so this
is ours, made precise.

**Similarity.** For two units i, j of one hidden layer, with pre-activations z_i, z_j (what enters the ReLU) at the
N probe points (conv channels: at every probe point and position),

    S(i, j) = <z_i, z_j> / (|z_i| |z_j|)        (cosine; in [-1, 1], S(i, i) = 1; 0 if either is all zero)

S = 1 exactly when z_j = c z_i with c > 0 on the probe. For first-layer units and a probe that spans the input
(a grid), that means the same line *and* the same side active: the boundaries coincide. S = -1 is the same line
with the sides swapped: relu(z) and relu(-z) draw one boundary but are different functions (together they make |z|),
so a flipped pair is never merged. Near 1, S bounds the damage of a merge: with c the least-squares factor,
|relu(z_j) - c relu(z_i)| <= |z_j - c z_i| = sqrt(1 - S^2) |z_j| on the probe (ReLU is 1-Lipschitz).

**Merging** j into k (the kept unit) adds c times j's outgoing weights to k's, c = <z_j, z_k> / |z_k|^2, then cuts
j out. It is exact for ReLU and LeakyReLU when z_j = c z_k (relu(c z) = c relu(z) for c > 0). Of the two units
the one with the smaller contribution |outgoing weights| x |z| is removed (ties: the higher index). A *dead* unit,
whose ReLU output is zero at every probe point (its boundary lies outside the probed region), is removed outright:
on the probe it computes nothing.

**P** is the similarity a pair needs to be a candidate: S >= P (0 < P <= 1; P = 1 merges only exact positive
duplicates). Without P every pair with S > 0 is a candidate.

**Tolerance.** Candidates are tried dead units first, then pairs by decreasing S (ties in layer and index order),
and each merge is kept only if the network's decisions still differ from the original's by at most ``tolerance``
(``DecisionChange``: for 2-D classifiers the exact area of the input box whose class changed, as a fraction of the
box; for other classifiers the fraction of probe points whose class changed; for regression the relative RMS output
change). The change is measured from the original, so the tolerance bounds the total, not each step. Rejected
candidates are reported. ``tolerance=None`` skips the check; the change of the result is then measured once.

**Budget.** With ``sparsity``, merging stops once ``count(sparsity, units)`` units are gone (per layer for
``scope="layerwise"``, over all hidden layers for ``"global"``), counting units already pruned (all-zero rows); it may
stop short when no acceptable candidate is left, and ``report.sparsity`` says what was reached. Every layer keeps
at least one unit. Similarities and fold factors come from the network as given; folds act on the weights as merged.

**Groups** (``report.groups``, ``unit_groups``): units linked by merges (or, for ``unit_groups``, by S >= P) form
single-linkage groups; this is what the paper's Fig. 4 colours.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from splineviz.probe import grid_probe, leaf_modules, preactivations
from splineviz.prune.change import DecisionChange
from splineviz.prune.layers import (PRODUCERS, HiddenLayer, hidden_layers, outgoing_norms, outgoing_slice,
                                    silent_units)
from splineviz.prune.masks import Masks, apply_masks, check_scope, check_sparsity, count, unit_masks

DEFAULT_TOLERANCE = 0.01
_S_SLACK = 1e-9  # cosines of exactly proportional vectors round to 1 - 1e-16


@dataclass(frozen=True)
class Merge:
    """One spline-pruning step: ``removed`` merged into ``kept`` with outgoing weights scaled by ``fold``.

    ``kept`` is None for a dead unit removed outright. ``change`` is the decision change from the original network
    once this merge is made (for a rejected merge: what it would have been).
    """

    layer: int
    removed: int
    kept: int | None
    similarity: float
    fold: float
    change: float


@dataclass
class SplinePruneReport:
    """What spline pruning saw and did, per hidden layer (indices into ``layers``)."""

    layers: list[str]                 # module names of the hidden layers
    similarity: list[np.ndarray]      # (units, units) S per layer
    groups: list[list[list[int]]]     # per layer, groups of >= 2 units linked by merges, kept unit first
    removed: list[list[int]]          # per layer, units this call removed, sorted
    merges: list[Merge]               # accepted, in order
    rejected: list[Merge] = field(default_factory=list)  # refused by the tolerance
    P: float | None = None
    tolerance: float | None = DEFAULT_TOLERANCE
    measure: str | None = None        # DecisionChange measure used ("area", "probe", "rmse")
    sparsity: float = 0.0             # achieved: pruned units (earlier ones included) / hidden units
    change: float = 0.0               # decision change of the result from the original (measured once at the end
                                      # when tolerance is None; each merge's own change is then NaN)


def unit_similarity(z: torch.Tensor) -> np.ndarray:
    """Cosine similarity S between the units of one layer, from pre-activations (n, units, ...).

    Examples
    --------
    >>> z = torch.tensor([[1.0, 2.0, -1.0], [-1.0, -2.0, 1.0], [2.0, 4.0, -2.0]])
    >>> unit_similarity(z).round(6).tolist()   # unit 1 = 2 x unit 0; unit 2 = -unit 0
    [[1.0, 1.0, -1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]]
    """
    v = z.transpose(0, 1).reshape(z.shape[1], -1).double()
    norms = v.norm(dim=1)
    unit = v / torch.where(norms > 0, norms, 1.0)[:, None]
    sim = (unit @ unit.T).clamp(-1.0, 1.0).numpy()
    np.fill_diagonal(sim, 1.0)
    return sim


def unit_groups(similarity: np.ndarray, P: float) -> list[list[int]]:
    """Single-linkage groups of units linked by S >= P, largest first; units linked to nothing are left out.

    Examples
    --------
    >>> s = np.array([[1, .95, .2, 0], [.95, 1, .1, 0], [.2, .1, 1, .92], [0, 0, .92, 1]])
    >>> unit_groups(s, 0.9)
    [[0, 1], [2, 3]]
    """
    n = len(similarity)
    parent = list(range(n))

    def root(u: int) -> int:
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    for i, j in zip(*np.nonzero(np.triu(similarity >= P - _S_SLACK, k=1))):
        parent[root(int(i))] = root(int(j))
    members: dict[int, list[int]] = {}
    for u in range(n):
        members.setdefault(root(u), []).append(u)
    return sorted((g for g in members.values() if len(g) > 1), key=lambda g: (-len(g), g))


def default_probe(model: nn.Module) -> np.ndarray:
    """A 100 x 100 grid over [-3, 3]^2 for 2-input MLPs; other models need an explicit probe."""
    first = next(m for _, m in leaf_modules(model) if isinstance(m, PRODUCERS))
    if not isinstance(first, nn.Linear) or first.in_features != 2:
        raise ValueError("spline pruning needs a probe (inputs of shape (n, ...)) for models without 2-D input")
    return grid_probe((-3.0, 3.0, -3.0, 3.0), 100)


def layer_similarities(model: nn.Module, probe: np.ndarray | torch.Tensor | None = None) -> list[np.ndarray]:
    """S for every hidden layer of ``model`` on ``probe`` (default: ``default_probe``); what Fig. 4 colours by."""
    acts = preactivations(model, default_probe(model) if probe is None else probe)
    return [unit_similarity(acts[layer.act_index]) for layer in hidden_layers(model)]


def spline_prune(model: nn.Module, sparsity: float | None = None, P: float | None = None,
                 probe: np.ndarray | torch.Tensor | None = None, scope: str = "layerwise",
                 tolerance: float | None = DEFAULT_TOLERANCE, bounds: Sequence[float] | None = None,
                 measure: str | None = None) -> tuple[nn.Module, Masks, SplinePruneReport]:
    """Merge units with redundant boundaries while the decisions stay within ``tolerance`` (module docstring).

    Parameters
    ----------
    model : nn.Sequential of Linear/Conv2d (+ BatchNorm) and ReLU/LeakyReLU layers.
    sparsity : stop once this fraction of hidden units is pruned (None: no limit but P).
    P : similarity a pair needs to be merged, in (0, 1] (None: any S > 0).
    probe : inputs the similarities (and the non-area measures) use; default a grid over [-3, 3]^2 for 2-D input.
    scope : "layerwise" or "global" sparsity budget.
    tolerance : largest decision change from the original a merge may leave; None: no check.
    bounds, measure : passed to ``DecisionChange`` (default: exact area over the probe's bounding box for 2-D
        classifiers).

    Returns
    -------
    (pruned copy, masks, SplinePruneReport)

    Examples
    --------
    >>> from splineviz.nets import mlp
    >>> model = mlp(2, (3,), 2, seed=0)
    >>> with torch.no_grad():                       # unit 2 := 3 x unit 0, with small outgoing weights
    ...     _ = model[0].weight[2].copy_(3 * model[0].weight[0]), model[0].bias[2].copy_(3 * model[0].bias[0])
    ...     _ = model[2].weight[:, 2].mul_(0.01)
    >>> pruned, masks, report = spline_prune(model, P=0.99)
    >>> [(m.removed, m.kept, round(m.fold, 6)) for m in report.merges]
    [(2, 0, 3.0)]
    """
    if sparsity is None and P is None:
        raise ValueError("spline_prune needs a target sparsity, a similarity threshold P, or both")
    if sparsity is not None:
        sparsity = check_sparsity(sparsity)
    if P is not None and not 0.0 < P <= 1.0:
        raise ValueError(f"P must be in (0, 1] (a merge needs a positive similarity), got {P!r}")
    if tolerance is not None and not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0 or None, got {tolerance!r}")
    check_scope(scope)
    layers = hidden_layers(model)
    probe = default_probe(model) if probe is None else probe
    acts = preactivations(model, probe)
    z = [acts[layer.act_index].transpose(0, 1).reshape(layer.width, -1).double() for layer in layers]
    sims = [unit_similarity(acts[layer.act_index]) for layer in layers]
    judge = DecisionChange(model, probe, bounds, measure)

    pruned = copy.deepcopy(model).eval()
    silent = [silent_units(model, layer) for layer in layers]
    plan = _Budget(layers, silent, sparsity, scope)
    contribution = [outgoing_norms(model, layer) * zl.norm(dim=1).numpy() for layer, zl in zip(layers, z)]
    merges: list[Merge] = []
    rejected: list[Merge] = []
    change = 0.0
    for s, li, i, j in _candidates(layers, z, sims, silent, P):
        if plan.exhausted():
            break
        if not plan.can_remove(li, i, j):
            continue
        if j < 0:  # dead unit
            drop, keep, fold = i, None, 0.0
        else:
            drop, keep = (i, j) if contribution[li][i] < contribution[li][j] else (j, i)
            fold = float(z[li][drop] @ z[li][keep] / (z[li][keep] @ z[li][keep]))
        saved = _merge(pruned, layers[li], drop, keep, fold)
        candidate_change = judge(pruned) if tolerance is not None else math.nan
        merge = Merge(li, drop, keep, s, fold, candidate_change)
        if tolerance is not None and candidate_change > tolerance:
            _restore(pruned, saved)
            rejected.append(merge)
            continue
        plan.remove(li, drop)
        merges.append(merge)
        change = candidate_change

    removed = [sorted(m.removed for m in merges if m.layer == li) for li in range(len(layers))]
    masks = unit_masks(model, layers, [sorted(set(r) | set(np.flatnonzero(sl).tolist()))
                                       for r, sl in zip(removed, silent)])
    apply_masks(pruned, masks)
    if tolerance is None and merges:  # unchecked merges: measure where they ended up
        change = judge(pruned)
    total = sum(layer.width for layer in layers)
    report = SplinePruneReport([layer.name for layer in layers], sims, _groups(merges, len(layers)), removed, merges,
                               rejected, P, tolerance, judge.measure,
                               (sum(map(len, removed)) + sum(int(sl.sum()) for sl in silent)) / total, change)
    return pruned, masks, report


def _candidates(layers: Sequence[HiddenLayer], z: Sequence[torch.Tensor], sims: Sequence[np.ndarray],
                silent: Sequence[np.ndarray], P: float | None) -> list[tuple[float, int, int, int]]:
    """(similarity, layer, i, j): dead units first (j = -1), then pairs with S >= P (S > 0 without P) by falling S."""
    dead = [(math.nan, li, int(u), -1) for li, (layer, zl) in enumerate(zip(layers, z)) if layer.negative_slope == 0
            for u in np.flatnonzero((zl <= 0).all(dim=1).numpy() & ~silent[li])]
    pairs = []
    for li, s in enumerate(sims):
        i, j = np.triu_indices(len(s), k=1)
        values = s[i, j]
        keep = values >= P - _S_SLACK if P is not None else values > 0
        keep &= ~silent[li][i] & ~silent[li][j]
        pairs += [(float(v), li, int(a), int(b)) for v, a, b in zip(values[keep], i[keep], j[keep])]
    pairs.sort(key=lambda c: (-c[0], c[1], c[2], c[3]))
    return dead + pairs


class _Budget:
    """Which units may still go: alive in their layer, the layer keeps one, the sparsity allows another."""

    def __init__(self, layers: Sequence[HiddenLayer], silent: Sequence[np.ndarray], sparsity: float | None,
                 scope: str) -> None:
        self.alive = [~s for s in silent]
        widths = [layer.width for layer in layers]
        done = [int(s.sum()) for s in silent]
        if sparsity is None:
            self.per_layer = [math.inf] * len(layers)
            self.total: float = math.inf
        elif scope == "layerwise":
            self.per_layer = [max(count(sparsity, w) - d, 0) for w, d in zip(widths, done)]
            self.total = math.inf
        else:
            self.per_layer = [math.inf] * len(layers)
            self.total = max(count(sparsity, sum(widths)) - sum(done), 0)

    def exhausted(self) -> bool:
        return self.total == 0 or all(b == 0 for b in self.per_layer)

    def can_remove(self, layer: int, i: int, j: int) -> bool:
        alive = self.alive[layer]
        both = alive[i] and (j < 0 or alive[j])
        return bool(both and self.per_layer[layer] > 0 and alive.sum() > 1)

    def remove(self, layer: int, unit: int) -> None:
        self.alive[layer][unit] = False
        self.per_layer[layer] -= 1
        self.total -= 1


def _merge(model: nn.Module, layer: HiddenLayer, drop: int, keep: int | None,
           fold: float) -> dict[str, torch.Tensor]:
    """Fold ``drop``'s outgoing weights into ``keep`` and cut ``drop`` out, in place; returns what to restore."""
    names = [f"{layer.consumer}.weight", f"{layer.name}.weight", f"{layer.name}.bias", f"{layer.bn}.weight",
             f"{layer.bn}.bias"]
    params = dict(model.named_parameters())
    saved = {n: params[n].detach().clone() for n in names if n in params}
    w = params[f"{layer.consumer}.weight"]
    with torch.no_grad():
        if keep is not None:
            w[outgoing_slice(model, layer, keep)] += fold * w[outgoing_slice(model, layer, drop)]
    apply_masks(model, {n: m for n, m in unit_masks(model, [layer], [[drop]]).items() if n in saved})
    return saved


def _restore(model: nn.Module, saved: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in saved.items():
            params[name].copy_(value)


def _groups(merges: Sequence[Merge], n_layers: int) -> list[list[list[int]]]:
    """Follow the merges to the surviving unit of each group; kept unit first, the rest sorted."""
    parent: list[dict[int, int]] = [{} for _ in range(n_layers)]
    for m in merges:
        if m.kept is not None:
            parent[m.layer][m.removed] = m.kept
    groups: list[list[list[int]]] = []
    for links in parent:
        members: dict[int, list[int]] = {}
        for unit in links:
            root = unit
            while root in links:
                root = links[root]
            members.setdefault(root, []).append(unit)
        groups.append([[root] + sorted(units) for root, units in sorted(members.items())])
    return groups
