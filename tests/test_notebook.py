"""docs/notebook.ipynb runs top to bottom in a fresh kernel (executed here, not just stored)."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def test_example_notebook_runs_and_shows_figures():
    nb = nbformat.read(ROOT / "docs" / "notebook.ipynb", as_version=4)
    NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors
    figures = [cell for cell in code if any("application/vnd.plotly.v1+json" in out.get("data", {})
                                            for out in cell.outputs)]
    assert len(figures) == len(code)  # every code cell ends in a figure
    animated = [out["data"]["application/vnd.plotly.v1+json"] for out in code[1].outputs if "data" in out]
    assert len(animated[0]["frames"]) == 7  # the initial weights and 6 epochs
