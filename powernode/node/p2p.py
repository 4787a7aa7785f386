"""Peer-to-peer networking: WebSocket transport, peer management, gossip, sync.

The protocol rules live in protocol/ (sans I/O); this module carries frames
between sockets and that state machine, keeps the address book and the bans,
and hands every other message to Gossip (p2p_gossip.py), which calls the node
through its narrow interface (``NodeApi``, api.py).

- Gossip: new txs and blocks are announced by hash (``inv``) to every peer
  not known to have them; peers fetch what they lack (``getdata``).
- Sync: a peer with more work than us is asked for headers after our block
  locator; the blocks behind those headers are fetched, at most
  ``max_blocks_in_flight`` at a time per peer, and connected in order.
- Misbehaviour (bad PoW, bad signature, malformed or oversize frames, floods)
  disconnects and bans the peer for ``ban_seconds``; a slow or lagging peer
  is never banned, its requests simply go elsewhere. A peer over its tx
  relay budget (unasked txs, txs refused for their fee: see p2p_gossip.py)
  is slowed, then disconnected without a ban.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Coroutine
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from powernode.chain.chain import ChainUpdate
from powernode.core.errors import Malformed, OversizeFrame, ProtocolError, StorageError
from powernode.logkit import emit
from powernode.node.api import NodeApi
from powernode.node.config import P2pConfig
from powernode.node.p2p_gossip import Gossip
from powernode.node.p2p_sync import Sync
from powernode.node.peer import Peer, now_ms
from powernode.protocol.messages import PROTOCOL_VERSION, Addr, GetAddr, Hello
from powernode.protocol.peer import PeerProtocol

log = logging.getLogger("powernode.p2p")

AGENT = "powernode/0.1"


MAX_ADDRBOOK = 1_000


def is_oversize(error: object) -> bool:
    """Whether a WebSocket error message (``WSMsgType.ERROR``'s data) is a
    frame over ``max_msg_size``: aiohttp closes such a connection with code
    1009, message too big, and says so in the error's code."""
    return isinstance(error, aiohttp.WebSocketError) and error.code == WSCloseCode.MESSAGE_TOO_BIG


class _Refused(Exception):
    """A connection we end after the handshake without blaming the peer."""


class P2P:
    """The peer network: owns the connections, the address book and the
    bans, and the tasks that serve them; Gossip and Sync decide what to do
    with each message."""

    def __init__(self, node: NodeApi, config: P2pConfig) -> None:
        self.node = node
        self.cfg = config
        self.node_id = os.urandom(16)
        self.peers: dict[int, Peer] = {}
        self.bans: dict[str, float] = {}  # key -> banned until (monotonic s)
        self.addrbook: dict[str, float] = {}  # address -> next dial time (monotonic s)
        self._backoff: dict[str, float] = {}
        self.verified: dict[str, bytes] = {}  # address we dialled -> node id that answered
        self._dialing: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.listen = ""
        self._sync = Sync(node, self.peers, max_blocks_in_flight=config.max_blocks_in_flight)
        self._gossip = Gossip(
            node,
            self.peers,
            self._sync,
            max_blocks_served=config.max_blocks_in_flight * 4,
            spawn=self._spawn,
            punish=self._punish,
        )

    # --- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/p2p", self._inbound)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.host, self.cfg.port, reuse_address=True)
        await site.start()
        # The port actually bound (the config may say 0: any free one).
        self.listen = f"{self.cfg.host}:{self._runner.addresses[0][1]}"
        self._session = aiohttp.ClientSession()
        for addr in self.cfg.peers:
            self.addrbook.setdefault(addr, 0.0)
        self._spawn(self._maintain(), "p2p-maintain")
        emit(log, "p2p.listening", listen=self.listen, peers=len(self.cfg.peers))

    async def stop(self) -> None:
        self._gossip.close()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            # Their ends were logged by _task_done; wait() raises none of
            # them, and a cancel of stop() itself still reaches stop().
            await asyncio.wait(tasks)
        for peer in list(self.peers.values()):
            await peer.close()
        self.peers.clear()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Start a task this P2P owns: kept until it ends, cancelled at stop."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            emit(
                log,
                "p2p.task_failed",
                logging.ERROR,
                task=task.get_name(),
                reason=repr(exc),
            )

    def local_hello(self) -> Hello:
        chain = self.node.chain
        tip = chain.tip
        return Hello(
            version=PROTOCOL_VERSION,
            chain_id=chain.params.chain_id,
            genesis=chain.genesis.hash,
            height=tip.height,
            work=min(tip.work, 2**256 - 1).to_bytes(32, "big"),
            listen=self.listen,
            node_id=self.node_id,
            agent=AGENT,
        )

    # --- connections --------------------------------------------------------

    def banned(self, key: str) -> bool:
        until = self.bans.get(key)
        return until is not None and until > time.monotonic()

    def ban(self, key: str, seconds: float, reason: str) -> None:
        self.bans[key] = time.monotonic() + seconds
        emit(log, "peer.banned", logging.WARNING, peer=key, reason=reason, seconds=int(seconds))
        for peer in list(self.peers.values()):
            if peer.key == key or peer.addr == key:
                self._spawn(peer.close(), f"close-{peer.id}")

    def unban(self, key: str) -> bool:
        return self.bans.pop(key, None) is not None

    def add_address(self, addr: str) -> None:
        if addr and addr != self.listen and len(self.addrbook) < MAX_ADDRBOOK:
            self.addrbook.setdefault(addr, 0.0)

    def remove_address(self, addr: str) -> int:
        self.addrbook.pop(addr, None)
        closed = 0
        for peer in list(self.peers.values()):
            if addr in (peer.addr, peer.listen):
                self._spawn(peer.close(), f"close-{peer.id}")
                closed += 1
        return closed

    def announce_txs(self, txids: list[bytes], *, source: int | None = None) -> None:
        """Announce newly admitted txs to every peer but ``source`` (a peer id)."""
        self._gossip.announce_txs(txids, source=source)

    def chain_updated(self, update: ChainUpdate, *, tip_moved: bool) -> None:
        """Tell peers what the chain did (a new tip, txs back from undone blocks)."""
        self._gossip.chain_updated(update, tip_moved=tip_moved)

    def _connected_to(self, addr: str) -> bool:
        return any(addr in (p.addr, p.listen) for p in self.peers.values())

    async def _inbound(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=self.cfg.max_frame_bytes, autoping=True)
        await ws.prepare(request)
        inbound = sum(1 for p in self.peers.values() if p.direction == "in")
        peername = request.transport.get_extra_info("peername") if request.transport else None
        addr = f"{peername[0]}:{peername[1]}" if peername else str(request.remote)
        if inbound >= self.cfg.max_inbound:
            emit(log, "peer.refused", peer=addr, reason="inbound_full")
            await ws.close()
            return ws
        await self._run_peer(ws, addr, "in")
        return ws

    async def _dial(self, addr: str) -> None:
        assert self._session is not None
        self._dialing.add(addr)
        try:
            # An address that accepts TCP and never answers must not hold an
            # outbound slot for aiohttp's 5-minute default.
            async with asyncio.timeout(self.cfg.handshake_timeout):
                ws = await self._session.ws_connect(
                    f"http://{addr}/p2p",
                    max_msg_size=self.cfg.max_frame_bytes,
                    timeout=aiohttp.ClientWSTimeout(ws_close=5),
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            delay = min(60.0, self._backoff.get(addr, 0.5) * 2)
            self._backoff[addr] = delay
            self.addrbook[addr] = time.monotonic() + delay
            emit(
                log,
                "peer.dial_failed",
                # At info while we have no peer at all: then it is why.
                logging.DEBUG if self.peers else logging.INFO,
                peer=addr,
                reason=type(exc).__name__,
                retry_s=delay,
            )
            return
        finally:
            self._dialing.discard(addr)
        self._backoff.pop(addr, None)
        started = time.monotonic()
        await self._run_peer(ws, addr, "out")
        # Reconnect soon if it drops, with backoff if it keeps dropping; a
        # connection that lived a while starts the backoff afresh.
        if time.monotonic() - started > 30:
            self._backoff.pop(addr, None)
        delay = min(60.0, self._backoff.get(addr, 0.5) * 2)
        self._backoff[addr] = delay
        if addr in self.addrbook:
            self.addrbook[addr] = time.monotonic() + delay

    async def _run_peer(self, ws: Any, addr: str, direction: str) -> None:
        proto = PeerProtocol(local=self.local_hello(), max_frame=self.cfg.max_frame_bytes)
        peer = Peer(ws=ws, proto=proto, addr=addr, direction=direction)
        if self.banned(addr):
            await ws.close()
            return
        proto.start()
        peer.start_writer()
        peer.flush()
        reason = "closed"
        try:
            async with asyncio.timeout(self.cfg.handshake_timeout):
                first = await ws.receive()
                reason = self._on_frame(peer, first)
            if reason == "":
                self._on_ready(peer)
                async for msg in ws:
                    reason = self._on_frame(peer, msg)
                    if reason:
                        break
                else:
                    reason = "closed"
        except TimeoutError:
            reason = "handshake_timeout"
        except _Refused as exc:
            reason = str(exc)
        except (ConnectionError, aiohttp.ClientError) as exc:
            reason = type(exc).__name__
        except StorageError as exc:
            # Not the peer's fault: the store failed, and the node is
            # stopping on it (Node.fail).
            reason = exc.code
        finally:
            reason = peer.close_reason or reason
            if self.peers.pop(peer.id, None) is not None:
                self._sync.peer_gone(peer)
                emit(log, "peer.disconnected", peer=peer.key, direction=direction, reason=reason)
            await peer.close()

    def _on_frame(self, peer: Peer, msg: aiohttp.WSMessage) -> str:
        """Handle one WebSocket message; returns a reason to disconnect, or ''."""
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            return "closed"
        if msg.type == WSMsgType.ERROR:
            if is_oversize(msg.data):
                return self.misbehaved(peer, OversizeFrame(str(msg.data)))
            return f"error: {msg.data}"
        if msg.type != WSMsgType.BINARY:
            return self.misbehaved(peer, Malformed("text frame"))
        try:
            messages = peer.proto.receive(msg.data, now_ms())
        except ProtocolError as exc:
            return self.misbehaved(peer, exc)
        peer.flush()
        for m in messages:
            try:
                if isinstance(m, GetAddr):
                    self._send_addrs(peer)
                elif isinstance(m, Addr):
                    self._learn_addrs(m.addrs)
                else:
                    self._gossip.on_message(peer, m)
            except ProtocolError as exc:
                return self.misbehaved(peer, exc)
        return ""

    def misbehaved(self, peer: Peer, exc: ProtocolError) -> str:
        """Ban ``peer`` for ``exc`` if its class says so (else just log the
        drop); returns the reason to disconnect it."""
        if exc.bans_peer:
            self.ban(peer.key, self.cfg.ban_seconds, exc.code)
            if peer.addr != peer.key:
                self.bans[peer.addr] = self.bans[peer.key]
        else:
            emit(log, "peer.dropped", peer=peer.key, reason=exc.code, msg=exc.message)
        return exc.code

    def _punish(self, peer: Peer, exc: ProtocolError) -> None:
        """For gossip's tasks, which are not the peer's reader: disconnect
        ``peer`` (a ban closes it; anything else is closed here), banning it
        if ``exc`` says so."""
        peer.close_reason = self.misbehaved(peer, exc)
        if not exc.bans_peer:
            self._spawn(peer.close(), f"close-{peer.id}")

    # --- address exchange ---------------------------------------------------

    def _send_addrs(self, peer: Peer) -> None:
        addrs = [a for a in self.addrbook if not self.banned(a)]
        addrs += [p.listen for p in self.peers.values() if p.listen]
        peer.send(Addr(sorted(set(addrs))[:1000]))

    def _learn_addrs(self, addrs: list[str]) -> None:
        for a in addrs:
            host, _, port = a.rpartition(":")
            if host and port.isdigit():
                self.add_address(a)

    def _ban_key(self, peer: Peer, remote: Hello) -> str:
        """What to ban this peer by. An outbound peer is the address we
        dialled (and we remember which node answered there). An inbound peer
        is the listen address it claims, unless another connected peer holds
        that address or we know a different node answers there: then only its
        socket address, so an impostor cannot get an honest peer banned. IPs
        are not used: on a loopback testnet every peer has the same one."""
        if peer.direction == "out":
            self.verified[peer.addr] = remote.node_id
            return peer.addr
        listen = remote.listen
        if not listen:
            return peer.addr
        held = any(p.listen == listen for p in self.peers.values())
        other_node = self.verified.get(listen, remote.node_id) != remote.node_id
        return peer.addr if held or other_node else listen

    def _dialler(self, peer: Peer) -> bytes:
        assert peer.proto.remote is not None
        return self.node_id if peer.direction == "out" else peer.proto.remote.node_id

    def _on_ready(self, peer: Peer) -> None:
        remote = peer.proto.remote
        assert remote is not None
        dup = next(
            (
                p
                for p in self.peers.values()
                if p.proto.remote and p.proto.remote.node_id == remote.node_id
            ),
            None,
        )
        if dup is not None:
            # Two nodes that dial each other at once must keep the same one of
            # the two connections, or each closes the one the other kept and
            # both are lost: keep the one dialled by the lower node id.
            if self._dialler(dup) <= self._dialler(peer):
                raise _Refused("duplicate_connection")
            self.peers.pop(dup.id, None)
            self._sync.peer_gone(dup)
            emit(
                log,
                "peer.disconnected",
                peer=dup.key,
                direction=dup.direction,
                reason="duplicate_connection",
            )
            self._spawn(dup.close(), f"close-{dup.id}")
        peer.ban_key = self._ban_key(peer, remote)
        if self.banned(peer.key):
            raise _Refused("banned")
        self.peers[peer.id] = peer
        peer.height = remote.height
        peer.work = int.from_bytes(remote.work, "big")
        self.add_address(remote.listen)
        emit(
            log,
            "peer.connected",
            peer=peer.key,
            direction=peer.direction,
            height=remote.height,
            agent=remote.agent,
        )
        if peer.direction == "out":
            peer.send(GetAddr())
        self._sync.peer_ready(peer)

    # --- upkeep -------------------------------------------------------------

    async def _maintain(self) -> None:
        last_ping = time.monotonic()
        while True:
            now = time.monotonic()
            for key in [k for k, until in self.bans.items() if until <= now]:
                del self.bans[key]
            outbound = sum(1 for p in self.peers.values() if p.direction == "out") + len(
                self._dialing
            )
            candidates = [
                a for a, at in self.addrbook.items()
                if at <= now and not self.banned(a) and not self._connected_to(a) and a not in self._dialing
            ]  # fmt: skip
            random.shuffle(candidates)
            for addr in candidates[: max(0, self.cfg.max_outbound - outbound)]:
                self.addrbook[addr] = now + 1.0
                self._spawn(self._dial(addr), f"dial-{addr}")
            if now - last_ping >= self.cfg.ping_interval:
                last_ping = now
                t = now_ms()
                for peer in list(self.peers.values()):
                    if peer.proto.ping_outstanding(t) > 4 * self.cfg.ping_interval * 1000:
                        emit(log, "peer.timeout", peer=peer.key)
                        self._spawn(peer.close(), f"close-{peer.id}")
                    elif peer.proto.ready:
                        peer.proto.ping(random.getrandbits(63), t)
                        peer.flush()
            self._sync.tick()
            await asyncio.sleep(0.5)

    def peer_list(self) -> list[dict[str, object]]:
        t = now_ms()
        now = time.monotonic()
        out = [p.info(t) for p in self.peers.values()]
        for key, until in sorted(self.bans.items()):
            if until > now:
                out.append(
                    {"address": key, "banned_until_s": round(until - now), "direction": "banned"}
                )
        return out
