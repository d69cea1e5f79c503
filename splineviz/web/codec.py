"""JSON-able encodings of torch objects, so that session state can live in the browser.

Weights (and optimizer moments) travel between the browser's dcc.Store and background jobs that may
run on other machines. They are torch.save'd and base64-encoded, and read back with
``weights_only=True``, so a tampered store can never execute code on the server.
"""
from __future__ import annotations

import base64
import io
from typing import Any

import torch


def encode_blob(obj: Any) -> str:
    """Tensors / dicts / lists / numbers -> base64 text."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_blob(text: str) -> Any:
    """Inverse of encode_blob; refuses anything but plain data (weights_only=True)."""
    return torch.load(io.BytesIO(base64.b64decode(text)), map_location="cpu", weights_only=True)
