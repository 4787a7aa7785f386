"""Connection slots and per-IP rules, over real sockets on loopback.

Finding 4: 300 hellos sent at once gave 301-302 inbound peers against a
limit of 32, because only finished handshakes were counted, and counted
before the hello arrived. Slots are now taken when a connection is
accepted. A peer connecting from 127.0.0.2 to a node on 127.0.0.1 is, to
that node, on another host (its IP is not the socket's local IP), so the
per-IP limits, the cooldown and IP bans apply to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import aiohttp
import pytest

from powernode.devnet.datadir import write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.node.node import Node
from powernode.node.p2p import P2P
from tests.harness import TEST_CHAIN
from tests.harness.network import async_wait_until
from tests.harness.p2pnet import events, p2p_datadir, start_node
from tests.harness.testpeer import TestPeer

OTHER_HOST = "127.0.0.2"


@pytest.fixture
async def genesis(tmp_path: Path) -> Path:
    return write_genesis(tmp_path / "genesis.json", dev_genesis({}, chain_id=TEST_CHAIN))


@pytest.fixture
async def node(
    tmp_path: Path, genesis: Path, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Node]:
    caplog.set_level(logging.INFO, logger="powernode")
    n = await start_node(
        p2p_datadir(
            tmp_path / "node",
            genesis,
            max_inbound=32,
            max_pending=8,
            ban_seconds=60,
            handshake_timeout=3,
        )
    )
    try:
        yield n
    finally:
        await n.stop()


def inbound_peers(node: Node) -> int:
    assert node.p2p is not None
    return sum(1 for p in node.p2p.peers.values() if p.direction == "in")


async def burst(node: Node, n: int, *, local_ip: str = "") -> list[TestPeer]:
    """``n`` test peers that connect and send their hello all at once; returns
    them (open or refused) for the caller to close."""
    peers = [TestPeer.for_node(node, local_ip=local_ip) for _ in range(n)]

    async def one(p: TestPeer) -> None:
        with contextlib.suppress(aiohttp.ClientError, ConnectionError, AssertionError):
            await p.connect(timeout=30)

    await asyncio.gather(*(one(p) for p in peers))
    return peers


async def close_all(peers: list[TestPeer]) -> None:
    await asyncio.gather(*(p.close() for p in peers))


async def test_300_simultaneous_hellos_never_exceed_the_inbound_limit(node: Node) -> None:
    """Waves of 300 peers shaking hands at once, earlier waves' peers staying
    connected, until the node is full: it holds exactly its limit, and at no
    moment held more (by its own counters, by sampling its peer table at
    every turn of the event loop, and by the peers that stayed open)."""
    assert node.p2p is not None
    limit = node.p2p.cfg.max_inbound
    samples: list[int] = []
    stop = asyncio.Event()

    async def sample() -> None:  # what the node holds, every loop turn
        while not stop.is_set():
            samples.append(inbound_peers(node))
            samples.append(node.p2p.slots.held)  # type: ignore[union-attr]
            await asyncio.sleep(0)

    sampler = asyncio.create_task(sample())
    held: list[TestPeer] = []
    try:
        for _ in range(limit):  # a wave gets at least one in until full
            peers = await burst(node, 300)
            got = [p for p in peers if p.authed and not p.is_closed]
            await close_all([p for p in peers if p not in got])
            held = [p for p in held if not p.is_closed] + got
            if not got:
                break
        # Every peer that shook hands and was not hung up on is still there.
        for p in held:
            assert await p.ping_or_disconnect(), "an accepted peer was dropped"
        assert len(held) == limit
        assert inbound_peers(node) == limit
        assert node.p2p.peak_inbound_peers == limit
        assert node.p2p.slots.peak_held == limit
        assert max(samples) == limit
        assert set(node.p2p.refused) == {"inbound_full", "pending_full"}
        assert node.p2p.refused["inbound_full"] >= 300  # the last wave, all of it
    finally:
        stop.set()
        await sampler
        await close_all(held)
    await async_wait_until(lambda: cast(P2P, node.p2p).slots.held == 0, what="slots given back")
    assert node.p2p.slots.pending == 0


async def test_per_ip_limits_hold_for_a_peer_on_another_host(node: Node) -> None:
    assert node.p2p is not None
    cfg = node.p2p.cfg
    peers: list[TestPeer] = []
    held: list[TestPeer] = []
    try:
        for _ in range(cfg.max_inbound_per_ip):  # waves until none gets in
            wave = await burst(node, 40, local_ip=OTHER_HOST)
            peers += wave
            got = [p for p in wave if p.authed and not p.is_closed]
            assert len(got) <= cfg.max_pending_per_ip
            held = [p for p in held if not p.is_closed] + got
            if not got:
                break
        assert len(held) == cfg.max_inbound_per_ip
        assert node.p2p.peak_inbound_peers == cfg.max_inbound_per_ip
        for p in held:
            await p.sync_with_ping()
        assert {p.ip for p in node.p2p.peers.values()} == {OTHER_HOST}
        assert not any(p.same_host for p in node.p2p.peers.values())
        assert node.p2p.refused["ip_pending_full"] + node.p2p.refused["ip_inbound_full"] > 0
        # A burst from this host is held only to the global limits.
        local = await burst(node, cfg.max_pending)
        try:
            assert sum(1 for p in local if p.authed and not p.is_closed) == cfg.max_pending
        finally:
            await close_all(local)
    finally:
        await close_all(peers)


async def test_a_dropped_peer_on_another_host_waits_before_coming_back(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    assert node.p2p is not None
    cooldown = node.p2p.cfg.reconnect_cooldown
    assert cooldown >= 5  # the redials below happen well within it
    async with TestPeer.for_node(node, local_ip=OTHER_HOST, chain_id="x") as first:
        await first.connect()
        await first.wait_disconnected()  # wrong chain: dropped, not banned
    # wrong_network does not start a cooldown (it is not misbehaviour): a
    # slow handshake does.
    async with TestPeer.for_node(node, local_ip=OTHER_HOST) as slow:
        await slow.connect(handshake=False)
        await slow.wait_disconnected(timeout=node.p2p.cfg.handshake_timeout + 10)
    attempts, refused = 0, 0
    for _ in range(50):
        attempts += 1
        try:
            async with TestPeer.for_node(node, local_ip=OTHER_HOST) as again:
                await again.connect()
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 503
            refused += 1
    assert refused == attempts
    assert node.p2p.refused["cooldown"] == attempts
    # One log line for the lot, not one per redial.
    assert len(events(caplog, "peer.refused", reason="cooldown")) == 1
    # A peer on this host is not held back by the other host's cooldown.
    async with TestPeer.for_node(node) as local:
        await local.connect()
        await local.sync_with_ping()


async def test_a_bad_auth_from_another_host_bans_its_ip_and_no_one_else(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    assert node.p2p is not None
    async with TestPeer.for_node(node) as honest:
        await honest.connect()
        await honest.sync_with_ping()
        honest_id = honest.hello.node_id
        async with TestPeer.for_node(node, local_ip=OTHER_HOST, node_id=honest_id) as impostor:
            await impostor.connect()
            await impostor.wait_disconnected()
        assert impostor.close_reason == "bad_auth"
        (record,) = events(caplog, "peer.banned", reason="bad_auth")
        assert record.fields["ip"] == OTHER_HOST  # type: ignore[attr-defined]
        assert record.fields["node"] == ""  # type: ignore[attr-defined]
        assert node.p2p.banned_ip(OTHER_HOST)
        assert not node.p2p.banned_node(honest_id)
        assert not node.p2p.banned_ip("127.0.0.1")
        # Refused before the WebSocket upgrade from then on.
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            async with TestPeer.for_node(node, local_ip=OTHER_HOST) as again:
                await again.connect()
        assert info.value.status == 403
        assert not honest.is_closed
        await honest.sync_with_ping()
