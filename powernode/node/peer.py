"""One connected peer: its WebSocket, its protocol state and what we know of it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiohttp import ClientWebSocketResponse, WSCloseCode, web

from powernode.chain.index import IndexEntry
from powernode.logkit import emit
from powernode.protocol.messages import Message
from powernode.protocol.peer import PeerProtocol

log = logging.getLogger("powernode.p2p")

_ids = itertools.count(1)

WebSocket = web.WebSocketResponse | ClientWebSocketResponse

# A WebSocket close frame's reason is at most 123 bytes.
CLOSE_REASON_BYTES = 120


def now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class KnownSet:
    """Hashes a peer is known to have, bounded: between ``limit`` and
    ``2 * limit`` of the newest are remembered.

    Two generations of plain sets rather than one ordered dict: every relayed
    tx passes through several of these per peer, and a set add costs a third
    of an ordered-dict insert plus eviction. When the young generation fills,
    it becomes the old one and the previous old one is forgotten at once."""

    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit
        self._young: set[bytes] = set()
        self._old: set[bytes] = set()

    def add(self, h: bytes) -> None:
        young = self._young
        young.add(h)
        if len(young) >= self.limit:
            self._old, self._young = young, set()

    def update(self, hashes: list[bytes]) -> None:
        young = self._young
        young.update(hashes)
        if len(young) >= self.limit:
            self._old, self._young = young, set()

    def __contains__(self, h: bytes) -> bool:
        return h in self._young or h in self._old

    def unknown(self, hashes: Iterable[bytes]) -> list[bytes]:
        """Those of ``hashes`` not in the set, in their order: one pass with
        the sets at hand, not a method call per hash (a peer's ``inv`` and
        each relay to a peer run every tx through several of these)."""
        young, old = self._young, self._old
        return [h for h in hashes if h not in young and h not in old]

    def among(self, hashes: set[bytes]) -> set[bytes]:
        """Those of ``hashes`` in the set (set intersections, no call per hash)."""
        return (hashes & self._young) | (hashes & self._old)

    def discard(self, hashes: list[bytes]) -> None:
        for h in hashes:
            self._young.discard(h)
            self._old.discard(h)


# Per-peer tx relay budget (RelayBudget): blame points drain at this rate;
# past SLOW_AT the peer is slowed, past DROP_AT disconnected.
TX_BLAME_DRAIN_PER_S = 50
TX_SLOW_AT = 1_000
TX_DROP_AT = 4_000
# Points for a tx sent unasked (a tx refused for its fee costs 1): honest
# peers send txs only when asked, and an unasked tx costs us a decode and a
# check we did not choose to spend. So one full ``txs`` frame of them (2,000)
# is past the drop mark at once, and is not even decoded.
TX_UNASKED_POINTS = 4


class RelayBudget:
    """How much more tx work a peer may cost us for nothing, as blame points.

    ``TX_UNASKED_POINTS`` for each tx the peer sent unasked (honest nodes
    send a tx only when asked: ``getdata``), one for each tx refused for its
    fee (``mempool_full``, ``fee_too_low``, ``replacement_underpriced``). Points
    drain at ``drain_per_s``, so an honest peer relaying a few refused txs
    now and then never gets far. Past ``slow_at`` the peer is slowed: it is
    asked for no txs, and what it sends unasked is dropped unchecked; past
    ``drop_at`` it is disconnected (``tx_flood``). Counted in thousandths of
    a point against integer milliseconds (as protocol/peer.py's bucket), so
    a drain over a few ms is not rounded away."""

    __slots__ = ("drain_per_s", "drop_at", "milli", "slow_at", "stamp_ms", "unasked_points")

    def __init__(
        self,
        *,
        drain_per_s: int = TX_BLAME_DRAIN_PER_S,
        slow_at: int = TX_SLOW_AT,
        drop_at: int = TX_DROP_AT,
        unasked_points: int = TX_UNASKED_POINTS,
    ) -> None:
        self.drain_per_s = drain_per_s
        self.slow_at = slow_at
        self.drop_at = drop_at
        self.unasked_points = unasked_points
        self.milli = 0
        self.stamp_ms: int | None = None

    def level(self, now_ms: int) -> int:
        """Blame points now (rounded up: a part point still counts)."""
        if self.stamp_ms is not None and now_ms > self.stamp_ms:
            self.milli = max(0, self.milli - (now_ms - self.stamp_ms) * self.drain_per_s)
        self.stamp_ms = now_ms if self.stamp_ms is None else max(self.stamp_ms, now_ms)
        return -(-self.milli // 1000)

    def charge(self, points: int, now_ms: int) -> int:
        """Add ``points`` of blame; returns the level after."""
        self.level(now_ms)
        self.milli += points * 1000
        return -(-self.milli // 1000)

    def charge_unasked(self, txs: int, now_ms: int) -> int:
        """Blame ``txs`` txs sent unasked; returns the level after."""
        return self.charge(txs * self.unasked_points, now_ms)

    def slowed(self, now_ms: int) -> bool:
        return self.level(now_ms) > self.slow_at

    def allowance(self, now_ms: int) -> int:
        """Unasked txs we still check before the peer is slowed."""
        return max(0, self.slow_at - self.level(now_ms)) // self.unasked_points

    def over(self, level: int) -> bool:
        """Whether ``level`` means disconnecting the peer."""
        return level > self.drop_at


@dataclass(eq=False)
class Peer:
    ws: WebSocket
    proto: PeerProtocol
    addr: str  # what we dialled, or the remote socket address for inbound
    direction: str  # "in" | "out"
    # The remote end's IP, and whether it is this host's (the socket's local
    # IP): such a peer is never banned by IP nor held to per-IP limits.
    ip: str = ""
    same_host: bool = False
    id: int = field(default_factory=lambda: next(_ids))
    connected_ms: int = field(default_factory=now_ms)
    known_txs: KnownSet = field(default_factory=KnownSet)
    known_blocks: KnownSet = field(default_factory=KnownSet)
    in_flight: dict[bytes, int] = field(default_factory=dict)  # block hash -> sent at (ms)
    # Blocks to request from this peer, in order (a dict as an ordered set).
    to_fetch: dict[bytes, None] = field(default_factory=dict)
    # Header batches that connected to nothing we know (a spam signal).
    unconnecting: int = 0
    # Txs we asked this peer for and it has not sent (a dict as an ordered
    # set, oldest first): a tx not in here came unasked.
    asked_txs: dict[bytes, None] = field(default_factory=dict)
    # Blame for unasked and fee-refused txs (see RelayBudget).
    relay: RelayBudget = field(default_factory=RelayBudget)
    # Why we are closing it, when the close comes from elsewhere than its
    # reader (a gossip task); logged as the disconnect's reason.
    close_reason: str = ""
    # The best height and work the peer has shown: from its hello, then
    # raised by every block it has (see ``has``); never lowered.
    height: int = 0
    work: int = 0
    # The best height the peer has backed with proof of work: headers that
    # form a chain from one of our blocks, or a block of our index it has.
    # Sync follows this, never the hello's claim, which costs nothing.
    proven_height: int = 0
    _queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    _writer: asyncio.Task[None] | None = None
    # The close frame's (code, why): the first close asked for is the one
    # sent. A fault's 4001 and its ban's 4003 may both be asked for; on a
    # socket we dialled the second could otherwise reach the wire first.
    _close_frame: tuple[int, str] | None = None

    @property
    def listen(self) -> str:
        return self.proto.remote.listen if self.proto.remote else ""

    @property
    def node_id(self) -> bytes:
        """The peer's node id once the handshake proved it, else b''."""
        remote = self.proto.remote
        return remote.node_id if remote is not None and self.proto.ready else b""

    @property
    def key(self) -> str:
        """How logs name the peer: the address we dialled, or its socket's."""
        return self.addr

    def send(self, msg: Message) -> None:
        self.proto.send(msg)
        self.flush()

    def flush(self) -> None:
        for frame in self.proto.data_to_send():
            self._queue.put_nowait(frame)

    def start_writer(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"peer-{self.id}-writer")

    async def _write_loop(self) -> None:
        while True:
            frame = await self._queue.get()
            if frame is None:
                return
            try:
                await self.ws.send_bytes(frame)
            except (ConnectionError, RuntimeError):
                return

    async def close(self, *, code: int = WSCloseCode.OK, why: str = "") -> None:
        """Close the connection; ``code`` and ``why`` go in the WebSocket
        close frame, so the peer can log why we hung up. The first call's
        code and reason are the ones sent, whichever call gets there."""
        if self._close_frame is None:
            self._close_frame = (code, why)
        code, why = self._close_frame
        self._queue.put_nowait(None)
        # A socket that is already gone may fail to close; it is closed anyway.
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=why.encode()[:CLOSE_REASON_BYTES])
        writer = self._writer
        if writer is not None:
            writer.cancel()
            # wait() neither raises the writer's end nor hides a cancel aimed
            # at whoever is closing this peer (P2P.stop may be cancelled).
            await asyncio.wait([writer])
            if not writer.cancelled() and (exc := writer.exception()) is not None:
                emit(log, "peer.writer_failed", logging.WARNING, peer=self.key, reason=repr(exc))

    def has(self, entry: IndexEntry) -> None:
        """The peer has this block of our index (it sent it, announced it,
        named it as its tip in a locator, or asked us for it, which it does
        only for blocks whose headers it holds): its height and work are at
        least that block's. Without this the node that mined a tip would
        see its peers at their hello height for ever, since they never send
        it back a block it gave them."""
        self.height = max(self.height, entry.height)
        self.work = max(self.work, entry.work)
        self.proven_height = max(self.proven_height, entry.height)

    def info(self, at_ms: int) -> dict[str, object]:
        remote = self.proto.remote
        return {
            "id": self.id,
            "node_id": self.node_id.hex(),
            "address": self.addr,
            "ip": self.ip,
            "same_host": self.same_host,
            "listen": self.listen,
            "direction": self.direction,
            "height": self.height,
            "agent": remote.agent if remote else "",
            "ping_ms": self.proto.rtt_ms,
            "connected_s": (at_ms - self.connected_ms) // 1000,
            "blocks_in_flight": len(self.in_flight),
        }
