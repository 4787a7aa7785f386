"""``core.units.parse_decimal`` is the one parser of decimal text typed by a
user (amounts, prices, energy, capacity, ``--wait``): it agrees with the
standard library's ``decimal`` on every input, accepting exactly the texts
that are plain positional decimals in ASCII digits whose value fits the
unit's places, and giving the same integer."""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation, localcontext

from hypothesis import example, given, settings
from hypothesis import strategies as st

from powernode.core.errors import DecodeError
from powernode.core.units import MAX_DIGITS, parse_decimal


def by_decimal(text: str, places: int) -> int | None:
    """The value of ``text`` in 10**-places, by ``decimal``; None where
    parse_decimal must refuse. Decimal reads more than a user's decimal
    (exponents, underscores, NaN and Infinity, other scripts' digits), so
    those are ruled out by name; the arithmetic is all Decimal's."""
    s = text.strip()
    if not s.isascii() or any(c in s for c in "eE_") or s[:1].isalpha():
        return None
    with localcontext(Context(prec=500)):
        try:
            d = Decimal(s)
        except InvalidOperation:
            return None
        if not d.is_finite() or (d < 0):
            return None
        if d != 0 and d.adjusted() + 1 > MAX_DIGITS:
            return None
        scaled = d.scaleb(places)
        if scaled != scaled.to_integral_value():
            return None
        return int(scaled)


def by_parser(text: str, places: int) -> int | None:
    try:
        return parse_decimal(text, places, "x")
    except DecodeError:
        return None


TRICKY = st.text(alphabet=list("0123456789.+-eE_ naNIfy\t\u0663\uff18\u00b2"), max_size=14)
PLAIN = st.from_regex(r"\A[+-]?[0-9]{0,35}(\.[0-9]{0,9})?\Z")


@settings(max_examples=1000, deadline=None)
@given(st.one_of(TRICKY, PLAIN), st.integers(0, 6))
@example("1e3", 3)
@example("NaN", 0)
@example("1_000", 0)
@example("-0", 6)
@example("-0.000", 3)
@example("+.5", 1)
@example("5.", 0)
@example(".", 0)
@example("\u0663", 0)  # ARABIC-INDIC DIGIT THREE
@example("0.1230", 3)
@example("0.1234", 3)
@example("1" * 31, 0)
@example("0" * 40 + "1", 0)
def test_parse_decimal_agrees_with_decimal_on_every_input(text: str, places: int) -> None:
    assert by_parser(text, places) == by_decimal(text, places)
