"""Pruning seen through the input-space partition: node, weight, random and spline pruning, fine-tuning, schedules.

Every pruning function returns a pruned **copy** and masks ``{parameter name: 0/1 tensor}`` that
``train.fit(masks=...)`` re-applies after each step, so pruned weights stay zero through later training.

* ``node_prune`` removes whole units, smallest incoming weight-row norm first; the unit's line leaves the partition.
* ``weight_prune`` zeroes the weights of smallest magnitude; a first-layer line becomes axis-aligned when it loses an
  input weight.
* ``random_prune`` removes units at random: the baseline.
* ``spline_prune`` merges units whose boundaries are redundant (same line, same side active) into the unit they
  duplicate, folding their outgoing weights in, and keeps a merge only while the decision boundary moves by less
  than a tolerance (``splineviz.prune.spline`` defines the similarity, P and the measure).

Modules: ``layers`` (what can be pruned), ``masks`` (masks, counts, sparsity), one module per method, ``change``
(decision-change measure), ``dispatch`` (by name), ``finetune`` (prune, then train on), ``schedule`` (pruning while
training: one-shot, gradual, early-bird).
"""
from splineviz.prune.change import DecisionChange, changed_area
from splineviz.prune.dispatch import METHODS, UNIT_METHODS, prune
from splineviz.prune.finetune import PruneResult, data_probe, prune_and_finetune, reinitialise
from splineviz.prune.layers import (HiddenLayer, hidden_layers, incoming_norms, outgoing_norms, silent_units,
                                    weight_tensors)
from splineviz.prune.masks import (SCOPES, Masks, achieved_sparsity, apply_masks, count, ones_masks, removed_units,
                                   unit_masks, unit_sparsity, weight_sparsity)
from splineviz.prune.node import node_prune
from splineviz.prune.random_units import random_prune
from splineviz.prune.schedule import (EarlyBirdSchedule, Gradual, OneShot, PruneEvent, ScheduledRun,
                                      train_with_schedule)
from splineviz.prune.spline import (DEFAULT_TOLERANCE, Merge, SplinePruneReport, layer_similarities, spline_prune,
                                    unit_groups, unit_similarity)
from splineviz.prune.weight import weight_prune

__all__ = ["DEFAULT_TOLERANCE", "DecisionChange", "EarlyBirdSchedule", "Gradual", "HiddenLayer", "METHODS", "Masks",
           "Merge", "OneShot", "PruneEvent", "PruneResult", "SCOPES", "ScheduledRun", "SplinePruneReport",
           "UNIT_METHODS", "achieved_sparsity", "apply_masks", "changed_area", "count", "data_probe", "hidden_layers",
           "incoming_norms", "layer_similarities", "node_prune", "ones_masks", "outgoing_norms", "prune",
           "prune_and_finetune", "random_prune", "reinitialise", "removed_units", "silent_units", "spline_prune",
           "train_with_schedule", "unit_groups", "unit_masks", "unit_similarity", "unit_sparsity", "weight_prune",
           "weight_sparsity", "weight_tensors"]
