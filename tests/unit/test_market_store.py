"""The market's state survives a restart: books are stored as canonical bytes
and a reopened node rebuilds them exactly, then keeps clearing identically."""

from __future__ import annotations

from pathlib import Path

from powernode.core.crypto import KeyPair
from powernode.core.tx import Transaction, sign_tx
from powernode.engines.accounts import get_account
from powernode.engines.market import queries
from tests.unit.helpers import (
    ALICE,
    BOB,
    CAROL,
    CHAIN_ID,
    LedgerFactory,
    active_blocks,
    make_params,
    mine,
    replay,
)

T0 = 1_767_268_800  # 2026-01-01 12:00 UTC, inside the default trading hours
SLOT = T0 + 3600


def _tx(k: KeyPair, tx_type: str, payload: list[object], nonce: int) -> Transaction:
    return sign_tx(k, chain_id=CHAIN_ID, tx_type=tx_type, nonce=nonce, fee=10, payload=payload)


def _order(
    k: KeyPair, nonce: int, side: str, wh: int, price: int, product: str = "spot"
) -> Transaction:
    source = "solar" if side == "sell" else "any"
    return _tx(k, "order.place", [product, side, SLOT, wh, price, source, 0, "GTC"], nonce)


def test_books_survive_a_restart_and_keep_clearing(tmp_path: Path) -> None:
    factory = LedgerFactory(tmp_path)
    params = make_params(timestamp=T0)
    a = factory.open(params)
    now = T0 + 10
    for tx in (
        _tx(ALICE, "participant.register", ["producer", "Beijing", 1_000_000], 0),
        _tx(BOB, "participant.register", ["consumer", "Shanghai", 500_000], 0),
        _tx(CAROL, "participant.register", ["prosumer", "Shenzhen", 200_000], 0),
    ):
        a.submit_tx(tx, now=now)
    mine(a, now)
    for tx in (
        _order(ALICE, 1, "sell", 100_000, 500_000),
        _order(CAROL, 1, "sell", 20_000, 520_000),
        _order(ALICE, 2, "sell", 10_000, 400_000, product="reserve"),
        _order(CAROL, 2, "buy", 5_000, 450_000, product="reserve"),
    ):
        a.submit_tx(tx, now=now + 5)
    mine(a, now + 5)
    a.submit_tx(_order(BOB, 1, "buy", 50_000, 600_000), now=now + 10)
    mine(a, now + 10)
    before = a.chain.state.snapshot()
    book_before = queries.book(a.chain.state, "spot", SLOT)
    assert book_before["asks"] == [
        {"price": 500_000, "energy": 50_000, "orders": 1},
        {"price": 520_000, "energy": 20_000, "orders": 1},
    ]

    path = a.chain.store.path
    a.chain.store.close()
    b = factory.open(params, path=path)
    assert b.chain.state.snapshot() == before
    assert queries.book(b.chain.state, "spot", SLOT) == book_before

    # Past the gate: the reserve auction clears at one price, spot orders expire.
    mine(b, SLOT - 300)
    reserve = queries.trades(b.chain.state, product="reserve")
    assert [(t["energy"], t["price"]) for t in reserve] == [(5_000, 425_000)]
    assert queries.escrow_total(b.chain.state) == 0
    assert queries.book(b.chain.state, "spot", SLOT)["asks"] == []
    fresh = replay(factory, params, active_blocks(b), now=SLOT)
    assert fresh.chain.state.snapshot() == b.chain.state.snapshot()
    assert get_account(b.chain.state, BOB.address) == get_account(fresh.chain.state, BOB.address)
    factory.close_all()
