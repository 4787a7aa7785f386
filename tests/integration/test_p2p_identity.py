"""Node ids that the handshake proves, and what rests on them: a stable key
in the data dir, one connection per proven id, operator bans by address or
id that keep a link cut, and claimed addresses checked by a dial-back.
Real nodes and real sockets on 127.0.0.1."""

from __future__ import annotations

import contextlib
import logging
import stat
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from powernode.client import RpcError, endpoint_from_datadir
from powernode.core.crypto import KeyPair
from powernode.core.errors import ConfigError
from powernode.devnet.datadir import free_port, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.node.node import Node
from powernode.node.p2p import P2P
from powernode.node.p2p_key import load_or_create_p2p_key
from powernode.protocol.messages import Addr, GetAddr
from tests.harness import TEST_CHAIN
from tests.harness.arpc import AsyncRpc
from tests.harness.network import async_wait_until, connect, linked
from tests.harness.p2pnet import events, p2p_datadir, peer_by_listen, start_node
from tests.harness.testpeer import TestPeer


@dataclass
class Pair:
    a: Node
    b: Node  # dialled a
    rpc: AsyncRpc  # a's


@pytest.fixture
async def pair(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Pair]:
    caplog.set_level(logging.INFO, logger="powernode")
    genesis = write_genesis(tmp_path / "genesis.json", dev_genesis({}, chain_id=TEST_CHAIN))
    a = await start_node(p2p_datadir(tmp_path / "a", genesis))
    b: Node | None = None
    try:
        b = await start_node(p2p_datadir(tmp_path / "b", genesis))
        await connect(b, a)
        async with AsyncRpc(endpoint_from_datadir(tmp_path / "a")) as rpc:
            yield Pair(a, b, rpc)
    finally:
        if b is not None:
            await b.stop()
        await a.stop()


def p2p(node: Node) -> P2P:
    assert node.p2p is not None
    return node.p2p


async def test_the_node_id_is_a_key_of_its_own_kept_in_the_data_dir(tmp_path: Path) -> None:
    genesis = write_genesis(tmp_path / "genesis.json", dev_genesis({}, chain_id=TEST_CHAIN))
    datadir = p2p_datadir(tmp_path / "n", genesis)
    assert not (datadir / "p2p.key").exists()
    node = await start_node(datadir)
    first = p2p(node).node_id
    await node.stop()
    key_file = datadir / "p2p.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_or_create_p2p_key(key_file).pubkey == first
    assert len(first) == 32
    # Not the account key.
    node_key = KeyPair.from_seed(bytes.fromhex((datadir / "node.key").read_text().strip()))
    assert node_key.pubkey != first
    node = await start_node(datadir)  # the same id after a restart
    try:
        assert p2p(node).node_id == first
    finally:
        await node.stop()
    key_file.write_text("not a key\n")
    with pytest.raises(ConfigError, match=r"p2p\.key"):
        load_or_create_p2p_key(key_file)


async def test_peer_list_shows_proven_ids_and_ips(pair: Pair) -> None:
    peers = [p for p in await pair.rpc.call("peer.list") if p["direction"] != "banned"]
    (b,) = peers
    assert b["node_id"] == p2p(pair.b).node_id.hex()
    assert b["ip"] == "127.0.0.1" and b["same_host"] is True
    assert b["listen"] == p2p(pair.b).listen


async def test_a_proven_duplicate_leaves_the_established_connection(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    """Another connection that does prove b's id (it holds b's key): b dialled
    a already, so of the two a keeps the one b dialled first, untouched."""
    established = peer_by_listen(pair.a, p2p(pair.b).listen)
    assert established is not None
    b_key = p2p(pair.b).key
    async with TestPeer.for_node(pair.a, key=b_key, listen=p2p(pair.b).listen) as again:
        await again.connect()
        await again.wait_disconnected()
    assert again.close_reason == "duplicate_connection"
    assert events(caplog, "peer.refused", reason="duplicate_connection")
    assert peer_by_listen(pair.a, p2p(pair.b).listen) is established
    assert events(caplog, "peer.banned") == []
    assert linked(pair.a, pair.b) and linked(pair.b, pair.a)


async def test_rpc_ban_by_address_cuts_the_link_and_keeps_it_cut(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    """What the partition harness and the soak script do: ban the other
    node's address over RPC, see the link go and stay gone while the other
    side keeps redialling, unban, see it back."""
    b_listen, b_id = p2p(pair.b).listen, p2p(pair.b).node_id
    got = await pair.rpc.call("peer.ban", {"address": b_listen, "seconds": 600})
    assert got == {"banned": b_listen, "seconds": 600, "nodes": [b_id.hex()]}
    await async_wait_until(
        lambda: not linked(pair.a, pair.b) and not linked(pair.b, pair.a), what="link cut"
    )
    # b redials a (a is in its address book), and is refused by its proven
    # id each time, twice at least.
    await async_wait_until(
        lambda: len(events(caplog, "peer.refused", node=b_id.hex(), reason="banned")) >= 2,
        timeout=30,
        what="b's redials refused",
    )
    assert not linked(pair.a, pair.b)
    assert p2p(pair.a).banned_node(b_id) and p2p(pair.a).banned_address(b_listen)
    banned = [p for p in await pair.rpc.call("peer.list") if p["direction"] == "banned"]
    assert {(p["kind"], p["address"]) for p in banned} == {
        ("node", b_id.hex()),
        ("address", b_listen),
    }
    assert await pair.rpc.call("peer.unban", {"address": b_listen}) == {"unbanned": True}
    assert not p2p(pair.a).banned_node(b_id)
    await async_wait_until(
        lambda: linked(pair.a, pair.b) and linked(pair.b, pair.a), timeout=90, what="link back"
    )


async def test_rpc_ban_by_node_id(pair: Pair) -> None:
    b_id = p2p(pair.b).node_id.hex()
    got = await pair.rpc.call("peer.ban", {"node_id": b_id, "seconds": 60})
    assert got == {"banned": b_id, "seconds": 60, "nodes": [b_id]}
    await async_wait_until(lambda: not linked(pair.a, pair.b), what="link cut")
    assert await pair.rpc.call("peer.unban", {"node_id": b_id}) == {"unbanned": True}


async def test_rpc_unban_lifts_an_ip_ban(pair: Pair) -> None:
    """An IP ban (a misbehaving peer on another host; ``kind`` ``ip`` in
    ``peer.list``) is lifted by ``peer.unban`` with ``ip``."""
    bans = p2p(pair.a).bans
    bans.ban_ip("10.9.9.9", time.monotonic() + 60)
    listed = {
        (p["kind"], p["address"])
        for p in await pair.rpc.call("peer.list")
        if p["direction"] == "banned"
    }
    assert ("ip", "10.9.9.9") in listed
    assert await pair.rpc.call("peer.unban", {"ip": "10.9.9.9"}) == {"unbanned": True}
    assert not bans.ip("10.9.9.9", time.monotonic())
    assert await pair.rpc.call("peer.unban", {"ip": "10.9.9.9"}) == {"unbanned": False}
    with pytest.raises(RpcError) as err:
        await pair.rpc.call("peer.unban", {"ip": "10.9.9"})
    assert err.value.code == -32602


async def test_close_frames_say_refused_protocol_fault_or_banned(pair: Pair) -> None:
    # README, "Peer protocol": the close code says why we hung up: 4001 for
    # a hello of another version, 4003 for a node id under a ban (after its
    # auth), with the reason as text.
    old = TestPeer.for_node(pair.a, version=1)
    async with old:
        await old.connect()
        assert await old.wait_disconnected() == 4001
        assert old.close_reason == "version_mismatch ours=2 theirs=1"
    key = KeyPair.generate()
    got = await pair.rpc.call("peer.ban", {"node_id": key.pubkey.hex(), "seconds": 60})
    assert got["banned"] == key.pubkey.hex()
    banned = TestPeer.for_node(pair.a, key=key)
    async with banned:
        await banned.connect()
        assert await banned.wait_disconnected() == 4003
        assert banned.close_reason == "banned"


async def test_the_address_book_holds_at_most_1000_learned_addresses(pair: Pair) -> None:
    # README, Addresses: "at most 1,000 addresses: once full, addresses
    # learned from `addr` ... are not taken (those of `peers` and `peer.add`
    # always are)"; entries that are not host:port with a numeric port are
    # skipped.
    net = p2p(pair.a)
    room = 1_000 - len(net.addrbook)
    peer = TestPeer.for_node(pair.a)
    async with peer:
        await peer.connect()
        learned = [f"127.0.9.{i // 250}:{20_000 + i}" for i in range(room + 5)]
        bad = ["nonsense", "127.0.0.1:port", "127.0.0.1:0", "evil\n127.0.0.1:1", "a b:1"]
        await peer.send(Addr([*bad, *learned[:900]]))
        await peer.send(Addr(learned[900:]))
        await peer.sync_with_ping()
    assert not set(bad) & set(net.addrbook)
    assert len(net.addrbook) == 1_000
    assert learned[room - 1] in net.addrbook and learned[room] not in net.addrbook
    got = await pair.rpc.call("peer.add", {"address": "127.0.9.99:1"})
    assert got is not None
    assert "127.0.9.99:1" in net.addrbook
    # README: peer.remove's `disconnected` is a bool (no connection to it here).
    removed = await pair.rpc.call("peer.remove", {"address": "127.0.9.99:1"})
    assert removed == {"removed": "127.0.9.99:1", "disconnected": False}


async def test_a_claimed_listen_address_is_checked_by_a_dial_back(
    pair: Pair, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """A peer with an id of its own claims the listen address of a third
    node, c. Once the claimant is gone, a dials that address once, finds
    c's id there, not the claimant's, and forgets it; it never passes the
    claim on. (b's own claim was noted when b dialled a, and is not
    replaced by anyone else's.)"""
    b_listen, b_id = p2p(pair.b).listen, p2p(pair.b).node_id
    assert p2p(pair.a).addrbook[b_listen].expect == b_id
    c = await start_node(p2p_datadir(tmp_path / "c", tmp_path / "genesis.json"))
    try:
        c_listen = p2p(c).listen
        # A claimed listen address that is not host:port is not taken.
        async with TestPeer.for_node(pair.a, listen="evil\n127.0.0.1:1") as liar:
            await liar.connect()
            await liar.sync_with_ping()
        assert "evil\n127.0.0.1:1" not in p2p(pair.a).addrbook
        async with TestPeer.for_node(pair.a, listen=c_listen) as claimant:
            await claimant.connect()
            await claimant.sync_with_ping()
            entry = p2p(pair.a).addrbook[c_listen]
            assert entry.expect == claimant.hello.node_id and not entry.verified
        async with TestPeer.for_node(pair.a, listen=b_listen) as other:
            await other.connect()
            await other.sync_with_ping()
        assert p2p(pair.a).addrbook[b_listen].expect == b_id
        await async_wait_until(
            lambda: events(caplog, "peer.refused", reason="dialback_mismatch"),
            timeout=30,
            what="the dial-back",
        )
        (refused,) = events(caplog, "peer.refused", reason="dialback_mismatch")
        assert refused.fields["node"] == p2p(c).node_id.hex()  # type: ignore[attr-defined]
        assert c_listen not in p2p(pair.a).addrbook
    finally:
        await c.stop()
    # The honest link is untouched, and nobody was banned.
    assert linked(pair.a, pair.b) and linked(pair.b, pair.a)
    assert events(caplog, "peer.banned") == []


async def test_addr_passes_on_claims_only_on_the_claimants_own_ip(pair: Pair) -> None:
    """What a gets told in ``hello`` reaches others in ``addr`` only when the
    claimed host is the IP the claimant connects from: a peer cannot point
    the network at someone else's IP. (Addresses a dialled itself go out.)"""
    own_ip = f"127.0.0.1:{free_port()}"
    elsewhere = f"127.0.0.3:{free_port()}"
    async with (
        TestPeer.for_node(pair.a, listen=own_ip) as honest_claim,
        TestPeer.for_node(pair.a, listen=elsewhere) as foreign_claim,
        TestPeer.for_node(pair.a) as asker,
    ):
        for p in (honest_claim, foreign_claim, asker):
            await p.connect()
            await p.sync_with_ping()
        await asker.send(GetAddr())
        addr = await asker.wait_for_message("addr")
        addrs = set(addr.addrs)  # type: ignore[attr-defined]
    assert own_ip in addrs and p2p(pair.b).listen in addrs
    assert elsewhere not in addrs


async def test_impostor_of_a_peer_we_dialled_changes_nothing(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 5 in the direction where it bit: b dialled a, so at b the link
    to a is outbound, and the old tie-break let an inbound impostor with a's
    node id and listen address replace it, then get a's address banned with
    a junk frame. Now the impostor cannot prove a's id."""
    a_id, a_listen = p2p(pair.a).node_id, p2p(pair.a).listen
    established = peer_by_listen(pair.b, a_listen)
    assert established is not None and established.direction == "out"
    async with TestPeer.for_node(pair.b, node_id=a_id, listen=a_listen) as impostor:
        await impostor.connect()
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            await impostor.send_raw(b"\xc1")
        await impostor.wait_disconnected()
    assert impostor.close_reason == "bad_auth"
    assert peer_by_listen(pair.b, a_listen) is established
    assert not p2p(pair.b).banned_node(a_id) and not p2p(pair.b).banned_address(a_listen)
    assert events(caplog, "peer.banned") == []
    assert linked(pair.a, pair.b) and linked(pair.b, pair.a)
