"""A node under attack from a scripted peer, while it keeps serving an honest one.

Each test starts a fresh node (P2P on, bans of 60 s) with an honest peer node
connected to it, then a ``TestPeer`` misbehaves in its own connection. The
node must drop it (and ban its proven node id when it proves misbehaviour;
every peer here is on the node's own host, so none is banned by IP), say why in its
log, list the ban, refuse the banned peer when it comes back, and still relay
its new blocks to the honest peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from powernode.client import build_transfer, endpoint_from_datadir
from powernode.core import encoding
from powernode.core.block import Block, decode_block, decode_header, make_block, make_header
from powernode.core.crypto import KeyPair
from powernode.core.merkle import merkle_root
from powernode.core.tx import Transaction, decode_tx
from powernode.devnet.datadir import free_port, write_genesis
from powernode.devnet.devchain import dev_genesis, solve
from powernode.node.node import Node
from powernode.node.p2p import P2P
from powernode.protocol.messages import (
    MAX_HEADERS,
    MAX_INV,
    PROTOCOL_VERSION,
    Addr,
    BlockMsg,
    GetData,
    GetHeaders,
    Headers,
    Inv,
    NotFound,
    TxMsg,
    Txs,
)
from tests.harness import TEST_CHAIN
from tests.harness.arpc import AsyncRpc
from tests.harness.builder import ChainBuilder
from tests.harness.network import async_wait_until, connect, sync_all
from tests.harness.p2pnet import events, p2p_datadir, peer_by_listen, start_node
from tests.harness.testpeer import TestPeer
from tests.unit.helpers import tx_to_obj

# Scripted peers abandon connections mid-handshake on purpose; a socket that
# aiohttp leaves to the garbage collector in that case can be reported (as a
# ResourceWarning raised from gc) during a later test's node start. Known and
# tracked in the issue note; every assertion of these tests still holds.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

BAN_SECONDS = 60
FUNDS = 1_000 * 1_000_000


@dataclass
class Net:
    node: Node  # the node under test
    honest: Node  # an honest peer node, dialled into ``node``
    rpc: AsyncRpc  # ``node``'s RPC
    genesis: Path
    tmp: Path
    user: KeyPair  # funded in genesis

    def hostile(self, *, key: KeyPair | None = None, **hello: Any) -> TestPeer:
        """A scripted peer for ``node`` with a node id of its own (``key``'s,
        fresh by default); advertises a listen address of its own unless
        told otherwise."""
        hello.setdefault("listen", f"127.0.0.1:{free_port()}")
        return TestPeer.for_node(self.node, key=key, **hello)


@pytest.fixture
async def net(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Net]:
    caplog.set_level(logging.INFO, logger="powernode")
    user = KeyPair.generate()
    genesis = write_genesis(
        tmp_path / "genesis.json", dev_genesis({user.address: FUNDS}, chain_id=TEST_CHAIN)
    )
    node = await start_node(p2p_datadir(tmp_path / "node", genesis, ban_seconds=BAN_SECONDS))
    honest: Node | None = None
    try:
        honest = await start_node(p2p_datadir(tmp_path / "honest", genesis))
        await connect(honest, node)
        async with AsyncRpc(endpoint_from_datadir(tmp_path / "node")) as rpc:
            yield Net(node, honest, rpc, genesis, tmp_path, user)
    finally:
        if honest is not None:
            await honest.stop()
        await node.stop()


# --- checks shared by the tests -------------------------------------------------


async def ready(net: Net, peer: TestPeer) -> None:
    """Connected, handshaken and registered by the node as a peer."""
    assert peer.remote is not None, "no hello from the node"
    assert peer.remote.genesis == net.node.ledger.chain.genesis.hash
    await peer.sync_with_ping()
    assert peer_by_listen(net.node, peer.hello.listen) is not None
    assert not peer.is_closed


async def banned_in_rpc(net: Net) -> set[str]:
    return {p["address"] for p in await net.rpc.call("peer.list") if p["direction"] == "banned"}


async def assert_banned(
    net: Net, caplog: pytest.LogCaptureFixture, peer: TestPeer, reason: str, *, code: int = 4001
) -> None:
    """``peer`` was banned by its proven node id, and by that alone: it is
    on the node's host, so its IP (every local node's) is not banned."""
    listen, node = peer.hello.listen, peer.hello.node_id.hex()
    # README, Peer protocol: 4001 and the fault's code, for a fault that bans
    # too (a frame over the size limit: 1009, from the WebSocket layer).
    assert await peer.wait_disconnected() == code
    if code == 4001:
        assert peer.close_reason == reason
    (record,) = events(caplog, "peer.banned", node=node)
    assert record.fields["reason"] == reason  # type: ignore[attr-defined]
    assert record.fields["ip"] == ""  # type: ignore[attr-defined]
    assert record.levelno == logging.WARNING
    assert record.fields["seconds"] == BAN_SECONDS  # type: ignore[attr-defined]
    assert net.node.p2p is not None and net.node.p2p.banned_node(peer.hello.node_id)
    assert not net.node.p2p.banned_ip("127.0.0.1")
    assert not net.node.p2p.banned_address(listen)
    listed = [p for p in net.node.p2p.peer_list() if p["direction"] == "banned"]
    assert [(p["kind"], p["address"]) for p in listed] == [("node", node)]
    assert 0 < int(listed[0]["banned_until_s"]) <= BAN_SECONDS  # type: ignore[call-overload]
    assert await banned_in_rpc(net) == {node}
    await async_wait_until(
        lambda: peer_by_listen(net.node, listen) is None, what="the node to forget the peer"
    )


async def assert_refused_when_back(
    net: Net, caplog: pytest.LogCaptureFixture, banned: TestPeer
) -> None:
    """A new connection proving the banned node id is closed, however polite
    it is (and whatever listen address it claims), and never becomes a peer."""
    node = banned.hello.node_id.hex()
    connected_before = len(events(caplog, "peer.connected", node=node))
    async with net.hostile(key=banned.key) as again:
        await again.connect()
        await again.wait_disconnected()
    assert "banned" in again.close_reason
    assert peer_by_listen(net.node, again.hello.listen) is None
    assert len(events(caplog, "peer.connected", node=node)) == connected_before


async def assert_still_serves(net: Net) -> None:
    """The node still mines and relays to its honest peer."""
    assert peer_by_listen(net.node, net.honest.p2p.listen) is not None  # type: ignore[union-attr]
    height = net.node.ledger.chain.height
    await net.node.mine_now(1)
    assert net.node.ledger.chain.height == height + 1
    await sync_all([net.node, net.honest], timeout=15)
    assert net.honest.p2p is not None and net.node.p2p is not None
    assert not net.node.p2p.banned_node(net.honest.p2p.node_id)


# --- blocks that prove misbehaviour ---------------------------------------------------


def with_txs(block: Block, txs: list[Transaction]) -> Block:
    """``block``'s header over other txs: tx_root recomputed, PoW re-solved."""
    fields = block.header.to_obj()
    fields[6] = merkle_root([tx.txid for tx in txs])  # tx_root
    return make_block(solve(make_header(*fields)), txs)


def tampered(tx: Transaction) -> Transaction:
    """``tx`` with one signature bit flipped, still a canonical encoding."""
    obj = tx_to_obj(tx)
    sig = bytearray(obj[6])
    sig[10] ^= 0x01
    obj[6] = bytes(sig)
    return decode_tx(encoding.encode(obj))


def builder(net: Net) -> ChainBuilder:
    return ChainBuilder(net.genesis, net.tmp / "builder")


# --- the tests ------------------------------------------------------------------------


async def test_honest_nodes_are_connected_both_ways(net: Net) -> None:
    assert net.node.p2p is not None and net.honest.p2p is not None
    assert peer_by_listen(net.node, net.honest.p2p.listen) is not None
    assert peer_by_listen(net.honest, net.node.p2p.listen) is not None
    assert await banned_in_rpc(net) == set()
    await assert_still_serves(net)


async def test_well_behaved_test_peer_is_served(net: Net) -> None:
    async with net.hostile() as peer:
        await peer.connect()
        await ready(net, peer)
        assert peer.remote is not None and peer.remote.height == net.node.ledger.chain.height
        await net.node.mine_now(1)
        tip = net.node.ledger.chain.tip.hash
        # A block mined here is sent whole at once, never announced by hash.
        pushed = await peer.wait_for_message("block")
        assert decode_block(pushed.raw).hash == tip  # type: ignore[attr-defined]
        assert Inv("block", [tip]) not in peer.messages("inv")
        # It answers what we ask for.
        await peer.send(GetHeaders([net.node.ledger.chain.genesis.hash], bytes(32)))
        headers = await peer.wait_for_message("headers")
        assert [decode_header(h).hash for h in headers.headers] == [tip]  # type: ignore[attr-defined]
        await peer.send(GetData("block", [tip, b"\x00" * 32]))
        await peer.wait_for(lambda: len(peer.messages("block")) == 2, what="the block asked for")
        assert decode_block(peer.messages("block")[1].raw).hash == tip  # type: ignore[attr-defined]
        assert await peer.wait_for_message("notfound") == NotFound("block", [b"\x00" * 32])
    await assert_still_serves(net)


async def test_wrong_genesis_is_dropped_not_banned(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    async with net.hostile(genesis=b"\xee" * 32) as peer:
        await peer.connect()
        await peer.wait_disconnected()
        assert peer.remote is None  # refused before the node says a word
        assert peer.close_reason == "wrong_network"
    listen = peer.hello.listen
    (record,) = events(caplog, "peer.dropped", reason="wrong_network")
    assert "genesis" in record.fields["msg"]  # type: ignore[attr-defined]
    assert events(caplog, "peer.banned") == []
    assert net.node.p2p is not None and not net.node.p2p.banned_node(peer.hello.node_id)
    assert await banned_in_rpc(net) == set()
    assert peer_by_listen(net.node, listen) is None
    # Not punished: back with the right genesis, it is a peer like any other.
    async with net.hostile(key=peer.key, listen=listen) as back:
        await back.connect()
        await ready(net, back)
    await assert_still_serves(net)


async def test_other_chain_is_dropped_not_banned(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    async with net.hostile(chain_id="another-chain") as peer:
        await peer.connect()
        await peer.wait_disconnected()
    assert len(events(caplog, "peer.dropped", reason="wrong_network")) == 1
    assert peer.close_reason == "wrong_network"
    assert peer.remote is None  # the dialler speaks first: we learn nothing of the node
    assert events(caplog, "peer.banned") == []
    assert await banned_in_rpc(net) == set()
    await assert_still_serves(net)


@pytest.mark.parametrize("version", [1, 3, 99])
async def test_other_protocol_version_is_refused_with_the_reason(
    net: Net, caplog: pytest.LogCaptureFixture, version: int
) -> None:
    async with net.hostile(version=version) as peer:
        await peer.connect()
        await peer.wait_disconnected()
    (record,) = events(caplog, "peer.refused", reason="version_mismatch")
    assert record.fields["ours"] == PROTOCOL_VERSION == 2  # type: ignore[attr-defined]
    assert record.fields["theirs"] == version  # type: ignore[attr-defined]
    # The refusal reaches the peer too, in the WebSocket close frame.
    assert peer.close_reason == f"version_mismatch ours=2 theirs={version}"
    assert events(caplog, "peer.banned") == [] and events(caplog, "peer.dropped") == []
    assert await banned_in_rpc(net) == set()
    await assert_still_serves(net)


async def test_a_version_1_hello_is_refused_not_taken_as_malformed(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    """A node of protocol 1 dials with a hello of 8 fields and a 16-byte node
    id: refused for its version, never banned as malformed."""
    chain = net.node.ledger.chain
    v1 = encoding.encode(
        [
            "hello",
            1,
            chain.params.chain_id,
            chain.genesis.hash,
            0,
            bytes(32),
            "",
            os.urandom(16),
            "old/1",
        ]
    )
    async with net.hostile() as peer:
        await peer.connect(handshake=False)
        await peer.send_raw(v1)
        await peer.wait_disconnected()
    (record,) = events(caplog, "peer.refused", reason="version_mismatch")
    assert record.fields["theirs"] == 1  # type: ignore[attr-defined]
    assert events(caplog, "peer.banned") == []
    assert peer.received == []  # the new side never sent it a frame it cannot read


async def test_connection_to_itself_is_dropped(net: Net, caplog: pytest.LogCaptureFixture) -> None:
    assert net.node.p2p is not None
    async with net.hostile(node_id=net.node.p2p.node_id) as peer:
        await peer.connect()
        await peer.wait_disconnected()
    (record,) = events(caplog, "peer.dropped", reason="wrong_network")
    assert "ourselves" in record.fields["msg"]  # type: ignore[attr-defined]
    assert events(caplog, "peer.banned") == []
    await assert_still_serves(net)


async def test_oversize_frame_is_banned(net: Net, caplog: pytest.LogCaptureFixture) -> None:
    assert net.node.p2p is not None
    limit = net.node.p2p.cfg.max_frame_bytes
    async with net.hostile() as peer:
        await peer.connect()
        await ready(net, peer)
        # The node refuses the frame on its header, so our send may be cut short.
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            await peer.send(BlockMsg(b"\x00" * limit))
        await assert_banned(net, caplog, peer, "oversize_frame", code=1009)
        assert peer.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    await assert_refused_when_back(net, caplog, peer)
    await assert_still_serves(net)


async def test_malformed_msgpack_is_banned(net: Net, caplog: pytest.LogCaptureFixture) -> None:
    async with net.hostile() as peer:
        await peer.connect()
        await ready(net, peer)
        await peer.send_raw(b"\xc1\x92\xa4ping")
        await assert_banned(net, caplog, peer, "malformed_frame")
    await assert_refused_when_back(net, caplog, peer)
    await assert_still_serves(net)


async def test_text_frame_is_banned(net: Net, caplog: pytest.LogCaptureFixture) -> None:
    async with net.hostile() as peer:
        await peer.connect()
        await ready(net, peer)
        await peer.send_text('["ping", 1]')
        await assert_banned(net, caplog, peer, "malformed_frame")
    await assert_still_serves(net)


async def test_second_hello_is_banned(net: Net, caplog: pytest.LogCaptureFixture) -> None:
    async with net.hostile() as peer:
        await peer.connect()
        await ready(net, peer)
        await peer.send(peer.hello)
        await assert_banned(net, caplog, peer, "unexpected_message")
    await assert_still_serves(net)


async def test_block_bytes_that_do_not_decode_are_malformed_frame(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    """A block frame whose bytes are no block breaks the message's shape, as
    a tx's do: malformed_frame, whatever the block decoder called it."""
    async with net.hostile() as peer:
        await peer.connect()
        await ready(net, peer)
        await peer.send(BlockMsg(bytes(range(200))))
        await assert_banned(net, caplog, peer, "malformed_frame")
    await assert_still_serves(net)


async def test_block_with_bad_pow_is_banned(net: Net, caplog: pytest.LogCaptureFixture) -> None:
    b = builder(net)
    try:
        good = b.next_block()
    finally:
        b.close()
    bad = make_block(solve(good.header, want_valid=False), good.txs)
    async with net.hostile() as peer:
        await peer.connect()
        await ready(net, peer)
        await peer.send(BlockMsg(bad.raw))
        await assert_banned(net, caplog, peer, "bad_pow")
    assert net.node.ledger.chain.height == 0
    assert bad.hash not in net.node.ledger.chain.index
    await assert_refused_when_back(net, caplog, peer)
    await assert_still_serves(net)


async def test_block_with_bad_signature_is_banned(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    tx = build_transfer(
        net.user, chain_id=net.node.ledger.params.chain_id, nonce=0, to=os.urandom(20), amount=5
    )
    b = builder(net)
    try:
        good = b.next_block([tx])
    finally:
        b.close()
    bad = with_txs(good, [tampered(tx)])
    # Everything but the signature holds: PoW, tx root, size; same effects on state.
    bad.header.check_pow()
    assert bad.header.tx_root == merkle_root(bad.txids()) != good.header.tx_root
    assert bad.header.state_root == good.header.state_root
    async with net.hostile() as peer:
        await peer.connect()
        await ready(net, peer)
        await peer.send(BlockMsg(bad.raw))
        await assert_banned(net, caplog, peer, "bad_signature")
    assert events(caplog, "block.invalid", hash=bad.hash, reason="bad_signature")
    assert net.node.ledger.chain.height == 0
    await assert_refused_when_back(net, caplog, peer)
    await assert_still_serves(net)
    # The untampered tx is still good, and the honest block still connects.
    outcome, _ = net.node.accept_block(good)
    assert outcome == "side"  # our mined block came first; same height


async def test_tx_with_bad_signature_is_banned(net: Net, caplog: pytest.LogCaptureFixture) -> None:
    tx = build_transfer(
        net.user, chain_id=net.node.ledger.params.chain_id, nonce=0, to=os.urandom(20), amount=5
    )
    async with net.hostile() as peer:
        await peer.connect()
        await ready(net, peer)
        await peer.send(TxMsg(tampered(tx).raw))
        await assert_banned(net, caplog, peer, "bad_signature")
    assert len(net.node.ledger.mempool) == 0
    await assert_still_serves(net)


async def _ignore(msg: object) -> None:
    return None


async def test_tx_batch_with_one_bad_signature_is_banned(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    chain_id = net.node.ledger.params.chain_id
    good = build_transfer(net.user, chain_id=chain_id, nonce=0, to=os.urandom(20), amount=5)
    bad = tampered(
        build_transfer(net.user, chain_id=chain_id, nonce=1, to=os.urandom(20), amount=5)
    )
    async with net.hostile() as peer:
        await peer.connect()
        await ready(net, peer)
        await peer.send(Txs([good.raw, bad.raw]))
        await assert_banned(net, caplog, peer, "bad_signature")
    # The batch is judged tx by tx: the good one is kept.
    assert good.txid in net.node.ledger.mempool and bad.txid not in net.node.ledger.mempool
    await assert_still_serves(net)


async def test_tx_announced_by_two_peers_is_downloaded_once(net: Net) -> None:
    tx = build_transfer(
        net.user, chain_id=net.node.ledger.params.chain_id, nonce=0, to=os.urandom(20), amount=5
    )
    async with net.hostile() as first, net.hostile() as second:
        for p in (first, second):
            await p.connect()
            await ready(net, p)
        # The first announcer is asked, and is slow to answer: a second
        # announcer of the same tx is not asked as well meanwhile.
        first.on_getdata = _ignore  # type: ignore[method-assign]

        def asked(p: TestPeer) -> bool:
            return any(tx.txid in m.hashes for m in p.messages("getdata"))  # type: ignore[attr-defined]

        await first.send(Inv("tx", [tx.txid]))
        await first.wait_for(lambda: asked(first), what="a getdata for the tx")
        await second.send(Inv("tx", [tx.txid]))
        await second.sync_with_ping()
        assert not asked(second)
        # A peer that says it does not have the tx frees it to be asked elsewhere.
        await first.send(NotFound("tx", [tx.txid]))
        await first.sync_with_ping()
        await second.send(Inv("tx", [tx.txid]))
        await second.wait_for(lambda: asked(second), what="a getdata to the second peer")
        await second.send(TxMsg(tx.raw))
        await async_wait_until(
            lambda: tx.txid in net.node.ledger.mempool, what="the tx in the pool"
        )


async def test_inventory_flood_is_banned(net: Net, caplog: pytest.LogCaptureFixture) -> None:
    # Announce, over and over, a tx the node already has: each announcement
    # costs the node next to nothing, so what stops us is the rate limit (a
    # bucket of 50,000 hashes refilled at 20,000 a second), not the node's speed.
    tx = build_transfer(
        net.user, chain_id=net.node.ledger.params.chain_id, nonce=0, to=os.urandom(20), amount=5
    )
    [(txid, err)] = await net.node.submit_txs([tx])
    assert err is None and txid == tx.txid
    spam = Inv("tx", [tx.txid] * MAX_INV)
    async with net.hostile() as peer:
        await peer.connect()
        await ready(net, peer)
        for _ in range(200):
            if peer.is_closed:
                break
            try:
                await peer.send(spam)
            except (ConnectionError, aiohttp.ClientError):
                break
        await assert_banned(net, caplog, peer, "flood")
        assert peer.messages("getdata") == []  # it never had to ask for anything
    await assert_refused_when_back(net, caplog, peer)
    await assert_still_serves(net)
    # The announced tx went into the block the honest peer now has.
    assert net.honest.ledger.chain.get_block(net.honest.ledger.chain.tip.hash).txids() == [tx.txid]


async def test_slow_handshake_is_dropped_not_banned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="powernode")
    genesis = write_genesis(tmp_path / "genesis.json", dev_genesis({}, chain_id=TEST_CHAIN))
    node = await start_node(p2p_datadir(tmp_path / "node", genesis, handshake_timeout=1))
    try:
        async with TestPeer.for_node(node) as peer:
            await peer.connect(handshake=False)
            # The dialler speaks first, and we never do.
            await peer.wait_disconnected()
            assert peer.received == []
            assert peer.close_reason == "handshake_timeout"
        assert node.p2p is not None
        assert events(caplog, "peer.banned") == []
        assert [p for p in node.p2p.peer_list() if p["direction"] == "banned"] == []
        assert node.p2p.peers == {}
    finally:
        await node.stop()


async def banned_for_a_bad_frame(net: Net, caplog: pytest.LogCaptureFixture) -> TestPeer:
    """A hostile peer that sent a malformed frame and was banned for it
    (``assert_banned``); its key comes back in the tests that follow."""
    async with net.hostile() as peer:
        await peer.connect()
        await ready(net, peer)
        await peer.send_raw(b"\xc1")
        await assert_banned(net, caplog, peer, "malformed_frame")
    return peer


async def test_ban_ends_and_unban_lets_the_peer_back(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    peer = await banned_for_a_bad_frame(net, caplog)
    node = peer.hello.node_id.hex()
    assert await net.rpc.call("peer.unban", {"node_id": node}) == {"unbanned": True}
    assert await net.rpc.call("peer.unban", {"node_id": node}) == {"unbanned": False}
    assert node not in await banned_in_rpc(net)
    async with net.hostile(key=peer.key) as back:
        await back.connect()
        await ready(net, back)


async def test_a_ban_starts_the_cooldown_too(net: Net, caplog: pytest.LogCaptureFixture) -> None:
    """A ban that ends before the cooldown (a ban_seconds set below
    reconnect_cooldown) does not let the peer straight back; peer.unban,
    the operator's word, does."""
    peer = await banned_for_a_bad_frame(net, caplog)
    assert net.node.p2p is not None
    # The ban's time runs out (here: taken away as its expiry would).
    assert net.node.p2p.bans.unban_node(peer.hello.node_id)
    async with net.hostile(key=peer.key) as back:
        await back.connect()
        assert await back.wait_disconnected() == 4000
        assert back.close_reason == "cooldown"
    assert await net.rpc.call("peer.unban", {"node_id": peer.hello.node_id.hex()}) == {
        "unbanned": False
    }
    async with net.hostile(key=peer.key) as again:
        await again.connect()
        await ready(net, again)


async def test_peer_disconnected_says_why_we_hung_up(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    async with net.hostile() as peer:
        await peer.connect()
        await ready(net, peer)
        node = peer.hello.node_id.hex()
        assert await net.rpc.call("peer.ban", {"node_id": node, "seconds": 60})
        assert await peer.wait_disconnected() == 4003
    await async_wait_until(
        lambda: events(caplog, "peer.disconnected", node=node), what="peer.disconnected"
    )
    (gone,) = events(caplog, "peer.disconnected", node=node)
    assert gone.fields["reason"] == "banned"  # type: ignore[attr-defined]
    (banned,) = events(caplog, "peer.banned", node=node)
    assert banned.fields["reason"] == "manual"  # type: ignore[attr-defined]


async def test_headers_with_bad_pow_are_banned(net: Net, caplog: pytest.LogCaptureFixture) -> None:
    b = builder(net)
    try:
        good = b.next_block()
    finally:
        b.close()
    bad = solve(good.header, want_valid=False)
    async with net.hostile() as peer:
        await peer.connect()
        await ready(net, peer)
        await peer.send(Headers([bad.encode()]))
        answered = await peer.ping_or_disconnect()
        asked = [m for m in peer.messages("getdata") if bad.hash in m.hashes]  # type: ignore[attr-defined]
        assert not answered, f"still connected; the node asked for the block: {bool(asked)}"
        await assert_banned(net, caplog, peer, "bad_pow")
    await assert_still_serves(net)


async def test_impostor_with_the_honest_peers_id_and_address_changes_nothing(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 5: a stranger copies the honest peer's node id and listen
    address from its hello, then sends a junk frame. It cannot sign for
    that id, so it never becomes a peer, never replaces the honest peer's
    connection, and gets nobody but itself cut off."""
    assert net.honest.p2p is not None and net.node.p2p is not None
    honest_id, honest_listen = net.honest.p2p.node_id, net.honest.p2p.listen
    honest_peer = peer_by_listen(net.node, honest_listen)
    assert honest_peer is not None
    async with net.hostile(node_id=honest_id, listen=honest_listen) as impostor:
        await impostor.connect()  # signs with its own key, not the honest one's
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            await impostor.send_raw(b"\xc1")
        await impostor.wait_disconnected()
    assert impostor.close_reason == "bad_auth"
    assert len(events(caplog, "peer.dropped", reason="bad_auth")) == 1  # same host: no IP ban
    assert events(caplog, "peer.banned") == []
    assert not net.node.p2p.banned_node(honest_id)
    assert not net.node.p2p.banned_address(honest_listen)
    assert await banned_in_rpc(net) == set()
    # The very same connection, never replaced.
    assert peer_by_listen(net.node, honest_listen) is honest_peer
    assert [p for p in net.node.p2p.peers.values() if p.node_id == honest_id] == [honest_peer]
    await assert_still_serves(net)


async def test_headers_that_do_not_connect_are_not_downloaded(net: Net) -> None:
    g = net.node.ledger.chain.genesis.header
    unconnected = [
        make_header(
            g.version, 1, os.urandom(32), g.timestamp, g.target, 0, bytes(32), bytes(32), bytes(20)
        )
        for _ in range(MAX_HEADERS)
    ]
    async with net.hostile() as peer:
        await peer.connect()
        await ready(net, peer)
        await peer.send(Headers([h.encode() for h in unconnected]))
        await peer.sync_with_ping()
        hostile = peer_by_listen(net.node, peer.hello.listen)
        assert hostile is not None
        asked = {h for m in peer.messages("getdata") for h in m.hashes}  # type: ignore[attr-defined]
        assert asked.isdisjoint(h.hash for h in unconnected)
        assert len(hostile.to_fetch) + len(hostile.in_flight) == 0
    await assert_still_serves(net)


async def test_ten_unconnecting_header_batches_in_a_row_are_tolerated_the_11th_bans(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    # README, Catching up: "up to 10 such batches in a row; the 11th bans
    # the peer (`unconnecting_headers`)".
    g = net.node.ledger.chain.genesis.header

    def batch() -> Headers:
        h = make_header(
            g.version, 1, os.urandom(32), g.timestamp, g.target, 0, bytes(32), bytes(32), bytes(20)
        )
        return Headers([h.encode()])

    async with net.hostile() as peer:
        await peer.connect()
        await ready(net, peer)
        for _ in range(10):
            await peer.send(batch())
        assert await peer.ping_or_disconnect(), "dropped within the 10 tolerated batches"
        await peer.send(batch())
        assert not await peer.ping_or_disconnect()
        await assert_banned(net, caplog, peer, "unconnecting_headers")
    await assert_still_serves(net)


async def test_silent_addresses_do_not_hold_outbound_slots(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="powernode")
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept the TCP connection, never answer the upgrade

    servers = [await asyncio.start_server(silent, "127.0.0.1", 0) for _ in range(2)]
    genesis = write_genesis(tmp_path / "genesis.json", dev_genesis({}, chain_id=TEST_CHAIN))
    node = await start_node(
        p2p_datadir(tmp_path / "node", genesis, max_outbound=2, handshake_timeout=1)
    )
    other: Node | None = None
    try:
        other = await start_node(p2p_datadir(tmp_path / "other", genesis))
        assert node.p2p is not None and other.p2p is not None
        async with TestPeer.for_node(node) as peer:
            await peer.connect()
            await peer.send(Addr([f"127.0.0.1:{s.sockets[0].getsockname()[1]}" for s in servers]))
            await peer.sync_with_ping()
        await async_wait_until(lambda: len(held) == 2, what="the node to dial both addresses")
        node.p2p.add_address(other.p2p.listen)
        await async_wait_until(
            lambda: peer_by_listen(node, cast(P2P, other.p2p).listen),
            # Held forever, the slots would never free; 15 s leaves a busy
            # box room for the 1 s handshake timeout and a maintenance pass.
            timeout=15,
            what="the node to dial a good address",
        )
    finally:
        if other is not None:
            await other.stop()
        await node.stop()
        for w in held:
            w.close()
        for s in servers:
            s.close()
            await s.wait_closed()
