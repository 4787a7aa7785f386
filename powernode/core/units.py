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


def parse_units(text: str) -> int:
    """Decimal text such as '1.5' to micro-units, exactly, without floats."""
    s = text.strip()
    neg = s.startswith("-")
    if neg or s.startswith("+"):
        s = s[1:]
    if not _DECIMAL.fullmatch(s):
        raise DecodeError(f"not a decimal amount: {text!r}")
    whole, _, frac = s.partition(".")
    if len(frac) > 6:
        raise DecodeError(f"more than 6 decimal places: {text!r}")
    value = int(whole or "0") * COIN + int((frac + "000000")[:6])
    if neg and value:
        raise DecodeError(f"amount must not be negative: {text!r}")
    return value


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
