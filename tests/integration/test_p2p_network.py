"""Several in-process nodes on loopback: gossip, sync, partitions and heals."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from powernode.client import build_transfer
from powernode.core.crypto import KeyPair
from powernode.core.tx import Transaction
from tests.harness.network import (
    Network,
    async_wait_until,
    connect,
    heal_all,
    partition,
    sync_all,
    sync_mempools,
)

CHAIN = "powernode-test"


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Network]:
    network = Network(tmp_path, [KeyPair.generate() for _ in range(4)])
    try:
        yield network
    finally:
        await network.stop()


async def test_gossip_reaches_every_node(net: Network) -> None:
    nodes = await net.start(3)
    alice, bob = net.users[:2]
    txs = [
        build_transfer(alice, chain_id=CHAIN, nonce=n, to=bob.address, amount=10) for n in range(5)
    ]
    results = await nodes[2].submit_and_relay(txs)
    assert all(err is None for _, err in results)
    await sync_mempools(nodes)
    assert all(len(n.ledger.mempool) == 5 for n in nodes)
    await nodes[1].mine_now(1)
    await sync_all(nodes)
    for n in nodes:
        assert len(n.ledger.mempool) == 0
        assert n.ledger.account(bob.address).balance == 10**12 + 5 * 10
        assert n.ledger.account(alice.address).nonce == 5
    roots = {n.ledger.chain.tip.header.state_root for n in nodes}
    assert len(roots) == 1


async def test_random_mining_converges(net: Network) -> None:
    nodes = await net.start(4)
    rng = random.Random(7)
    for _ in range(12):
        await rng.choice(nodes).mine_now(rng.randint(1, 2))
    await sync_all(nodes)
    assert len({n.ledger.chain.tip.header.state_root for n in nodes}) == 1
    states = [n.ledger.chain.state.snapshot() for n in nodes]
    assert all(s == states[0] for s in states)


async def test_late_joiner_catches_up_with_progress(
    net: Network, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="powernode")
    (first,) = await net.start(1)
    alice, bob = net.users[:2]
    await first.submit_and_relay(
        [
            build_transfer(alice, chain_id=CHAIN, nonce=n, to=bob.address, amount=1)
            for n in range(20)
        ]
    )
    await first.mine_now(520)
    assert first.ledger.chain.height == 520
    late = await net.add_node(connect_to=[first])
    await sync_all([first, late], timeout=120)
    assert late.ledger.chain.state.snapshot() == first.ledger.chain.state.snapshot()
    events = [r.getMessage() for r in caplog.records if r.name == "powernode.sync"]
    assert "sync.started" in events and "sync.progress" in events and "sync.done" in events
    done = [r for r in caplog.records if r.getMessage() == "sync.done"][-1]
    assert done.fields["blocks"] >= 500  # type: ignore[attr-defined]
    # Once caught up, the joiner keeps following new blocks.
    await first.mine_now(2)
    await sync_all([first, late])
    assert late.ledger.chain.height == 522


async def test_a_new_peer_is_told_the_pending_txs(net: Network) -> None:
    # Txs that entered the pool before a link existed (as after a partition,
    # or a reorg's announcement sent on a connection later replaced) reach a
    # peer once it connects: no one announces them again by themselves.
    (first,) = await net.start(1)
    alice, bob = net.users[:2]
    txs = [
        build_transfer(alice, chain_id=CHAIN, nonce=n, to=bob.address, amount=3) for n in range(4)
    ]
    results = await first.submit_and_relay(txs)
    assert all(err is None for _, err in results)
    late = await net.add_node(connect_to=[first])
    await async_wait_until(
        lambda: all(tx.txid in late.ledger.mempool for tx in txs),
        what="the pending txs on the new peer",
    )
    assert len(late.ledger.mempool) == 4


async def test_partition_and_heal_keeps_every_tx(net: Network) -> None:
    nodes = await net.start(5)
    u0, u1, u2, sink = net.users
    await nodes[0].mine_now(2)
    await sync_all(nodes)
    side_a, side_b = nodes[:2], nodes[2:]
    await partition(side_a, side_b)

    # Different txs on each side; u0 spends on both sides with the same nonce.
    tx_a = [build_transfer(u0, chain_id=CHAIN, nonce=0, to=sink.address, amount=111)]
    tx_a += [
        build_transfer(u1, chain_id=CHAIN, nonce=n, to=sink.address, amount=5) for n in range(3)
    ]
    tx_b = [build_transfer(u0, chain_id=CHAIN, nonce=0, to=sink.address, amount=222, fee=2000)]
    tx_b += [
        build_transfer(u2, chain_id=CHAIN, nonce=n, to=sink.address, amount=7) for n in range(2)
    ]
    await side_a[0].submit_and_relay(tx_a)
    await side_b[0].submit_and_relay(tx_b)
    await sync_mempools(side_a)
    await sync_mempools(side_b)
    await side_a[1].mine_now(2)
    await side_b[1].mine_now(4)  # more work: side B wins
    await sync_all(side_a)
    await sync_all(side_b)
    assert side_a[0].ledger.chain.tip.hash != side_b[0].ledger.chain.tip.hash

    await heal_all(side_a, side_b)
    await sync_all(nodes)
    winner = side_b[0].ledger
    for n in nodes:
        assert n.ledger.chain.tip.hash == winner.chain.tip.hash
        assert n.ledger.chain.state.snapshot() == winner.chain.state.snapshot()
    # Side A's txs are pending again (u1's) or lost to a conflict (u0's
    # nonce 0 went to side B's spend): none lost, none applied twice.
    for tx in tx_a[1:]:

        def gossiped(t: Transaction = tx) -> bool:
            return all(t.txid in n.ledger.mempool for n in nodes)

        await async_wait_until(gossiped, what="resurrected tx gossiped")
    await nodes[0].mine_now(1)
    await sync_all(nodes)
    for n in nodes:
        L = n.ledger
        assert all(L.tx_status(tx.txid)["status"] == "confirmed" for tx in tx_a[1:] + tx_b)
        assert L.account(u1.address).nonce == 3 and L.account(u2.address).nonce == 2
        assert L.account(u0.address).nonce == 1
        assert L.account(sink.address).balance == 10**12 + 222 + 3 * 5 + 2 * 7
        assert len(L.mempool) == 0


async def test_reconnect_after_restart(net: Network, tmp_path: Path) -> None:
    a, b = await net.start(2)
    await a.mine_now(3)
    await sync_all([a, b])
    await b.stop()
    await a.mine_now(2)
    from powernode.node.config import load_config
    from powernode.node.node import Node

    b2 = Node(load_config(b.config.datadir))
    await b2.start()
    net.nodes[1] = b2
    await connect(b2, a)
    await sync_all([a, b2])
    assert b2.ledger.chain.height == 5
