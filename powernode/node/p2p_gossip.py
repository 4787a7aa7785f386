"""Gossip: what a node does with each peer message, and what it announces.

Txs and blocks travel by announcement (``inv`` of hashes) and request
(``getdata``); full objects go only to peers that asked. Data that proves the
sender misbehaved (an error whose class ``bans_peer``: a bad signature, bad
PoW, a malformed object) raises a ProtocolError, which makes P2P disconnect
and ban the peer; data that is only stale or early (a spent nonce, a block
from the near future) is dropped without blame.

Txs cost the receiver work (a decode, the admission checks, a signature)
whether or not they get in, so each peer has a tx relay budget
(``RelayBudget``, peer.py): txs it sends unasked, and txs refused for their
fee, are blamed on it; a peer over budget is slowed (asked for nothing, its
unasked txs dropped unchecked) and then disconnected, never banned.

Gossip sees the node through ``NodeApi`` and the peers through P2P's table;
it starts tasks and punishes peers through the callbacks P2P gives it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from itertools import islice
from typing import Any

from powernode.chain.chain import ChainUpdate
from powernode.chain.index import IndexEntry
from powernode.core.block import Block, decode_block, decode_header
from powernode.core.errors import (
    FeeTooLow,
    Flood,
    InvalidBlock,
    Malformed,
    MempoolFull,
    PowernodeError,
    ProtocolError,
    ReplacementUnderpriced,
    TimeTooNew,
    TxFlood,
    proves_misbehaviour,
)
from powernode.core.tx import Transaction
from powernode.logkit import emit
from powernode.node.api import NodeApi, Spawn
from powernode.node.p2p_sync import Sync
from powernode.node.peer import KnownSet, Peer, now_ms
from powernode.protocol.messages import (
    MAX_INV,
    MAX_TXS,
    BlockMsg,
    GetData,
    GetHeaders,
    Headers,
    Inv,
    Message,
    NotFound,
    TxMsg,
    Txs,
)

log = logging.getLogger("powernode.p2p")

REJECTS_KEPT = 50_000
CONFIRMED_KEPT = 200_000
# Txs received from one peer and not yet checked; more means the peer sends
# far more than it was asked for.
MAX_TX_BACKLOG = 20_000
# A tx asked of one peer is not asked of another announcer for this long;
# then, unless it came, it is asked of another peer that announced it (as
# it is at once when the peer asked disconnects or answers ``notfound``).
ASK_TIMEOUT_S = 5.0
# Txs asked of one peer and not yet sent, remembered (the oldest forgotten
# first): a peer that never answers cannot grow the record without bound.
MAX_ASKED_PER_PEER = 4 * MAX_TX_BACKLOG
# Refusals that blame the peer that relayed the tx: it pays too little for
# this pool. (A stale nonce, a tx already known, and the like are races any
# honest peer loses now and then, and cost it nothing.)
FEE_REFUSALS = (MempoolFull, FeeTooLow, ReplacementUnderpriced)
# Bytes of txs per ``txs`` answer frame.
TXS_FRAME_BYTES = 1 << 20
# Txs of one peer's backlog sent to admission (and the signature workers)
# at a time. A block that comes meanwhile verifies its txs not yet checked
# itself; those already handed to the workers are then verified twice, those
# still queued are refused afterwards for their used nonce without a
# signature check. So few in flight at once, and admitted txs are relayed
# sooner.
CHECK_BATCH = 1_024
# Tx announcements wait this long and go out together, one ``inv`` per peer
# (as Bitcoin Core trickles them): fewer frames, and a tx the peer announced
# to us meanwhile is not announced back.
INV_DELAY_S = 0.05
# A newly connected peer is told up to this many of our pending txs (geth's
# syncTransactions): one already known to it costs a hash, and a tx that
# missed a peer while a link was down (a partition, a reorg announced on a
# connection that was then replaced) still reaches it. Few enough that a
# peer whose fee floor is above all of them blames us well below its
# disconnect level, and the work per handshake stays small.
POOL_ANNOUNCED_ON_CONNECT = 1_000


# Why a tx is asked again of another peer: the peer asked left, answered
# ``notfound``, or did not send it within ASK_TIMEOUT_S.
REASK_REASONS = ("peer_gone", "notfound", "timeout")

# What ``_asked`` answers for a tx never asked: long enough ago.
_NEVER = (-ASK_TIMEOUT_S, 0)


def _forget(checking: dict[bytes, Transaction], txs: list[Transaction]) -> None:
    for tx in txs:
        checking.pop(tx.txid, None)


def _tx_flood(level: int) -> TxFlood:
    return TxFlood(f"{level} blame points for txs sent unasked or refused for their fee")


class Gossip:
    def __init__(
        self,
        node: NodeApi,
        peers: Mapping[int, Peer],
        sync: Sync,
        *,
        max_blocks_served: int,
        spawn: Spawn,
        punish: Callable[[Peer, ProtocolError], object],
    ) -> None:
        self.node = node
        # The connected peers (P2P's, read only), by peer id.
        self.peers = peers
        self.sync = sync
        # Blocks sent for one ``getdata``; more are left unanswered.
        self.max_blocks_served = max_blocks_served
        self._spawn = spawn
        # Disconnects (and, if the error says so, bans) a peer.
        self._punish = punish
        self.recent_rejects = KnownSet(REJECTS_KEPT)
        self.recent_confirmed = KnownSet(CONFIRMED_KEPT)
        # txid -> when it was asked for (monotonic s) and of which peer, so a
        # tx announced by several peers is downloaded once. In the order
        # asked (``_record_asked``), so ``tick`` reads the overdue ones off
        # its head; the peer last asked is the one whose failure ends the wait.
        self._asked: dict[bytes, tuple[float, int]] = {}
        # Txs asked again of another peer since start, by REASK_REASONS (the
        # node's metrics read it at scrape time).
        self.reasked: dict[str, int] = dict.fromkeys(REASK_REASONS, 0)
        # Per peer, txs received and waiting to be checked as one batch.
        self._backlog: dict[int, list[Transaction]] = {}
        # Txs received and not yet admitted or refused, by id: announced
        # again by another peer meanwhile, they are not downloaded (and
        # verified) twice; in a block that comes meanwhile, not decoded twice.
        self._checking: dict[bytes, Transaction] = {}
        # Per peer, tx ids to announce at the next flush.
        self._inv_queue: dict[int, list[bytes]] = {}
        self._inv_flush: asyncio.TimerHandle | None = None
        # The block last mined here and sent before its connect (push_mined),
        # and the peers it went to: once it connects they count as at its
        # height, as peers it is pushed to after the connect do.
        self._pushed_early: tuple[bytes, set[int]] = (b"", set())

    def on_message(self, peer: Peer, msg: Message) -> None:
        """Handle one message of a ready peer (all but address exchange,
        which is P2P's); raises ProtocolError if it proves misbehaviour."""
        if isinstance(msg, Inv):
            if msg.kind == "tx":
                peer.known_txs.update(msg.hashes)
                if peer.relay.slowed(now_ms()):
                    return  # a slowed peer is asked for nothing; others may be
                # In-memory checks only: an inv costs the peer nothing, so it
                # must cost us little (no store lookups per announced hash).
                # Under load each tx is announced by every other peer: one
                # pass per filter, over what the previous one left.
                now = time.monotonic()
                asked = self._asked
                want = self._still_wanted(msg.hashes)
                if want:
                    want = [h for h in want if now - asked.get(h, _NEVER)[0] >= ASK_TIMEOUT_S]
                if want:
                    self._record_asked(want, peer, now)
                    if len(asked) > 4 * MAX_TX_BACKLOG:
                        self.tick()  # the overdue ones, asked elsewhere or let go
                    mine = peer.asked_txs
                    mine.update(dict.fromkeys(want))
                    if len(mine) > MAX_ASKED_PER_PEER:
                        for h in list(islice(mine, len(mine) - MAX_ASKED_PER_PEER // 2)):
                            del mine[h]
                    peer.send(GetData("tx", want))
            else:
                peer.known_blocks.update(msg.hashes)
                self._peer_has(peer, msg.hashes)
                self.sync.on_block_inv(peer, msg.hashes)
        elif isinstance(msg, GetData):
            self._serve(peer, msg)
        elif isinstance(msg, TxMsg):
            self._on_txs(peer, [msg.raw])
        elif isinstance(msg, Txs):
            self._on_txs(peer, msg.raws)
        elif isinstance(msg, BlockMsg):
            self._on_block(peer, msg.raw)
        elif isinstance(msg, GetHeaders):
            # A locator starts at the peer's tip.
            self._peer_has(peer, msg.locator[:1])
            headers = self.node.chain.headers_after(msg.locator, msg.stop, 2000)
            peer.send(Headers([h.encode() for h in headers]))
        elif isinstance(msg, Headers):
            try:
                headers = [decode_header(raw) for raw in msg.headers]
            except PowernodeError as exc:
                raise Malformed(f"bad header: {exc.message}") from exc
            self.sync.on_headers(peer, headers)
        elif isinstance(msg, NotFound):
            if msg.kind == "block":
                self.sync.on_notfound(peer, msg.hashes)
            for h in msg.hashes:
                peer.in_flight.pop(h, None)
            if msg.kind == "tx":
                mine = peer.asked_txs
                gone = [h for h in msg.hashes if h in mine]
                for h in gone:
                    del mine[h]
                # It has not got them (any more): not a source to ask again,
                # and one to announce them to if we get them.
                peer.known_txs.discard(gone)
                self._ask_elsewhere(self._waiting_on(peer, gone), failed=peer, reason="notfound")

    def _serve(self, peer: Peer, msg: GetData) -> None:
        missing = []
        if msg.kind == "tx":
            raws: list[bytes] = []
            size = 0
            for h in msg.hashes:
                entry = self.node.mempool.get(h)
                if entry is None:
                    missing.append(h)
                    continue
                peer.known_txs.add(h)
                raw = entry.tx.raw
                if raws and (len(raws) >= MAX_TXS or size + len(raw) > TXS_FRAME_BYTES):
                    peer.send(Txs(raws))
                    raws, size = [], 0
                raws.append(raw)
                size += len(raw)
            if raws:
                peer.send(Txs(raws) if len(raws) > 1 else TxMsg(raws[0]))
        else:
            chain = self.node.chain
            for h in msg.hashes[: self.max_blocks_served]:
                try:
                    block = chain.get_block(h)
                except PowernodeError:
                    missing.append(h)
                    continue
                peer.known_blocks.add(h)
                self._peer_has(peer, [h])
                peer.send(BlockMsg(block.raw))
        if missing:
            peer.send(NotFound(msg.kind, missing[:MAX_INV]))

    def _on_txs(self, peer: Peer, raws: list[bytes]) -> None:
        """Queue received txs; one task per peer checks them in batches, so
        the peer's reader goes on reading while signatures are verified, and
        a burst costs one trip to the verifier workers, not one per tx.

        Txs we did not ask this peer for are blamed on it (its relay budget)
        before anything else is spent on them: beyond its allowance they are
        dropped undecoded, and a peer over its budget is disconnected."""
        t = now_ms()
        mine = peer.asked_txs
        allowance = peer.relay.allowance(t)
        # Kept txs by id (a copy repeated in the frame is kept once).
        keep: dict[bytes, bytes] = {}
        unasked = 0
        sha256 = hashlib.sha256
        for raw in raws:
            # A tx's id is the hash of its bytes: known before decoding.
            h = sha256(raw).digest()
            if h in mine:
                del mine[h]
                keep[h] = raw
            else:
                unasked += 1
                if unasked <= allowance:
                    keep[h] = raw
        if unasked:
            level = peer.relay.charge_unasked(unasked, t)
            if peer.relay.over(level):
                raise _tx_flood(level)
        if not keep:
            return
        peer.known_txs.update(list(keep))
        asked = self._asked
        for h in keep:
            asked.pop(h, None)
        checking, pool = self._checking, self.node.mempool.by_id
        # Another peer's copy is being checked, or the tx got in (or into a
        # block) while this copy travelled: the same bytes, so nothing to
        # decode or check. (Under load a block often overtakes the last of
        # its txs.)
        new = self.recent_confirmed.unknown(h for h in keep if h not in checking and h not in pool)
        txs: list[Transaction] = []
        decode = self.node.decode_tx
        for h in new:
            try:
                tx = decode(keep[h], h)
            except PowernodeError as exc:
                # The txs of this frame taken so far will never reach a
                # backlog: left in ``checking`` they would be refused by id
                # from every other peer, for good.
                _forget(checking, txs)
                raise Malformed(f"tx: {exc.code}") from exc
            checking[h] = tx
            txs.append(tx)
        if not txs:
            return
        backlog = self._backlog.get(peer.id)
        if backlog is None:
            self._backlog[peer.id] = txs
            self._spawn(self._check_backlog(peer), f"txs-{peer.id}")
        elif len(backlog) + len(txs) > MAX_TX_BACKLOG:
            _forget(checking, txs)
            raise Flood(f"more than {MAX_TX_BACKLOG} txs waiting to be checked")
        else:
            backlog.extend(txs)

    async def _check_backlog(self, peer: Peer) -> None:
        checking = self._checking
        blamed = False
        try:
            while queued := self._backlog.get(peer.id):
                batch, self._backlog[peer.id] = queued[:CHECK_BATCH], queued[CHECK_BATCH:]
                try:
                    results = await self.node.submit_and_relay(batch, source=peer.id)
                finally:
                    _forget(checking, batch)
                cheap = 0
                for tx, (_, err) in zip(batch, results, strict=True):
                    if err is None:
                        continue
                    self.recent_rejects.add(tx.txid)
                    if isinstance(err, FEE_REFUSALS):
                        cheap += 1
                    elif proves_misbehaviour(err) and not blamed:
                        blamed = True
                        self._punish(
                            peer,
                            ProtocolError(f"invalid tx: {err.code}: {err.message}", code=err.code),
                        )
                if cheap and not blamed:
                    level = peer.relay.charge(cheap, now_ms())
                    # Still connected: its reader may have dropped it meanwhile.
                    if peer.relay.over(level) and peer.id in self.peers:
                        blamed = True
                        self._punish(peer, _tx_flood(level))
                # After a ban the rest of what the peer sent is still checked,
                # as any tx is: other peers' copies of those txs were skipped
                # while this one's were waiting, and they will not offer them
                # again (we told them we have them).
        finally:
            # No await since the loop saw the backlog empty: nothing is lost.
            left = self._backlog.pop(peer.id, None) or []
            _forget(checking, left)

    def _peer_has(self, peer: Peer, hashes: list[bytes]) -> None:
        """Raise the peer's height to the highest of these blocks we know
        (dict lookups only: an inv costs the peer nothing)."""
        index = self.node.chain.index
        for h in hashes:
            entry = index.get(h)
            if entry is not None:
                peer.has(entry)

    def _known_tx(self, txid: bytes) -> Transaction | None:
        """A tx of a block that arrives, already decoded here: in the pool,
        or received and waiting to be checked."""
        entry = self.node.mempool.get(txid)
        return self._checking.get(txid) if entry is None else entry.tx

    def _on_block(self, peer: Peer, raw: bytes) -> None:
        try:
            block = decode_block(raw, known=self._known_tx, decode=self.node.decode_tx)
        except PowernodeError as exc:
            # Bytes that are no block break the message's shape, as a tx's
            # do (``_on_txs``): the same code, whatever the decoder said.
            raise Malformed(f"block: {exc.code}: {exc.message}") from exc
        peer.known_blocks.add(block.hash)
        # While syncing, a block we asked for connects later, in a run.
        if peer.in_flight.pop(block.hash, None) is not None and self.sync.take_block(peer, block):
            return
        try:
            outcome, _ = self.node.accept_block(block, source=peer.key)
        except TimeTooNew as exc:
            emit(log, "block.early", peer=peer.key, hash=block.hash, reason=exc.code)
            return
        except InvalidBlock as exc:
            if proves_misbehaviour(exc):
                raise ProtocolError(f"invalid block: {exc.message}", code=exc.code) from exc
            return
        # An orphan is not in the index yet, but the peer has it all the same.
        peer.height = max(peer.height, block.height)
        self._peer_has(peer, [block.hash])
        self.sync.on_block(peer, block, outcome)

    def announce_txs(
        self, txids: list[bytes], *, source: int | None = None, force: bool = False
    ) -> None:
        """Announce to every peer but ``source``, within INV_DELAY_S, the txs
        it is not known to have by then. With ``force``, all of them and at
        once: after a reorg what a peer once had may have left its mempool."""
        loop = asyncio.get_running_loop()
        for peer in self.peers.values():
            if peer.id == source:
                continue
            if force:
                self._send_inv(peer, txids)
            else:
                self._inv_queue.setdefault(peer.id, []).extend(txids)
        if self._inv_queue and self._inv_flush is None:
            self._inv_flush = loop.call_later(INV_DELAY_S, self.flush_invs)

    def peer_gone(self, peer: Peer) -> None:
        """A peer left (P2P took it off the table): the txs asked of it and
        not received are asked of another peer that announced them, as
        Bitcoin Core's TxRequestTracker does, instead of waiting for a new
        announcement (maybe never: a connection replaced by a duplicate can
        take the only answer with it)."""
        hashes = list(peer.asked_txs)
        peer.asked_txs.clear()
        self._ask_elsewhere(self._waiting_on(peer, hashes), failed=peer, reason="peer_gone")

    def _waiting_on(self, peer: Peer, hashes: list[bytes]) -> list[bytes]:
        """Those of ``hashes`` whose current request is the one to ``peer``,
        taken off the record (one asked of another peer since, after a
        timeout, keeps its own wait)."""
        asked, pid = self._asked, peer.id
        out = [h for h in hashes if (e := asked.get(h)) is not None and e[1] == pid]
        for h in out:
            del asked[h]
        return out

    def tick(self) -> None:
        """Upkeep (P2P calls it every half second): a tx asked more than
        ASK_TIMEOUT_S ago and not received is asked of another announcer.
        The record is in the order asked, so only the overdue head is read."""
        asked = self._asked
        if not asked:
            return
        cutoff = time.monotonic() - ASK_TIMEOUT_S
        late = []
        for h, (t, _) in asked.items():
            if t > cutoff:
                break
            late.append(h)
        for h in late:
            del asked[h]
        # The peer first asked keeps the hash in its ``asked_txs``, so it is
        # not asked again, and a late answer from it is still taken as asked.
        self._ask_elsewhere(late, failed=None, reason="timeout")

    def _ask_elsewhere(self, hashes: list[bytes], *, failed: Peer | None, reason: str) -> None:
        """Ask for each of ``hashes`` still wanted one ready, unslowed peer
        known to have it (it announced it, or we sent it) and not yet asked
        for it; one with no such peer waits for a new announcement. Peers
        outermost, with set intersections: a peer that announced many hashes
        it never serves costs a few set operations per peer, not a lookup
        per hash and peer."""
        wanted = self._still_wanted(hashes)
        pending = set(wanted)
        t = now_ms()
        now = time.monotonic()
        for p in list(self.peers.values()):
            if not pending:
                break
            if p is failed or not p.proto.ready or p.relay.slowed(t):
                continue
            ids = p.known_txs.among(pending).difference(p.asked_txs)
            if not ids:
                continue
            pending -= ids
            ordered = [h for h in wanted if h in ids]
            p.asked_txs.update(dict.fromkeys(ordered))
            self._record_asked(ordered, p, now)
            for i in range(0, len(ordered), MAX_INV):
                p.send(GetData("tx", ordered[i : i + MAX_INV]))
        asked = len(wanted) - len(pending)
        self.reasked[reason] += asked
        if wanted:
            # A timeout means a peer sits on requests: worth an operator's
            # eye. The others are races of a busy network.
            where: dict[str, Any] = {} if failed is None else {"peer": failed.key}
            level = logging.INFO if reason == "timeout" else logging.DEBUG
            emit(log, "tx.reasked", level, reason=reason, **where, txs=asked, waiting=len(pending))

    def _still_wanted(self, hashes: list[bytes]) -> list[bytes]:
        """Those of ``hashes`` unknown here in every way: not pending, not
        being checked, not recently confirmed or refused. In-memory checks
        only, one pass per filter over what the previous one left."""
        pool, checking = self.node.mempool.by_id, self._checking
        want = [h for h in hashes if h not in pool and h not in checking]
        if not want:
            return want
        return self.recent_rejects.unknown(self.recent_confirmed.unknown(want))

    def _record_asked(self, hashes: list[bytes], peer: Peer, now: float) -> None:
        """Record ``hashes`` as asked of ``peer`` now, each moved to the end
        so the record stays in the order asked."""
        asked, entry = self._asked, (now, peer.id)
        for h in hashes:
            asked.pop(h, None)
            asked[h] = entry

    def peer_ready(self, peer: Peer) -> None:
        """Announce our pending txs to a peer that just finished its
        handshake, each sender's in nonce order."""
        txids: list[bytes] = []
        # Senders in arrival order, not sorted: the work is bounded by the
        # cap, not by the pool (a handshake costs the peer nothing).
        for queue in self.node.mempool.by_sender.values():
            txids.extend(queue[n].tx.txid for n in sorted(queue))
            if len(txids) >= POOL_ANNOUNCED_ON_CONNECT:
                del txids[POOL_ANNOUNCED_ON_CONNECT:]
                break
        if txids:
            self._send_inv(peer, txids)

    def close(self) -> None:
        if self._inv_flush is not None:
            self._inv_flush.cancel()
            self._inv_flush = None
        self._inv_queue.clear()

    def flush_invs(self) -> None:
        self._inv_flush = None
        queued, self._inv_queue = self._inv_queue, {}
        for peer_id, txids in queued.items():
            peer = self.peers.get(peer_id)
            if peer is not None:
                self._send_inv(peer, peer.known_txs.unknown(dict.fromkeys(txids)))

    def _send_inv(self, peer: Peer, txids: list[bytes]) -> None:
        for i in range(0, len(txids), MAX_INV):
            chunk = txids[i : i + MAX_INV]
            peer.known_txs.update(chunk)
            peer.send(Inv("tx", chunk))

    def chain_updated(
        self, update: ChainUpdate, *, tip_moved: bool, made_here: Block | None = None
    ) -> None:
        """After the chain changed: remember what got confirmed, announce a
        new tip, and announce again the txs of undone blocks. A new tip that
        is ``made_here`` (mined by this node, or submitted to it over RPC) is
        sent whole, not announced."""
        # A reorg's undone txs are not confirmed any more: a peer's copy of
        # one must be decoded and checked again, not dropped by its id.
        self.recent_confirmed.discard([tx.txid for b in update.disconnected for tx in b.txs])
        confirmed = [tx.txid for b, _ in update.connected for tx in b.txs]
        self.recent_confirmed.update(confirmed)
        if confirmed and self._backlog:
            self._drop_confirmed_from_backlogs(set(confirmed))
        if tip_moved:
            # A tx refused on the old tip (say, its nonce was ahead) may be
            # fine on the new one, as Bitcoin Core resets its recent rejects.
            self.recent_rejects = KnownSet(REJECTS_KEPT)
            tip = self.node.chain.tip.hash
            if made_here is not None and made_here.hash == tip:
                self._push_block(made_here, self.node.chain.tip)
            else:
                self._announce_block(tip)
        if update.disconnected:
            # Txs of undone blocks are pending again; peers on the winning
            # branch may never have seen them, so announce them afresh.
            mempool = self.node.mempool
            back = [tx.txid for b in update.disconnected for tx in b.txs if tx.txid in mempool]
            if back:
                self.announce_txs(back, source=None, force=True)

    def _drop_confirmed_from_backlogs(self, confirmed: set[bytes]) -> None:
        """Txs a block overtook while they waited in a peer's backlog: the
        block has them, so admission would only refuse them (their nonce is
        used) after a state check each."""
        for peer_id, queued in self._backlog.items():
            gone = [tx for tx in queued if tx.txid in confirmed]
            if gone:
                self._backlog[peer_id] = [tx for tx in queued if tx.txid not in confirmed]
                _forget(self._checking, gone)

    def push_mined(self, block: Block) -> None:
        """Send a block our miner just found on our tip to every peer, before
        it is connected here: its txs were executed in the template it was
        mined from, and the connect (hundreds of ms for a big block on a busy
        loop) is time in which a peer's miner could find a competing block
        at the same height, and cost someone a reorg."""
        sent: set[int] = set()
        msg: BlockMsg | None = None
        for peer in self.peers.values():
            if block.hash not in peer.known_blocks:
                peer.known_blocks.add(block.hash)
                msg = msg or BlockMsg(block.raw)
                peer.send(msg)
                sent.add(peer.id)
        self._pushed_early = (block.hash, sent)

    def _push_block(self, block: Block, entry: IndexEntry) -> None:
        """Send a block made here to every peer at once (Bitcoin's
        high-bandwidth compact-block relay, with the block whole): no peer has
        it yet, and an ``inv`` would cost a round trip through both event
        loops (ours busy building the next template) before the block could
        even start to travel; every such delay is a window for a competing
        block at the same height, and a reorg for someone. (A block our miner
        found went out already, before its connect: see push_mined.)"""
        early_hash, early = self._pushed_early
        if early_hash != block.hash:
            early = set()
        self._pushed_early = (b"", set())
        msg: BlockMsg | None = None
        for peer in self.peers.values():
            pushed = peer.id in early
            if not pushed and block.hash not in peer.known_blocks:
                peer.known_blocks.add(block.hash)
                msg = msg or BlockMsg(block.raw)
                peer.send(msg)
                pushed = True
            # It never asks for the block nor sends it back, so nothing
            # else would tell us it has it: a peer at the block's parent
            # (or above) connects it on arrival. A peer further behind
            # would hold it as an orphan, so its height stays as it was.
            if pushed and peer.height >= entry.height - 1:
                peer.has(entry)

    def _announce_block(self, block_hash: bytes) -> None:
        for peer in self.peers.values():
            if block_hash not in peer.known_blocks:
                peer.known_blocks.add(block_hash)
                peer.send(Inv("block", [block_hash]))
