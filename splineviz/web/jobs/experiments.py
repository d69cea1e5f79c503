"""Experiments work: run a paper experiment and return its figures and tables inline."""
from __future__ import annotations

import base64
import json
import tempfile
import uuid
from pathlib import Path
from typing import Any

from splineviz.web.jobs import Cancel, Progress, quiet


def run_experiment(name: str, quick: bool, progress: Progress = quiet, cancel: Cancel | None = None,
                   root: str | None = None) -> dict[str, Any]:
    """Run a paper experiment into a fresh folder and return its outputs' contents: each figure as plotly JSON (drawn
    interactive on the page) with its PNG (base64), each table as Markdown and CSV, both offered as downloads.

    Returning the files' contents rather than paths lets a Celery worker on another machine serve the page.
    """
    from splineviz.experiments import run

    out_dir = Path(root or tempfile.gettempdir()) / "splineviz-runs" / f"{name}-{uuid.uuid4().hex[:8]}"
    result = run(name, quick=quick, out_dir=out_dir, progress=progress, cancel=cancel)
    files = {p.name: p for p in result.figures + result.tables}
    figures = [{"name": p.stem, "figure": json.loads(p.read_text()),
                "png": _b64(files[p.stem + ".png"]) if p.stem + ".png" in files else None}
               for p in result.figures if p.suffix == ".json"]
    tables = [{"name": p.stem, "markdown": p.read_text(),
               "csv": files[p.stem + ".csv"].read_text() if p.stem + ".csv" in files else None}
              for p in result.tables if p.suffix == ".md"]
    return {"name": name, "quick": quick, "summary": result.summary, "seconds": result.seconds, "figures": figures,
            "tables": tables}


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")
