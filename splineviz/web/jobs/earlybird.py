"""Early-bird work: train the shared model's architecture from scratch and find the early-bird ticket."""
from __future__ import annotations

from typing import Any

from splineviz.earlybird import detect_ticket, distance_matrix, distances_to_previous, grid_probe
from splineviz.train import fit
from splineviz.web.jobs import Cancel, Progress, quiet
from splineviz.web.state import Run, build, config_dataset, train_config
from splineviz.web.tracing import trace_frame

WINDOW = 3


def earlybird(run: Run, epochs: int, threshold: float, progress: Progress = quiet,
              cancel: Cancel | None = None) -> dict[str, Any]:
    """Train ``run``'s architecture and data from scratch, compare all epochs' activation patterns on a grid,
    and find the early-bird ticket: the partitions at the ticket and at the end, and the distance matrix."""
    data = config_dataset(run.config)
    model = build(run.arch)
    result = fit(model, data, train_config(run.config, epochs), progress=lambda f, m: progress(0.6 * f, m),
                 cancel=cancel)
    states = [s.state for s in result.snapshots]
    progress(0.6, "comparing activation patterns")
    matrix = distance_matrix(states, lambda: build(run.arch), grid_probe(data.bounds, 100))
    to_previous = [float(d.max()) if len(d) else 0.0 for d in distances_to_previous(matrix, WINDOW)]
    ticket = detect_ticket(matrix, threshold, WINDOW)
    shown = [ticket, len(states) - 1] if ticket is not None else [len(states) - 1]
    frames = []
    for i, e in enumerate(shown):
        progress(0.8 + 0.2 * i / len(shown), f"tracing epoch {e}")
        model.load_state_dict(states[e])
        frames.append(trace_frame(model.eval(), data.bounds, cancel=cancel, epoch=e))
    return {"matrix": matrix.round(4).tolist(), "epochs": [s.epoch for s in result.snapshots],
            "to_previous": to_previous, "ticket": ticket, "threshold": threshold, "frames": frames,
            "accuracy": [s.test_metric for s in result.snapshots]}
