"""Cheap txs thrown at a full mempool over real sockets (issue 12, item 2).

The finding: an unauthenticated peer sent 6,000 fee-0 txs in three ``txs``
frames at a node whose pool was full; the node spent seconds on them and
neither banned nor even slowed the peer. Now each peer has a tx relay budget
(``RelayBudget``): txs it sends unasked and txs refused for their fee are
blamed on it; it is slowed, then disconnected (``tx_flood``), never banned,
while a peer relaying a few refused txs is left alone.

Each test starts a node (P2P on) whose mempool holds exactly ``FILL`` txs
and is full of them, with an honest peer node connected, and scripts
``TestPeer``s at it on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from powernode.client import build_transfer
from powernode.core.crypto import KeyPair
from powernode.core.tx import Transaction
from powernode.devnet.datadir import free_port, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.node.node import Node
from powernode.node.p2p import P2P
from powernode.node.peer import TX_DROP_AT, TX_SLOW_AT, TX_UNASKED_POINTS, now_ms
from powernode.protocol.messages import MAX_TXS, Inv, Txs
from tests.harness import TEST_CHAIN
from tests.harness.network import async_wait_until, connect
from tests.harness.p2pnet import events, p2p_datadir, peer_by_listen, start_node
from tests.harness.testpeer import TestPeer

FUNDS = 1_000 * 1_000_000
FILL = 40  # txs that fill the pool exactly
FILL_FEE = 1_000
SENDERS = 30  # flood senders, each within the 256-nonce window
PER_SENDER = 200


@dataclass
class Net:
    node: Node  # the node under test, its pool full
    honest: Node  # an honest peer node, connected to it
    filler: list[Transaction]
    flooders: list[KeyPair]  # funded: their txs fail only for their fee

    def peer(self, listen: str = "") -> TestPeer:
        """A scripted peer advertising a listen address of its own."""
        return TestPeer.for_node(self.node, listen=listen or f"127.0.0.1:{free_port()}")

    def count_checks(self, monkeypatch: pytest.MonkeyPatch, txs: list[Transaction]) -> list[int]:
        """A counter of the admission checks the node runs on ``txs``."""
        ids = {tx.txid for tx in txs}
        ledger = self.node.ledger
        real = ledger.check_tx
        count = [0]

        def counted(tx: Transaction, **kw: Any) -> Any:
            if tx.txid in ids:
                count[0] += 1
            return real(tx, **kw)

        monkeypatch.setattr(ledger, "check_tx", counted)
        return count

    def cheap(self, n: int, *, fee: int = 0, first_nonce: int = 0) -> list[Transaction]:
        """``n`` valid transfers paying ``fee``, from the funded flooders."""
        chain_id = self.node.ledger.params.chain_id
        out = []
        for i in range(n):
            key = self.flooders[i // PER_SENDER]
            nonce = first_nonce + i % PER_SENDER
            out.append(
                build_transfer(key, chain_id=chain_id, nonce=nonce, to=bytes(20), amount=1, fee=fee)
            )
        return out


def _set_mempool_bytes(datadir: Path, max_bytes: int) -> None:
    cfg = datadir / "config.toml"
    text = cfg.read_text()
    assert "\nmax_bytes = 67108864\n" in text, "config layout changed"
    cfg.write_text(text.replace("\nmax_bytes = 67108864\n", f"\nmax_bytes = {max_bytes}\n"))


@pytest.fixture
async def net(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Net]:
    caplog.set_level(logging.INFO, logger="powernode")
    user = KeyPair.generate()
    flooders = [KeyPair.generate() for _ in range(SENDERS)]
    genesis = write_genesis(
        tmp_path / "genesis.json",
        dev_genesis({k.address: FUNDS for k in [user, *flooders]}, chain_id=TEST_CHAIN),
    )
    chain_id = TEST_CHAIN
    filler = [
        build_transfer(user, chain_id=chain_id, nonce=i, to=bytes(20), amount=1, fee=FILL_FEE)
        for i in range(FILL)
    ]
    datadir = p2p_datadir(tmp_path / "node", genesis)
    _set_mempool_bytes(datadir, sum(tx.size for tx in filler))
    node = await start_node(datadir)
    honest: Node | None = None
    try:
        results = await node.submit_txs(filler)
        assert all(err is None for _, err in results), results
        pool = node.ledger.mempool
        assert pool.total_bytes == pool.max_bytes and len(pool) == FILL
        honest = await start_node(p2p_datadir(tmp_path / "honest", genesis))
        await connect(honest, node)
        yield Net(node, honest, filler, flooders)
    finally:
        if honest is not None:
            await honest.stop()
        await node.stop()


def pool_is_the_filler(net: Net) -> bool:
    return set(net.node.ledger.mempool.by_id) == {tx.txid for tx in net.filler}


def assert_not_banned(net: Net, caplog: pytest.LogCaptureFixture, peer: TestPeer) -> None:
    assert net.node.p2p is not None
    assert events(caplog, "peer.banned") == []
    assert not net.node.p2p.banned_node(peer.hello.node_id)
    assert [p for p in net.node.p2p.peer_list() if p["direction"] == "banned"] == []


async def test_cheap_tx_flood_at_a_full_pool_is_disconnected_not_banned(
    net: Net, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    flood = net.cheap(3 * MAX_TXS)  # the finding: 6,000 fee-0 txs in three frames
    frames = [Txs([tx.raw for tx in flood[i : i + MAX_TXS]]) for i in range(0, len(flood), MAX_TXS)]
    checked = net.count_checks(monkeypatch, flood)
    async with net.peer() as peer:
        await peer.connect()
        await peer.sync_with_ping()
        listen = peer.hello.listen
        assert peer_by_listen(net.node, listen) is not None
        for frame in frames:
            if peer.is_closed:
                break
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                await peer.send(frame)
        await peer.wait_disconnected()
    node = peer.hello.node_id.hex()
    (dropped,) = events(caplog, "peer.dropped", node=node)
    assert dropped.fields["reason"] == "tx_flood"  # type: ignore[attr-defined]
    assert events(caplog, "peer.disconnected", node=node, reason="tx_flood")
    assert_not_banned(net, caplog, peer)
    await async_wait_until(
        lambda: peer_by_listen(net.node, listen) is None, what="the node to forget the peer"
    )
    # A full frame of unasked txs is past the drop mark by itself: the node
    # did not check one of them (the old node checked and verified all
    # 6,000), and nothing got in.
    gossip = net.node.p2p._gossip  # type: ignore[union-attr]
    await async_wait_until(lambda: not gossip._backlog, what="the checks to end")
    assert checked[0] == 0
    assert pool_is_the_filler(net)
    # Disconnected, not banned: it may come back (after a cooldown, which
    # holds its node id; a new one is let in at once) and is a peer like any
    # other.
    async with net.peer(listen) as back:
        await back.connect()
        await back.sync_with_ping()
        assert not back.is_closed
        assert peer_by_listen(net.node, listen) is not None
    # The honest peer node was never touched.
    assert net.honest.p2p is not None
    assert peer_by_listen(net.node, net.honest.p2p.listen) is not None


async def test_a_trickle_of_cheap_txs_is_slowed_then_disconnected(
    net: Net, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small frames of unasked fee-0 txs: the first are checked (and
    # refused), then the peer is slowed (the rest dropped unchecked), then
    # disconnected; never banned.
    per_frame = 100
    flood = net.cheap(SENDERS * PER_SENDER)
    checked = net.count_checks(monkeypatch, flood)
    sent = 0
    async with net.peer() as peer:
        await peer.connect()
        await peer.sync_with_ping()
        for i in range(0, len(flood), per_frame):
            if not await peer.ping_or_disconnect():
                break  # each frame handled before the next goes
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                await peer.send(Txs([tx.raw for tx in flood[i : i + per_frame]]))
                sent += per_frame
        await peer.wait_disconnected()
    gossip = net.node.p2p._gossip  # type: ignore[union-attr]
    await async_wait_until(lambda: not gossip._backlog, what="the checks to end")
    # Slowed before the end: checked no more than its allowance, far fewer
    # than it sent; and it took more than the allowance to get dropped.
    allowance = TX_SLOW_AT // TX_UNASKED_POINTS
    assert per_frame <= checked[0] <= allowance
    assert sent > allowance
    assert sent * TX_UNASKED_POINTS <= TX_DROP_AT + 2 * per_frame * TX_UNASKED_POINTS
    (dropped,) = events(caplog, "peer.dropped", node=peer.hello.node_id.hex())
    assert dropped.fields["reason"] == "tx_flood"  # type: ignore[attr-defined]
    assert_not_banned(net, caplog, peer)
    assert pool_is_the_filler(net)


async def test_honest_peer_relaying_a_few_refused_txs_is_left_alone(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    cheap = net.cheap(20, fee=FILL_FEE // 2)
    async with net.peer() as peer:
        await peer.connect()
        await peer.sync_with_ping()
        peer.txs.update({tx.txid: tx.raw for tx in cheap})  # answered when asked
        await peer.send(Inv("tx", [tx.txid for tx in cheap]))
        await peer.wait_for(
            lambda: (
                {h for m in peer.messages("getdata") for h in m.hashes}  # type: ignore[attr-defined]
                == {tx.txid for tx in cheap}
            ),
            what="the node to ask for the txs",
        )
        await async_wait_until(
            lambda: all(tx.txid in cast(P2P, net.node.p2p)._gossip.recent_rejects for tx in cheap),
            what="the node to refuse the cheap txs",
        )
        assert pool_is_the_filler(net)
        me = peer_by_listen(net.node, peer.hello.listen)
        assert me is not None
        # Blamed for the 20 refusals (asked for: nothing unasked), far from slowed.
        assert me.relay.level(now_ms()) <= len(cheap)
        assert not me.relay.slowed(now_ms())
        # It is still asked for what it announces, and a tx that pays gets in.
        rich = net.cheap(1, fee=10 * FILL_FEE, first_nonce=PER_SENDER)[0]
        peer.txs[rich.txid] = rich.raw
        await peer.send(Inv("tx", [rich.txid]))
        await async_wait_until(
            lambda: rich.txid in net.node.ledger.mempool, what="the paying tx admitted"
        )
        await peer.sync_with_ping()
        assert not peer.is_closed
    assert events(caplog, "peer.dropped") == []
    assert_not_banned(net, caplog, peer)


async def test_peer_relaying_many_refused_txs_is_slowed_then_not_asked(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    # Asked-for txs that all fail for their fee: past the slow mark the peer
    # is asked for nothing more; below the drop mark it stays connected.
    cheap = net.cheap(TX_SLOW_AT + 200)
    async with net.peer() as peer:
        await peer.connect()
        await peer.sync_with_ping()
        me = peer_by_listen(net.node, peer.hello.listen)
        assert me is not None
        # No drain: refusing 1,200 txs on a busy box can take longer than the
        # 4 s of drain the 200 points past the slow mark stand for.
        me.relay.drain_per_s = 0
        peer.txs.update({tx.txid: tx.raw for tx in cheap})
        await peer.send(Inv("tx", [tx.txid for tx in cheap]))
        await async_wait_until(
            lambda: all(tx.txid in cast(P2P, net.node.p2p)._gossip.recent_rejects for tx in cheap),
            timeout=30,
            what="the node to refuse the cheap txs",
        )
        assert me.relay.slowed(now_ms())
        assert not me.relay.over(me.relay.level(now_ms()))
        rich = net.cheap(1, fee=10 * FILL_FEE, first_nonce=PER_SENDER)[0]
        peer.txs[rich.txid] = rich.raw
        asks = len(peer.messages("getdata"))
        await peer.send(Inv("tx", [rich.txid]))
        await peer.sync_with_ping()
        assert len(peer.messages("getdata")) == asks  # slowed: not asked
        assert rich.txid not in net.node.ledger.mempool
        # Another peer announcing the same tx is asked for it instead.
        async with net.peer() as other:
            await other.connect()
            await other.sync_with_ping()
            other.txs[rich.txid] = rich.raw
            await other.send(Inv("tx", [rich.txid]))
            await async_wait_until(
                lambda: rich.txid in net.node.ledger.mempool, what="the tx from the other peer"
            )
        # Once its blame drains (here: by hand, not by waiting) it is asked again.
        me.relay.milli = 0
        assert not me.relay.slowed(now_ms())
        assert not peer.is_closed
    assert events(caplog, "peer.dropped") == []
    assert_not_banned(net, caplog, peer)


async def test_unasked_txs_count_against_the_sender(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Txs that pay well, but sent unasked: each is blamed on the peer, and
    # past its allowance they are not even looked at.
    allowance = TX_SLOW_AT // TX_UNASKED_POINTS
    rich = net.cheap(allowance + 50, fee=10 * FILL_FEE)
    checked = net.count_checks(monkeypatch, rich)
    async with net.peer() as peer:
        await peer.connect()
        await peer.sync_with_ping()
        me = peer_by_listen(net.node, peer.hello.listen)
        assert me is not None
        me.relay.drain_per_s = 0  # the level, not how fast a busy box got there
        await peer.send(Txs([tx.raw for tx in rich]))
        await peer.sync_with_ping()
        points = len(rich) * TX_UNASKED_POINTS
        # (more where the pool refused some of the checked ones for their fee)
        assert me.relay.level(now_ms()) >= points
        assert me.relay.slowed(now_ms())
        assert points < TX_DROP_AT
        assert not peer.is_closed
        # The allowance was checked (those that fit got in); the last 50
        # were dropped unchecked.
        await async_wait_until(lambda: checked[0] == allowance, what="the allowance checked")
        await async_wait_until(
            lambda: rich[0].txid in net.node.ledger.mempool, what="the first admitted"
        )
        assert all(tx.txid not in net.node.ledger.mempool for tx in rich[allowance:])
        await peer.sync_with_ping()
        assert checked[0] == allowance
