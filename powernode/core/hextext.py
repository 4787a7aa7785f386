"""Hex text from users (RPC params, CLI arguments, files they write) as
bytes, strictly: ``bytes.fromhex`` alone skips whitespace between bytes, so
``"ab cd"`` would pass for ``"abcd"`` where the docs promise hex digits."""

from __future__ import annotations

import re

# One character class, no group: the match runs in constant memory however
# long the text (a raw block over RPC is megabytes of hex).
_HEX = re.compile(r"[0-9a-fA-F]*")


def is_hex(text: str) -> bool:
    """Whether ``text`` is hex digits and nothing else (any number of them)."""
    return _HEX.fullmatch(text) is not None


def from_hex(text: str) -> bytes:
    """The bytes of ``text``, an even number of hex digits and nothing else
    (no ``0x``, no spaces); ValueError otherwise."""
    if len(text) % 2 or not is_hex(text):
        raise ValueError(f"not an even number of hex digits: {text[:80]!r}")
    return bytes.fromhex(text)
