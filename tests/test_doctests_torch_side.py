"""The Examples sections of the torch-side entry points (pruning, schedules, early-bird, training) run as tests."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import torch

import splineviz.prune

MODULES = ["splineviz.probe", "splineviz.earlybird", "splineviz.train",
           *(f"splineviz.prune.{m.name}" for m in pkgutil.iter_modules(splineviz.prune.__path__))]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    torch.set_num_threads(1)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
