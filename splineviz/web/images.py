"""Images as PNG data URIs (MNIST thumbnails, unit thumbnails) without an imaging library."""
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
    return _png(pixels, scale)


def _png(pixels: np.ndarray, scale: int) -> bytes:
    """(h, w) grey or (h, w, 3) RGB uint8 pixels -> PNG bytes, each pixel repeated ``scale`` times per side."""
    pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
    h, w = pixels.shape[:2]
    colour = 2 if pixels.ndim == 3 else 0
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(h))  # filter type 0 per row
    header = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def png_data_uri(image: np.ndarray, scale: int = 2) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image, scale)).decode("ascii")


def rgb_data_uri(pixels: np.ndarray, scale: int = 2) -> str:
    """(h, w, 3) uint8 RGB pixels -> PNG data URI."""
    return "data:image/png;base64," + base64.b64encode(_png(np.ascontiguousarray(pixels, np.uint8), scale)).decode()
