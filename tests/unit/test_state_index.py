"""The tip state's namespace index: ``MemoryState`` keeps one dict per
namespace, so a listing reads only its own records. The index must always be
the state: equal to a from-scratch scan of what the store holds, after
blocks, reorgs (disconnect and undo), restarts and a reindex; and the
listings built on it answer exactly as a replay's do."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from powernode.chain.ledger import Ledger
from powernode.core import encoding
from powernode.core.crypto import KeyPair
from powernode.core.tx import Transaction, sign_tx
from powernode.engines.market import queries
from powernode.state.registry import STATE_CODECS
from powernode.state.view import MemoryState
from tests.unit.helpers import (
    ALICE,
    BOB,
    CAROL,
    CHAIN_ID,
    DAVE,
    MINER,
    MINER_B,
    LedgerFactory,
    ledger_factory,
    make_params,
    mine,
    replay,
)
from tests.unit.market_helpers import market_params

T0 = 1_767_268_800  # 2026-01-01 12:00 UTC, inside the default trading hours
SLOT = T0 + 3600
NS = ("acct", "mkt.order", "n1", "n2")

# --- MemoryState against a flat dict ------------------------------------------------

writes = st.lists(
    st.tuples(
        st.sampled_from(NS),
        st.binary(min_size=0, max_size=2),
        st.one_of(st.none(), st.integers(0, 9)),
    ),
    max_size=40,
)


def assert_matches_model(state: MemoryState, model: dict[tuple[str, bytes], Any]) -> None:
    for ns in NS:
        # same records and the same order a flat dict filtered by namespace gives
        want = [(k, v) for (n, k), v in model.items() if n == ns]
        assert list(state.namespace(ns).items()) == want
    assert state.snapshot() == model
    assert len(state) == len(model)
    assert state.namespaces() == sorted({n for n, _ in model})
    for ns, k, _ in [(n, k, None) for n, k in model] + [("nowhere", b"x", None)]:
        assert state.get((ns, k)) == model.get((ns, k))


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(writes, max_size=6))
def test_namespaces_equal_a_flat_dict_after_any_writes(
    batches: list[list[tuple[str, bytes, int | None]]],
) -> None:
    state = MemoryState()
    model: dict[tuple[str, bytes], Any] = {}
    for i, batch in enumerate(batches):
        values = {(ns, k): v for ns, k, v in batch}
        if i % 2:
            state.apply_values(values)
        else:  # the canonical-bytes path (diffs, undo lists, the stored state)
            entries = [
                (ns, k, None if v is None else encoding.encode(v)) for (ns, k), v in values.items()
            ]
            state.apply_entries(entries, dict.fromkeys(NS, int))
        for key, v in values.items():
            if v is None:
                model.pop(key, None)
            else:
                model[key] = v
        assert_matches_model(state, model)
    assert_matches_model(MemoryState(model), model)


def test_a_namespace_is_a_read_only_live_view() -> None:
    state = MemoryState({("acct", b"a"): 1})
    view = state.namespace("acct")
    with pytest.raises(TypeError):
        view[b"b"] = 2  # type: ignore[index]
    state.apply_values({("acct", b"b"): 2, ("acct", b"a"): None})
    assert dict(view) == {b"b": 2}
    empty = state.namespace("never")
    assert dict(empty) == {}
    state.apply_values({("never", b"x"): 3})  # an unwritten namespace's view stays empty
    assert dict(empty) == {} and dict(state.namespace("never")) == {b"x": 3}


# --- the chain's tip state against the store ----------------------------------------


def assert_index_is_the_store(ledger: Ledger) -> None:
    """The namespaces the tip keeps equal a from-scratch scan of the store."""
    scan: dict[str, dict[bytes, Any]] = {}
    for ns, k, raw in ledger.chain.store.iter_state():
        scan.setdefault(ns, {})[k] = STATE_CODECS[ns](encoding.decode(raw))
    state = ledger.chain.state
    assert {ns: dict(state.namespace(ns)) for ns in state.namespaces()} == scan
    assert len(state) == sum(len(recs) for recs in scan.values())
    for ns, recs in scan.items():
        for k, v in recs.items():
            assert state.get((ns, k)) == v


def listings(ledger: Ledger) -> dict[str, Any]:
    s = ledger.chain.state
    return {
        "orders": queries.orders(s),
        "alice": queries.orders(s, owner=ALICE.address),
        "trades": queries.trades(s),
        "stats": queries.stats(s, product="spot"),
        "slots": queries.slot_index(s),
    }


def _tx(k: KeyPair, tx_type: str, payload: list[object], nonce: int) -> Transaction:
    return sign_tx(k, chain_id=CHAIN_ID, tx_type=tx_type, nonce=nonce, fee=10, payload=payload)


# (trader, side, Wh, price): orders that rest, cross and trade
orders = st.lists(
    st.tuples(
        st.integers(0, 1),
        st.sampled_from(("buy", "sell")),
        st.integers(1, 20).map(lambda x: x * 1_000),
        st.integers(45, 55).map(lambda x: x * 10_000),
    ),
    max_size=3,
)


def mine_orders(
    ledger: Ledger, now: int, miner: KeyPair, traders: tuple[KeyPair, ...], specs: list[Any]
) -> None:
    for who, side, wh, price in specs:
        k = traders[who]
        source = "solar" if side == "sell" else "any"
        payload: list[object] = ["spot", side, SLOT, wh, price, source, 0, "GTC"]
        ledger.submit_tx(_tx(k, "order.place", payload, ledger.next_nonce(k.address)), now=now)
    mine(ledger, now, miner)


CROSS = [(0, "sell", 5_000, 450_000), (1, "buy", 3_000, 500_000)]


@settings(max_examples=10, deadline=None)
@example(a_branch=[CROSS], b_branch=[CROSS, [], CROSS, []])  # trades on both branches
@given(
    a_branch=st.lists(orders, min_size=1, max_size=3),
    b_branch=st.lists(orders, min_size=4, max_size=5),
)
def test_index_stays_the_state_through_blocks_reorgs_restarts_and_reindex(
    a_branch: list[Any], b_branch: list[Any]
) -> None:
    params = market_params()  # funds ALICE, BOB, CAROL and DAVE
    with ledger_factory() as factory:
        a = factory.open(params)
        b = factory.open(params)
        now = T0 + 10
        for k in (ALICE, BOB, CAROL, DAVE):  # prosumers: each may buy and sell
            a.submit_tx(_tx(k, "participant.register", ["prosumer", "zone", 1_000_000], 0), now=now)
        common = mine(a, now)
        b.submit_block(common, now=now, mono=0.0)
        assert_index_is_the_store(a)
        crossed = CROSS in b_branch

        a_time = b_time = now
        for specs in a_branch:  # A's branch: ALICE and BOB trade
            a_time += 5
            mine_orders(a, a_time, MINER, (ALICE, BOB), specs)
            assert_index_is_the_store(a)
        b_blocks = []
        for specs in b_branch:  # B's longer branch: CAROL and DAVE trade
            b_time += 5
            mine_orders(b, b_time, MINER_B, (CAROL, DAVE), specs)
            b_blocks.append(b.chain.get_block(b.chain.tip.hash))

        for blk in b_blocks:  # A disconnects its branch (undo) and connects B's
            a.submit_block(blk, now=max(a_time, b_time), mono=0.0)
            assert_index_is_the_store(a)
        assert a.chain.tip.hash == b.chain.tip.hash
        assert a.chain.state.snapshot() == b.chain.state.snapshot()
        fresh = replay(factory, params, [common, *b_blocks], max(a_time, b_time))
        assert listings(a) == listings(fresh) == listings(b)
        assert bool(listings(a)["trades"]) or not crossed

        path = a.chain.store.path
        a.chain.store.close()
        again = factory.open(params, path=path)  # a restart loads the stored state
        assert_index_is_the_store(again)
        assert listings(again) == listings(fresh)
        again.chain.reset_for_reindex()  # a reindex re-applies the chain from genesis
        again.chain.store.close()
        rebuilt = factory.open(params, path=path)
        assert rebuilt.chain.tip.hash == fresh.chain.tip.hash
        assert_index_is_the_store(rebuilt)
        assert listings(rebuilt) == listings(fresh)


def test_the_check_sees_a_namespace_out_of_step(factory: LedgerFactory) -> None:
    ledger = factory.open(make_params(timestamp=T0))
    assert_index_is_the_store(ledger)
    ledger.chain.state.apply_values({("acct", ALICE.address): None})  # not in the store
    with pytest.raises(AssertionError):
        assert_index_is_the_store(ledger)
