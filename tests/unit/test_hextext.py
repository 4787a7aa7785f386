"""``from_hex``: hex digits and nothing else, where ``bytes.fromhex`` would
skip whitespace between bytes."""

from __future__ import annotations

import pytest

from powernode.core.hextext import from_hex


def test_hex_digits_of_either_case_are_their_bytes() -> None:
    assert from_hex("") == b""
    assert from_hex("00ffAb") == b"\x00\xff\xab"


def test_spaces_between_bytes_are_refused_where_fromhex_takes_them() -> None:
    assert bytes.fromhex("ab cd") == b"\xab\xcd"
    with pytest.raises(ValueError):
        from_hex("ab cd")


@pytest.mark.parametrize(
    "text", [" abcd", "abcd\n", "abc", "0xabcd", "zz", "ab\tcd", "\uff10\uff10"]
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        from_hex(text)
