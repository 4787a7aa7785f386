"""Canonical msgpack: round trips, refusals, and typed errors on any input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from powernode.core import encoding
from powernode.core.block import decode_block, decode_header, make_block, make_header
from powernode.core.errors import (
    DecodeError,
    FloatNotAllowed,
    Oversize,
    PowernodeError,
    all_codes,
)
from powernode.core.merkle import merkle_root
from powernode.core.tx import decode_tx
from tests.unit.helpers import ALICE, BOB, transfer

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1

scalars = st.one_of(
    st.integers(INT_MIN, INT_MAX),
    st.binary(max_size=40),
    st.text(max_size=20),
    st.booleans(),
    st.none(),
)


def trees(depth: int) -> st.SearchStrategy[Any]:
    """Nested lists of scalars, at most ``depth`` lists deep."""
    if depth == 0:
        return scalars
    return st.one_of(scalars, st.lists(trees(depth - 1), max_size=5))


values = trees(5)
FAST = settings(max_examples=150, deadline=None)


def _nest(depth: int) -> list[Any]:
    v: list[Any] = []
    for _ in range(depth - 1):
        v = [v]
    return v


# --- round trips ---------------------------------------------------------------


@FAST
@given(values)
def test_round_trip(v: Any) -> None:
    raw = encoding.encode(v)
    assert encoding.decode(raw) == v
    assert encoding.encode(encoding.decode(raw)) == raw


@FAST
@given(values)
def test_encoding_is_msgpack_canonical_form(v: Any) -> None:
    assert encoding.encode(v) == msgpack.packb(v, use_bin_type=True)


@FAST
@given(values, values)
def test_distinct_values_have_distinct_encodings(a: Any, b: Any) -> None:
    # bool is not int and b"" is not "" in the encoding, so compare by type too
    def key(x: Any) -> Any:
        if isinstance(x, list):
            return ("list", tuple(key(i) for i in x))
        return (type(x).__name__, x)

    if key(a) != key(b):
        assert encoding.encode(a) != encoding.encode(b)
    else:
        assert encoding.encode(a) == encoding.encode(b)


def test_tuple_encodes_as_array() -> None:
    assert encoding.decode(encoding.encode((1, b"x", "y"))) == [1, b"x", "y"]


def test_bytes_and_str_stay_distinct() -> None:
    assert encoding.decode(encoding.encode(b"ab")) == b"ab"
    assert encoding.decode(encoding.encode("ab")) == "ab"
    assert encoding.encode(b"ab") != encoding.encode("ab")


@pytest.mark.parametrize("n", [INT_MIN, -1, 0, 1, 127, 128, 255, 256, 2**32, 2**63, INT_MAX])
def test_integer_bounds_round_trip(n: int) -> None:
    assert encoding.decode(encoding.encode(n)) == n


@pytest.mark.parametrize("n", [INT_MIN - 1, INT_MAX + 1, 2**200])
def test_integer_out_of_range_refused(n: int) -> None:
    with pytest.raises(DecodeError):
        encoding.encode(n)


def test_max_depth_allowed_and_one_more_refused() -> None:
    ok = _nest(encoding.MAX_DEPTH)
    assert encoding.decode(encoding.encode(ok)) == ok
    with pytest.raises(DecodeError):
        encoding.encode(_nest(encoding.MAX_DEPTH + 1))
    too_deep = msgpack.packb(_nest(encoding.MAX_DEPTH + 1))
    with pytest.raises(DecodeError):
        encoding.decode(too_deep)


# --- floats ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "v", [1.5, 0.0, float("nan"), [1, 2.0], [[b"x", [None, -0.5]]], (1, (2, 3.25))]
)
def test_encode_refuses_floats_even_nested(v: Any) -> None:
    with pytest.raises(FloatNotAllowed) as ei:
        encoding.encode(v)
    assert ei.value.code == "float_not_allowed"


@pytest.mark.parametrize("v", [1.5, [1, 2.0], [[b"x", [None, -0.5]]], [0.25, "s"]], ids=repr)
@pytest.mark.parametrize("single", [False, True], ids=["f64", "f32"])
def test_decode_refuses_floats_even_nested(v: Any, single: bool) -> None:
    raw = msgpack.packb(v, use_bin_type=True, use_single_float=single)
    with pytest.raises(FloatNotAllowed) as ei:
        encoding.decode(raw)
    assert ei.value.code == "float_not_allowed"


# --- maps, foreign types, ext ------------------------------------------------------


@pytest.mark.parametrize(
    "v", [{}, {1: 2}, [{"a": 1}], bytearray(b"x"), memoryview(b"x"), object(), {1, 2}, 1j]
)
def test_encode_refuses_foreign_types(v: Any) -> None:
    with pytest.raises(DecodeError) as ei:
        encoding.encode(v)
    assert ei.value.code == "malformed"


@pytest.mark.parametrize(
    "raw",
    [
        b"\x80",  # empty map
        b"\x81\x01\x02",  # {1: 2}
        b"\x91\x81\xa1a\x01",  # [{"a": 1}]
        b"\xde\x00\x00",  # map16 with no entries
        b"\xd4\x01\x00",  # fixext1
        b"\xc7\x00\x05",  # ext8 of length 0
        b"\xd6\xff\x00\x00\x00\x00",  # timestamp ext
    ],
)
def test_decode_refuses_maps_and_ext(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        encoding.decode(raw)


def test_encode_refuses_unencodable_text_with_typed_error() -> None:
    with pytest.raises(DecodeError):
        encoding.encode(["chain", "\ud800"])


# --- non-canonical, oversize, trailing ----------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        (b"\xd1\x00\x01", b"\x01"),  # int16 holding 1
        (b"\xcc\x05", b"\x05"),  # uint8 holding 5
        (b"\xd0\x01", b"\x01"),  # int8 holding positive 1
        (b"\xcd\x00\xff", b"\xcc\xff"),  # uint16 holding 255
        (b"\xd3" + (5).to_bytes(8, "big"), b"\x05"),  # int64 holding 5
        (b"\xd9\x01a", b"\xa1a"),  # str8 for a one-char string
        (b"\xdc\x00\x00", b"\x90"),  # array16 holding nothing
        (b"\xc5\x00\x01x", b"\xc4\x01x"),  # bin16 for one byte
        (b"\x92\xd1\x00\x01\x02", b"\x92\x01\x02"),  # nested non-minimal int
    ],
)
def test_non_canonical_refused(raw: bytes, canonical: bytes) -> None:
    assert msgpack.unpackb(raw, raw=False) == msgpack.unpackb(canonical, raw=False)
    encoding.decode(canonical)
    with pytest.raises(DecodeError) as ei:
        encoding.decode(raw)
    assert "canonical" in ei.value.message


def test_raw_bytes_as_str_refused() -> None:
    # old-style raw (str) type holding invalid UTF-8
    with pytest.raises(DecodeError):
        encoding.decode(b"\xa1\xff")


def test_oversize_refused() -> None:
    raw = encoding.encode([b"x" * 100])
    assert encoding.decode(raw, max_bytes=len(raw)) == [b"x" * 100]
    with pytest.raises(Oversize) as ei:
        encoding.decode(raw, max_bytes=len(raw) - 1)
    assert ei.value.code == "oversize"


@pytest.mark.parametrize("extra", [b"\x00", b"\xc0", b"\x90", b"\x01\x02"])
def test_trailing_bytes_refused(extra: bytes) -> None:
    raw = encoding.encode([1, 2])
    with pytest.raises(DecodeError) as ei:
        encoding.decode(raw + extra)
    assert "trailing" in ei.value.message


@pytest.mark.parametrize("raw", [b"", b"\x92\x01", b"\xc4\x05ab", b"\xc1"])
def test_truncated_or_reserved_refused(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        encoding.decode(raw)


@pytest.mark.parametrize("raw", [bytearray(b"\x01"), memoryview(b"\x01"), "\x01", None])
def test_decode_wants_bytes(raw: Any) -> None:
    with pytest.raises(DecodeError):
        encoding.decode(raw)


# --- field readers -----------------------------------------------------------------


def test_field_readers() -> None:
    assert encoding.as_uint(5, "n") == 5
    for bad in (-1, True, "5", None, 2**64):
        with pytest.raises(DecodeError):
            encoding.as_uint(bad, "n")
    with pytest.raises(FloatNotAllowed):
        encoding.as_uint(5.0, "n")
    with pytest.raises(DecodeError):
        encoding.as_uint(11, "n", max_value=10)
    assert encoding.as_bytes(b"ab", "b", size=2) == b"ab"
    with pytest.raises(DecodeError):
        encoding.as_bytes(b"abc", "b", size=2)
    with pytest.raises(DecodeError):
        encoding.as_bytes(b"abc", "b", max_size=2)
    with pytest.raises(DecodeError):
        encoding.as_bytes("ab", "b")
    with pytest.raises(DecodeError):
        encoding.as_str("x" * 3, "s", max_len=2)
    with pytest.raises(DecodeError):
        encoding.as_list([1], 2, "l")
    with pytest.raises(DecodeError):
        encoding.as_list((1, 2), 2, "l")


# --- fuzz: every decoder raises only typed errors ------------------------------------

_TX = transfer(ALICE, BOB, 1_000, nonce=0)
_CODES = all_codes()


def _block_raw() -> bytes:
    """A well-formed block with one tx (not valid on any chain, just decodable)."""
    h = make_header(
        1,
        1,
        b"\x11" * 32,
        1005,
        b"\xff" * 32,
        0,
        merkle_root([_TX.txid]),
        b"\x22" * 32,
        b"\x33" * 20,
    )
    return make_block(h, [_TX]).raw


_BLOCK = _block_raw()
_HEADER = decode_block(_BLOCK).header.encode()
DECODERS: dict[str, Callable[[bytes], object]] = {
    "decode": encoding.decode,
    "decode_tx": decode_tx,
    "decode_block": decode_block,
    "decode_header": decode_header,
}


def _feed_all(raw: bytes) -> None:
    for name, fn in DECODERS.items():
        try:
            fn(raw)
        except PowernodeError as exc:
            assert exc.code, name
            assert exc.code in _CODES, (name, exc.code)
            assert exc.message, name
        # anything else propagates and fails the test


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
@example(b"")
@example(b"\x91" * 5000)
@example(b"\xdd\xff\xff\xff\xff")
@example(b"\xc6\xff\xff\xff\xff")
@example(b"\x97" + b"\xc0" * 7)
def test_random_bytes_raise_only_typed_errors(raw: bytes) -> None:
    _feed_all(raw)


@settings(max_examples=150, deadline=None)
@given(values)
def test_random_canonical_trees_raise_only_typed_errors(v: Any) -> None:
    _feed_all(encoding.encode(v))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([_TX.raw, _BLOCK, _HEADER]),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    st.sampled_from(["flip", "insert", "delete", "truncate"]),
)
def test_mutated_valid_bytes_raise_only_typed_errors(
    base: bytes, edits: list[tuple[int, int]], how: str
) -> None:
    raw = bytearray(base)
    for pos, val in edits:
        i = pos % (len(raw) + 1)
        if how == "flip" and i < len(raw):
            raw[i] ^= val or 1
        elif how == "insert":
            raw.insert(i, val)
        elif how == "delete" and i < len(raw):
            del raw[i]
        elif how == "truncate":
            del raw[i:]
    _feed_all(bytes(raw))


def test_decoders_accept_their_valid_inputs() -> None:
    assert decode_tx(_TX.raw) == _TX
    assert decode_block(_BLOCK).raw == _BLOCK
    assert decode_header(_HEADER).encode() == _HEADER
