"""The contract in the docstrings: the examples on the core's entry points run, and say what they print.

Also: the numeric core and the frame stay free of torch, Dash and plotly (they must import without them).
"""
from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import pytest

DOCUMENTED = ["splineviz.partition.tracer", "splineviz.partition.result", "splineviz.partition.domain",
              "splineviz.frame"]


@pytest.mark.parametrize("name", DOCUMENTED)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0, f"{name} has no examples"
    assert failed == 0


def test_entry_points_have_examples() -> None:
    from splineviz.frame import Frame
    from splineviz.partition import Partition, Plane, trace
    for obj in (trace, Partition, Plane, Frame):
        assert ">>>" in (obj.__doc__ or ""), f"{obj.__name__} has no runnable example"


@pytest.mark.parametrize("module", ["splineviz.partition", "splineviz.frame"])
def test_core_imports_neither_torch_nor_dash_nor_plotly(module: str) -> None:
    code = (f"import sys, {module}; heavy = sorted(m for m in ('torch', 'dash', 'plotly') if m in sys.modules); "
            "print(heavy); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, f"importing {module} also imported {done.stdout.strip()} {done.stderr[-500:]}"
