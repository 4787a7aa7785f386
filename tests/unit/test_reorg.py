"""Fork choice and reorgs: after any reorg (or restart) the state equals a replay
of the active chain from genesis, and no tx from an undone block is lost."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powernode.chain.ledger import Ledger
from powernode.chain.store import BlockStore
from powernode.core.block import Block
from powernode.core.errors import ParentInvalid
from powernode.core.params import ChainParams
from tests.unit.helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    MINER,
    MINER_B,
    MONO,
    LedgerFactory,
    active_blocks,
    ledger_factory,
    make_params,
    mine,
    rebuild,
    replay,
    template,
    total_supply,
    transfer,
)

T = 1_010
REWARD = 50_000_000


def reopen(factory: LedgerFactory, params: ChainParams, ledger: Ledger) -> Ledger:
    path = ledger.chain.store.path
    ledger.chain.store.close()
    return factory.open(params, path=path)


def assert_same_chain(a: Ledger, b: Ledger) -> None:
    assert a.chain.tip.hash == b.chain.tip.hash
    assert [e.hash for e in a.chain.active] == [e.hash for e in b.chain.active]
    assert a.chain.state.snapshot() == b.chain.state.snapshot()
    assert a.chain.store.main_chain() == [e.hash for e in a.chain.active]


def stored_state(store: BlockStore) -> set[tuple[str, bytes, bytes]]:
    return set(store.iter_state())


# --- a scripted reorg ---------------------------------------------------------------


def test_reorg_to_heavier_branch(factory: LedgerFactory, params: ChainParams) -> None:
    a = factory.open(params)
    b = factory.open(params)
    shared = transfer(ALICE, DAVE, 1_000, nonce=0)
    only_a = transfer(ALICE, DAVE, 2_000, nonce=1)
    only_a2 = transfer(CAROL, DAVE, 4_000, nonce=0)
    only_b = transfer(BOB, CAROL, 3_000, nonce=0)

    a.submit_tx(shared, now=T)
    a1 = mine(a, T + 5)
    a.submit_tx(only_a, now=T + 5)
    a.submit_tx(only_a2, now=T + 5)
    a2 = mine(a, T + 10)
    assert set(a2.txids()) == {only_a.txid, only_a2.txid}

    b.submit_tx(shared, now=T)
    b.submit_tx(only_b, now=T)
    b1 = mine(b, T + 5, MINER_B)
    b2 = mine(b, T + 10, MINER_B)
    b3 = mine(b, T + 15, MINER_B)

    assert a.submit_block(b1, now=T + 20, mono=MONO)[0] == "side"
    assert a.submit_block(b2, now=T + 20, mono=MONO)[0] == "side"  # a tie: first seen stays
    assert a.chain.tip.hash == a2.hash
    outcome, update = a.submit_block(b3, now=T + 20, mono=MONO)
    assert outcome == "connected"
    assert [blk.hash for blk in update.disconnected] == [a2.hash, a1.hash]
    assert [blk.hash for blk, _ in update.connected] == [b1.hash, b2.hash, b3.hash]

    assert_same_chain(a, b)
    for k in (ALICE, BOB, CAROL, DAVE, MINER, MINER_B):
        assert a.account(k.address) == b.account(k.address)
    assert a.account(MINER.address).balance == 0  # its rewards went with its blocks
    assert total_supply(a) == total_supply(b) == 3 * 100_000_000 + 3 * REWARD

    # txs from undone blocks that the new branch lacks are pending again
    assert a.tx_status(only_a.txid) == {"status": "pending"}
    assert a.tx_status(only_a2.txid) == {"status": "pending"}
    assert a.tx_status(shared.txid)["block"] == b1.hash.hex()
    assert a.tx_status(only_b.txid)["block"] == b1.hash.hex()
    assert set(a.mempool.by_id) == {only_a.txid, only_a2.txid}

    # equal to a fresh node that only ever saw B's chain
    fresh = replay(factory, params, [b1, b2, b3], T + 20)
    assert_same_chain(a, fresh)
    assert stored_state(a.chain.store) == stored_state(fresh.chain.store)

    # and to itself after a restart
    again = reopen(factory, params, a)
    assert_same_chain(again, fresh)

    # the resurrected txs are mined next, and B follows
    a4 = mine(again, T + 25)
    assert a4.txs == ()  # a restart without save_mempool starts with an empty pool
    for tx in (only_a, only_a2):
        again.submit_tx(tx, now=T + 25)
    a5 = mine(again, T + 30)
    assert set(a5.txids()) == {only_a.txid, only_a2.txid}
    b.submit_block(a4, now=T + 30, mono=MONO)
    b.submit_block(a5, now=T + 30, mono=MONO)
    assert_same_chain(again, b)


def test_lighter_branch_is_kept_aside(factory: LedgerFactory, params: ChainParams) -> None:
    a = factory.open(params)
    b = factory.open(params)
    for i in range(3):
        mine(a, T + 5 * i)
    side = [mine(b, T + 5 * i, MINER_B) for i in range(2)]
    before = a.chain.state.snapshot()
    for blk in side:
        outcome, update = a.submit_block(blk, now=T + 20, mono=MONO)
        assert outcome == "side" and not update
    assert a.chain.state.snapshot() == before and a.chain.height == 3
    assert all(blk.hash in a.chain.index for blk in side)


def test_reorg_back_and_forth(factory: LedgerFactory, params: ChainParams) -> None:
    a = factory.open(params)
    b = factory.open(params)
    a.submit_tx(transfer(ALICE, DAVE, 10, nonce=0), now=T)
    ab = [mine(a, T + 5)]
    b.submit_tx(transfer(BOB, DAVE, 20, nonce=0), now=T)
    bb = [mine(b, T + 5, MINER_B), mine(b, T + 10, MINER_B)]
    obs = factory.open(params)
    for blk in ab + bb:
        obs.submit_block(blk, now=T + 40, mono=MONO)
    assert obs.chain.tip.hash == bb[-1].hash
    # A extends its branch past B's
    for blk in bb:
        a.submit_block(blk, now=T + 40, mono=MONO)
    # a is now on B's chain; build A's old branch further on a third ledger
    c = replay(factory, params, ab, T + 40)
    cb = [mine(c, T + 10), mine(c, T + 15)]
    for blk in cb:
        obs.submit_block(blk, now=T + 40, mono=MONO)
    assert obs.chain.tip.hash == cb[-1].hash
    assert_same_chain(obs, c)
    assert_same_chain(reopen(factory, params, obs), c)


# --- property: reorg == replay ------------------------------------------------------

A_SENDERS = (ALICE, BOB)
B_SENDERS = (CAROL,)
RECEIVERS = (ALICE, BOB, CAROL, DAVE)

block_txs = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 3), st.integers(1, 5_000_000)), max_size=2
)


def mine_with(
    ledger: Ledger, now: int, miner: Any, senders: tuple[Any, ...], specs: list[Any]
) -> Block:
    for s, r, amount in specs:
        sender = senders[s % len(senders)]
        tx = transfer(sender, RECEIVERS[r], amount, nonce=ledger.next_nonce(sender.address))
        ledger.submit_tx(tx, now=now)
    return mine(ledger, now, miner)


@settings(max_examples=12, deadline=None)
@given(
    prefix=st.lists(block_txs, max_size=3),
    a_branch=st.lists(block_txs, min_size=1, max_size=4),
    extra=st.integers(1, 3),
    b_specs=st.lists(block_txs, min_size=7, max_size=7),
)
def test_reorg_equals_replay(
    prefix: list[Any], a_branch: list[Any], extra: int, b_specs: list[Any]
) -> None:
    params = make_params()
    with ledger_factory() as factory:
        a = factory.open(params)
        b = factory.open(params)
        now = T
        common = []
        for specs in prefix:
            now += 5
            common.append(mine_with(a, now, MINER, A_SENDERS + B_SENDERS, specs))
        for blk in common:
            b.submit_block(blk, now=now, mono=MONO)
        fork_time = now
        a_blocks = []
        for specs in a_branch:
            now += 5
            a_blocks.append(mine_with(a, now, MINER, A_SENDERS, specs))
        undone_txs = [tx for blk in a_blocks for tx in blk.txs]
        now_b = fork_time
        b_blocks = []
        for specs in b_specs[: len(a_branch) + extra]:
            now_b += 5
            b_blocks.append(mine_with(b, now_b, MINER_B, B_SENDERS, specs))
        now = max(now, now_b)

        for blk in b_blocks:
            a.submit_block(blk, now=now, mono=MONO)

        assert_same_chain(a, b)
        fresh = replay(factory, params, common + b_blocks, now)
        assert_same_chain(a, fresh)
        assert stored_state(a.chain.store) == stored_state(fresh.chain.store)
        assert total_supply(a) == 3 * 100_000_000 + REWARD * a.chain.height
        # B's branch only moved CAROL's nonce, so every undone tx is valid again
        assert {tx.txid for tx in undone_txs} <= set(a.mempool.by_id)
        assert all(a.tx_status(tx.txid) == {"status": "pending"} for tx in undone_txs)

        again = reopen(factory, params, a)
        assert_same_chain(again, fresh)

        # the other way round nothing moves: B already has the most work
        for blk in a_blocks:
            outcome, update = b.submit_block(blk, now=now, mono=MONO)
            assert outcome == "side" and not update
        assert_same_chain(b, fresh)


# --- restarts and interrupted writes -----------------------------------------------


def test_restart_midway_equals_replay(factory: LedgerFactory, params: ChainParams) -> None:
    a = factory.open(params)
    blocks: list[Block] = []
    senders = (ALICE, BOB, CAROL)
    for i in range(6):
        if i == 3:
            a = reopen(factory, params, a)  # as if the process died between blocks
            assert a.chain.height == 3
            assert_same_chain(a, replay(factory, params, blocks, T + 100))
        k = senders[i % 3]
        a.submit_tx(transfer(k, DAVE, 1_000 + i, nonce=a.next_nonce(k.address)), now=T + 5 * i)
        blocks.append(mine(a, T + 5 * i + 5))
    fresh = replay(factory, params, blocks, T + 100)
    assert_same_chain(a, fresh)
    assert_same_chain(reopen(factory, params, a), fresh)


def test_reopen_with_other_genesis_refused(factory: LedgerFactory, params: ChainParams) -> None:
    a = factory.open(params)
    mine(a, T)
    path = a.chain.store.path
    a.chain.store.close()
    with pytest.raises(Exception) as ei:
        factory.open(make_params(chain_id="other"), path=path)
    # The store is refused as unusable, naming the two chains.
    assert getattr(ei.value, "code", None) == "store_unusable"
    assert "holds the chain of genesis" in str(ei.value)


class Crash(Exception):
    """Stands in for a kill -9 in the middle of a store transaction."""


def crash_on_write(store: BlockStore, nth: int) -> None:
    """Make the ``nth`` state write from now on raise inside its transaction."""
    real = store._write_state
    calls = [0]

    def write(entries: Any) -> None:
        calls[0] += 1
        if calls[0] == nth:
            raise Crash(f"simulated crash on write {nth}")
        real(entries)

    store._write_state = write  # type: ignore[method-assign]


def test_crash_inside_connect_is_atomic(factory: LedgerFactory, params: ChainParams) -> None:
    a = factory.open(params)
    a.submit_tx(transfer(ALICE, DAVE, 1_000, nonce=0), now=T)
    b1 = mine(a, T + 5)
    on_disk = stored_state(a.chain.store)
    a.submit_tx(transfer(BOB, DAVE, 2_000, nonce=0), now=T + 5)
    crash_on_write(a.chain.store, 1)
    with pytest.raises(Crash):
        mine(a, T + 10)
    store = a.chain.store
    # nothing of the half-connected block reached the state, chain or tip
    assert store.get_meta("tip") == b1.hash
    assert len(store.main_chain()) == 2  # genesis and b1
    assert stored_state(store) == on_disk
    # after a restart the stored block is connected properly
    again = reopen(factory, params, a)
    assert again.chain.height == 2
    assert_same_chain(again, replay(factory, params, active_blocks(again), T + 100))
    assert again.account(DAVE.address).balance == 3_000


def test_crash_in_the_middle_of_a_reorg(factory: LedgerFactory, params: ChainParams) -> None:
    a = factory.open(params)
    b = factory.open(params)
    a.submit_tx(transfer(ALICE, DAVE, 1_000, nonce=0), now=T)
    mine(a, T + 5)
    a.submit_tx(transfer(ALICE, DAVE, 1_000, nonce=1), now=T + 5)
    mine(a, T + 10)
    b.submit_tx(transfer(BOB, DAVE, 7, nonce=0), now=T)
    b_blocks = [mine(b, T + 5 * i, MINER_B) for i in (1, 2, 3)]
    a.submit_block(b_blocks[0], now=T + 20, mono=MONO)
    a.submit_block(b_blocks[1], now=T + 20, mono=MONO)
    # the reorg writes: disconnect a2, disconnect a1, connect b1, connect b2 (crash)
    crash_on_write(a.chain.store, 4)
    with pytest.raises(Crash):
        a.submit_block(b_blocks[2], now=T + 20, mono=MONO)
    store = a.chain.store
    assert store.get_meta("tip") == b_blocks[0].hash
    assert stored_state(store) == stored_state(
        replay(factory, params, b_blocks[:1], T + 20).chain.store
    )
    # a restart finishes the reorg
    again = reopen(factory, params, a)
    assert_same_chain(again, b)
    assert_same_chain(again, replay(factory, params, b_blocks, T + 20))


def test_reorg_onto_invalid_branch_rolls_back(factory: LedgerFactory, params: ChainParams) -> None:
    a = factory.open(params)
    b = factory.open(params)
    kept = transfer(ALICE, DAVE, 1_000, nonce=0)
    a.submit_tx(kept, now=T)
    a1 = mine(a, T - 5)  # timestamps on the 5 s schedule keep every target equal
    a2 = mine(a, T)
    before = a.chain.state.snapshot()
    b1 = mine(b, T - 5, MINER_B)
    good2 = template(b, T, MINER_B)
    bad2 = rebuild(good2, state_root=b"\x00" * 32)
    b3 = rebuild(good2, txs=[], prev_hash=bad2.hash, height=3, timestamp=T + 5)
    assert bad2.header.target == b3.header.target == a2.header.target
    for blk in (b1, bad2):
        assert a.submit_block(blk, now=T + 5, mono=MONO)[0] == "side"
    # the heavier branch is tried, fails at bad2, the submitter hears why, and
    # the old tip comes back
    with pytest.raises(ParentInvalid, match="bad_state_root"):
        a.submit_block(b3, now=T + 5, mono=MONO)
    assert a.chain.index.get(bad2.hash).failed  # type: ignore[union-attr]
    assert a.chain.tip.hash == a2.hash
    assert [e.hash for e in a.chain.active[1:]] == [a1.hash, a2.hash]
    assert a.chain.state.snapshot() == before
    assert a.chain.index.get(b3.hash).failed  # type: ignore[union-attr]
    assert a.tx_status(kept.txid)["block"] == a1.hash.hex()
    assert_same_chain(a, replay(factory, params, [a1, a2], T + 5))
    assert_same_chain(reopen(factory, params, a), replay(factory, params, [a1, a2], T + 5))


def test_reorg_rechecks_only_the_accounts_it_touched(
    factory: LedgerFactory, params: ChainParams
) -> None:
    a = factory.open(params)
    b = factory.open(params)
    undone = transfer(ALICE, DAVE, 1_000, nonce=0)
    a.submit_tx(undone, now=T)
    a1 = mine(a, T + 5)
    # BOB's tx waits in A's pool; nothing in either branch touches BOB.
    bystander = transfer(BOB, DAVE, 7, nonce=0)
    a.submit_tx(bystander, now=T + 5)
    kept = a.mempool.get(bystander.txid)
    # CAROL's pending tx spends what the winning branch takes from her.
    carol_pending = transfer(CAROL, DAVE, 100_000_000 - 10, nonce=0, fee=10)
    a.submit_tx(carol_pending, now=T + 5)
    b.submit_tx(transfer(CAROL, DAVE, 50, nonce=0), now=T)
    b1 = mine(b, T + 5, MINER_B)
    b2 = mine(b, T + 10, MINER_B)
    a.submit_block(b1, now=T + 20, mono=MONO)
    outcome, update = a.submit_block(b2, now=T + 20, mono=MONO)
    assert outcome == "connected" and [x.hash for x in update.disconnected] == [a1.hash]
    assert a.mempool.get(bystander.txid) is kept  # not re-checked: the same entry
    assert a.tx_status(undone.txid) == {"status": "pending"}  # back from the undone block
    # CAROL's nonce moved on the new branch: her old pending tx was re-checked and dropped
    assert carol_pending.txid not in a.mempool
    assert a.tx_status(carol_pending.txid)["status"] == "dropped"


def test_a_pending_tx_the_winning_branch_mined_is_confirmed_not_dropped(
    factory: LedgerFactory, params: ChainParams
) -> None:
    a = factory.open(params)
    b = factory.open(params)
    a1 = mine(a, T + 5)  # A's own branch, which loses
    tx = transfer(ALICE, DAVE, 1_000, nonce=0)
    a.submit_tx(tx, now=T + 5)  # pending on A ...
    b.submit_tx(tx, now=T)
    b1 = mine(b, T + 5, MINER_B)  # ... and mined on B's heavier branch
    b2 = mine(b, T + 10, MINER_B)
    told: list[bytes] = []
    a.on_dropped = lambda txid, exc: told.append(txid)
    a.submit_block(b1, now=T + 20, mono=MONO)
    outcome, update = a.submit_block(b2, now=T + 20, mono=MONO)
    assert outcome == "connected" and [x.hash for x in update.disconnected] == [a1.hash]
    assert tx.txid not in a.mempool
    assert a.tx_status(tx.txid)["status"] == "confirmed"
    assert tx.txid not in a.dropped and told == []  # never told dropped (nonce_too_low)
