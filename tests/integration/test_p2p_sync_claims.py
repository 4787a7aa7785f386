"""A hello's height and work are claims: they make the node ask for headers
and nothing more. Sync follows what peers back with proof of work, and a
peer whose claim stays unbacked is dropped as stalling (not banned)."""

from __future__ import annotations

import pytest

from powernode.core.block import Block
from powernode.node import p2p_sync
from powernode.protocol.messages import Inv
from tests.harness.builder import ChainBuilder
from tests.harness.network import async_wait_until
from tests.harness.p2pnet import events, peer_by_listen
from tests.integration.test_p2p_hostile import Net, builder, ready
from tests.integration.test_p2p_hostile import (
    net as net,  # the fixture: a node with an honest peer
)

CLAIM_TIMEOUT_S = 3.0
# Far more work than any test chain: the node wants this peer's chain.
MUCH_WORK = (1 << 200).to_bytes(32, "big")


def _mined(net: Net, n: int) -> list[Block]:
    """``n`` blocks on the node's genesis, mined off-line: the node has none."""
    b = builder(net)
    try:
        return b.mine(n)
    finally:
        b.close()


@pytest.mark.parametrize("work", [MUCH_WORK, bytes(32)], ids=["more_work", "height_only"])
async def test_a_claimed_height_nobody_backs_steers_nothing_and_its_peer_is_dropped(
    net: Net, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, work: bytes
) -> None:
    """A peer claims a chain a million blocks high (with more work than
    ours, or none) and sends no headers: the node asks it for headers, but
    a block announced at its tip by another peer connects at once (no sync
    run), and once the claim's time is out the liar is dropped as
    ``stalling``, not banned, and the node is no longer ``syncing``."""
    monkeypatch.setattr(p2p_sync, "CLAIM_TIMEOUT_S", CLAIM_TIMEOUT_S)
    assert net.node.p2p is not None
    sync = net.node.p2p._sync
    chain = net.node.ledger.chain
    (block,) = _mined(net, 1)
    async with net.hostile(height=1_000_000, work=work) as liar:
        await liar.connect()
        await ready(net, liar)
        await liar.wait_for_message("getheaders")
        assert (await net.rpc.call("node.info"))["syncing"] is True
        async with net.hostile() as relay:
            relay.blocks = {block.hash: block.raw}
            await relay.connect()
            await ready(net, relay)
            await relay.send(Inv("block", [block.hash]))
            await async_wait_until(lambda: chain.height == 1, what="the announced block")
            assert sync.runs == 0 and events(caplog, "sync.run") == []
            assert sync.target_height < 1_000_000
            await liar.wait_disconnected(timeout=10 * CLAIM_TIMEOUT_S)
            node = liar.hello.node_id.hex()
            (dropped,) = events(caplog, "peer.dropped", node=node)
            assert dropped.fields["reason"] == "stalling"  # type: ignore[attr-defined]
            assert events(caplog, "peer.banned", node=node) == []
            assert not net.node.p2p.banned_node(liar.hello.node_id)
            await async_wait_until(
                lambda: peer_by_listen(net.node, liar.hello.listen) is None,
                what="the node to forget the liar",
            )
            assert (await net.rpc.call("node.info"))["syncing"] is False
            assert peer_by_listen(net.node, relay.hello.listen) is not None


async def test_a_claim_backed_by_headers_is_synced_and_its_peer_kept(
    net: Net, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer that claims 30 blocks and answers with their headers and
    blocks: the node syncs them (in runs: the headers set how far behind it
    is) and keeps the peer past the claim's time."""
    monkeypatch.setattr(p2p_sync, "CLAIM_TIMEOUT_S", CLAIM_TIMEOUT_S)
    assert net.node.p2p is not None
    sync = net.node.p2p._sync
    chain = net.node.ledger.chain
    blocks = _mined(net, 30)
    async with net.hostile(height=30, work=MUCH_WORK) as peer:
        peer.blocks = {blk.hash: blk.raw for blk in blocks}
        peer.headers = [blk.header.encode() for blk in blocks]
        await peer.connect()
        await ready(net, peer)
        await async_wait_until(lambda: chain.height == 30, what="the 30 blocks")
        assert sync.runs >= 1 and sync.target_height == 30
        # The claim is settled as backed (at a tick): the peer is never
        # dropped for it.
        await async_wait_until(lambda: not sync._claims, what="the claim to be settled")
        assert not peer.is_closed
        assert peer_by_listen(net.node, peer.hello.listen) is not None
    assert events(caplog, "peer.dropped", node=peer.hello.node_id.hex()) == []


async def _ignore(msg: object) -> None:
    return None


@pytest.mark.parametrize("answer", ["notfound", "silence"])
async def test_a_peer_that_never_sends_the_blocks_its_headers_announce_is_dropped(
    net: Net, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    """A peer backs its claim with 10 valid headers, then answers the node's
    requests for their blocks with ``notfound`` (or not at all): after two
    such rounds it is dropped as ``stalling``, not banned, and its headers
    stop steering the node: a block another peer announces at the tip then
    connects at once. The honest peer asked for them meanwhile (it never
    announced them) is not blamed for its ``notfound``."""
    monkeypatch.setattr(p2p_sync, "STALL_MS", 1_000)
    assert net.node.p2p is not None and net.honest.p2p is not None
    sync = net.node.p2p._sync
    chain = net.node.ledger.chain
    announced = _mined(net, 10)
    other = ChainBuilder(net.genesis, net.tmp / "other")
    try:
        tip_block = other.next_block(miner=b"\x07" * 20)
    finally:
        other.close()
    async with net.hostile(height=10, work=MUCH_WORK) as liar:
        liar.headers = [blk.header.encode() for blk in announced]
        if answer == "silence":
            liar.on_getdata = _ignore  # type: ignore[method-assign]
        await liar.connect()
        await ready(net, liar)
        await liar.wait_disconnected(timeout=60)
        node = liar.hello.node_id.hex()
        (dropped,) = events(caplog, "peer.dropped", node=node)
        assert dropped.fields["reason"] == "stalling"  # type: ignore[attr-defined]
        assert events(caplog, "peer.banned", node=node) == []
        assert len([m for m in liar.messages("getdata") if m.kind == "block"]) >= 2  # type: ignore[attr-defined]
    await async_wait_until(
        lambda: peer_by_listen(net.node, liar.hello.listen) is None,
        what="the node to forget the liar",
    )
    assert chain.height == 0
    honest = net.honest.p2p.node_id.hex()
    assert events(caplog, "peer.dropped", node=honest) == []
    assert peer_by_listen(net.node, net.honest.p2p.listen) is not None
    await async_wait_until(lambda: sync.target_height == 0, what="the target to follow")
    async with net.hostile() as relay:
        relay.blocks = {tip_block.hash: tip_block.raw}
        await relay.connect()
        await ready(net, relay)
        await relay.send(Inv("block", [tip_block.hash]))
        await async_wait_until(lambda: chain.height == 1, what="the announced block")
    assert chain.tip.hash == tip_block.hash
    assert sync.runs == 0
