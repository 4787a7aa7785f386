"""The wire messages and the sans-I/O peer state machine, driven with bytes only.

No sockets: frames go in as ``bytes`` with an explicit clock (milliseconds),
and whatever the protocol wants to send is read back with ``data_to_send``.
"""

from __future__ import annotations

import os
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powernode.core import encoding
from powernode.core.crypto import KeyPair
from powernode.core.errors import (
    BadAuth,
    DecodeError,
    FloatNotAllowed,
    Flood,
    Malformed,
    OversizeFrame,
    ProtocolError,
    Unexpected,
    VersionMismatch,
    WrongNetwork,
)
from powernode.protocol.auth import ACCEPT, DIAL, auth_message, sign_auth
from powernode.protocol.messages import (
    MAX_ADDRS,
    MAX_HEADERS,
    MAX_INV,
    MAX_LOCATOR,
    PROTOCOL_VERSION,
    Addr,
    Auth,
    BlockMsg,
    GetAddr,
    GetData,
    GetHeaders,
    Headers,
    Hello,
    Inv,
    Message,
    NotFound,
    Ping,
    Pong,
    TxMsg,
    Txs,
    decode_message,
)
from powernode.protocol.peer import PeerProtocol

CHAIN = "unit-p2p"
GENESIS = bytes(range(32))
H1 = b"\x11" * 32
H2 = b"\x22" * 32


def hello(**changes: Any) -> Hello:
    fields: dict[str, Any] = {
        "version": PROTOCOL_VERSION,
        "chain_id": CHAIN,
        "genesis": GENESIS,
        "height": 7,
        "work": (1234).to_bytes(32, "big"),
        "listen": "127.0.0.1:9000",
        "node_id": os.urandom(32),
        "agent": "unit/1",
        "challenge": os.urandom(32),
    }
    fields.update(changes)
    return Hello(**fields)


def keyed_hello(key: KeyPair, **changes: Any) -> Hello:
    return hello(node_id=key.pubkey, **changes)


def pair(**kw: Any) -> tuple[PeerProtocol, PeerProtocol]:
    """A dialler and an acceptor, each with a key of its own, not started."""
    kd, ka = KeyPair.generate(), KeyPair.generate()
    d = PeerProtocol(local=keyed_hello(kd, listen="d:1"), key=kd, dialler=True, **kw)
    a = PeerProtocol(local=keyed_hello(ka, listen="a:2"), key=ka, dialler=False, **kw)
    return d, a


def shuttle(src: PeerProtocol, dst: PeerProtocol, now_ms: int = 0) -> list[Message]:
    out: list[Message] = []
    for f in src.data_to_send():
        out += dst.receive(f, now_ms)
    return out


def frame(*obj: Any) -> bytes:
    """A canonical frame of arbitrary content (no type checks of our own)."""
    return msgpack.packb(list(obj), use_bin_type=True)


def decoded(frames: list[bytes]) -> list[Message]:
    return [decode_message(f) for f in frames]


def handshaken(**kw: Any) -> PeerProtocol:
    """An acceptor that has finished a handshake at t=0 and has nothing
    queued: what is fed to it comes from the (proven) dialler."""
    d, a = pair(**kw)
    d.start()
    shuttle(d, a)  # hello
    shuttle(a, d)  # hello + auth
    shuttle(d, a)  # auth
    assert a.ready and d.ready
    assert a.data_to_send() == []
    return a


# --- messages ---------------------------------------------------------------

EVERY_MESSAGE: list[Message] = [
    hello(),
    Auth(b"\x01" * 64),
    hello(listen="", height=0, work=bytes(32), agent=""),
    Ping(0),
    Ping(2**64 - 1),
    Pong(42),
    Inv("tx", [H1, H2]),
    Inv("block", []),
    GetData("block", [H1]),
    GetData("tx", [H2] * MAX_INV),
    NotFound("tx", [H1]),
    TxMsg(b"\x97raw-tx"),
    TxMsg(b""),
    Txs([b"\x97raw-tx", b"\x97other"]),
    Txs([]),
    BlockMsg(b"\x92raw-block"),
    GetHeaders([H1, H2], bytes(32)),
    GetHeaders([], H2),
    Headers([b"h" * 100, b"g" * 512]),
    Headers([]),
    GetAddr(),
    Addr(["127.0.0.1:1", "[::1]:2"]),
    Addr([]),
]


@pytest.mark.parametrize("msg", EVERY_MESSAGE, ids=lambda m: m.name)
def test_round_trip(msg: Message) -> None:
    raw = msg.encode()
    assert raw == encoding.encode([msg.name, *msg.to_obj()[1:]])
    back = decode_message(raw)
    assert back == msg
    assert type(back) is type(msg)
    assert back.encode() == raw


def test_every_message_type_is_covered() -> None:
    names = {m.name for m in EVERY_MESSAGE}
    assert names == {
        cls.name for cls in (Hello, Ping, Pong, Inv, GetData, NotFound, TxMsg, BlockMsg, GetHeaders)
    } | {Headers.name, GetAddr.name, Addr.name, Txs.name, Auth.name}


def test_wire_form_is_name_then_fields() -> None:
    assert msgpack.unpackb(Ping(5).encode()) == ["ping", 5]
    assert msgpack.unpackb(GetAddr().encode()) == ["getaddr"]
    assert msgpack.unpackb(Inv("tx", [H1]).encode()) == ["inv", "tx", [H1]]


NOT_MSGPACK = [
    b"",
    b"\xc1",  # the one byte msgpack never uses
    b"\x92\xa4ping",  # truncated array
    Ping(1).encode() + b"\x00",  # trailing bytes
    b"\x92\xa4ping\xcd\x00\x01",  # 1 written as uint16: not canonical
    b"\x92\xd9\x04ping\x01",  # name as str8: not canonical
    msgpack.packb({"ping": 1}),  # a map
    msgpack.packb(["ping", 1.5]),  # a float
    msgpack.packb(["ping", msgpack.ExtType(1, b"x")]),  # an ext type
    b"\x91" * 10_000 + b"\x00",  # absurd nesting
    b"\xff" * 64,
]


@pytest.mark.parametrize("raw", NOT_MSGPACK, ids=range(len(NOT_MSGPACK)))
def test_bytes_that_are_not_a_canonical_frame(raw: bytes) -> None:
    with pytest.raises(Malformed) as info:
        decode_message(raw)
    assert info.value.code == "malformed_frame"
    assert info.value.bans_peer


@pytest.mark.parametrize(
    "raw",
    [
        frame(),  # empty array
        msgpack.packb("ping"),  # not an array
        msgpack.packb(7),
        frame(1, 2),  # name is not a string
        frame(b"ping", 1),  # name as bytes
        frame("x" * 17),  # name too long
    ],
)
def test_frame_shape(raw: bytes) -> None:
    with pytest.raises(Malformed):
        decode_message(raw)


@pytest.mark.parametrize("name", ["version", "verack", "Ping", "", "mempool", "reject"])
def test_unknown_message_name(name: str) -> None:
    with pytest.raises(Malformed, match="unknown message"):
        decode_message(frame(name, 1))


@pytest.mark.parametrize("msg", EVERY_MESSAGE, ids=lambda m: m.name)
def test_wrong_field_counts(msg: Message) -> None:
    obj = msg.to_obj()
    with pytest.raises(Malformed, match="fields"):
        decode_message(frame(*obj, 0))
    if len(obj) > 1:
        with pytest.raises(Malformed, match="fields"):
            decode_message(frame(*obj[:-1]))


def _hello_with(i: int, value: Any) -> bytes:
    obj = hello().to_obj()
    obj[1 + i] = value
    return frame(*obj)


WRONG_TYPES = {
    "hello version as str": _hello_with(0, "1"),
    "hello version negative": _hello_with(0, -1),
    "hello version bool": _hello_with(0, True),
    "hello chain_id as bytes": _hello_with(1, b"unit"),
    "hello chain_id too long": _hello_with(1, "c" * 65),
    "hello genesis short": _hello_with(2, b"\x00" * 31),
    "hello genesis as str": _hello_with(2, "00" * 32),
    "hello height nil": _hello_with(3, None),
    "hello work long": _hello_with(4, b"\x00" * 33),
    "hello listen too long": _hello_with(5, "h" * 129),
    "hello node_id long": _hello_with(6, b"\x00" * 33),
    "hello node_id short (version 1's)": _hello_with(6, b"\x00" * 16),
    "hello agent as int": _hello_with(7, 5),
    "hello challenge short": _hello_with(8, b"\x00" * 31),
    "auth signature short": frame("auth", b"\x00" * 63),
    "auth signature as str": frame("auth", "00" * 64),
    "ping nonce str": frame("ping", "1"),
    "ping nonce negative": frame("ping", -5),
    "pong nonce bytes": frame("pong", b"\x01"),
    "pong nonce list": frame("pong", [1]),
    "inv kind bytes": frame("inv", b"tx", [H1]),
    "inv hashes not a list": frame("inv", "tx", H1),
    "inv hash short": frame("inv", "tx", [H1[:31]]),
    "inv hash str": frame("inv", "tx", ["11" * 32]),
    "inv one short hash among good ones": frame("inv", "tx", [H1, H2, H1[:31]]),
    "inv one int among hashes": frame("inv", "tx", [H1, 7]),
    "txs entry not bytes": frame("txs", [b"raw", 5]),
    "txs entry too big": frame("txs", [b"raw", b"\x00" * (16 * 1024 + 1)]),
    "getdata hash long": frame("getdata", "block", [H1 + b"\x00"]),
    "notfound hashes nil": frame("notfound", "tx", None),
    "tx raw as str": frame("tx", "raw"),
    "tx too big": frame("tx", b"\x00" * (16 * 1024 + 1)),
    "block raw as list": frame("block", [b"raw"]),
    "getheaders locator not list": frame("getheaders", H1, H2),
    "getheaders stop short": frame("getheaders", [H1], b"\x00"),
    "headers entry not bytes": frame("headers", ["h"]),
    "headers entry too big": frame("headers", [b"h" * 513]),
    "headers not a list": frame("headers", b"h"),
    "addr entry not str": frame("addr", [b"127.0.0.1:1"]),
    "addr entry too long": frame("addr", ["a" * 129]),
}


@pytest.mark.parametrize("raw", WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_wrong_field_types(raw: bytes) -> None:
    with pytest.raises(Malformed) as info:
        decode_message(raw)
    assert info.value.code == "malformed_frame"


@pytest.mark.parametrize("name", ["inv", "getdata", "notfound"])
@pytest.mark.parametrize("kind", ["blk", "TX", "", "transact", "transaction", "filtered"])
def test_unknown_inventory_kind(name: str, kind: str) -> None:
    with pytest.raises(Malformed):
        decode_message(frame(name, kind, [H1]))


@pytest.mark.parametrize(
    ("raw", "limit"),
    [
        (frame("inv", "tx", [H1] * (MAX_INV + 1)), MAX_INV),
        (frame("getdata", "block", [H1] * (MAX_INV + 1)), MAX_INV),
        (frame("notfound", "tx", [H1] * (MAX_INV + 1)), MAX_INV),
        (frame("getheaders", [H1] * (MAX_LOCATOR + 1), H2), MAX_LOCATOR),
        (frame("headers", [b"h"] * (MAX_HEADERS + 1)), MAX_HEADERS),
        (frame("addr", ["127.0.0.1:1"] * (MAX_ADDRS + 1)), MAX_ADDRS),
    ],
    ids=["inv", "getdata", "notfound", "locator", "headers", "addr"],
)
def test_oversize_lists(raw: bytes, limit: int) -> None:
    with pytest.raises(OversizeFrame) as info:
        decode_message(raw)
    assert info.value.code == "oversize_frame"
    assert info.value.bans_peer
    assert str(limit) in info.value.message


def test_lists_at_their_limits_are_fine() -> None:
    assert len(decode_message(frame("inv", "tx", [H1] * MAX_INV)).hashes) == MAX_INV  # type: ignore[attr-defined]
    assert decode_message(frame("getheaders", [H1] * MAX_LOCATOR, H2))
    assert decode_message(frame("headers", [b"h"] * MAX_HEADERS))
    assert decode_message(frame("addr", ["a:1"] * MAX_ADDRS))


def test_the_readme_frame_bounds() -> None:
    # README, "Peer protocol", Frames: the figures a peer is held to.
    assert (MAX_INV, MAX_HEADERS, MAX_LOCATOR, MAX_ADDRS) == (5_000, 2_000, 64, 1_000)
    with pytest.raises(OversizeFrame):
        decode_message(frame("txs", [b"t"] * 2_001))
    assert len(decode_message(frame("txs", [b"t"] * 2_000)).raws) == 2_000  # type: ignore[attr-defined]
    assert decode_message(frame("tx", b"t" * 16 * 1024))
    too_long = [
        frame("tx", b"t" * (16 * 1024 + 1)),
        frame("txs", [b"t" * (16 * 1024 + 1)]),
        frame("headers", [b"h" * 513]),
        frame("addr", ["a" * 129]),
    ]
    for raw in too_long:
        with pytest.raises(Malformed):
            decode_message(raw)


def test_frame_over_max_bytes() -> None:
    raw = TxMsg(b"\x00" * 1000).encode()
    assert decode_message(raw, max_bytes=len(raw)) == TxMsg(b"\x00" * 1000)
    with pytest.raises(OversizeFrame) as info:
        decode_message(raw, max_bytes=len(raw) - 1)
    assert info.value.code == "oversize_frame"
    # The size is checked before parsing: garbage over the limit is oversize, not malformed.
    with pytest.raises(OversizeFrame):
        decode_message(b"\xc1" * 101, max_bytes=100)


def test_default_frame_limit_fits_the_largest_block() -> None:
    from powernode.core.block import HARD_MAX_BLOCK_BYTES
    from powernode.protocol.messages import MAX_FRAME_BYTES

    big = BlockMsg(b"\x00" * HARD_MAX_BLOCK_BYTES).encode()
    assert len(big) <= MAX_FRAME_BYTES
    assert decode_message(big) == BlockMsg(b"\x00" * HARD_MAX_BLOCK_BYTES)
    with pytest.raises(Malformed):
        decode_message(BlockMsg(b"\x00" * (HARD_MAX_BLOCK_BYTES + 1)).encode())
    with pytest.raises(OversizeFrame):
        decode_message(b"\x00" * (MAX_FRAME_BYTES + 1))


def test_error_codes_and_ban_flags() -> None:
    assert (Malformed.code, Malformed.bans_peer) == ("malformed_frame", True)
    assert (OversizeFrame.code, OversizeFrame.bans_peer) == ("oversize_frame", True)
    assert (WrongNetwork.code, WrongNetwork.bans_peer) == ("wrong_network", False)
    assert (Unexpected.code, Unexpected.bans_peer) == ("unexpected_message", True)
    assert (Flood.code, Flood.bans_peer) == ("flood", True)
    for cls in (Malformed, OversizeFrame, WrongNetwork, Unexpected, Flood):
        assert issubclass(cls, ProtocolError)


# --- handshake ---------------------------------------------------------------


def test_the_dialler_speaks_first_and_the_acceptor_waits() -> None:
    d, a = pair()
    a.start()
    assert a.data_to_send() == []
    d.start()
    d.start()
    assert decoded(d.data_to_send()) == [d.local]
    assert not d.ready and not a.ready


def test_two_protocols_shake_hands_and_prove_their_ids() -> None:
    d, a = pair()
    d.start()
    assert shuttle(d, a) == []  # hello: a answers with hello + auth
    assert a.remote == d.local and not a.ready
    frames = decoded(a.data_to_send())
    assert [m.name for m in frames] == ["hello", "auth"]
    for m in frames:
        assert d.receive(m.encode(), 0) == []
    assert d.ready and d.remote == a.local
    (auth,) = decoded(d.data_to_send())
    assert isinstance(auth, Auth)
    assert a.receive(auth.encode(), 0) == []
    assert a.ready and d.data_to_send() == [] and a.data_to_send() == []


def test_auth_layout() -> None:
    key = KeyPair.generate()
    msg = auth_message(
        chain_id="c",
        genesis=GENESIS,
        role=DIAL,
        signer=key.pubkey,
        other=H1,
        signer_challenge=H2,
        other_challenge=H1,
    )
    assert msgpack.unpackb(msg) == [
        "powernode/p2p-auth", "c", GENESIS, "dial", key.pubkey, H1, H2, H1
    ]  # fmt: skip


def _acceptor_waiting_for_auth() -> tuple[PeerProtocol, PeerProtocol, KeyPair]:
    """An acceptor that got the dialler's hello; the dialler's key."""
    kd, ka = KeyPair.generate(), KeyPair.generate()
    d = PeerProtocol(local=keyed_hello(kd), key=kd, dialler=True)
    a = PeerProtocol(local=keyed_hello(ka), key=ka, dialler=False)
    d.start()
    shuttle(d, a)
    a.data_to_send()
    return d, a, kd


def _signed(key: KeyPair, d: PeerProtocol, a: PeerProtocol, **changes: Any) -> bytes:
    fields: dict[str, Any] = {
        "chain_id": CHAIN,
        "genesis": GENESIS,
        "role": DIAL,
        "other": a.local.node_id,
        "signer_challenge": d.local.challenge,
        "other_challenge": a.local.challenge,
    }
    fields.update(changes)
    return Auth(sign_auth(key, **fields)).encode()


@pytest.mark.parametrize(
    "change",
    [
        {"role": ACCEPT},  # a proof made for the other role
        {"other": os.urandom(32)},  # for another node
        {"other_challenge": os.urandom(32)},  # an old challenge: a replay
        {"signer_challenge": os.urandom(32)},
        {"chain_id": "other"},
        {"genesis": H1},
    ],
    ids=["role", "other", "their_challenge", "our_challenge", "chain", "genesis"],
)
def test_an_auth_over_anything_else_is_bad_auth(change: dict[str, Any]) -> None:
    d, a, kd = _acceptor_waiting_for_auth()
    assert a.receive(_signed(kd, d, a), 0) == []  # the right one passes
    d, a, kd = _acceptor_waiting_for_auth()
    with pytest.raises(BadAuth) as info:
        a.receive(_signed(kd, d, a, **change), 0)
    assert info.value.code == "bad_auth" and info.value.bans_peer
    assert not a.ready


def test_a_claimed_id_without_its_key_is_bad_auth() -> None:
    d, a, _ = _acceptor_waiting_for_auth()
    with pytest.raises(BadAuth):
        a.receive(_signed(KeyPair.generate(), d, a), 0)
    assert not a.ready


def test_the_acceptors_auth_is_checked_by_the_dialler() -> None:
    d, a = pair()
    d.start()
    shuttle(d, a)
    hello_a, _ = a.data_to_send()
    d.receive(hello_a, 0)
    with pytest.raises(BadAuth):
        d.receive(Auth(b"\x00" * 64).encode(), 0)
    assert not d.ready and d.data_to_send() == []


@pytest.mark.parametrize("first", [Ping(1), Pong(1), Inv("tx", [H1]), GetAddr(), TxMsg(b"x")])
def test_nothing_but_hello_then_auth_before_the_handshake(first: Message) -> None:
    p = PeerProtocol(local=hello(), key=KeyPair.generate(), dialler=False)
    with pytest.raises(Unexpected) as info:
        p.receive(first.encode(), 0)
    assert info.value.code == "unexpected_message" and info.value.bans_peer
    assert p.remote is None
    _d, a, _ = _acceptor_waiting_for_auth()
    with pytest.raises(Unexpected, match="expected auth"):
        a.receive(first.encode(), 0)
    assert not a.ready


def test_malformed_first_frame() -> None:
    p = PeerProtocol(local=hello(), key=KeyPair.generate(), dialler=False)
    with pytest.raises(Malformed):
        p.receive(b"\xc1", 0)


def test_second_hello_and_second_auth_are_unexpected() -> None:
    p = handshaken()
    with pytest.raises(Unexpected, match="second hello"):
        p.receive(hello().encode(), 10)
    # Of another version too: misbehaviour (banned), not a version mismatch.
    p = handshaken()
    with pytest.raises(Unexpected, match="second hello"):
        p.receive(hello(version=9).encode(), 10)
    _d, a, _ = _acceptor_waiting_for_auth()
    with pytest.raises(Unexpected, match="second hello"):
        a.receive(hello(version=9).encode(), 10)
    p = handshaken()
    with pytest.raises(Unexpected, match="second auth"):
        p.receive(Auth(b"\x00" * 64).encode(), 10)


def test_nothing_may_be_sent_before_the_handshake() -> None:
    d, _a = pair()
    with pytest.raises(Unexpected):
        d.send(Ping(1))
    d.start()
    with pytest.raises(Unexpected):
        d.send(Inv("tx", [H1]))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"chain_id": "another-chain"}, "chain"),
        ({"chain_id": ""}, "chain"),
        ({"genesis": b"\xee" * 32}, "genesis"),
    ],
)
def test_hello_from_another_network(change: dict[str, Any], why: str) -> None:
    p = PeerProtocol(local=hello(), key=KeyPair.generate(), dialler=False)
    with pytest.raises(WrongNetwork, match=why) as info:
        p.receive(hello(**change).encode(), 0)
    assert info.value.code == "wrong_network"
    assert info.value.bans_peer is False
    assert p.remote is None and not p.ready and p.data_to_send() == []


@pytest.mark.parametrize("version", [0, 1, 3, 2**32])
def test_hello_of_another_version_is_refused_on_its_version(version: int) -> None:
    p = PeerProtocol(local=hello(), key=KeyPair.generate(), dialler=False)
    for raw in (
        hello(version=version).encode(),
        # Any layout at all after the version (version 1's had 8 fields).
        frame("hello", version, "x"),
        frame("hello", version),
    ):
        with pytest.raises(VersionMismatch) as info:
            p.receive(raw, 0)
        assert info.value.code == "version_mismatch" and not info.value.bans_peer
        assert (info.value.ours, info.value.theirs) == (PROTOCOL_VERSION, version)
    assert p.remote is None and p.data_to_send() == []


def test_talking_to_ourselves() -> None:
    local = hello()
    p = PeerProtocol(local=local, key=KeyPair.generate(), dialler=False)
    with pytest.raises(WrongNetwork, match="ourselves") as info:
        p.receive(hello(node_id=local.node_id).encode(), 0)
    assert info.value.bans_peer is False
    assert p.remote is None


def test_our_own_challenge_sent_back_is_refused() -> None:
    local = hello()
    p = PeerProtocol(local=local, key=KeyPair.generate(), dialler=False)
    with pytest.raises(Unexpected, match="challenge"):
        p.receive(hello(challenge=local.challenge).encode(), 0)


def test_our_own_hello_echoed_whole_is_a_reflection_not_ourselves() -> None:
    """An echo carries our node id too; it is still the reflection (banned),
    not a connection to ourselves (whose sides draw their own challenges)."""
    local = hello()
    p = PeerProtocol(local=local, key=KeyPair.generate(), dialler=False)
    with pytest.raises(Unexpected, match="challenge") as info:
        p.receive(local.encode(), 0)
    assert info.value.bans_peer


def test_a_different_height_listen_or_agent_is_fine() -> None:
    p = PeerProtocol(local=hello(), key=KeyPair.generate(), dialler=False)
    remote = hello(height=10**9, work=b"\xff" * 32, listen="", agent="other/9")
    assert p.receive(remote.encode(), 0) == []
    assert p.remote == remote


# --- ping / pong --------------------------------------------------------------


def test_ping_is_answered_with_pong() -> None:
    p = handshaken()
    assert p.receive(Ping(77).encode(), 5) == []
    assert decoded(p.data_to_send()) == [Pong(77)]


def test_pong_sets_rtt() -> None:
    p = handshaken()
    assert p.rtt_ms is None
    p.ping(9, 1_000)
    assert decoded(p.data_to_send()) == [Ping(9)]
    assert p.ping_outstanding(1_100) == 100
    assert p.receive(Pong(8).encode(), 1_200) == []  # not ours: ignored
    assert p.rtt_ms is None
    assert p.ping_outstanding(1_200) == 200
    assert p.receive(Pong(9).encode(), 1_250) == []
    assert p.rtt_ms == 250
    assert p.ping_outstanding(5_000) == 0
    # A late duplicate pong changes nothing.
    p.receive(Pong(9).encode(), 9_000)
    assert p.rtt_ms == 250


def test_unsolicited_pong_is_ignored() -> None:
    p = handshaken()
    assert p.receive(Pong(1).encode(), 3) == []
    assert p.rtt_ms is None and p.data_to_send() == []


def test_cannot_ping_before_handshake() -> None:
    p = PeerProtocol(local=hello(), key=KeyPair.generate(), dialler=True)
    p.start()
    with pytest.raises(Unexpected):
        p.ping(1, 0)


def test_other_messages_pass_through() -> None:
    p = handshaken()
    for msg in EVERY_MESSAGE:
        if isinstance(msg, Hello | Ping | Pong | Auth):
            continue
        assert p.receive(msg.encode(), 0) == [msg]


# --- inventory flood ------------------------------------------------------------


def hashes(n: int) -> list[bytes]:
    return [i.to_bytes(32, "big") for i in range(n)]


def test_inventory_burst_then_flood() -> None:
    p = handshaken(inv_rate=100, inv_burst=1_000)
    p.receive(Inv("tx", hashes(600)).encode(), 0)
    p.receive(Inv("block", hashes(400)).encode(), 0)
    with pytest.raises(Flood) as info:
        p.receive(Inv("tx", hashes(1)).encode(), 0)
    assert info.value.code == "flood" and info.value.bans_peer


def test_getdata_counts_against_the_bucket() -> None:
    p = handshaken(inv_rate=100, inv_burst=1_000)
    p.receive(GetData("tx", hashes(1_000)).encode(), 0)
    with pytest.raises(Flood):
        p.receive(GetData("block", hashes(1)).encode(), 0)


def test_other_messages_do_not_spend_tokens() -> None:
    p = handshaken(inv_rate=100, inv_burst=1_000)
    for _ in range(10):
        p.receive(NotFound("tx", hashes(1_000)).encode(), 0)
        p.receive(Headers([b"h"] * 100).encode(), 0)
    p.receive(Inv("tx", hashes(1_000)).encode(), 0)


def test_a_single_message_over_the_burst_floods() -> None:
    p = handshaken(inv_rate=100, inv_burst=1_000)
    with pytest.raises(Flood):
        p.receive(Inv("tx", hashes(1_001)).encode(), 0)


def test_tokens_refill_with_time() -> None:
    p = handshaken(inv_rate=100, inv_burst=1_000)
    p.receive(Inv("tx", hashes(1_000)).encode(), 0)
    # One second later: 100 more tokens, no more.
    p.receive(Inv("tx", hashes(100)).encode(), 1_000)
    with pytest.raises(Flood):
        p.receive(Inv("tx", hashes(1)).encode(), 1_000)


def test_tokens_refill_up_to_the_burst_only() -> None:
    p = handshaken(inv_rate=100, inv_burst=1_000)
    p.receive(Inv("tx", hashes(1_000)).encode(), 0)
    p.receive(Inv("tx", hashes(1_000)).encode(), 3_600_000)
    with pytest.raises(Flood):
        p.receive(Inv("tx", hashes(1)).encode(), 3_600_000)


def test_steady_rate_is_never_a_flood() -> None:
    p = handshaken(inv_rate=1_000, inv_burst=2_000)
    for t in range(0, 20_000, 100):
        p.receive(Inv("tx", hashes(100)).encode(), t)


def test_default_bucket_takes_a_full_inv() -> None:
    p = handshaken()
    for _ in range(10):
        p.receive(Inv("tx", hashes(MAX_INV)).encode(), 0)
    with pytest.raises(Flood):
        p.receive(Inv("tx", hashes(1)).encode(), 0)


def test_tokens_refill_even_when_polled_often() -> None:
    p = handshaken(inv_rate=10, inv_burst=10)
    p.receive(Inv("tx", hashes(10)).encode(), 0)
    # An empty inv every 50 ms for a second: 10 tokens/s * 1 s = 10 tokens back.
    for t in range(50, 1_000, 50):
        p.receive(Inv("tx", []).encode(), t)
    p.receive(Inv("tx", hashes(5)).encode(), 1_000)


# --- fuzz ---------------------------------------------------------------------

leaf = (
    st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=20)
    | st.booleans()
    | st.none()
    | st.sampled_from([H1, b"\x00" * 32, b"\x00" * 64, "tx", "block", "127.0.0.1:1"])
)
trees = st.recursive(leaf, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
SMALL_MESSAGES = [m for m in EVERY_MESSAGE if len(m.encode()) < 300]
names = st.sampled_from([*sorted({m.name for m in EVERY_MESSAGE}), "", "nope", "Ping", "hello\x00"])
frames = (
    st.binary(max_size=300)
    | st.builds(lambda n, f: frame(n, *f), names, st.lists(trees, max_size=8))
    | st.builds(
        lambda m, cut: m.encode()[:cut], st.sampled_from(SMALL_MESSAGES), st.integers(0, 60)
    )
    | st.builds(
        lambda m, i, b: _flip(m.encode(), i, b),
        st.sampled_from(SMALL_MESSAGES),
        st.integers(0, 300),
        st.integers(0, 255),
    )
)


def _flip(raw: bytes, i: int, b: int) -> bytes:
    i %= len(raw)
    return raw[:i] + bytes([b]) + raw[i + 1 :]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames)
def test_decode_only_raises_protocol_errors(raw: bytes) -> None:
    try:
        msg = decode_message(raw, max_bytes=200)
    except ProtocolError:
        return
    assert isinstance(msg, Message)
    assert decode_message(msg.encode()) == msg


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames, min_size=1, max_size=6), st.booleans())
def test_peer_protocol_only_raises_protocol_errors(raws: list[bytes], shake: bool) -> None:
    p = (
        handshaken(inv_rate=50, inv_burst=100)
        if shake
        else PeerProtocol(local=hello(), key=KeyPair.generate(), dialler=False)
    )
    for t, raw in enumerate(raws):
        try:
            out = p.receive(raw, t * 10)
        except ProtocolError:
            return
        assert all(isinstance(m, Message) for m in out)
        for f in p.data_to_send():
            decode_message(f)


def test_the_readme_inventory_bucket() -> None:
    # README, Peer protocol: "hashes in `inv` and `getdata` beyond a bucket
    # of 50,000 that refills at 20,000 a second, per peer".
    p = handshaken()
    for _ in range(10):
        p.receive(Inv("tx", hashes(MAX_INV)).encode(), 0)
    with pytest.raises(Flood):
        p.receive(GetData("tx", hashes(1)).encode(), 0)
    p = handshaken()
    for _ in range(10):
        p.receive(Inv("tx", hashes(MAX_INV)).encode(), 0)
    for _ in range(4):  # one second later: 20,000 more
        p.receive(GetData("tx", hashes(MAX_INV)).encode(), 1_000)
    with pytest.raises(Flood):
        p.receive(Inv("tx", hashes(1)).encode(), 1_000)


@pytest.mark.parametrize(
    "msg",
    [
        Inv("tx", [H1, H2]),
        GetData("block", [H2]),
        NotFound("tx", []),
        Txs([b"raw", b"other"]),
        Txs([]),
    ],
)
def test_id_and_tx_lists_encode_as_the_general_encoder_does(msg: Message) -> None:
    """Their one-pass encoding (no type walk per entry) gives the same bytes."""
    assert msg.encode() == encoding.encode(msg.to_obj())


@pytest.mark.parametrize(
    ("msg", "error"),
    [
        (Inv("tx", [H1, 1.5]), FloatNotAllowed),  # type: ignore[list-item]
        (Txs([b"raw", {"a": 1}]), DecodeError),  # type: ignore[list-item]
    ],
)
def test_a_list_holding_what_is_not_bytes_is_still_refused_on_encode(
    msg: Message, error: type[Exception]
) -> None:
    with pytest.raises(error):
        msg.encode()
