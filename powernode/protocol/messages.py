"""Peer protocol messages and their wire form.

A frame is one binary WebSocket message holding the canonical msgpack array
``[name, field, ...]``. Every message is a frozen dataclass whose fields are
listed in wire order; decoding checks each field's type and bound and raises
a ProtocolError (core/errors.py) with a stable code, never anything else.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from powernode.core import encoding
from powernode.core.block import HARD_MAX_BLOCK_BYTES
from powernode.core.crypto import PUBKEY_SIZE, SIG_SIZE
from powernode.core.errors import (
    DecodeError,
    Malformed,
    OversizeFrame,
    ProtocolError,
    VersionMismatch,
)
from powernode.core.tx import MAX_TX_BYTES

# 2: node ids are Ed25519 public keys proven by ``auth``; the dialler speaks
# first. A hello of another version is refused on its first field.
PROTOCOL_VERSION = 2
CHALLENGE_SIZE = 32
MAX_FRAME_BYTES = HARD_MAX_BLOCK_BYTES + 1024
MAX_INV = 5_000
MAX_TXS = 2_000  # txs in one ``txs`` message
MAX_HEADERS = 2_000
MAX_LOCATOR = 64
MAX_ADDRS = 1_000
KINDS = ("tx", "block")


class Message:
    name: ClassVar[str]
    _field_names: ClassVar[tuple[str, ...]] = ()

    def to_obj(self) -> list[Any]:
        names = type(self)._field_names
        if not names and fields(self):  # type: ignore[arg-type]
            # dataclasses.fields() is slow enough to show in a profile of a
            # busy node; look the names up once per class.
            names = tuple(f.name for f in fields(self))  # type: ignore[arg-type]
            type(self)._field_names = names
        return [self.name, *(getattr(self, n) for n in names)]

    def encode(self) -> bytes:
        return encoding.encode(self.to_obj())


# What a list of byte strings holds, as ``set(map(type, items))`` finds it:
# such a list needs no type walk per entry (gossip sends and receives every
# tx id in several of them).
_BYTES_ONLY = frozenset((bytes,))


def _all_bytes(items: list[Any]) -> bool:
    return set(map(type, items)) <= _BYTES_ONLY


def _encode_items(name: str, fields: list[Any], items: list[Any]) -> bytes:
    """``[name, *fields, items]`` encoded, ``items`` a list of bytes (ids or
    raw txs): checked in one pass, not walked entry by entry."""
    obj = [name, *fields, items]
    if type(items) is list and _all_bytes(items) and all(f in KINDS for f in fields):
        return encoding.encode_trusted(obj)
    return encoding.encode(obj)


@dataclass(frozen=True, slots=True)
class Hello(Message):
    name: ClassVar[str] = "hello"
    version: int
    chain_id: str
    genesis: bytes
    height: int
    work: bytes  # cumulative work, 32-byte big-endian
    listen: str  # "host:port" the peer says it accepts connections on, or ""
    node_id: bytes  # Ed25519 public key; claimed here, proven by ``auth``
    agent: str
    challenge: bytes  # fresh random bytes the other side must sign over


@dataclass(frozen=True, slots=True)
class Auth(Message):
    """Proof that the sender holds its hello's node id: a signature over
    ``protocol.auth.auth_message`` (both challenges, both ids)."""

    name: ClassVar[str] = "auth"
    signature: bytes


@dataclass(frozen=True, slots=True)
class Ping(Message):
    name: ClassVar[str] = "ping"
    nonce: int


@dataclass(frozen=True, slots=True)
class Pong(Message):
    name: ClassVar[str] = "pong"
    nonce: int


@dataclass(frozen=True, slots=True)
class Inv(Message):
    name: ClassVar[str] = "inv"
    kind: str
    hashes: list[bytes]

    def encode(self) -> bytes:
        return _encode_items(self.name, [self.kind], self.hashes)


@dataclass(frozen=True, slots=True)
class GetData(Message):
    name: ClassVar[str] = "getdata"
    kind: str
    hashes: list[bytes]

    def encode(self) -> bytes:
        return _encode_items(self.name, [self.kind], self.hashes)


@dataclass(frozen=True, slots=True)
class NotFound(Message):
    name: ClassVar[str] = "notfound"
    kind: str
    hashes: list[bytes]

    def encode(self) -> bytes:
        return _encode_items(self.name, [self.kind], self.hashes)


@dataclass(frozen=True, slots=True)
class TxMsg(Message):
    name: ClassVar[str] = "tx"
    raw: bytes


@dataclass(frozen=True, slots=True)
class Txs(Message):
    """Several txs in one frame: the answer to a ``getdata`` of many txs, so
    a burst costs one frame and one event-loop wake-up, not one per tx."""

    name: ClassVar[str] = "txs"
    raws: list[bytes]

    def encode(self) -> bytes:
        return _encode_items(self.name, [], self.raws)


@dataclass(frozen=True, slots=True)
class BlockMsg(Message):
    name: ClassVar[str] = "block"
    raw: bytes


@dataclass(frozen=True, slots=True)
class GetHeaders(Message):
    name: ClassVar[str] = "getheaders"
    locator: list[bytes]
    stop: bytes


@dataclass(frozen=True, slots=True)
class Headers(Message):
    name: ClassVar[str] = "headers"
    headers: list[bytes]


@dataclass(frozen=True, slots=True)
class GetAddr(Message):
    name: ClassVar[str] = "getaddr"


@dataclass(frozen=True, slots=True)
class Addr(Message):
    name: ClassVar[str] = "addr"
    addrs: list[str]


_LEN_32 = frozenset((32,))


def _hashes(obj: Any, what: str, limit: int) -> list[bytes]:
    items = encoding.as_list(obj, None, what)
    if len(items) > limit:
        raise OversizeFrame(f"{what}: {len(items)} entries, limit {limit}")
    if _all_bytes(items) and set(map(len, items)) <= _LEN_32:
        return items  # the common case in one pass; the loop below names what is wrong
    return [encoding.as_bytes(h, what, size=32) for h in items]


def _kind(obj: Any) -> str:
    kind = encoding.as_str(obj, "kind", max_len=8)
    if kind not in KINDS:
        raise Malformed(f"unknown inventory kind {kind!r}")
    return kind


def _decode_fields(name: str, f: list[Any]) -> Message:
    n = len(f)

    def need(k: int) -> None:
        if n != k:
            raise Malformed(f"{name}: expected {k} fields, got {n}")

    if name == "hello":
        # The version first, alone: another version's hello may have another
        # layout, and is refused for its version, not as malformed.
        if n < 1:
            raise Malformed("hello: no version")
        version = encoding.as_uint(f[0], "version")
        if version != PROTOCOL_VERSION:
            raise VersionMismatch(ours=PROTOCOL_VERSION, theirs=version)
        need(9)
        return Hello(
            version=version,
            chain_id=encoding.as_str(f[1], "chain_id", max_len=64),
            genesis=encoding.as_bytes(f[2], "genesis", size=32),
            height=encoding.as_uint(f[3], "height"),
            work=encoding.as_bytes(f[4], "work", size=32),
            listen=encoding.as_str(f[5], "listen", max_len=128),
            node_id=encoding.as_bytes(f[6], "node_id", size=PUBKEY_SIZE),
            agent=encoding.as_str(f[7], "agent", max_len=64),
            challenge=encoding.as_bytes(f[8], "challenge", size=CHALLENGE_SIZE),
        )
    if name == "auth":
        need(1)
        return Auth(encoding.as_bytes(f[0], "signature", size=SIG_SIZE))
    if name in ("ping", "pong"):
        need(1)
        nonce = encoding.as_uint(f[0], "nonce")
        return Ping(nonce) if name == "ping" else Pong(nonce)
    if name in ("inv", "getdata", "notfound"):
        need(2)
        cls = {"inv": Inv, "getdata": GetData, "notfound": NotFound}[name]
        return cls(kind=_kind(f[0]), hashes=_hashes(f[1], name, MAX_INV))
    if name == "tx":
        need(1)
        return TxMsg(encoding.as_bytes(f[0], "tx", max_size=MAX_TX_BYTES))
    if name == "txs":
        need(1)
        items = encoding.as_list(f[0], None, "txs")
        if len(items) > MAX_TXS:
            raise OversizeFrame(f"txs: {len(items)} entries, limit {MAX_TXS}")
        if _all_bytes(items) and max(map(len, items), default=0) <= MAX_TX_BYTES:
            return Txs(items)  # the common case in one pass, as _hashes
        return Txs([encoding.as_bytes(t, "tx", max_size=MAX_TX_BYTES) for t in items])
    if name == "block":
        need(1)
        return BlockMsg(encoding.as_bytes(f[0], "block", max_size=HARD_MAX_BLOCK_BYTES))
    if name == "getheaders":
        need(2)
        return GetHeaders(
            locator=_hashes(f[0], "locator", MAX_LOCATOR),
            stop=encoding.as_bytes(f[1], "stop", size=32),
        )
    if name == "headers":
        need(1)
        items = encoding.as_list(f[0], None, "headers")
        if len(items) > MAX_HEADERS:
            raise OversizeFrame(f"headers: {len(items)} entries, limit {MAX_HEADERS}")
        return Headers([encoding.as_bytes(h, "header", max_size=512) for h in items])
    if name == "getaddr":
        need(0)
        return GetAddr()
    if name == "addr":
        need(1)
        items = encoding.as_list(f[0], None, "addr")
        if len(items) > MAX_ADDRS:
            raise OversizeFrame(f"addr: {len(items)} entries, limit {MAX_ADDRS}")
        return Addr([encoding.as_str(a, "addr", max_len=128) for a in items])
    raise Malformed(f"unknown message {name!r}")


def decode_message(frame: bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> Message:
    """One frame to one message; ProtocolError (typed) for anything wrong."""
    if len(frame) > max_bytes:
        raise OversizeFrame(f"frame of {len(frame)} bytes, limit {max_bytes}")
    try:
        obj = encoding.decode(frame, max_bytes=max_bytes)
        items = encoding.as_list(obj, None, "frame")
        if not items:
            raise Malformed("empty frame")
        name = encoding.as_str(items[0], "message name", max_len=16)
        return _decode_fields(name, items[1:])
    except ProtocolError:
        raise
    except DecodeError as exc:
        raise Malformed(f"{exc.code}: {exc.message}") from exc
