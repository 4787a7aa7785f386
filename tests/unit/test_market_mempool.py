"""Market txs in the mempool: admission judges what it can, and the miner
leaves out (and drops) orders that became invalid while they waited."""

from __future__ import annotations

from pathlib import Path

import pytest

from powernode.core.crypto import KeyPair
from powernode.core.errors import GateClosed, NotRegistered
from powernode.core.tx import Transaction, sign_tx
from powernode.engines.market import queries
from tests.unit.helpers import ALICE, CHAIN_ID, LedgerFactory, make_params, mine

T0 = 1_767_268_800  # 2026-01-01 12:00 UTC
SLOT = T0 + 1800


def _tx(k: KeyPair, tx_type: str, payload: list[object], nonce: int) -> Transaction:
    return sign_tx(k, chain_id=CHAIN_ID, tx_type=tx_type, nonce=nonce, fee=10, payload=payload)


def _sell(nonce: int) -> Transaction:
    return _tx(
        ALICE, "order.place", ["spot", "sell", SLOT, 10_000, 500_000, "wind", 0, "GTC"], nonce
    )


def test_order_behind_a_pending_registration_is_admitted(tmp_path: Path) -> None:
    ledger = LedgerFactory(tmp_path).open(make_params(timestamp=T0))
    with pytest.raises(NotRegistered):  # nothing pending: judged at once
        ledger.submit_tx(_sell(0), now=T0 + 10)
    ledger.submit_tx(
        _tx(ALICE, "participant.register", ["producer", "Oslo", 100_000], 0), now=T0 + 10
    )
    ledger.submit_tx(_sell(1), now=T0 + 10)  # behind the registration: the block decides
    block = mine(ledger, T0 + 10)
    assert len(block.txs) == 2
    assert queries.book(ledger.chain.state, "spot", SLOT)["asks"] == [
        {"price": 500_000, "energy": 10_000, "orders": 1}
    ]


def test_order_whose_gate_closed_in_the_pool_is_dropped_not_mined(tmp_path: Path) -> None:
    ledger = LedgerFactory(tmp_path).open(make_params(timestamp=T0))
    ledger.submit_tx(
        _tx(ALICE, "participant.register", ["producer", "Oslo", 100_000], 0), now=T0 + 10
    )
    mine(ledger, T0 + 10)
    sell = _sell(1)
    ledger.submit_tx(sell, now=T0 + 20)
    later = SLOT - 300  # the gate closure of SLOT
    block = mine(ledger, later)
    assert sell.txid not in {tx.txid for tx in block.txs}
    assert sell.txid not in ledger.mempool.by_id
    status = ledger.tx_status(sell.txid)
    assert status["status"] == "dropped" and status["error"]["code"] == "gate_closed"
    with pytest.raises(GateClosed):
        ledger.submit_tx(sell, now=later)
