"""Build the API reference (HTML) from the docstrings with pdoc: ``python docs/build_api.py [OUT_DIR]``.

The reference is built on demand, not stored: OUT_DIR defaults to docs/api/, which git ignores. The web app
(splineviz.web) and the experiment commands are left out: they are programs, not a library interface.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pdoc
import pdoc.render

MODULES = ("splineviz", "splineviz.partition", "splineviz.partition.interval", "splineviz.partition.ops",
           "splineviz.partition.domain", "splineviz.nets", "splineviz.plot", "splineviz.svg", "splineviz.cli",
           "splineviz.slices", "splineviz.data", "splineviz.train", "splineviz.prune", "splineviz.earlybird")


def build(out: Path) -> None:
    pdoc.render.configure(docformat="numpy", search=True)
    pdoc.pdoc(*MODULES, output_directory=out)


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))  # document this checkout, wherever it is run from
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "docs" / "api"
    build(target)
    print(f"API reference written to {target / 'index.html'}")
