"""Grey-scale images as PNG data URIs (MNIST thumbnails) without an imaging library."""
from __future__ import annotations

import base64
import struct
import zlib

import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(image: np.ndarray, scale: int = 2) -> bytes:
    """An (h, w) array in [0, 1] (1 = ink) -> 8-bit grey PNG, dark ink on white, upscaled by ``scale``."""
    pixels = (255 * (1 - np.clip(np.asarray(image, dtype=np.float64), 0, 1))).astype(np.uint8)
    pixels = np.kron(pixels, np.ones((scale, scale), dtype=np.uint8))
    h, w = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(h))  # filter type 0 per row
    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def png_data_uri(image: np.ndarray, scale: int = 2) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image, scale)).decode("ascii")
