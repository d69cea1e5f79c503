"""Exact input-space partitions of piecewise-linear networks on 2D domains (numpy core, no torch)."""
from .domain import Plane, box, convex_domain
from .errors import Cancelled, PartitionBudgetError
from .interval import IntervalPartition, trace_interval
from .ops import Affine, LeakyReLU, MaxPool, ReLU, forward, normalize
from .result import Partition
from .tracer import DEFAULT_BUDGET, trace

__all__ = ["Affine", "Cancelled", "DEFAULT_BUDGET", "IntervalPartition", "LeakyReLU", "MaxPool", "Partition",
           "PartitionBudgetError", "Plane", "ReLU", "box", "convex_domain", "forward", "normalize", "trace",
           "trace_interval"]
