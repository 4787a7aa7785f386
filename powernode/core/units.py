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
    allowed), and for more than ``places`` decimals once trailing zeros are
    dropped: '1.5000' fits 3 places, '0.0001' does not; never a rounding."""
    s = text.strip()
    negative = s.startswith("-")
    digits = s[1:] if s[:1] in ("+", "-") else s
    if not _DECIMAL.fullmatch(digits):
        raise DecodeError(f"{what}: not a non-negative decimal number: {text!r}")
    whole, _, frac = digits.partition(".")
    frac = frac.rstrip("0")
    if len(frac) > places:
        raise DecodeError(f"{what}: at most {places} decimal places: {text!r}")
    value = int(whole or "0") * 10**places + int(frac.ljust(places, "0") or "0")
    if negative and value:
        raise DecodeError(f"{what}: not a non-negative decimal number: {text!r}")
    return value


def parse_units(text: str, what: str = "amount") -> int:
    """Money as decimal units ('1.5') to micro-units (1500000)."""
    return parse_decimal(text, 6, what)


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
