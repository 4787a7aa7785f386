"""A refused tx's message gives money in units, as a user types it on the
command line (``--amount 7.5``), not in the micro-units of the wire."""

from __future__ import annotations

import pytest

from powernode.core.errors import PowernodeError
from powernode.core.units import COIN, show_units
from tests.unit.helpers import ALICE, DAVE, LedgerFactory, make_params, transfer

T = 1_700_000_100


@pytest.mark.parametrize(
    ("micro", "text"),
    [
        (0, "0 units"),
        (1, "0.000001 units"),
        (500, "0.0005 units"),
        (COIN, "1 units"),
        (7_500_000, "7.5 units"),
        (-1_250_000, "-1.25 units"),
        (10**18, "1000000000000 units"),
    ],
)
def test_show_units(micro: int, text: str) -> None:
    assert show_units(micro) == text


def refusal(factory: LedgerFactory, min_fee: int, amount: int, fee: int) -> PowernodeError:
    ledger = factory.open(make_params(min_fee=min_fee))
    with pytest.raises(PowernodeError) as info:
        ledger.submit_tx(transfer(ALICE, DAVE, amount, nonce=0, fee=fee), now=T)
    return info.value


def test_a_fee_too_low_is_told_in_units(factory: LedgerFactory) -> None:
    err = refusal(factory, 1_000, 1, 500)
    assert err.code == "fee_too_low"
    assert err.message == "fee 0.0005 units below the minimum 0.001 units"


def test_insufficient_funds_is_told_in_units(factory: LedgerFactory) -> None:
    # ALICE holds 100 units (tests/unit/helpers.py).
    err = refusal(factory, 0, 150 * COIN, 2_500)
    assert err.code == "insufficient_funds"
    assert err.message == "balance 100 units < 150.0025 units needed with pending txs"
