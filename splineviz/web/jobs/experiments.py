"""Experiments work: run a paper experiment and return its figures and tables inline."""
from __future__ import annotations

import base64
import tempfile
import uuid
from pathlib import Path
from typing import Any

from splineviz.web.jobs import Cancel, Progress, quiet



def run_experiment(name: str, quick: bool, progress: Progress = quiet, cancel: Cancel | None = None,
                   root: str | None = None) -> dict[str, Any]:
    """Run a paper experiment into a fresh folder and return its figures (PNG, inline) and tables (Markdown).

    Returning the files' contents rather than paths lets a Celery worker on another machine serve the page.
    """
    from splineviz.experiments import run

    out_dir = Path(root or tempfile.gettempdir()) / "splineviz-runs" / f"{name}-{uuid.uuid4().hex[:8]}"
    result = run(name, quick=quick, out_dir=out_dir, progress=progress, cancel=cancel)
    figures = [{"name": p.stem, "png": base64.b64encode(p.read_bytes()).decode("ascii")}
               for p in result.figures if p.suffix == ".png"]
    tables = [{"name": p.stem, "markdown": p.read_text()} for p in result.tables if p.suffix == ".md"]
    return {"name": name, "summary": result.summary, "seconds": result.seconds, "figures": figures,
            "tables": tables, "out_dir": str(out_dir)}
