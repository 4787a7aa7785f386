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
- Identity: a node id is an Ed25519 public key (``p2p.key``, p2p_key.py),
  proven by each side's ``auth`` in the handshake (protocol/peer.py).
- Slots: an inbound connection takes its slot when it is accepted, before
  the WebSocket upgrade, so handshakes under way count against
  ``max_inbound`` (and against ``max_pending``, and per remote IP against
  ``max_pending_per_ip``/``max_inbound_per_ip``); no burst gets past them.
- Misbehaviour (bad PoW, bad signature, malformed or oversize frames, floods)
  disconnects the peer and bans its proven node id and its IP (p2p_bans.py;
  a peer on this host is never banned by IP) for ``ban_seconds``; a slow or
  lagging peer is never banned, its requests simply go elsewhere. A peer
  over its tx relay budget (unasked txs, txs refused for their fee: see
  p2p_gossip.py) is slowed, then disconnected without a ban. A peer we
  disconnect waits ``reconnect_cooldown`` before it may connect again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from powernode.chain.chain import ChainUpdate
from powernode.core.block import Block
from powernode.core.crypto import KeyPair
from powernode.core.errors import (
    Malformed,
    OversizeFrame,
    ProtocolError,
    StorageError,
    VersionMismatch,
    WrongNetwork,
)
from powernode.core.hextext import from_hex
from powernode.logkit import emit
from powernode.node.api import NodeApi
from powernode.node.config import P2pConfig, is_host_port
from powernode.node.p2p_bans import Bans
from powernode.node.p2p_gossip import Gossip
from powernode.node.p2p_key import load_or_create_p2p_key
from powernode.node.p2p_slots import InboundSlots
from powernode.node.p2p_sync import Sync
from powernode.node.peer import Peer, now_ms
from powernode.node.urls import host_port
from powernode.protocol.messages import (
    CHALLENGE_SIZE,
    PROTOCOL_VERSION,
    Addr,
    GetAddr,
    Hello,
)
from powernode.protocol.peer import PeerProtocol

log = logging.getLogger("powernode.p2p")

AGENT = "powernode/0.2"


MAX_ADDRBOOK = 1_000
# WebSocket close codes (4000-4999 are for applications): why we hung up.
CLOSE_REFUSED = 4000  # not a fault of the peer: full, duplicate, cooldown
CLOSE_PROTOCOL = 4001  # the peer broke the protocol (the reason names the rule)
CLOSE_BANNED = 4003
# Refusals of one kind from one IP are logged once per this many seconds.
REFUSAL_LOG_S = 10.0


def is_oversize(error: object) -> bool:
    """Whether a WebSocket error message (``WSMsgType.ERROR``'s data) is a
    frame over ``max_msg_size``: aiohttp closes such a connection with code
    1009, message too big, and says so in the error's code."""
    return isinstance(error, aiohttp.WebSocketError) and error.code == WSCloseCode.MESSAGE_TOO_BIG


class _Refused(Exception):
    """A connection we end after the handshake without blaming the peer now:
    closed with ``code`` (4003 for a banned id or address, else 4000)."""

    def __init__(self, reason: str, code: int = CLOSE_REFUSED) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(slots=True)
class AddrEntry:
    """What the address book knows of one ``host:port``."""

    next_dial: float = 0.0  # monotonic s
    # Given by the operator (config ``peers``, RPC ``peer.add``): redialled
    # with backoff for as long as it is in the book. Any other address (a
    # peer's claimed listen address, one from address exchange) is dialled
    # once to check it, and forgotten if that fails.
    trusted: bool = False
    # The node id of the peer that claimed this as its listen address; the
    # dial-back must reach that node, or the address is dropped.
    expect: bytes = b""
    # The node id that proved itself when we dialled this address.
    verified: bytes = b""
    backoff: float = 0.5


class P2P:
    """The peer network: owns the connections, the address book and the
    bans, and the tasks that serve them; Gossip and Sync decide what to do
    with each message."""

    def __init__(self, node: NodeApi, config: P2pConfig, *, key_path: Path | None = None) -> None:
        self.node = node
        self.cfg = config
        self.key_path = key_path
        # Loaded at start (from key_path, or fresh when there is none).
        self.key: KeyPair | None = None
        self.node_id = b""
        self.peers: dict[int, Peer] = {}
        self.bans = Bans()
        self.addrbook: dict[str, AddrEntry] = {}
        self._dialing: set[str] = set()
        self.slots = InboundSlots(config)
        # The most inbound peers past their handshake at once (and, in
        # ``slots``, connections held): neither can pass max_inbound (tests
        # and scripts/bench_p2p_limits.py read them).
        self.peak_inbound_peers = 0
        self.refused: Counter[str] = Counter()  # refusals at accept, by reason
        # IP (or, for peers on this host, node id) -> no new connection before (monotonic s).
        self._cooldown_ips: dict[str, float] = {}
        self._cooldown_nodes: dict[bytes, float] = {}
        self._refusal_logged: dict[tuple[str, str], float] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.listen = ""
        self._sync = Sync(
            node,
            self.peers,
            max_blocks_in_flight=config.max_blocks_in_flight,
            spawn=self._spawn,
            punish=self._punish,
        )
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
        self.key = (
            load_or_create_p2p_key(self.key_path)
            if self.key_path is not None
            else KeyPair.generate()
        )
        self.node_id = self.key.pubkey
        app = web.Application()
        app.router.add_get("/p2p", self._inbound)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.host, self.cfg.port, reuse_address=True)
        await site.start()
        # The port actually bound (the config may say 0: any free one).
        self.listen = host_port(self.cfg.host, self._runner.addresses[0][1])
        self._session = aiohttp.ClientSession()
        for addr in self.cfg.peers:
            self.addrbook.setdefault(addr, AddrEntry()).trusted = True
        self._spawn(self._maintain(), "p2p-maintain")
        emit(
            log,
            "p2p.listening",
            listen=self.listen,
            peers=len(self.cfg.peers),
            node=self.node_id.hex(),
        )

    async def stop(self) -> None:
        self._gossip.close()
        self._sync.close()
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
        """Our hello for one connection, with a fresh challenge."""
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
            challenge=os.urandom(CHALLENGE_SIZE),
        )

    # --- bans ---------------------------------------------------------------

    def banned_node(self, node_id: bytes) -> bool:
        return self.bans.node(node_id, time.monotonic())

    def banned_ip(self, ip: str) -> bool:
        return self.bans.ip(ip, time.monotonic())

    def banned_address(self, addr: str) -> bool:
        return self.bans.addr(addr, time.monotonic())

    def _close_soon(self, peer: Peer, *, code: int, why: str) -> None:
        # Our reason, for peer.disconnected (else it would say "closed").
        peer.close_reason = peer.close_reason or why.partition(":")[0]
        self._spawn(peer.close(code=code, why=why), f"close-{peer.id}")

    def ban_peer(self, peer: Peer, seconds: float, reason: str) -> None:
        """Ban what ``peer`` proved it is: its node id once the handshake
        proved it, and its IP unless it is on this host. A peer on this host
        that proved no id is only disconnected (``peer.dropped``)."""
        until = time.monotonic() + seconds
        node_id, ip = peer.node_id, "" if peer.same_host else peer.ip
        if not node_id and not ip:
            emit(
                log,
                "peer.dropped",
                peer=peer.key,
                node="",
                reason=reason,
                msg="on this host, with no proven id: not banned",
            )
            return
        if node_id:
            self.bans.ban_node(node_id, until)
        if ip:
            self.bans.ban_ip(ip, until)
        emit(
            log,
            "peer.banned",
            logging.WARNING,
            peer=peer.key,
            node=node_id.hex(),
            ip=ip,
            reason=reason,
            seconds=int(seconds),
        )
        for p in list(self.peers.values()):
            if (node_id and p.node_id == node_id) or (ip and p.ip == ip and not p.same_host):
                self._close_soon(p, code=CLOSE_BANNED, why=f"banned: {reason}")

    def ban_address(self, addr: str, seconds: float, reason: str) -> list[bytes]:
        """An operator's ban of ``host:port``: never dial it, refuse peers
        claiming it, and ban (and disconnect) the node ids known there: the
        one that answered when we dialled it, and connected peers that
        dialled us claiming it (a claim only harms the claimant here).
        Returns those node ids."""
        entry = self.addrbook.get(addr)
        nodes = {entry.verified} if entry is not None and entry.verified else set()
        for p in self.peers.values():
            if p.node_id and (p.addr == addr or p.listen == addr):
                nodes.add(p.node_id)
        self.bans.ban_addr(addr, time.monotonic() + seconds, nodes)
        emit(
            log,
            "peer.banned",
            logging.WARNING,
            peer=addr,
            node=",".join(sorted(n.hex() for n in nodes)),
            ip="",
            reason=reason,
            seconds=int(seconds),
        )
        for p in list(self.peers.values()):
            if p.node_id in nodes or p.addr == addr or p.listen == addr:
                self._close_soon(p, code=CLOSE_BANNED, why=f"banned: {reason}")
        return sorted(nodes)

    def ban_node(self, node_id: bytes, seconds: float, reason: str) -> None:
        """An operator's ban of a node id."""
        self.bans.ban_node(node_id, time.monotonic() + seconds)
        emit(
            log,
            "peer.banned",
            logging.WARNING,
            peer="",
            node=node_id.hex(),
            ip="",
            reason=reason,
            seconds=int(seconds),
        )
        for p in list(self.peers.values()):
            if p.node_id == node_id:
                self._close_soon(p, code=CLOSE_BANNED, why=f"banned: {reason}")

    def unban(self, key: str) -> bool:
        """Lift a ban given as ``host:port`` (with the node ids banned with
        it), a node id (hex) or an IP."""
        nid = _node_id_of(key)
        # The operator lets it back now: the cooldown its fault started
        # goes with the ban.
        if nid is not None:
            self._cooldown_nodes.pop(nid, None)
            return self.bans.unban_node(nid)
        self._cooldown_ips.pop(key, None)
        return self.bans.unban_addr(key) or self.bans.unban_ip(key)

    # --- addresses ----------------------------------------------------------

    def add_address(self, addr: str) -> None:
        """An address from the operator (RPC ``peer.add``): dialled, and
        redialled with backoff."""
        if addr and addr != self.listen:
            entry = self.addrbook.setdefault(addr, AddrEntry())
            entry.trusted = True
            entry.next_dial = 0.0

    def _learn_address(self, addr: str, *, expect: bytes = b"") -> None:
        """An address we were told of: dialled once, to check it. One that
        is not ``host:port`` (as a peer's config would hold it) is ignored."""
        known = addr in self.addrbook or len(self.addrbook) >= MAX_ADDRBOOK
        if addr and is_host_port(addr) and addr != self.listen and not known:
            self.addrbook[addr] = AddrEntry(expect=expect)

    def remove_address(self, addr: str) -> int:
        self.addrbook.pop(addr, None)
        closed = 0
        for peer in list(self.peers.values()):
            if addr in (peer.addr, peer.listen):
                self._close_soon(peer, code=CLOSE_REFUSED, why="removed")
                closed += 1
        return closed

    @property
    def tx_reasked(self) -> Mapping[str, int]:
        """Txs asked again of another peer since start, by why the first
        request failed (``p2p_gossip.REASK_REASONS``)."""
        return self._gossip.reasked

    def announce_txs(self, txids: list[bytes], *, source: int | None = None) -> None:
        """Announce newly admitted txs to every peer but ``source`` (a peer id)."""
        self._gossip.announce_txs(txids, source=source)

    def chain_updated(
        self, update: ChainUpdate, *, tip_moved: bool, made_here: Block | None = None
    ) -> None:
        """Tell peers what the chain did (a new tip, txs back from undone
        blocks); a tip ``made_here`` is sent whole (see Gossip)."""
        self._gossip.chain_updated(update, tip_moved=tip_moved, made_here=made_here)

    def push_mined(self, block: Block) -> None:
        """Send a block our miner found on our tip to every peer before it
        is connected here (see Gossip.push_mined)."""
        self._gossip.push_mined(block)

    def _connected_to(self, addr: str, entry: AddrEntry) -> bool:
        ids = {entry.verified, entry.expect} - {b""}
        return any(p.addr == addr or p.node_id in ids for p in self.peers.values())

    # --- accepting ----------------------------------------------------------

    def _admit(self, ip: str, same_host: bool) -> str:
        """Why a new inbound connection from ``ip`` is refused, or ''."""
        now = time.monotonic()
        if not same_host:
            if self.bans.ip(ip, now):
                return "banned"
            if self._cooldown_ips.get(ip, 0.0) > now:
                return "cooldown"
        return self.slots.refusal(ip, same_host=same_host)

    def _log_refusal(self, peer: str, ip: str, reason: str) -> None:
        """``peer.refused``, at most once per ``REFUSAL_LOG_S`` for one IP
        and reason (a burst of thousands is one line, with the count)."""
        self.refused[reason] += 1
        now = time.monotonic()
        key = (ip, reason)
        if now - self._refusal_logged.get(key, -REFUSAL_LOG_S) >= REFUSAL_LOG_S:
            self._refusal_logged[key] = now
            if len(self._refusal_logged) > 10_000:
                self._refusal_logged = {
                    k: t for k, t in self._refusal_logged.items() if now - t < REFUSAL_LOG_S
                }
            emit(log, "peer.refused", peer=peer, reason=reason, total=self.refused[reason])

    async def _inbound(self, request: web.Request) -> web.StreamResponse:
        transport = request.transport
        peername = transport.get_extra_info("peername") if transport else None
        sockname = transport.get_extra_info("sockname") if transport else None
        ip = str(peername[0]) if peername else str(request.remote)
        addr = f"{ip}:{peername[1]}" if peername else ip
        same_host = sockname is not None and ip == sockname[0]
        # Decided and counted with no await in between: a burst of
        # connections cannot all pass the check before any is counted.
        refusal = self._admit(ip, same_host)
        if refusal:
            self._log_refusal(addr, ip, refusal)
            status = 403 if refusal == "banned" else 503
            return web.Response(status=status, text=refusal)
        slot = self.slots.take(ip)
        try:
            ws = web.WebSocketResponse(max_msg_size=self.cfg.max_frame_bytes, autoping=True)
            await ws.prepare(request)
            await self._run_peer(
                ws, addr, "in", ip=ip, same_host=same_host, on_ready=slot.handshake_done
            )
            return ws
        finally:
            slot.release()

    # --- dialling -----------------------------------------------------------

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
            entry = self.addrbook.get(addr)
            if entry is not None and not entry.trusted:
                # Unchecked, and it did not answer: forget it.
                del self.addrbook[addr]
                delay = 0.0
            elif entry is not None:
                entry.backoff = delay = min(60.0, entry.backoff * 2)
                entry.next_dial = time.monotonic() + delay
            else:
                delay = 0.0
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
        peername = ws.get_extra_info("peername")
        sockname = ws.get_extra_info("sockname")
        ip = str(peername[0]) if peername else addr.rpartition(":")[0]
        same_host = sockname is not None and peername is not None and ip == sockname[0]
        started = time.monotonic()
        await self._run_peer(ws, addr, "out", ip=ip, same_host=same_host)
        entry = self.addrbook.get(addr)
        if entry is not None and not entry.trusted and not entry.verified:
            # Checked once, and no node proved itself there: forget it.
            del self.addrbook[addr]
        elif entry is not None:
            # Reconnect soon if it drops, with backoff if it keeps dropping;
            # a connection that lived a while starts the backoff afresh.
            if time.monotonic() - started > 30:
                entry.backoff = 0.5
            entry.backoff = delay = min(60.0, entry.backoff * 2)
            entry.next_dial = time.monotonic() + delay

    # --- one connection -----------------------------------------------------

    async def _run_peer(
        self,
        ws: Any,
        addr: str,
        direction: str,
        *,
        ip: str,
        same_host: bool,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        assert self.key is not None
        proto = PeerProtocol(
            local=self.local_hello(),
            key=self.key,
            dialler=direction == "out",
            max_frame=self.cfg.max_frame_bytes,
        )
        peer = Peer(ws=ws, proto=proto, addr=addr, direction=direction, ip=ip, same_host=same_host)
        proto.start()
        peer.start_writer()
        peer.flush()
        reason = "closed"
        code, why = CLOSE_REFUSED, ""
        try:
            async with asyncio.timeout(self.cfg.handshake_timeout):
                reason = ""
                while not proto.ready and not reason:
                    reason = self._on_frame(peer, await ws.receive())
            if reason == "":
                if on_ready is not None:
                    on_ready()
                self._on_ready(peer)
                async for msg in ws:
                    reason = self._on_frame(peer, msg)
                    if reason:
                        if reason != "closed":
                            code, why = CLOSE_PROTOCOL, reason
                        break
                else:
                    reason = "closed"
            else:
                code, why = CLOSE_PROTOCOL, reason
        except TimeoutError:
            reason = "handshake_timeout"
            code, why = CLOSE_PROTOCOL, reason
            self._cool_down(peer)
        except _Refused as exc:
            reason = str(exc)
            code, why = exc.code, reason
            emit(log, "peer.refused", peer=peer.key, node=peer.node_id.hex(), reason=reason)
        except (ConnectionError, aiohttp.ClientError):
            reason = "connection_lost"
        except StorageError as exc:
            # Not the peer's fault: the store failed, and the node is
            # stopping on it (Node.fail).
            reason = exc.code
        finally:
            reason = peer.close_reason or reason
            if self.peers.pop(peer.id, None) is not None:
                self._sync.peer_gone(peer)
                self._gossip.peer_gone(peer)
                emit(
                    log,
                    "peer.disconnected",
                    peer=peer.key,
                    node=peer.node_id.hex(),
                    direction=direction,
                    reason=reason,
                )
            await peer.close(code=code, why=why)

    def _on_frame(self, peer: Peer, msg: aiohttp.WSMessage) -> str:
        """Handle one WebSocket message; returns a reason to disconnect, or ''."""
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            return "closed"
        if msg.type == WSMsgType.ERROR:
            if is_oversize(msg.data):
                return self.misbehaved(peer, OversizeFrame(str(msg.data)))
            return "ws_error"
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
        if isinstance(exc, VersionMismatch):
            emit(
                log,
                "peer.refused",
                peer=peer.key,
                reason=exc.code,
                ours=exc.ours,
                theirs=exc.theirs,
            )
            return f"{exc.code} ours={exc.ours} theirs={exc.theirs}"
        if exc.bans_peer:
            self.ban_peer(peer, self.cfg.ban_seconds, exc.code)
            # Past the ban too (lifted early by peer.unban, or shorter than
            # the cooldown), it does not come straight back.
            self._cool_down(peer)
        else:
            emit(
                log,
                "peer.dropped",
                peer=peer.key,
                node=peer.node_id.hex(),
                reason=exc.code,
                msg=exc.message,
            )
            if not isinstance(exc, WrongNetwork):
                self._cool_down(peer)
        return exc.code

    def _cool_down(self, peer: Peer) -> None:
        """Keep a peer we drop from coming straight back: by IP, or for a
        peer on this host (whose IP every local node shares) by node id."""
        until = time.monotonic() + self.cfg.reconnect_cooldown
        if not peer.same_host:
            self._cooldown_ips[peer.ip] = until
        elif peer.node_id:
            self._cooldown_nodes[peer.node_id] = until

    def _punish(self, peer: Peer, exc: ProtocolError) -> None:
        """For gossip's and sync's tasks, which are not the peer's reader:
        disconnect ``peer`` with its fault's code, banning it if ``exc``
        says so. A peer already gone (sync meets its
        queued block later) is banned by the node id and IP it proved."""
        connected = self.peers.get(peer.id) is peer
        if connected:
            # Closed with its fault's code (4001) before a ban's close of
            # every connection of its id (4003) is queued: what its reader
            # would have said, had the fault been found there.
            self._close_soon(peer, code=CLOSE_PROTOCOL, why=exc.code)
        reason = self.misbehaved(peer, exc)
        if connected:
            peer.close_reason = reason

    # --- address exchange ---------------------------------------------------

    def _send_addrs(self, peer: Peer) -> None:
        """Addresses a dial of ours reached (and whose node proved its id),
        and the listen addresses our inbound peers claim on the very IP they
        connect from: a peer can point others at its own IP only, never at
        someone else's."""
        now = time.monotonic()
        addrs = [
            a
            for a, e in self.addrbook.items()
            if e.verified and not self.bans.addr(a, now) and not self.bans.node(e.verified, now)
        ]
        for p in self.peers.values():
            if p.direction == "out":
                addrs.append(p.addr)
            elif p.listen and is_host_port(p.listen) and _host(p.listen) == p.ip:
                addrs.append(p.listen)
        peer.send(Addr(sorted(set(addrs))[:1000]))

    def _learn_addrs(self, addrs: list[str]) -> None:
        for a in addrs:
            self._learn_address(a)

    def _dialler(self, peer: Peer) -> bytes:
        return self.node_id if peer.direction == "out" else peer.node_id

    def _on_ready(self, peer: Peer) -> None:
        remote = peer.proto.remote
        assert remote is not None
        node_id = remote.node_id
        now = time.monotonic()
        if self.bans.node(node_id, now):
            raise _Refused("banned", CLOSE_BANNED)
        if peer.direction == "in" and remote.listen and self.bans.addr(remote.listen, now):
            raise _Refused("banned", CLOSE_BANNED)
        if self._cooldown_nodes.get(node_id, 0.0) > now:
            raise _Refused("cooldown")
        if peer.direction == "out":
            entry = self.addrbook.get(peer.addr)
            if entry is not None:
                if entry.expect and entry.expect != node_id and not entry.trusted:
                    # A peer claimed this address, and someone else is here.
                    del self.addrbook[peer.addr]
                    raise _Refused("dialback_mismatch")
                entry.verified = node_id
        dup = next((p for p in self.peers.values() if p.node_id == node_id), None)
        if dup is not None:
            # Both connections proved the same id, so they are the same node's
            # (an unproven one never gets here). Two nodes that dial each
            # other at once must keep the same one of the two, or each closes
            # the one the other kept: keep the one dialled by the lower id.
            if self._dialler(dup) <= self._dialler(peer):
                raise _Refused("duplicate_connection")
            self.peers.pop(dup.id, None)
            self._sync.peer_gone(dup)
            self._gossip.peer_gone(dup)
            emit(
                log,
                "peer.disconnected",
                peer=dup.key,
                node=node_id.hex(),
                direction=dup.direction,
                reason="duplicate_connection",
            )
            self._close_soon(dup, code=CLOSE_REFUSED, why="duplicate_connection")
        self.peers[peer.id] = peer
        if peer.direction == "in":
            inbound = sum(1 for p in self.peers.values() if p.direction == "in")
            self.peak_inbound_peers = max(self.peak_inbound_peers, inbound)
        peer.height = remote.height
        peer.work = int.from_bytes(remote.work, "big")
        if peer.direction == "in":
            self._learn_address(remote.listen, expect=node_id)
        emit(
            log,
            "peer.connected",
            peer=peer.key,
            node=node_id.hex(),
            direction=peer.direction,
            height=remote.height,
            agent=remote.agent,
        )
        if peer.direction == "out":
            peer.send(GetAddr())
        self._sync.peer_ready(peer)
        self._gossip.peer_ready(peer)

    # --- upkeep -------------------------------------------------------------

    async def _maintain(self) -> None:
        last_ping = time.monotonic()
        while True:
            now = time.monotonic()
            self.bans.expire(now)
            for book in (self._cooldown_ips, self._cooldown_nodes):
                for k in [k for k, until in book.items() if until <= now]:
                    del book[k]  # type: ignore[arg-type]
            outbound = sum(1 for p in self.peers.values() if p.direction == "out") + len(
                self._dialing
            )
            candidates = [
                a for a, e in self.addrbook.items()
                if e.next_dial <= now
                and not self.bans.addr(a, now)
                and not self.bans.ip(a.rpartition(":")[0], now)
                and not (e.verified and self.bans.node(e.verified, now))
                and a not in self._dialing
                and not self._connected_to(a, e)
            ]  # fmt: skip
            random.shuffle(candidates)
            for addr in candidates[: max(0, self.cfg.max_outbound - outbound)]:
                self.addrbook[addr].next_dial = now + 1.0
                self._spawn(self._dial(addr), f"dial-{addr}")
            if now - last_ping >= self.cfg.ping_interval:
                last_ping = now
                t = now_ms()
                for peer in list(self.peers.values()):
                    if peer.proto.ping_outstanding(t) > 4 * self.cfg.ping_interval * 1000:
                        emit(log, "peer.timeout", peer=peer.key)
                        peer.close_reason = "ping_timeout"  # peer.disconnected's reason
                        self._close_soon(peer, code=CLOSE_PROTOCOL, why="ping_timeout")
                    elif peer.proto.ready and not peer.proto.ping_outstanding(t):
                        # Not while one waits: a new ping would restart the
                        # clock of the one unanswered, and a peer that never
                        # answers would never time out.
                        peer.proto.ping(random.getrandbits(63), t)
                        peer.flush()
            self._sync.tick()
            self._gossip.tick()
            await asyncio.sleep(0.5)

    def slot_stats(self) -> dict[str, object]:
        """Inbound slots now and at their peak, with the limits, and the
        connections refused at accept by reason (RPC ``peer.stats``)."""
        cfg = self.cfg
        return {
            "node_id": self.node_id.hex(),
            "inbound": sum(1 for p in self.peers.values() if p.direction == "in"),
            "outbound": sum(1 for p in self.peers.values() if p.direction == "out"),
            "inbound_held": self.slots.held,
            "pending": self.slots.pending,
            "peak_inbound_held": self.slots.peak_held,
            "peak_inbound_peers": self.peak_inbound_peers,
            "max_inbound": cfg.max_inbound,
            "max_pending": cfg.max_pending,
            "max_pending_per_ip": cfg.max_pending_per_ip,
            "max_inbound_per_ip": cfg.max_inbound_per_ip,
            "refused": dict(sorted(self.refused.items())),
        }

    def peer_list(self) -> list[dict[str, object]]:
        t = now_ms()
        out = [p.info(t) for p in self.peers.values()]
        return out + self.bans.listing(time.monotonic())


def _host(addr: str) -> str:
    """The host of ``host:port`` (an IPv6 host without its brackets)."""
    return addr.rpartition(":")[0].removeprefix("[").removesuffix("]")


def _node_id_of(text: str) -> bytes | None:
    """``text`` as a node id (64 hex digits), or None."""
    if len(text) != 64:
        return None
    try:
        return from_hex(text)
    except ValueError:
        return None
