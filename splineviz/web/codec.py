"""JSON-able encodings of torch objects, so that session state can live in the browser.

Weights (and optimizer moments) travel between the browser's dcc.Store and background jobs that may
run on other machines. They are torch.save'd and base64-encoded, and read back with
``weights_only=True`` after their size, and the size they unpack to, are checked: a tampered store can
neither execute code on the server nor make it allocate more than ``max_bytes``.
"""
from __future__ import annotations

import base64
import binascii
import io
import math
from typing import Any

import torch

from splineviz.nets import ModelLoadError, check_saved_size


class BlobError(ModelLoadError):
    """Text from the browser that is not a blob this app wrote, or is too large to read."""


def encode_blob(obj: Any) -> str:
    """Tensors / dicts / lists / numbers -> base64 text."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_blob(text: Any, max_bytes: int) -> Any:
    """Inverse of encode_blob, for at most ``max_bytes`` packed and unpacked; refuses anything but plain data."""
    if not isinstance(text, str):
        raise BlobError(f"expected encoded weights, got {type(text).__name__}")
    if len(text) > 4 * math.ceil(max_bytes / 3):
        raise BlobError(f"encoded weights of {len(text):,} characters are over the limit of {max_bytes:,} bytes")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise BlobError(f"encoded weights are not base64 ({e})") from e
    try:
        check_saved_size(raw, max_bytes, "encoded weights")
    except ModelLoadError as e:
        raise BlobError(str(e)) from e
    try:
        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for foreign data; refuse them all alike
        raise BlobError(f"encoded weights cannot be read ({type(e).__name__})") from e
