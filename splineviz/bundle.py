"""Sessions as files and weights as link text: what "Download session", "Open session" and "Copy link" carry.

A bundle is a zip holding ``bundle.json`` (a schema version and the caller's JSON config) and one safetensors file
per saved state: ``states/0000.safetensors``, ... (e.g. one per epoch) and ``extra/NAME/0000.safetensors`` for
other named series (a pruned run, a ticket). Files come from strangers, so ``load_bundle`` checks the zip's declared
sizes and member count before unpacking anything, reads each member only up to its declared size, and refuses
anything it did not write. safetensors holds tensors only: opening a bundle runs no code.

``encode_state`` packs one small state into URL-safe text (float16 or float32, zlib, base64url) for links that carry
their weights; ``decode_state`` bounds what it inflates.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from splineviz.nets import ModelLoadError, ModelTooLargeError, zip_members

SCHEMA = 1
CONFIG_NAME = "bundle.json"
State = dict[str, torch.Tensor]
_SERIES = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_STATE_PREFIXES = {"float16": "h", "float32": "f"}  # the first character of encoded text names its float type


class BundleError(ModelLoadError):
    """A session file or link text that this module did not write, or that is over the caller's limits."""


class BundleTooLargeError(BundleError, ModelTooLargeError):
    """A session file or link text over ``BundleLimits``."""


@dataclass(frozen=True)
class BundleLimits:
    """The most a caller agrees to unpack from a stranger's session file or link."""

    max_bytes: int = 64 * 2**20  # the file, and the sum of what its members declare to unpack to
    max_members: int = 2048
    max_state_chars: int = 3000  # encoded state text; links stay under servers' request-line limits (gunicorn: 4094)
    max_state_bytes: int = 2**20  # what encoded state text may inflate to


@dataclass
class Bundle:
    """A session read back: the caller's config, its states in order, and named series of states."""

    config: dict
    states: list[State]
    extra: dict[str, list[State]] = field(default_factory=dict)
    schema: int = SCHEMA


def save_bundle(config: Mapping, states: Sequence[Mapping[str, torch.Tensor]],
                extra: Mapping[str, Sequence[Mapping[str, torch.Tensor]]] | None = None) -> bytes:
    """A session file: ``config`` (JSON-able; NaN refused) and every state as float data, zip-compressed.

    Examples
    --------
    >>> import torch
    >>> raw = save_bundle({"dataset": "moons"}, [{"w": torch.zeros(2)}, {"w": torch.ones(2)}])
    >>> b = load_bundle(raw)
    >>> b.config, len(b.states), b.states[1]["w"].tolist()
    ({'dataset': 'moons'}, 2, [1.0, 1.0])
    """
    extra = dict(extra or {})
    bad = [name for name in extra if not isinstance(name, str) or not _SERIES.match(name)]
    if bad:
        raise ValueError(f"series names must be 1-64 letters, digits, '_' or '-': {bad}")
    try:
        text = json.dumps({"schema": SCHEMA, "config": dict(config), "states": len(states),
                           "extra": {name: len(series) for name, series in extra.items()}}, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"the session config is not plain JSON data: {e}") from e
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(CONFIG_NAME, text)
        for folder, series in [("states", states), *((f"extra/{n}", s) for n, s in extra.items())]:
            for i, state in enumerate(series):
                zf.writestr(f"{folder}/{i:04d}.safetensors", _safetensors(state))
    return buffer.getvalue()


def _safetensors(state: Mapping[str, torch.Tensor]) -> bytes:
    return save_safetensors({k: v.detach().cpu().contiguous().clone() for k, v in state.items()})


def load_bundle(raw: bytes, limits: BundleLimits | None = None) -> Bundle:
    """A session file written by ``save_bundle``, checked against ``limits`` before anything is unpacked."""
    limits = limits or BundleLimits()
    if not isinstance(raw, (bytes, bytearray)) or not raw:
        raise BundleError("the session file is empty")
    if len(raw) > limits.max_bytes:
        raise BundleTooLargeError(f"the session file is {len(raw) / 2**20:.1f} MiB, over the limit of "
                                  f"{limits.max_bytes / 2**20:.1f} MiB")
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise BundleError("this is not a splineviz session file (not a zip archive)")
    try:
        members = {m.filename: m for m in zip_members(raw, limits.max_bytes, "the session file", limits.max_members)}
    except BundleError:
        raise
    except ModelTooLargeError as e:
        raise BundleTooLargeError(str(e)) from e
    except ModelLoadError as e:
        raise BundleError(str(e)) from e
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        if CONFIG_NAME not in members:
            raise BundleError(f"this is not a splineviz session file (no {CONFIG_NAME} in it)")
        head = _header(_read(zf, members[CONFIG_NAME]))
        if head["states"] + sum(head["extra"].values()) + 1 != len(members):
            raise BundleError(f"the session file is incomplete or altered ({len(members) - 1} weight files for "
                              f"{head['states'] + sum(head['extra'].values())} states)")
        expected = {f"states/{i:04d}.safetensors" for i in range(head["states"])}
        expected |= {f"extra/{name}/{i:04d}.safetensors" for name, n in head["extra"].items() for i in range(n)}
        missing, unknown = expected - set(members), set(members) - expected - {CONFIG_NAME}
        if missing or unknown:
            listing = ", ".join(sorted(missing)[:3]) or ", ".join(sorted(unknown)[:3])
            raise BundleError(f"the session file is incomplete or altered ({'missing' if missing else 'unexpected'}:"
                              f" {listing})")
        states = [_state(zf, members[f"states/{i:04d}.safetensors"]) for i in range(head["states"])]
        extra = {name: [_state(zf, members[f"extra/{name}/{i:04d}.safetensors"]) for i in range(n)]
                 for name, n in head["extra"].items()}
    for name, series in [("states", states), *extra.items()]:
        _check_alike(name, series)
    return Bundle(head["config"], states, extra, head["schema"])


def _read(zf: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes:
    """A member's bytes, never more than it declares (zipfile also checks its CRC at the end)."""
    if member.flag_bits & 0x1:
        raise BundleError(f"the session file's {member.filename} is encrypted")
    try:
        with zf.open(member) as f:
            data = f.read(member.file_size + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
        raise BundleError(f"the session file's {member.filename} is damaged ({e})") from e
    if len(data) != member.file_size:
        raise BundleError(f"the session file's {member.filename} is not the size it declares")
    return data


def _header(data: bytes) -> dict:
    try:
        head = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise BundleError(f"the session file's {CONFIG_NAME} is not JSON ({e})") from e
    if not isinstance(head, dict) or not _is_count(head.get("schema")) or not head["schema"]:
        raise BundleError(f"the session file's {CONFIG_NAME} has no schema version")
    if head["schema"] > SCHEMA:
        raise BundleError(f"the session file was written by a newer splineviz (schema {head['schema']}; this one "
                          f"reads up to {SCHEMA})")
    extra = head.setdefault("extra", {})
    counts = [head.get("states"), *extra.values()] if isinstance(extra, dict) else [None]
    if not isinstance(head.get("config"), dict) or not all(_is_count(n) for n in counts) \
            or not all(_SERIES.match(str(name)) for name in extra):
        raise BundleError(f"the session file's {CONFIG_NAME} lacks its config or its counts of states")
    return head


def _is_count(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 0


def _state(zf: zipfile.ZipFile, member: zipfile.ZipInfo) -> State:
    try:
        return load_safetensors(_read(zf, member))
    except BundleError:
        raise
    except Exception as e:  # safetensors raises its own error types for foreign bytes
        raise BundleError(f"the session file's {member.filename} is not readable weights ({type(e).__name__})") from e


def _check_alike(name: str, series: Sequence[State]) -> None:
    """Every state of one series must have the same keys and shapes: they are snapshots of one model."""
    if not series:
        return
    first = {k: tuple(v.shape) for k, v in series[0].items()}
    for i, state in enumerate(series[1:], 1):
        if {k: tuple(v.shape) for k, v in state.items()} != first:
            raise BundleError(f"the session file's {name} state {i} has other weights than state 0")


# ----------------------------------------------------------------------------------------------- link text

def encode_state(state: Mapping[str, torch.Tensor], dtype: str = "float16", max_chars: int = 3000) -> str:
    """URL-safe text for a small state: floats as ``dtype`` ("float16" or "float32"), safetensors, zlib, base64url.

    float32 text decodes to the same numbers; float16 to the nearest float16 (about 3 significant digits), which
    moves a partition's lines slightly. Raises ``BundleTooLargeError`` above ``max_chars``: link a saved session
    instead.

    Examples
    --------
    >>> import torch
    >>> state = {"0.weight": torch.tensor([[0.5, -1.25]])}
    >>> decode_state(encode_state(state))["0.weight"].tolist()
    [[0.5, -1.25]]
    """
    if dtype not in _STATE_PREFIXES:
        raise ValueError(f"dtype must be one of {', '.join(_STATE_PREFIXES)}, got {dtype!r}")
    cast = getattr(torch, dtype)
    packed = _safetensors({k: v.to(cast) if v.is_floating_point() else v for k, v in state.items()})
    text = _STATE_PREFIXES[dtype] + base64.urlsafe_b64encode(zlib.compress(packed, 9)).decode("ascii").rstrip("=")
    if len(text) > max_chars:
        raise BundleTooLargeError(f"these weights take {len(text):,} characters as text, over the limit of "
                                  f"{max_chars:,} for a link; save the session to a file instead")
    return text


def decode_state(text: str, limits: BundleLimits | None = None) -> State:
    """The state ``encode_state`` wrote (floats as float32), refused beyond ``limits`` before it is inflated."""
    limits = limits or BundleLimits()
    if not isinstance(text, str) or len(text) < 2 or text[0] not in _STATE_PREFIXES.values():
        raise BundleError("the link's weights are not weights this app wrote")
    if len(text) > limits.max_state_chars:
        raise BundleTooLargeError(f"the link's weights are {len(text):,} characters, over the limit of "
                                  f"{limits.max_state_chars:,}")
    try:
        packed = base64.b64decode(text[1:] + "=" * (-len(text[1:]) % 4), altchars=b"-_", validate=True)
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, limits.max_state_bytes)
    except (binascii.Error, ValueError, zlib.error) as e:
        raise BundleError(f"the link's weights are damaged ({type(e).__name__})") from e
    if inflater.unconsumed_tail:
        raise BundleTooLargeError(f"the link's weights unpack to more than {limits.max_state_bytes:,} bytes")
    if not inflater.eof:
        raise BundleError("the link's weights are cut short")
    try:
        state = load_safetensors(raw)
    except Exception as e:  # safetensors raises its own error types for foreign bytes
        raise BundleError(f"the link's weights are not readable ({type(e).__name__})") from e
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
