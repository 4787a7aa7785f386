"""Catching up: headers-first block download from peers with more work.

Headers arrive in batches of up to 2,000 after our block locator; the
blocks behind them are fetched from the peer that announced them, at most
``max_blocks_in_flight`` at a time, and, since one WebSocket keeps order,
they arrive parent first. A peer that stalls loses its requests to another
peer; one that sends none of the blocks it announced two rounds in a row
(silent for ``STALL_MS``, or ``notfound``) is dropped as stalling.

A hello's height and work are claims that cost nothing: they make us ask
for headers, nothing more. How far behind we are (``target_height``) is the
best height connected peers have backed with proof of work (headers, or
blocks of ours they have), so a claim cannot send tip blocks through the
queue. A peer whose claim stays unbacked for ``CLAIM_TIMEOUT_S`` is dropped
as stalling (not banned), as Bitcoin Core and geth drop one.

While behind, a block we asked for does not connect as it arrives: it waits
in a queue (at most ``max_blocks_in_flight`` more per peer) while the verify
workers check its txs' signatures, filling the signature cache, and one task
connects the queue's checked head in runs (up to ``RUN_BLOCKS`` blocks or
``RUN_MS`` of work) each in one store transaction. So the signatures of
later blocks are checked while earlier ones connect, and a run costs one
commit instead of two per block. A run is connected without an await, so
nothing else (RPC, push, peers) sees the chain between its blocks; a crash
during one leaves the store at the previous run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from powernode.chain.chain import Chain
from powernode.core.block import Block, BlockHeader
from powernode.core.crypto import ZERO_HASH
from powernode.core.errors import (
    BadHeaders,
    InvalidBlock,
    PowernodeError,
    ProtocolError,
    Stalling,
    StorageError,
    TimeTooNew,
    UnconnectingHeaders,
    proves_misbehaviour,
)
from powernode.core.tx import Transaction
from powernode.logkit import emit
from powernode.node.api import NodeApi, Spawn
from powernode.node.peer import Peer, now_ms
from powernode.protocol.messages import GetData, GetHeaders

log = logging.getLogger("powernode.sync")

STALL_MS = 20_000
# How long a peer whose hello claims more work or height than our chain has
# to send the headers backing it: header batches come back to back (2,000 each,
# about 0.1 s to check), so an honest peer needs a fraction of this.
CLAIM_TIMEOUT_S = 60.0
# Rounds in a row in which a peer sent none of the blocks asked of it (its
# requests stalled, or it answered notfound for blocks it announced) before
# it is dropped as stalling: once may be a busy honest node, twice holds the
# sync (and its target) on blocks that never come.
MAX_UNSERVED = 2
PROGRESS_EVERY_S = 2.0
# Blocks queued per peer; more are asked for once these arrive.
MAX_TO_FETCH = 20_000
# Header batches in a row that connect to nothing we know before the peer is
# treated as a spammer (Bitcoin Core allows 10 too).
MAX_UNCONNECTING = 10
# A run of queued blocks connected in one store transaction ends after this
# many blocks or this much work: long enough that the commit is shared out,
# short enough that RPC and peers wait at most about this long.
RUN_BLOCKS = 64
RUN_MS = 250
# The blocks received in one turn of the event loop are checked together (one
# request to the workers, split over them), up to about this many txs a
# request: a block's connect waits for its whole request.
CHECK_TXS = 2048
# At most this many txs checked ahead and not yet connected: their entries
# must stay in the signature cache (250,000) until their block connects, so
# with large blocks the later blocks of the queue wait for their check.
AHEAD_TXS = 100_000

Punish = Callable[[Peer, ProtocolError], None]


@dataclass(slots=True, eq=False)
class _Queued:
    """A block received ahead of the connect point, its signatures being
    checked in the verify workers."""

    peer: Peer
    block: Block
    # The check of its signatures (shared by the blocks checked together);
    # None until it starts.
    checked: asyncio.Future[None] | None = None


@dataclass(frozen=True, slots=True)
class _Claim:
    """What a peer's hello claimed beyond our chain, to be backed by
    ``deadline`` (monotonic s)."""

    deadline: float
    height: int
    work: int  # 0: it claimed no more work than ours, only a greater height


def _queue(peer: Peer, hashes: list[bytes]) -> list[bytes]:
    """Queue what room allows; returns the hashes queued."""
    room = MAX_TO_FETCH - len(peer.to_fetch)
    queued = hashes[: max(room, 0)]
    for h in queued:
        peer.to_fetch[h] = None
    return queued


class Sync:
    def __init__(
        self,
        node: NodeApi,
        peers: Mapping[int, Peer],
        *,
        max_blocks_in_flight: int,
        spawn: Spawn | None = None,
        punish: Punish | None = None,
    ) -> None:
        self.node = node
        # The connected peers (P2P's, read only): where blocks can come from.
        self.peers = peers
        self.max_blocks_in_flight = max_blocks_in_flight
        # Without ``spawn`` (no task may be started) every block connects as
        # it arrives.
        self._spawn = spawn
        self._punish = punish
        # Blocks received while behind, in arrival order, waiting to connect.
        self._queue: deque[_Queued] = deque()
        self._queued: set[bytes] = set()
        self._queued_from: dict[int, int] = {}  # peer id -> blocks in the queue
        self._connecting = False  # the task connecting the queue is running
        self._unchecked: deque[_Queued] = deque()  # queued, their check not started yet
        self._check_soon = False  # a _start_checks call is scheduled
        self._ahead = 0  # txs of queued blocks whose check started
        # Peers a queued block of proved misbehaving: the rest of what they
        # sent is dropped unconnected, and they are punished once, whether
        # still connected or not.
        self._blamed: set[int] = set()
        # Runs committed, and the blocks in them (tests and benchmarks read them).
        self.runs = 0
        self.run_blocks = 0
        self.peak_queued = 0  # the most blocks the queue held at once
        self.peak_ahead = 0  # the most txs checked ahead at once
        # The best height a connected peer has backed with proof of work.
        self.target_height = 0
        # Peer id -> the claim of its hello above our chain, while the peer
        # has not backed it.
        self._claims: dict[int, _Claim] = {}
        # Peer id -> rounds in a row it served none of the blocks asked of it.
        self._unserved: dict[int, int] = {}
        # Peer id -> blocks asked of it that another peer announced (moved
        # from a peer that stalled or left): its notfound for them is fair.
        self._moved_to: dict[int, set[bytes]] = {}
        self._last_progress = time.monotonic()
        self._progress_height = 0
        self._asked_headers: dict[int, float] = {}  # peer id -> when (monotonic s)
        self._sync_start: tuple[float, int] | None = None

    @property
    def chain(self) -> Chain:
        return self.node.chain

    def _have(self, h: bytes) -> bool:
        entry = self.chain.index.get(h)
        return (
            (entry is not None and bool(entry.status & 1))
            or h in self.chain.orphans
            or h in self._queued
        )

    def _requested(self, h: bytes) -> bool:
        return any(h in p.in_flight or h in p.to_fetch for p in self.peers.values())

    @property
    def queued(self) -> int:
        """Blocks received and waiting to connect."""
        return len(self._queue)

    def ask_headers(self, peer: Peer, after: bytes | None = None, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._asked_headers.get(peer.id, 0.0) < 1.0:
            return
        self._asked_headers[peer.id] = now
        locator = self.chain.locator()
        if after is not None:
            locator = [after, *locator][:64]
        peer.send(GetHeaders(locator, ZERO_HASH))

    # --- events from P2P ----------------------------------------------------

    def peer_ready(self, peer: Peer) -> None:
        tip = self.chain.tip
        # A height above ours shows in ``syncing`` even with less work, so it
        # must be backed too.
        if peer.work > tip.work or peer.height > tip.height:
            # Only a claim: the headers it answers with are what count.
            self._claims[peer.id] = _Claim(
                deadline=time.monotonic() + CLAIM_TIMEOUT_S,
                height=peer.height,
                work=peer.work if peer.work > tip.work else 0,
            )
            self.ask_headers(peer, force=True)

    def peer_gone(self, peer: Peer) -> None:
        self._asked_headers.pop(peer.id, None)
        self._claims.pop(peer.id, None)
        self._unserved.pop(peer.id, None)
        self._moved_to.pop(peer.id, None)
        if peer.id not in self._queued_from:
            self._blamed.discard(peer.id)
        orphaned = [h for h in [*peer.in_flight, *peer.to_fetch] if not self._have(h)]
        if not orphaned:
            return
        others = [p for p in self.peers.values() if p is not peer]
        if others:
            self._move(orphaned, max(others, key=lambda p: p.proven_height))

    def _move(self, hashes: list[bytes], to: Peer) -> None:
        """Ask ``to`` for blocks another peer announced."""
        self._moved_to.setdefault(to.id, set()).update(_queue(to, hashes))
        self.request_more(to)

    def _served(self, peer: Peer, block_hash: bytes) -> None:
        self._unserved.pop(peer.id, None)
        moved = self._moved_to.get(peer.id)
        if moved is not None:
            moved.discard(block_hash)

    def _unserved_round(self, peer: Peer, why: str) -> None:
        """``peer`` sent none of the blocks asked of it this round: dropped
        as stalling after ``MAX_UNSERVED`` such rounds in a row."""
        n = self._unserved.get(peer.id, 0) + 1
        self._unserved[peer.id] = n
        if n >= MAX_UNSERVED and self._punish is not None and peer.id in self.peers:
            del self._unserved[peer.id]
            self._punish(peer, Stalling(f"{why}, {n} rounds in a row"))

    def on_notfound(self, peer: Peer, hashes: list[bytes]) -> None:
        """``peer`` will not send these blocks: those it announced itself
        (not moved to it from another peer) are a round it served nothing."""
        moved = self._moved_to.get(peer.id, set())
        announced = [h for h in hashes if h in peer.in_flight and h not in moved]
        for h in hashes:
            if h in peer.in_flight:
                del peer.in_flight[h]
                moved.discard(h)
        if announced:
            self._unserved_round(peer, f"notfound for {len(announced)} blocks it announced")

    def on_block_inv(self, peer: Peer, hashes: list[bytes]) -> None:
        want = [h for h in hashes if not self._have(h) and not self._requested(h)]
        if want:
            _queue(peer, want)
            self.request_more(peer)

    def on_headers(self, peer: Peer, headers: list[BlockHeader]) -> None:
        """Queue the blocks behind a batch of headers, once the batch is
        shown to be a chain: it links to a block we know and each header to
        the one before, with the right height, the ASERT target and valid
        PoW. A batch that fails that is misbehaviour; one that connects to
        nothing we know is tolerated a few times (we may be on another
        branch) and answered with our locator."""
        if not headers:
            return
        parent = self.chain.index.get(headers[0].prev_hash)
        if parent is None:
            peer.unconnecting += 1
            if peer.unconnecting > MAX_UNCONNECTING:
                raise UnconnectingHeaders("header batches that connect to nothing")
            self.ask_headers(peer)
            return
        peer.unconnecting = 0
        prev_hash, prev_height, prev_time = parent.hash, parent.height, parent.header.timestamp
        for h in headers:
            if h.prev_hash != prev_hash:
                raise BadHeaders("headers do not form a chain")
            if h.height != prev_height + 1:
                raise ProtocolError("header height does not follow its parent", code="bad_height")
            if h.target_int != self.chain.target_after(prev_height, prev_time):
                raise ProtocolError("header target off the ASERT schedule", code="bad_target")
            try:
                h.check_pow()
            except PowernodeError as exc:
                raise ProtocolError(exc.message, code=exc.code) from exc
            prev_hash, prev_height, prev_time = h.hash, h.height, h.timestamp
        last = headers[-1]
        peer.height = max(peer.height, last.height)
        peer.proven_height = max(peer.proven_height, last.height)
        self.target_height = max(self.target_height, last.height)
        queued = _queue(
            peer,
            [h.hash for h in headers if not self._have(h.hash) and not self._requested(h.hash)],
        )
        # Checked above, before anything was asked for: the block's own
        # check need not hash it again.
        self.chain.note_pow_checked(queued)
        self.request_more(peer)
        if len(headers) >= 2000:
            self.ask_headers(peer, after=last.hash, force=True)

    def on_block(self, peer: Peer, block: Block, outcome: str) -> None:
        self._served(peer, block.hash)
        self._log_progress()
        if outcome == "orphan":
            # We lack its ancestors: ask this peer what leads to it.
            self.ask_headers(peer)
        self.request_more(peer)
        if not peer.in_flight and not peer.to_fetch and peer.height > self.chain.height:
            self.ask_headers(peer)

    def request_more(self, peer: Peer) -> None:
        # At most max_blocks_in_flight asked for, and as many again received
        # and waiting in the queue: what bounds the memory a sync holds.
        in_flight = len(peer.in_flight)
        cap = self.max_blocks_in_flight
        room = min(cap - in_flight, 2 * cap - in_flight - self._queued_from.get(peer.id, 0))
        if room <= 0 or not peer.to_fetch:
            return
        batch: list[bytes] = []
        while peer.to_fetch and len(batch) < room:
            h = next(iter(peer.to_fetch))
            del peer.to_fetch[h]
            if not self._have(h) and not any(h in p.in_flight for p in self.peers.values()):
                batch.append(h)
        if batch:
            t = now_ms()
            for h in batch:
                peer.in_flight[h] = t
            peer.send(GetData("block", batch))

    # --- blocks downloaded ahead: checked, then connected in runs ---------------

    def take_block(self, peer: Peer, block: Block) -> bool:
        """Gossip hands over a block it asked ``peer`` for. While we are
        behind (more blocks are to come after it) or blocks wait before it,
        queue it, start the check of its signatures and return True: it
        connects later, in a run. False: the caller submits it now (a block
        at the tip, or no task may be started)."""
        self._served(peer, block.hash)
        if self._spawn is None:
            return False
        if not self._queue and block.height >= self.target_height:
            return False
        self._log_progress()  # sync.started counts from the height before the run
        item = _Queued(peer, block)
        self._queue.append(item)
        self.peak_queued = max(self.peak_queued, len(self._queue))
        self._unchecked.append(item)
        if not self._check_soon:
            self._check_soon = True
            asyncio.get_running_loop().call_soon(self._start_checks)
        self._queued.add(block.hash)
        self._queued_from[peer.id] = self._queued_from.get(peer.id, 0) + 1
        peer.height = max(peer.height, block.height)
        # Keep the download going while the queue connects.
        self.request_more(peer)
        if not self._connecting:
            self._connecting = True
            self._spawn(self._connect_queue(), "sync-connect")
        return True

    def _start_checks(self, *, force: bool = False) -> None:
        """Start the checks of the queued blocks not checked yet, a request
        per ``CHECK_TXS`` txs or so, while fewer than ``AHEAD_TXS`` txs are
        checked ahead (with ``force``, at least one request: the queue's
        head waits for it)."""
        self._check_soon = False
        pending = self._unchecked
        while pending and (force or self._ahead < AHEAD_TXS):
            force = False
            group: list[_Queued] = []
            txs: list[Transaction] = []
            while pending and len(txs) < CHECK_TXS:
                item = pending.popleft()
                group.append(item)
                txs.extend(item.block.txs)
            self._ahead += len(txs)
            self.peak_ahead = max(self.peak_ahead, self._ahead)
            checked = asyncio.ensure_future(self.node.check_signatures(txs))
            for g in group:
                g.checked = checked

    async def _connect_queue(self) -> None:
        queue = self._queue
        ok = False
        try:
            while queue:
                checked = queue[0].checked
                if checked is None:
                    self._start_checks(force=True)
                    checked = queue[0].checked
                # A failed check (a verifier fault) is not the block's: its
                # connect checks the signatures again and decides.
                with contextlib.suppress(Exception):
                    await checked  # type: ignore[misc]
                if queue:
                    self._connect_run()
                    # The next head's check may be done already, and so
                    # would the await above: without this, run after run
                    # would keep RPC and peers waiting past one run's bound.
                    await asyncio.sleep(0)
            ok = True
        except StorageError:
            # The store failed, not the blocks nor their peers: the node is
            # stopping on it (Node.fail); the queue is dropped below.
            pass
        finally:
            self._connecting = False
            if not ok:
                # Cancelled (the node stops) or a bug: drop the queue, so
                # nothing stays marked as had; the tick asks again.
                self.close()

    def _connect_run(self) -> None:
        """Connect the queue's head and the checked blocks right after it,
        in one store transaction. No await inside: nothing else sees the
        chain between the run's blocks."""
        queue = self._queue
        started = time.perf_counter()
        limit = started + RUN_MS / 1000
        done: list[tuple[Peer, Block, str]] = []
        taken = 0
        with self.chain.batch():
            while queue and taken < RUN_BLOCKS:
                item = queue[0]
                checked = item.checked
                # The head's check was awaited; the rest must be done already.
                if taken and (checked is None or not checked.done() or time.perf_counter() > limit):
                    break
                taken += 1
                queue.popleft()
                self._dequeued(item)
                if item.peer.id in self._blamed:
                    continue
                outcome = self._submit(item.peer, item.block)
                if outcome:
                    done.append((item.peer, item.block, outcome))
        if self._unchecked:
            self._start_checks()  # room was made ahead
        if not done:
            return  # only blocks of a peer found lying, dropped
        self.runs += 1
        self.run_blocks += len(done)
        emit(
            log,
            "sync.run",
            height=self.chain.height,
            blocks=len(done),
            ms=(time.perf_counter() - started) * 1000,
            queued=len(queue),
        )
        for peer, block, outcome in done:
            if peer.id in self.peers:
                self.on_block(peer, block, outcome)
            else:
                self._log_progress()

    def _dequeued(self, item: _Queued) -> None:
        self._queued.discard(item.block.hash)
        if item.checked is not None:
            self._ahead -= len(item.block.txs)
        n = self._queued_from.get(item.peer.id, 0) - 1
        if n > 0:
            self._queued_from[item.peer.id] = n
        else:
            self._queued_from.pop(item.peer.id, None)
            if item.peer.id not in self.peers:
                self._blamed.discard(item.peer.id)

    def _submit(self, peer: Peer, block: Block) -> str:
        """Submit a queued block as gossip submits one it receives: the
        outcome, or '' if it was refused (its peer punished if that proves
        misbehaviour)."""
        try:
            outcome, _ = self.node.accept_block(block, source=peer.key)
        except TimeTooNew as exc:
            emit(log, "block.early", peer=peer.key, hash=block.hash, reason=exc.code)
            return ""
        except InvalidBlock as exc:
            if proves_misbehaviour(exc) and self._punish is not None:
                self._blamed.add(peer.id)
                # Connected or not: a peer that hung up once its blocks were
                # queued is banned by what it proved (node id, IP) all the
                # same, so it cannot come straight back with them.
                why = ProtocolError(f"invalid block: {exc.message}", code=exc.code)
                self._punish(peer, why)
            return ""
        entry = self.chain.index.get(block.hash)
        if entry is not None:
            peer.has(entry)
        return outcome

    def close(self) -> None:
        """Forget the queue (the node stops): its checks are cancelled."""
        for item in self._queue:
            if item.checked is not None:
                item.checked.cancel()
        self._queue.clear()
        self._unchecked.clear()
        self._ahead = 0
        self._queued.clear()
        self._queued_from.clear()
        self._blamed.clear()

    # --- periodic -----------------------------------------------------------

    def tick(self) -> None:
        t = now_ms()
        peers = list(self.peers.values())
        for peer in peers:
            stalled = [h for h, at in peer.in_flight.items() if t - at > STALL_MS]
            if stalled:
                for h in stalled:
                    del peer.in_flight[h]
                others = [p for p in peers if p is not peer]
                target = max(others, key=lambda p: p.proven_height) if others else peer
                emit(log, "sync.stalled", peer=peer.key, blocks=len(stalled), moved_to=target.key)
                if target is peer:
                    _queue(peer, stalled)
                    self.request_more(peer)
                else:
                    self._move(stalled, target)
                self._unserved_round(peer, f"{len(stalled)} blocks asked for not sent in time")
        # What connected peers have proven, not what they claimed, nor what
        # a peer since gone once proved.
        self.target_height = max((p.proven_height for p in peers), default=0)
        self._check_claims(peers)
        self._log_progress()
        # Keep asking the best peer while behind and nothing is on its way.
        idle = not self._queue and not any(p.in_flight or p.to_fetch for p in peers)
        if self.chain.height < self.target_height and peers and idle:
            self.ask_headers(max(peers, key=lambda p: p.proven_height))

    def _check_claims(self, peers: list[Peer]) -> None:
        """Drop as stalling a peer whose hello claimed more than our chain
        (work or height) and that has not backed the claim in time."""
        if not self._claims:
            return
        now = time.monotonic()
        tip = self.chain.tip
        for peer in peers:
            claim = self._claims.get(peer.id)
            if claim is None:
                continue
            # Backed, or moot: our chain has reached what it claimed (its
            # height, or the work it claimed: an honest peer may have moved
            # to a shorter chain with more work since its hello).
            if (
                peer.proven_height >= claim.height
                or tip.height >= claim.height
                or (claim.work and tip.work >= claim.work)
            ):
                del self._claims[peer.id]
            elif now > claim.deadline:
                del self._claims[peer.id]
                if self._punish is not None:
                    self._punish(
                        peer,
                        Stalling(
                            f"claimed height {claim.height}, backed {peer.proven_height} "
                            f"after {CLAIM_TIMEOUT_S:.0f} s"
                        ),
                    )

    def _log_progress(self) -> None:
        """While behind: a progress line every 2 s or 100 blocks; when caught
        up after a sync, one summary line."""
        now = time.monotonic()
        height = self.chain.height
        if height < self.target_height:
            if self._sync_start is None:
                self._sync_start = (now, height)
                emit(log, "sync.started", height=height, target=self.target_height)
            if (
                now - self._last_progress >= PROGRESS_EVERY_S
                or height - self._progress_height >= 100
            ):
                rate = (height - self._progress_height) / max(now - self._last_progress, 1e-3)
                emit(
                    log,
                    "sync.progress",
                    height=height,
                    target=self.target_height,
                    blocks_per_s=round(rate, 1),
                    peers=len(self.peers),
                )
                self._last_progress = now
                self._progress_height = height
        elif self._sync_start is not None:
            started, from_height = self._sync_start
            secs = max(now - started, 1e-3)
            emit(
                log,
                "sync.done",
                height=height,
                blocks=height - from_height,
                ms=round(secs * 1000),
                blocks_per_s=round((height - from_height) / secs, 1),
            )
            self._sync_start = None
        else:
            self._last_progress = now
            self._progress_height = height
