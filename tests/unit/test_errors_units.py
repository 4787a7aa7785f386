"""The typed error tree and the integer unit helpers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powernode.core import errors
from powernode.core.errors import (
    BadAmount,
    DecodeError,
    FloatNotAllowed,
    InvalidBlock,
    InvalidTransaction,
    PowernodeError,
    all_codes,
)
from powernode.core.units import (
    COIN,
    MAX_DIGITS,
    MAX_MONEY,
    U63,
    as_amount,
    format_units,
    parse_decimal,
    parse_units,
    parse_whole,
)

# --- errors ------------------------------------------------------------------------


def _all_classes() -> list[type[PowernodeError]]:
    out: list[type[PowernodeError]] = []
    stack: list[type[PowernodeError]] = [PowernodeError]
    while stack:
        cls = stack.pop()
        out.append(cls)
        stack.extend(cls.__subclasses__())
    return out


def test_every_error_class_has_its_own_code() -> None:
    classes = [c for c in _all_classes() if c.__module__ == errors.__name__]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)), sorted(codes)
    assert set(all_codes()) >= set(codes)
    for c in classes:
        assert c.code and c.code == c.code.lower() and " " not in c.code


@pytest.mark.parametrize(
    "code",
    [
        "bad_signature",
        "wrong_chain",
        "nonce_too_low",
        "nonce_too_high",
        "insufficient_funds",
        "bad_amount",
        "unknown_tx_type",
        "oversize_tx",
        "malformed",
        "float_not_allowed",
        "oversize",
        "bad_pow",
        "bad_merkle_root",
        "bad_state_root",
        "time_too_new",
        "time_too_old",
        "bad_target",
        "bad_height",
        "duplicate_tx",
        "oversize_block",
        "bad_tx_in_block",
        "already_known",
        "replacement_underpriced",
        "mempool_full",
        "fee_too_low",
        "bad_payload",
        "bad_genesis",
        "not_found",
    ],
)
def test_public_codes_are_stable(code: str) -> None:
    cls = all_codes()[code]
    assert issubclass(cls, PowernodeError)
    assert cls.code == code


def test_tree_shape() -> None:
    codes = all_codes()
    assert issubclass(codes["float_not_allowed"], DecodeError)
    assert issubclass(codes["oversize"], DecodeError)
    for c in ("bad_signature", "nonce_too_low", "insufficient_funds", "bad_amount"):
        assert issubclass(codes[c], InvalidTransaction)
    for c in ("bad_pow", "bad_state_root", "time_too_new", "bad_tx_in_block"):
        assert issubclass(codes[c], InvalidBlock)


def test_message_code_and_to_dict() -> None:
    e = BadAmount("too much")
    assert e.code == "bad_amount" and e.message == "too much" and str(e) == "too much"
    assert e.to_dict() == {"code": "bad_amount", "message": "too much"}
    assert BadAmount().message == "bad_amount"
    overridden = InvalidBlock("inner", code="bad_signature")
    assert overridden.code == "bad_signature"
    assert InvalidBlock.code == "invalid_block"  # the class keeps its own
    assert InvalidBlock().code == "invalid_block"


# --- units -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "micro"),
    [
        ("1.5", 1_500_000),
        ("0", 0),
        ("0.000001", 1),
        ("1", COIN),
        (".5", 500_000),
        ("2.", 2 * COIN),
        (" 3.25 ", 3_250_000),
        ("+7", 7 * COIN),
        ("-0", 0),
        ("123456789.123456", 123_456_789_123_456),
        ("1.50000000", 1_500_000),  # zeros past the micro-unit change nothing
    ],
)
def test_parse_units(text: str, micro: int) -> None:
    v = parse_units(text)
    assert type(v) is int and v == micro


@pytest.mark.parametrize(
    "text",
    [
        "",
        ".",
        "-1",
        "-0.5",
        "1.0000001",
        "1,5",
        "1e3",
        "abc",
        "1.5.5",
        "0x10",
        "\u0661",
        "1 000",
        "--1",
        "+-1",
    ],
)
def test_parse_units_refuses(text: str) -> None:
    with pytest.raises(DecodeError):
        parse_units(text)


@pytest.mark.parametrize("text", ["1.\u0661", "1.\u00b2"])
def test_parse_units_refuses_non_ascii_fraction(text: str) -> None:
    with pytest.raises(DecodeError):
        parse_units(text)


@pytest.mark.parametrize(
    ("text", "places", "value"),
    [("0.5", 3, 500), ("+2", 0, 2), ("-0.000", 3, 0), ("7.10", 1, 71), (" 12 ", 2, 1200)],
)
def test_parse_decimal(text: str, places: int, value: int) -> None:
    assert parse_decimal(text, places, "x") == value


@pytest.mark.parametrize(
    ("text", "places", "message"),
    [
        ("1,5", 3, "energy: not a non-negative decimal number: '1,5'"),
        ("-0.5", 3, "energy: not a non-negative decimal number: '-0.5'"),
        ("0.0001", 3, "energy: at most 3 decimal places: '0.0001'"),
        ("1.5", 0, "energy: at most 0 decimal places: '1.5'"),
    ],
)
def test_parse_decimal_names_what_it_refuses(text: str, places: int, message: str) -> None:
    with pytest.raises(DecodeError) as exc:
        parse_decimal(text, places, "energy")
    assert str(exc.value) == message


def test_parse_units_is_parse_decimal_at_six_places() -> None:
    assert parse_units("2.25") == parse_decimal("2.25", 6, "amount") == 2_250_000
    with pytest.raises(DecodeError, match=r"^fee: at most 6 decimal places"):
        parse_units("0.0000001", "fee")


def test_parse_decimal_refuses_past_max_digits_without_int_limit() -> None:
    # 5000 digits: int() of it would raise a bare ValueError (Python's
    # 4300-digit limit); the parser says what was refused, clipped.
    assert parse_decimal("9" * MAX_DIGITS, 0, "x") == int("9" * MAX_DIGITS)
    assert parse_decimal("0" * 100 + "1", 0, "x") == 1  # leading zeros are not digits that count
    # ... nor past int()'s limit: 5000 zeros then a digit is that digit
    assert parse_decimal("0" * 5000 + "7.5", 1, "x") == 75
    assert parse_whole("0" * 5000 + "7", "n") == 7
    with pytest.raises(DecodeError, match=r"^price: too large: '9{40}\.\.\.'$"):
        parse_decimal("9" * 5000, 6, "price")


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("65535", 65535), (" 80 ", 80), ("0080", 80), ("1" * 18, int("1" * 18))],
)
def test_parse_whole(text: str, value: int) -> None:
    assert parse_whole(text, "n", hi=U63) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "+1",
        "-1",
        "1_000",  # int() takes it
        "\u0668\u0660",  # Arabic-Indic 80: int() takes it
        "\uff18\uff10",  # fullwidth 80: int() takes it
        "\u00b2",  # superscript 2: isdigit() says yes, int() refuses
        "1.0",
        "1e3",
        "0x10",
        "eighty",
        "1 000",
    ],
)
def test_parse_whole_takes_ascii_digits_only(text: str) -> None:
    with pytest.raises(
        DecodeError, match=r"^port: expected a whole number 1\.\.65535 in digits 0-9"
    ):
        parse_whole(text, "port", lo=1, hi=65535)


@pytest.mark.parametrize("text", ["0", "65536", "9" * 5000])
def test_parse_whole_range(text: str) -> None:
    with pytest.raises(DecodeError, match=r"^port: 9*[0-9.]* is outside 1\.\.65535$"):
        parse_whole(text, "port", lo=1, hi=65535)


@pytest.mark.parametrize(
    ("micro", "text"),
    [(0, "0.000000"), (1, "0.000001"), (1_500_000, "1.500000"), (-1_500_000, "-1.500000")],
)
def test_format_units(micro: int, text: str) -> None:
    assert format_units(micro) == text


@settings(max_examples=200, deadline=None)
@given(st.integers(0, MAX_MONEY))
def test_format_parse_round_trip(micro: int) -> None:
    assert parse_units(format_units(micro)) == micro


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10**12), st.text(alphabet="0123456789", min_size=0, max_size=6))
def test_parse_units_matches_decimal_arithmetic(whole: int, frac: str) -> None:
    from decimal import Decimal

    text = f"{whole}.{frac}"
    assert parse_units(text) == int(Decimal(text) * COIN)


def test_as_amount() -> None:
    assert as_amount(0, "a") == 0
    assert as_amount(MAX_MONEY, "a") == MAX_MONEY
    with pytest.raises(BadAmount):
        as_amount(-1, "a")
    with pytest.raises(BadAmount):
        as_amount(MAX_MONEY + 1, "a")
    for bad in ("5", b"5", None, True, [5]):
        with pytest.raises(BadAmount):
            as_amount(bad, "a")
    with pytest.raises(FloatNotAllowed) as ei:
        as_amount(1.0, "a")
    assert ei.value.code == "float_not_allowed"
