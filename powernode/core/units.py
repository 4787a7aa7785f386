"""Units of consensus values. Everything is an integer; these names say which.

Money is in micro-units (1 unit = 1,000,000 micro), energy in Wh, prices in
micro-units per kWh, time in unix seconds.
"""

from __future__ import annotations

import re
from typing import NewType

from powernode.core.errors import BadAmount, DecodeError, FloatNotAllowed

Micro = NewType("Micro", int)
Wh = NewType("Wh", int)

_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_WHOLE = re.compile(r"[0-9]+", re.ASCII)
# Significant digits a typed number may have: far past any 64-bit value (so
# every real mistake gets the range message of the caller), and far below
# Python's 4300-digit limit on int(str), whose ValueError would escape.
MAX_DIGITS = 30
U63 = 2**63 - 1
U64 = 2**64 - 1

COIN = 1_000_000
# A supply cap, as Bitcoin's MAX_MONEY: any amount above it is malformed, which
# keeps every sum of amounts well inside 64 bits.
MAX_MONEY = 10**12 * COIN


def parse_decimal(text: str, places: int, what: str) -> int:
    """Decimal text times 10**places, exactly and without floats: the one
    parser for amounts, prices, energy and capacity typed by a user
    (parse_decimal('0.5', 3, 'energy') == 500). ASCII digits with an optional
    point and an optional leading sign; surrounding whitespace is ignored.
    DecodeError for anything else, for a negative value ('-0' is zero, so
    allowed), for more than MAX_DIGITS whole digits, and for more than
    ``places`` decimals once trailing zeros are dropped: '1.5000' fits 3
    places, '0.0001' does not; never a rounding."""
    s = text.strip()
    negative = s.startswith("-")
    digits = s[1:] if s[:1] in ("+", "-") else s
    if not _DECIMAL.fullmatch(digits):
        raise DecodeError(f"{what}: not a non-negative decimal number: {clip(text)!r}")
    whole, _, frac = digits.partition(".")
    if len(whole.lstrip("0")) > MAX_DIGITS:
        raise DecodeError(f"{what}: too large: {clip(text)!r}")
    frac = frac.rstrip("0")
    if len(frac) > places:
        raise DecodeError(f"{what}: at most {places} decimal places: {clip(text)!r}")
    # Leading zeros stripped: int() refuses texts past 4,300 digits, zeros too.
    value = int(whole.lstrip("0") or "0") * 10**places + int(frac.ljust(places, "0") or "0")
    if negative and value:
        raise DecodeError(f"{what}: not a non-negative decimal number: {clip(text)!r}")
    return value


def parse_whole(text: str, what: str, *, lo: int = 0, hi: int = U63) -> int:
    """A whole number typed by a user (a port, a count, a height, a unix
    time) in ``lo..hi``: ASCII digits 0-9 only, surrounding whitespace
    ignored. DecodeError naming ``what`` for anything else, including what
    Python's own parsing lets through: int() takes a sign, underscores
    ('1_000') and other scripts' digits (Arabic-Indic, fullwidth), and
    str.isdigit() says yes to superscripts, on which int() then fails."""
    s = text.strip()
    if not _WHOLE.fullmatch(s):
        raise DecodeError(
            f"{what}: expected a whole number{_span(lo, hi)} in digits 0-9, not {clip(text)!r}"
        )
    digits = s.lstrip("0") or "0"  # int() refuses texts past 4,300 digits, zeros too
    if len(digits) > MAX_DIGITS or not lo <= int(digits) <= hi:
        raise DecodeError(f"{what}: {clip(s)} is outside {lo}..{hi}")
    return int(digits)


def _span(lo: int, hi: int) -> str:
    return "" if (lo, hi) == (0, U63) else f" {lo}..{hi}"


def clip(text: str, limit: int = 40) -> str:
    """A refused input as an error message quotes it: a pasted megabyte of
    digits is not echoed back whole."""
    return text if len(text) <= limit else text[:limit] + "..."


def parse_units(text: str, what: str = "amount") -> int:
    """Money as decimal units ('1.5') to micro-units (1500000)."""
    return parse_decimal(text, 6, what)


def show_units(micro: int) -> str:
    """Micro-units as a user types them, for messages: '7.0005 units',
    '5 units' (trailing zeros dropped; format_units keeps all 6 places)."""
    sign = "-" if micro < 0 else ""
    q, r = divmod(abs(micro), COIN)
    frac = f"{r:06d}".rstrip("0")
    return f"{sign}{q}{'.' + frac if frac else ''} units"


def format_units(micro: int) -> str:
    sign = "-" if micro < 0 else ""
    q, r = divmod(abs(micro), COIN)
    return f"{sign}{q}.{r:06d}"


def as_amount(obj: object, what: str) -> int:
    """A money field from decoded data: a non-negative int no larger than MAX_MONEY."""
    if type(obj) is float:
        raise FloatNotAllowed(f"{what}: floats are not allowed")
    if type(obj) is not int:
        raise BadAmount(f"{what}: expected an integer amount in micro-units")
    if obj < 0:
        raise BadAmount(f"{what}: must not be negative")
    if obj > MAX_MONEY:
        raise BadAmount(f"{what}: above the supply cap")
    return obj
