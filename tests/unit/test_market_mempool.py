"""Market txs in the mempool: admission judges what it can, and the miner
leaves out (and drops) orders that became invalid while they waited."""

from __future__ import annotations

from pathlib import Path

import pytest

from powernode.core.block import make_block
from powernode.core.crypto import KeyPair
from powernode.core.errors import GateClosed, NotRegistered
from powernode.core.tx import Transaction, sign_tx
from powernode.engines.market import queries
from powernode.state.apply import apply_block
from tests.unit.helpers import (
    ALICE,
    BOB,
    CAROL,
    CHAIN_ID,
    MINER,
    LedgerFactory,
    make_params,
    mine,
    solve,
)
from tests.unit.market_helpers import open_market

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


def test_own_block_of_market_txs_seals_what_executing_it_gives(tmp_path: Path) -> None:
    # Our own block is connected from its template's state (the book values
    # the template's view copied on write), not executed again: the result
    # must be the one executing it gives, undo included.
    m = open_market(LedgerFactory(tmp_path))
    L = m.ledger
    rest = m.place_signed(ALICE, "sell", price=600_000)
    m.submit(rest)
    for tx in (
        m.place_signed(BOB, "buy", price=650_000),  # trades with ``rest``
        m.place_signed(CAROL, "sell", price=700_000),
    ):
        m.submit(tx)
    m.submit(m.place_signed(ALICE, "sell", price=800_000))
    tmpl = L.template(MINER.address, now=m.now + 5)
    assert len(tmpl.txs) == 4
    block = make_block(solve(tmpl.header), tmpl.txs)
    tip = L.chain.tip
    expected = apply_block(L.chain.state, tip.header.state_root, block, L.params)
    before = L.chain.state.snapshot()
    seen = []
    inner = L.chain.prepared
    assert inner is not None
    L.chain.prepared = lambda b, p: seen.append(inner(b, p)) or seen[-1]  # type: ignore[func-returns-value]

    outcome, update = L.submit_block(block, now=m.now + 5, mono=0.0)

    assert outcome == "connected" and seen and seen[0] is update.connected[0][1]
    got = seen[0]
    assert got.state_root == expected.state_root
    assert (got.diff, got.undo, got.receipts) == (expected.diff, expected.undo, expected.receipts)
    assert any(e.get("event") == "trade" for r in got.receipts for e in r.events)
    L.chain._disconnect_tip()
    assert L.chain.state.snapshot() == before
