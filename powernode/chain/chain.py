"""The active chain: accept blocks, choose the most-work tip, reorg by undo/redo.

Synchronous and single-threaded: the node calls it from its event loop. The
in-memory state always equals the state at ``tip`` and the store's tip; both
move together, one block at a time, each move one store transaction (or,
inside ``batch()``, a savepoint of the batch's one transaction).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from powernode.chain.index import CONNECTED_ONCE, FAILED, HAVE_DATA, BlockIndex, IndexEntry
from powernode.chain.orphans import OrphanPool
from powernode.chain.sigcache import SigCache, verify_serial
from powernode.chain.storage_faults import fix_store
from powernode.chain.store import BlockStore
from powernode.core.block import Block, BlockHeader, check_block, decode_block, median_time_past
from powernode.core.errors import (
    BadHeight,
    BadTarget,
    InternalFault,
    InvalidBlock,
    KnownInvalid,
    NotFound,
    ParentInvalid,
    PowernodeError,
    StorageError,
    StoreCorrupt,
    StoreUnusable,
    TimeTooNew,
    TimeTooOld,
)
from powernode.core.params import ChainParams
from powernode.core.pow import asert_target
from powernode.core.tx import Transaction
from powernode.core.tx import decode_tx as core_decode_tx
from powernode.logkit import emit
from powernode.state.apply import BlockResult, Receipt, apply_block
from powernode.state.genesis import genesis_block, genesis_result
from powernode.state.registry import STATE_CODECS
from powernode.state.view import MemoryState

log = logging.getLogger("powernode.chain")

VerifyBatch = Callable[[Sequence[Transaction]], None]
# The result of a block already executed elsewhere (the miner's own template),
# or None: (block, parent) -> result.
Prepared = Callable[[Block, "IndexEntry"], "BlockResult | None"]


# Sources kept for blocks not connected yet (block.connected peer=).
_MAX_SOURCES = 1024
# Hashes of headers whose PoW sync checked, kept until their block arrives;
# one pushed out is only checked again.
_MAX_POW_CHECKED = 50_000


@dataclass(slots=True)
class ChainUpdate:
    """What one activation did, in order, for the mempool and the logs."""

    disconnected: list[Block] = field(default_factory=list)
    connected: list[tuple[Block, BlockResult]] = field(default_factory=list)
    invalid: dict[bytes, PowernodeError] = field(default_factory=dict)
    # State keys the disconnected blocks had changed (what a reorg may have
    # moved besides the connected blocks' own changes).
    undone_keys: set[tuple[str, bytes]] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.disconnected or self.connected)


class Chain:
    def __init__(
        self,
        *,
        params: ChainParams,
        store: BlockStore,
        sigcache: SigCache | None = None,
        verify_batch: VerifyBatch = verify_serial,
        orphans: OrphanPool | None = None,
        decode_tx: Callable[[bytes], Transaction] = core_decode_tx,
    ) -> None:
        self.params = params
        self.decode_tx = decode_tx
        self.store = store
        self.sigcache = sigcache if sigcache is not None else SigCache()
        self.verify_batch = verify_batch
        self.orphans = orphans if orphans is not None else OrphanPool()
        self.index = BlockIndex()
        self.active: list[IndexEntry] = []
        self.state = MemoryState()
        self._candidates: set[IndexEntry] = set()
        self._blocks: OrderedDict[bytes, Block] = OrderedDict()
        self.genesis = genesis_block(params)
        self._mtp_cache: tuple[IndexEntry, int] | None = None
        # Set by the ledger: the result of a block it mined from its own
        # template, sealed from that template (chain/templates.py).
        self.prepared: Prepared | None = None
        # Set by the ledger: whether a block's tx root is one its own template
        # computed from exactly the block's txs (not hashed again then).
        self.own_tx_root: Callable[[Block], bool] | None = None
        # Set by the node: told the seconds each block connect took (metrics).
        self.connect_observer: Callable[[float], None] | None = None
        # The peer each submitted block came from, until it connects (for
        # block.connected's peer=); bounded, as side blocks never connect.
        self._sources: OrderedDict[bytes, str] = OrderedDict()
        # Headers whose PoW was checked in a headers batch (note_pow_checked):
        # their block's check skips it (a hash is the header's whole encoding).
        self._pow_checked: dict[bytes, bool] = {}
        # The clock of the submit being handled (for block.connected's age_s=).
        self._now: int | None = None
        # False while a reindex re-applies a whole stored chain (node.py):
        # an activation's update would otherwise hold every block it
        # connected, and its result, in memory until the end.
        self.keep_connected = True
        # True while a reindex re-applies the stored blocks (node.py): each
        # block is checked again as when it came (size, PoW, merkle root),
        # not only executed.
        self.recheck_blocks = False

    # --- loading ------------------------------------------------------------

    def load(self) -> ChainUpdate:
        """Open the chain from the store (creating genesis in an empty one) and
        finish any reorg a crash interrupted."""
        stored = self.store.get_meta("genesis")
        if stored is None:
            self.store.init_genesis(
                self.genesis, genesis_result(self.params).diff, HAVE_DATA | CONNECTED_ONCE
            )
        elif stored != self.genesis.hash:
            raise self._other_chain(stored)
        for se in self.store.iter_index():
            status = (HAVE_DATA if se.has_body else 0) | se.status
            try:
                self.index.add(se.header, status, se.seq)
            except KeyError:
                emit(log, "index.skip", logging.WARNING, hash=se.hash, reason="parent_missing")
        self.state.apply_entries(self.store.iter_state(), STATE_CODECS)
        tip_hash = self.store.get_meta("tip")
        tip = self.index.get(tip_hash) if tip_hash else None
        if tip is None:
            path = self.store.path
            raise StoreCorrupt("has no usable tip", path=str(path), fix=fix_store(path))
        chain: list[IndexEntry] = []
        e: IndexEntry | None = tip
        while e is not None:
            chain.append(e)
            e = e.prev
        chain.reverse()
        self.active = chain
        for entry in self.index.entries.values():
            if entry.status & HAVE_DATA and not entry.failed and entry.work >= tip.work:
                self._candidates.add(entry)
        return self.activate_best_chain()

    def _other_chain(self, stored: bytes) -> StoreUnusable:
        """A store of another genesis than the node's genesis file: a backup
        of another chain restored by hand, or a genesis file replaced."""
        path = self.store.path
        return StoreUnusable(
            f"holds the chain of genesis {stored.hex()[:16]}, but the genesis file gives "
            f"{self.genesis.hash.hex()[:16]}",
            path=str(path),
            fix=f"put back the genesis file {path.name} was made with, or {fix_store(path)}",
        )

    def reset_for_reindex(self) -> None:
        """Before ``load``: drop what the store derived from its blocks, so
        that ``load`` re-applies the stored most-work chain from genesis
        (``BlockStore.reset_to_genesis``). A store of another chain is
        refused as ``load`` refuses it, before anything is written."""
        stored = self.store.get_meta("genesis")
        if stored is None:
            return  # a new store: nothing to rebuild
        if stored != self.genesis.hash:
            raise self._other_chain(stored)
        self.store.reset_to_genesis(
            self.genesis, genesis_result(self.params).diff, HAVE_DATA | CONNECTED_ONCE
        )

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Submit many blocks in one store transaction (a run while syncing:
        one commit instead of two per block). Until it ends, the in-memory
        tip is ahead of what a crash would leave; the caller does not let
        anything else run (no await) inside it."""
        return self.store.batch()

    def note_pow_checked(self, hashes: Sequence[bytes]) -> None:
        """Headers (by hash) whose PoW sync has checked, their blocks asked
        for: those blocks' own check skips it (about 7% of a joiner's CPU
        went to checking each twice)."""
        checked = self._pow_checked
        for h in hashes:
            checked[h] = True
        while len(checked) > _MAX_POW_CHECKED:
            del checked[next(iter(checked))]

    # --- queries ------------------------------------------------------------

    @property
    def tip(self) -> IndexEntry:
        return self.active[-1]

    @property
    def height(self) -> int:
        return self.tip.height

    def entry_at(self, height: int) -> IndexEntry | None:
        return self.active[height] if 0 <= height < len(self.active) else None

    def in_active(self, entry: IndexEntry) -> bool:
        return entry.height < len(self.active) and self.active[entry.height] is entry

    def get_block(self, block_hash: bytes) -> Block:
        blk = self._blocks.get(block_hash)
        if blk is not None:
            return blk
        if block_hash == self.genesis.hash:
            return self.genesis
        raw = self.store.get_block_raw(block_hash)
        if raw is None:
            raise NotFound(f"block {block_hash.hex()} not found")
        blk = decode_block(raw, decode=self.decode_tx)
        self._remember(blk)
        return blk

    def _remember(self, block: Block) -> None:
        self._blocks[block.hash] = block
        self._blocks.move_to_end(block.hash)
        while len(self._blocks) > 64:
            self._blocks.popitem(last=False)

    # --- validation ---------------------------------------------------------

    def expected_target(self, parent: IndexEntry) -> int:
        return self.target_after(parent.height, parent.header.timestamp)

    def target_after(self, parent_height: int, parent_timestamp: int) -> int:
        """The target of a block whose parent has this height and time."""
        p = self.params
        return asert_target(
            anchor_target=p.initial_target,
            anchor_timestamp=p.timestamp,
            parent_height=parent_height,
            parent_timestamp=parent_timestamp,
            block_time=p.block_time,
            halflife=p.asert_halflife,
            pow_limit=p.pow_limit,
        )

    def min_timestamp(self, parent: IndexEntry) -> int:
        cached = self._mtp_cache
        if cached is not None and cached[0] is parent:
            return cached[1]
        value = median_time_past(self.index.recent_timestamps(parent)) + 1
        self._mtp_cache = (parent, value)
        return value

    def check_context(self, block: Block, parent: IndexEntry, now: int) -> None:
        h = block.header
        if h.height != parent.height + 1:
            raise BadHeight(f"height {h.height} does not follow parent height {parent.height}")
        if h.target_int != self.expected_target(parent):
            raise BadTarget("target does not match the ASERT schedule")
        if h.timestamp < self.min_timestamp(parent):
            raise TimeTooOld(f"timestamp {h.timestamp} not above median time past")
        if h.timestamp > now + self.params.max_future:
            raise TimeTooNew(f"timestamp {h.timestamp} more than {self.params.max_future}s ahead")

    # --- accepting ----------------------------------------------------------

    def submit_block(
        self, block: Block, *, now: int, mono: float, source: str = ""
    ) -> tuple[str, ChainUpdate]:
        """Validate, store and maybe activate ``block``; then any orphans it
        unblocks. Returns (outcome, update) where outcome is ``connected``,
        ``side`` (stored on a branch with less work), ``orphan`` or
        ``duplicate``. Raises a typed error if the block is invalid."""
        self._now = now
        if source:
            self._sources[block.hash] = source
            if len(self._sources) > _MAX_SOURCES:
                self._sources.popitem(last=False)
        known = self.index.get(block.hash)
        if known is not None and known.status & HAVE_DATA:
            if known.failed:
                raise KnownInvalid("block was already found invalid")
            return "duplicate", ChainUpdate()
        # Before the block's own checks: another chain's genesis (its tx root
        # a params commitment, its PoW at that chain's target) is told as
        # what it is, not as the check it happens to fail first.
        if block.height == 0:
            raise InvalidBlock("not this chain's genesis block", code="bad_genesis")
        check_block(
            block,
            max_txs=self.params.max_block_txs,
            max_bytes=self.params.max_block_bytes,
            pow_checked=self._pow_checked.pop(block.hash, False),
            tx_root_known=self.own_tx_root is not None and self.own_tx_root(block),
        )
        if block.header.prev_hash not in self.index:
            self.orphans.add(block, mono)
            return "orphan", ChainUpdate()
        self._accept(block, now)
        pending = [block]
        while pending:
            parent = pending.pop()
            for child in self.orphans.take_children(parent.hash):
                try:
                    self._accept(child, now)
                except StorageError:
                    raise  # the disk's fault, not the block's
                except PowernodeError as exc:
                    emit(log, "orphan.rejected", hash=child.hash, reason=exc.code)
                    continue
                pending.append(child)
        update = self.activate_best_chain()
        if block.hash in update.invalid:
            raise update.invalid[block.hash]
        entry = self.index.get(block.hash)
        if entry is not None and entry.failed:
            why = ", ".join(f"{h.hex()[:16]}: {e.code}" for h, e in update.invalid.items())
            raise ParentInvalid(f"block builds on an invalid block ({why or 'known invalid'})")
        outcome = "connected" if entry is not None and self.in_active(entry) else "side"
        return outcome, update

    def _accept(self, block: Block, now: int) -> IndexEntry:
        parent = self.index.get(block.header.prev_hash)
        assert parent is not None
        if parent.failed:
            self.store.put_block(block, HAVE_DATA | FAILED, self.index.next_seq)
            self.index.add(block.header, HAVE_DATA | FAILED)
            raise ParentInvalid("block builds on an invalid block")
        self.check_context(block, parent, now)
        entry = self.index.add(block.header, HAVE_DATA)
        self.store.put_block(block, HAVE_DATA, entry.seq)
        self._remember(block)
        if entry.work >= self.tip.work:
            self._candidates.add(entry)
        return entry

    # --- fork choice --------------------------------------------------------

    def _best_candidate(self) -> IndexEntry | None:
        best: IndexEntry | None = None
        for e in self._candidates:
            if best is None or e.better_than(best):
                best = e
        return best

    def activate_best_chain(self) -> ChainUpdate:
        update = ChainUpdate()
        while True:
            best = self._best_candidate()
            tip = self.tip
            if best is None or best is tip or not best.better_than(tip):
                break
            fork = BlockIndex.fork_point(tip, best)
            while self.tip is not fork:
                update.disconnected.append(self._disconnect_tip(update.undone_keys))
            path: list[IndexEntry] = []
            e: IndexEntry | None = best
            while e is not None and e is not fork:
                path.append(e)
                e = e.prev
            for entry in reversed(path):
                try:
                    connected = self._connect(entry)
                    if self.keep_connected:
                        update.connected.append(connected)
                except StorageError:
                    # The disk failed, not the block: marking it invalid
                    # would refuse it for good. The store refuses every
                    # later write, so the node stops here (node.py).
                    raise
                except PowernodeError as exc:
                    update.invalid[entry.hash] = exc
                    self._mark_failed(entry, exc)
                    break
        tip = self.tip
        self._candidates = {
            e for e in self._candidates if e is tip or (e.work >= tip.work and not e.failed)
        }
        self._candidates.add(tip)
        return update

    def _connect(self, entry: IndexEntry) -> tuple[Block, BlockResult]:
        started = time.perf_counter()
        block = self.get_block(entry.hash)
        assert entry.prev is not None and entry.prev is self.tip
        if self.recheck_blocks:
            check_block(
                block, max_txs=self.params.max_block_txs, max_bytes=self.params.max_block_bytes
            )
        try:
            self.sigcache.verify_all(block.txs, self.verify_batch)
        except PowernodeError as exc:
            raise InvalidBlock(f"{exc.code}: {exc.message}", code=exc.code) from exc
        try:
            result = self.prepared(block, entry.prev) if self.prepared is not None else None
            if result is None:
                result = apply_block(self.state, entry.prev.header.state_root, block, self.params)
        except PowernodeError:
            raise
        except Exception as exc:
            # A bug in execution, not a storage failure (those propagate):
            # set the block aside rather than retry it on every activation.
            emit(
                log,
                "block.internal_error",
                logging.ERROR,
                exc_info=True,
                height=entry.height,
                hash=entry.hash,
            )
            raise InternalFault(f"{type(exc).__name__}: {exc}") from exc
        entry.status |= CONNECTED_ONCE
        self.store.connect(
            block, result.diff, result.undo, Receipt.stored(result.receipts), entry.status
        )
        self.state.apply_values(result.changed)
        self.active.append(entry)
        seconds = time.perf_counter() - started
        if self.connect_observer is not None:
            self.connect_observer(seconds)
        emit(
            log,
            "block.connected",
            height=entry.height,
            hash=entry.hash,
            txs=len(block.txs),
            ms=seconds * 1000,
            size=len(block.raw),
            # Seconds from the block's timestamp to its connect here.
            age_s=(self._now - block.header.timestamp) if self._now is not None else "",
            peer=self._sources.pop(entry.hash, "local"),
        )
        return block, result

    def _disconnect_tip(self, undone_keys: set[tuple[str, bytes]] | None = None) -> Block:
        entry = self.tip
        if entry.prev is None:
            raise RuntimeError("cannot disconnect genesis")
        block = self.get_block(entry.hash)
        undo = self.store.get_undo(entry.hash)
        if undone_keys is not None:
            undone_keys.update((ns, key) for ns, key, _ in undo)
        self.store.disconnect(block, undo)
        self.state.apply_entries(undo, STATE_CODECS)
        self.active.pop()
        emit(log, "block.disconnected", height=entry.height, hash=entry.hash, txs=len(block.txs))
        return block

    def _mark_failed(self, entry: IndexEntry, exc: PowernodeError) -> None:
        emit(
            log,
            "block.invalid",
            logging.WARNING,
            height=entry.height,
            hash=entry.hash,
            reason=exc.code,
            msg=exc.message,
        )
        # Rare (only on an invalid block), so a scan of the index is fine; it
        # spares every later block on this branch a second full validation.
        for e in self.index.entries.values():
            if not e.failed and e.height >= entry.height and BlockIndex.descends_from(e, entry):
                e.status |= FAILED
                self.store.set_status(e.hash, e.status)
                self._candidates.discard(e)

    # --- sync helpers -------------------------------------------------------

    def locator(self) -> list[bytes]:
        """Block hashes from the tip back to genesis, dense then exponentially
        sparse (Bitcoin's block locator): a peer finds our fork point in it."""
        out: list[bytes] = []
        height = self.height
        step = 1
        while height > 0 and len(out) < 63:
            out.append(self.active[height].hash)
            if len(out) >= 10:
                step *= 2
            height -= step
        out.append(self.genesis.hash)
        return out

    def headers_after(self, locator: list[bytes], stop: bytes, limit: int) -> list[BlockHeader]:
        """Main-chain headers after the first locator hash we have on it."""
        start = 0
        for h in locator:
            entry = self.index.get(h)
            if entry is not None and self.in_active(entry):
                start = entry.height
                break
        out: list[BlockHeader] = []
        for entry in self.active[start + 1 : start + 1 + limit]:
            out.append(entry.header)
            if entry.hash == stop:
                break
        return out
