"""Canonical msgpack: the only way consensus objects become bytes.

Canonical form is what ``msgpack.packb(obj, use_bin_type=True)`` writes for a
tree of ``int | bytes | str | bool | None | list``: smallest integer widths,
bin for bytes, str for text, arrays only. Maps are refused because their key
order is a second way to write the same value. ``decode`` re-encodes what it
read and compares, so a non-minimal or otherwise alternative encoding of the
same value is rejected rather than given a second hash.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack

from powernode.core.errors import DecodeError, FloatNotAllowed, Oversize

Value = int | bytes | str | bool | None | list["Value"]

MAX_DEPTH = 16
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1

# ``msgpack.packb`` builds a Packer per call, which costs twice the packing of
# a small tree; every tx decode re-encodes once. A Packer keeps state between
# calls, so each thread (event loop, miner, tests' threads) gets its own.
_local = threading.local()


def _pack(obj: Any) -> bytes:
    packer: msgpack.Packer | None = getattr(_local, "packer", None)
    if packer is None:
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    return packer.pack(obj)


def _check(obj: Any, depth: int) -> None:
    t = type(obj)
    if t is int:
        if not _INT_MIN <= obj <= _INT_MAX:
            raise DecodeError(f"integer out of 64-bit range: {obj}")
        return
    if t is bytes or t is str or t is bool or obj is None:
        return
    if t is list or t is tuple:
        if depth >= MAX_DEPTH:
            raise DecodeError("nesting too deep")
        for item in obj:
            _check(item, depth + 1)
        return
    if t is float:
        raise FloatNotAllowed("floats are not allowed in consensus data")
    raise DecodeError(f"type not allowed in canonical encoding: {t.__name__}")


def check_decoded_list(items: list[Any], depth: int) -> None:
    """``decode``'s type checks for the items of a decoded list at ``depth``:
    msgpack's ints are always in range, so the common leaves need no more
    than a type test. A float anywhere is ``float_not_allowed``, whatever
    else is wrong and wherever it sits (before a too-deep branch, say)."""
    try:
        _check_items(items, depth)
    except DecodeError as exc:
        _float_first(items, exc)
        raise


def _check_items(items: list[Any], depth: int) -> None:
    for item in items:
        t = type(item)
        if t is list:
            if depth + 1 >= MAX_DEPTH:
                raise DecodeError("nesting too deep")
            _check_items(item, depth + 1)
        elif t is not bytes and t is not int and t is not str:
            _check(item, depth + 1)  # floats, empty maps, empty ext: refused


def _float_first(obj: Any, exc: DecodeError) -> None:
    """Raise FloatNotAllowed instead of ``exc`` when ``obj`` holds a float
    anywhere (the error path only: a walk of the whole tree)."""
    if isinstance(exc, FloatNotAllowed):
        return
    stack = [obj]
    while stack:
        o = stack.pop()
        if type(o) is float:
            raise FloatNotAllowed("floats are not allowed in consensus data") from exc
        if type(o) is list or type(o) is tuple:
            stack.extend(o)
        elif type(o) is dict:
            stack.extend(o.keys())
            stack.extend(o.values())


def encode(obj: Any) -> bytes:
    """Canonical bytes of ``obj``; raises a typed error for floats or foreign types."""
    _check(obj, 0)
    try:
        return _pack(obj)
    except UnicodeEncodeError as exc:  # a lone surrogate in a str
        raise DecodeError("string is not valid UTF-8") from exc


def encode_trusted(obj: Any) -> bytes:
    """Encode a tree built by our own code from already-checked fields.

    Skips the type walk, so only call it where every leaf came from a decoded
    and validated object or from integer arithmetic on such values.
    """
    return _pack(obj)


def decode(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Parse canonical bytes into a tree of lists and scalars, or raise DecodeError."""
    if type(raw) is not bytes:
        raise DecodeError("expected bytes")
    if len(raw) > max_bytes:
        raise Oversize(f"{len(raw)} bytes exceeds limit {max_bytes}")
    obj = unpack(raw, max_bytes)
    if type(obj) is list:
        check_decoded_list(obj, 0)
    else:
        try:
            _check(obj, 0)
        except DecodeError as exc:
            _float_first(obj, exc)
            raise
    # check_canonical, inlined: decode runs per p2p frame and state entry.
    if _pack(obj) != raw:
        raise DecodeError("non-canonical encoding")
    return obj


def unpack(raw: bytes, max_bytes: int) -> Any:
    """``decode``'s parse alone, without its type and canonical-form checks:
    for a caller that makes them itself (``check_decoded_list``,
    ``check_canonical``), knowing more about the shape."""
    try:
        return msgpack.unpackb(
            raw,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=max_bytes,
            max_bin_len=max_bytes,
            max_array_len=max_bytes,
            max_map_len=0,
            max_ext_len=0,
        )
    except msgpack.ExtraData as exc:
        raise DecodeError("trailing bytes after value") from exc
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise DecodeError(f"not valid msgpack: {type(exc).__name__}") from exc
    except Exception as exc:  # msgpack raises a few undocumented types on garbage
        raise DecodeError(f"not valid msgpack: {type(exc).__name__}") from exc


def peek_head(raw: bytes, n: int) -> list[Any] | None:
    """The first ``n`` items of the array ``raw`` starts with (fewer if it
    has fewer), read without parsing the rest; None when ``raw`` does not
    start as an array of such items. For a file format that names itself
    (a magic, a version) before its body: the reader can say what the file
    is before it judges the body. Nothing is checked for canonical form."""
    up = msgpack.Unpacker(raw=False, max_buffer_size=len(raw) or 1, max_map_len=0, max_ext_len=0)
    up.feed(raw)
    try:
        size = up.read_array_header()
        return [up.unpack() for _ in range(min(n, size))]
    except Exception:  # anything else: not such a head; decode will say why
        return None


def check_canonical(obj: Any, raw: bytes) -> None:
    """Refuse ``raw`` unless it is the canonical encoding of ``obj`` (what it
    decoded to, type-checked)."""
    # Decoded text came from valid UTF-8, so packing it cannot fail.
    if _pack(obj) != raw:
        raise DecodeError("non-canonical encoding")


# --- field readers: turn a decoded tree into typed fields with typed errors ----


def as_list(obj: Any, n: int | None, what: str) -> list[Any]:
    if type(obj) is not list:
        raise DecodeError(f"{what}: expected array")
    if n is not None and len(obj) != n:
        raise DecodeError(f"{what}: expected {n} fields, got {len(obj)}")
    return obj


def as_uint(obj: Any, what: str, *, max_value: int = _INT_MAX) -> int:
    if type(obj) is not int:
        if type(obj) is float:
            raise FloatNotAllowed(f"{what}: floats are not allowed")
        raise DecodeError(f"{what}: expected integer")
    if obj < 0 or obj > max_value:
        raise DecodeError(f"{what}: {obj} out of range 0..{max_value}")
    return obj


def as_bytes(obj: Any, what: str, *, size: int | None = None, max_size: int | None = None) -> bytes:
    if type(obj) is not bytes:
        raise DecodeError(f"{what}: expected bytes")
    if size is not None and len(obj) != size:
        raise DecodeError(f"{what}: expected {size} bytes, got {len(obj)}")
    if max_size is not None and len(obj) > max_size:
        raise DecodeError(f"{what}: longer than {max_size} bytes")
    return obj


def as_str(obj: Any, what: str, *, max_len: int = 256) -> str:
    if type(obj) is not str:
        raise DecodeError(f"{what}: expected string")
    if len(obj) > max_len:
        raise DecodeError(f"{what}: longer than {max_len} characters")
    return obj
