"""Documentation that runs: README code blocks, the docstrings' examples (doctests), the API reference build."""
from __future__ import annotations

import doctest
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = re.compile(r"<!-- readme-test: skip (?P<reason>.+?) -->\s*$")
DOCTESTED = ("splineviz", "splineviz.nets", "splineviz.plot", "splineviz.svg", "splineviz.partition.interval")


def readme_blocks() -> list[tuple[int, str, str | None]]:
    """(line, code, skip reason) of every ```python block in README.md."""
    lines = (ROOT / "README.md").read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            skip = SKIP.match(lines[i - 1].strip()) if i else None
            end = lines.index("```", i + 1)
            blocks.append((i + 1, "\n".join(lines[i + 1:end]), skip["reason"] if skip else None))
            i = end
        i += 1
    return blocks


def test_readme_python_blocks_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks may write files (training.html)
    blocks = readme_blocks()
    assert len(blocks) >= 4
    namespace: dict = {"__name__": "__readme__"}
    for line, code, skip in blocks:
        if skip is None:
            exec(compile(code, f"README.md:{line}", "exec"), namespace)
    assert (tmp_path / "training.html").stat().st_size > 1_000_000


def test_skip_marker_is_recognised():
    assert SKIP.match("<!-- readme-test: skip needs the full MNIST IDX files -->")["reason"] == \
        "needs the full MNIST IDX files"


@pytest.mark.parametrize("name", DOCTESTED)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_api_reference_builds(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "build_api.py"), str(tmp_path)], capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    top = (tmp_path / "splineviz.html").read_text()
    assert "input_shape" in top and "IntervalPartition" in top
    assert "knots" in (tmp_path / "splineviz" / "partition" / "interval.html").read_text()
    assert (tmp_path / "splineviz" / "cli.html").exists() and (tmp_path / "splineviz" / "plot.html").exists()
