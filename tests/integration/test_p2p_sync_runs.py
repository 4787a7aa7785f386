"""A late joiner's sync: signatures checked ahead, blocks connected in runs.

In-process nodes on loopback. The joiner must reach the same state as the
node it syncs from, with every signature found in the cache when its block
connects (checked ahead, in the verify workers) and blocks committed several
to a run; a block with a bad signature met in a run is refused with the code
it gets anywhere else, and its peer banned.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from powernode.chain.ledger import Ledger
from powernode.chain.store import BlockStore
from powernode.client import build_transfer
from powernode.core import block as block_module
from powernode.core.block import Block, make_block
from powernode.core.crypto import ZERO_ADDRESS, KeyPair
from powernode.core.tx import Transaction
from powernode.devnet.devchain import solve
from powernode.node import p2p_sync
from powernode.protocol.messages import Headers
from powernode.state.genesis import parse_genesis_json
from tests.harness.network import Network, async_wait_until, connect, sync_all
from tests.harness.p2pnet import events, peer_by_listen
from tests.integration.test_p2p_hostile import (
    Net,
    assert_banned,
    assert_refused_when_back,
    assert_still_serves,
    ready,
    tampered,
)
from tests.integration.test_p2p_hostile import (
    net as net,  # the fixture: a node with an honest peer
)

CHAIN = "powernode-test"


@pytest.fixture
async def network(tmp_path: Path) -> AsyncIterator[Network]:
    nodes = Network(tmp_path, [KeyPair.generate() for _ in range(4)])
    try:
        yield nodes
    finally:
        await nodes.stop()


async def test_late_joiner_checks_signatures_ahead_and_connects_in_runs(
    network: Network, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="powernode")
    (first,) = await network.start(1)
    users = network.users
    txs = 0
    for n in range(30):
        batch = [
            build_transfer(u, chain_id=CHAIN, nonce=n, to=users[0].address, amount=1)
            for u in users[1:]
        ]
        results = await first.submit_and_relay(batch)
        assert all(err is None for _, err in results)
        txs += len(batch)
        await first.mine_now(1)
    await first.mine_now(300)
    late = await network.add_node(connect_to=[first], max_blocks_in_flight=16)
    await sync_all([first, late], timeout=120)
    assert late.ledger.chain.tip.hash == first.ledger.chain.tip.hash
    assert late.ledger.chain.state.snapshot() == first.ledger.chain.state.snapshot()
    # Every signature was checked ahead: none was left for its block's connect.
    cache = late.ledger.sigcache
    assert cache.misses == 0 and cache.hits == txs
    runs = events(caplog, "sync.run")
    sizes = [r.fields["blocks"] for r in runs]  # type: ignore[attr-defined]
    assert runs and max(sizes) > 1, sizes
    assert sum(sizes) <= 330
    # Memory stays bounded: at most max_blocks_in_flight asked for and as
    # many again waiting to connect.
    sync = late.p2p._sync  # type: ignore[union-attr]
    assert 1 < sync.peak_queued <= 2 * 16
    assert sync.runs == len(runs) and sync.run_blocks == sum(sizes)
    # Once caught up, a new block connects at once, not in a run.
    before = len(events(caplog, "sync.run"))
    await first.mine_now(1)
    await sync_all([first, late])
    assert late.ledger.chain.height == 331
    assert len(events(caplog, "sync.run")) == before


async def test_checks_ahead_stay_within_their_bound(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for only a few txs checked ahead, the later blocks of the
    queue wait for their check until runs make room: the joiner still gets
    there, every signature still checked before its connect, and nothing is
    left counted ahead once the queue is empty."""
    monkeypatch.setattr(p2p_sync, "AHEAD_TXS", 6)  # two blocks of 3 txs
    monkeypatch.setattr(p2p_sync, "CHECK_TXS", 3)  # a request per block
    (first,) = await network.start(1)
    users = network.users
    for n in range(40):
        batch = [
            build_transfer(u, chain_id=CHAIN, nonce=n, to=users[0].address, amount=1)
            for u in users[1:]
        ]
        await first.submit_and_relay(batch)
        await first.mine_now(1)
    late = await network.add_node(connect_to=[first])
    await sync_all([first, late], timeout=120)
    assert late.ledger.chain.state.snapshot() == first.ledger.chain.state.snapshot()
    assert late.ledger.sigcache.misses == 0 and late.ledger.sigcache.hits == 40 * 3
    sync = late.p2p._sync  # type: ignore[union-attr]
    assert sync.runs > 1 and sync.queued == 0 and sync._ahead == 0
    assert sync.peak_ahead <= 6 + 3  # the bound, passed by at most one forced request


def _unchecked_ledger(genesis: Path, path: Path) -> tuple[Ledger, BlockStore]:
    """A ledger that takes any signature: it builds a chain holding a forged one."""
    store = BlockStore(path)
    store.open()

    def accept_any(txs: object) -> None:
        return None

    ledger = Ledger(
        params=parse_genesis_json(genesis.read_bytes()), store=store, verify_batch=accept_any
    )
    ledger.load()
    return ledger, store


def _mine(ledger: Ledger, txs: list[Transaction]) -> Block:
    now = int(time.time())
    for tx in txs:
        ledger.submit_tx(tx, now=now)
    tmpl = ledger.template(ZERO_ADDRESS, now=now)
    block = make_block(solve(tmpl.header), tmpl.txs)
    outcome, _ = ledger.submit_block(block, now=now, mono=time.monotonic())
    assert outcome == "connected"
    return block


async def test_a_bad_signature_met_in_a_run_bans_its_peer(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    """A peer offers a 30-block chain whose block 10 carries a forged
    signature (everything else valid, and blocks built on it): the node
    connects blocks 1 to 9, refuses block 10 as ``bad_signature``, bans the
    peer, connects nothing it sent after, and goes on serving."""
    chain_id = net.node.ledger.params.chain_id
    ledger, store = _unchecked_ledger(net.genesis, net.tmp / "forger.db")
    try:
        blocks = []
        for n in range(30):
            tx = build_transfer(net.user, chain_id=chain_id, nonce=n, to=os.urandom(20), amount=5)
            blocks.append(_mine(ledger, [tampered(tx) if n == 9 else tx]))
    finally:
        store.close()
    bad = blocks[9]
    async with net.hostile() as peer:
        peer.blocks = {b.hash: b.raw for b in blocks}
        await peer.connect()
        await ready(net, peer)
        await peer.send(Headers([b.header.encode() for b in blocks]))
        await assert_banned(net, caplog, peer, "bad_signature")
    (invalid,) = events(caplog, "block.invalid", hash=bad.hash)
    assert invalid.fields["reason"] == "bad_signature"  # type: ignore[attr-defined]
    chain = net.node.ledger.chain
    await async_wait_until(lambda: chain.height >= 9, what="the blocks before the bad one")
    assert chain.height == 9 and chain.tip.hash == blocks[8].hash
    after = [e for b in blocks[9:] if (e := chain.index.get(b.hash)) is not None]
    assert not any(chain.in_active(e) for e in after)
    assert events(caplog, "sync.run")
    await assert_still_serves(net)


async def test_a_storage_fault_inside_a_run_stops_the_node_and_blames_no_one(
    network: Network, caplog: pytest.LogCaptureFixture
) -> None:
    """The store fills up in the middle of a sync: the run that meets it is
    rolled back whole, the node stops on the fault, and no block, peer or
    task is blamed; the store is left at the end of the last run committed."""
    caplog.set_level(logging.INFO)
    (a,) = await network.start(1)
    await a.mine_now(300)
    b = await network.add_node()
    store = b.ledger.chain.store
    # SQLite's own full disk: room for a few runs, not for the chain.
    (pages,) = store.db.execute("PRAGMA page_count").fetchone()
    store.db.execute(f"PRAGMA max_page_count = {pages + 12}")
    await connect(b, a)
    await async_wait_until(
        lambda: b.failure is not None and b.stopping.is_set(), timeout=60, what="b to fail"
    )
    assert b.failure is not None and b.failure.code == "disk_full"
    assert not any(e.failed for e in b.ledger.chain.index.entries.values()), "no block blamed"
    assert events(caplog, "peer.banned") == [] and events(caplog, "block.invalid") == []
    assert events(caplog, "p2p.task_failed") == []
    tracebacks = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info]
    assert tracebacks == []
    # What is committed is the end of a run (or genesis), never part of one.
    committed = {0} | {r.fields["height"] for r in events(caplog, "sync.run")}  # type: ignore[attr-defined]
    tip = BlockStore(store.path)
    tip.open()
    try:
        stored = tip.get_meta("tip")
        assert stored is not None
        height = b.ledger.chain.index.entries[stored].height
    finally:
        tip.close()
    print(f"stored tip at {height}, runs committed at {sorted(committed)}")
    assert height in committed and height < 300


async def test_a_peer_gone_before_its_bad_queued_block_connects_is_banned_all_the_same(
    net: Net, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The peer of the test above hangs up once the node has received its
    blocks and before the run that meets the forged one: the ban lands on
    its proven node id all the same, so it cannot come back at once, and
    nothing it sent after the bad block connects."""
    chain_id = net.node.ledger.params.chain_id
    ledger, store = _unchecked_ledger(net.genesis, net.tmp / "forger.db")
    try:
        blocks = []
        for n in range(12):
            tx = build_transfer(net.user, chain_id=chain_id, nonce=n, to=os.urandom(20), amount=5)
            blocks.append(_mine(ledger, [tampered(tx) if n == 9 else tx]))
    finally:
        store.close()
    # The signature checks wait until the peer is gone: the queue holds its
    # blocks unconnected meanwhile.
    release = asyncio.Event()
    check = net.node.check_signatures

    async def held_check(txs: Sequence[Transaction]) -> None:
        await release.wait()
        await check(txs)

    monkeypatch.setattr(net.node, "check_signatures", held_check)
    sync = net.node.p2p._sync  # type: ignore[union-attr]
    async with net.hostile() as peer:
        peer.blocks = {b.hash: b.raw for b in blocks}
        await peer.connect()
        await ready(net, peer)
        await peer.send(Headers([b.header.encode() for b in blocks]))
        await async_wait_until(lambda: sync.queued == len(blocks), what="the blocks queued")
    listen = peer.hello.listen
    await async_wait_until(
        lambda: peer_by_listen(net.node, listen) is None, what="the node to forget the peer"
    )
    assert net.node.ledger.chain.height == 0
    release.set()
    chain = net.node.ledger.chain
    await async_wait_until(lambda: sync.queued == 0, what="the queue to be connected")
    assert chain.height == 9 and chain.tip.hash == blocks[8].hash
    (record,) = events(caplog, "peer.banned", node=peer.hello.node_id.hex())
    assert record.fields["reason"] == "bad_signature"  # type: ignore[attr-defined]
    assert net.node.p2p is not None and net.node.p2p.banned_node(peer.hello.node_id)
    await assert_refused_when_back(net, caplog, peer)
    await assert_still_serves(net)


async def test_a_synced_blocks_proof_of_work_is_checked_once(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A joiner checks each header's proof of work in its headers batch,
    before asking for anything, and the block's own check does not hash it
    again (it did, about 7% of a joiner's CPU)."""
    (first,) = await network.start(1)
    await first.mine_now(40)
    hashed: Counter[tuple[bytes, int]] = Counter()
    real = block_module.pow_hash

    def counting(commitment: bytes, nonce: int) -> int:
        hashed[(commitment, nonce)] += 1
        return real(commitment, nonce)

    monkeypatch.setattr(block_module, "pow_hash", counting)
    late = await network.add_node(connect_to=[first])
    await sync_all([first, late], timeout=120)
    assert late.ledger.chain.height == 40
    assert len(hashed) == 40, "every header checked"
    assert set(hashed.values()) == {1}, "and each once"
