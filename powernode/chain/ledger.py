"""The chain and the mempool kept consistent with each other.

Everything the node does to the ledger goes through here: admitting txs,
submitting blocks (which moves txs out of the mempool, and back in after a
reorg), building block templates, and answering queries.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import msgpack

from powernode.chain.chain import Chain, ChainUpdate, VerifyBatch
from powernode.chain.index import IndexEntry
from powernode.chain.mempool import Mempool, PoolEntry, fee_rate
from powernode.chain.sigcache import SigCache, verify_serial
from powernode.chain.store import BlockStore
from powernode.chain.templates import Templates, never_fits
from powernode.chain.txdecode import TxDecoder
from powernode.core.block import Block
from powernode.core.errors import (
    AlreadyKnown,
    InsufficientFunds,
    MempoolFull,
    NonceTooHigh,
    NonceTooLow,
    NotFound,
    OversizeTx,
    PowernodeError,
    Replaced,
    ReplacementUnderpriced,
)
from powernode.core.execution import ExecContext
from powernode.core.params import ChainParams
from powernode.core.tx import Transaction
from powernode.core.units import show_units
from powernode.engines.accounts import ACCOUNT_NS, Account, get_account
from powernode.logkit import emit
from powernode.state.apply import Receipt
from powernode.state.envelope import check_envelope
from powernode.state.view import StateView

log = logging.getLogger("powernode.ledger")

# A replacement (same sender and nonce) must pay at least this much more, in
# percent, so a peer cannot churn the pool for free.
REPLACE_BUMP_PCT = 10
DROPPED_KEPT = 10_000  # reasons kept for txs dropped unmined
# The pool's fee floor decays with a half-life of this many block times:
# Bitcoin Core's 12 hours are 72 of its 10-minute blocks.
MIN_FEE_HALFLIFE_BLOCKS = 72


class Checked(NamedTuple):
    """A tx that passed every admission check except its signature. (A
    NamedTuple: one is made per tx submitted, and it builds fastest.)"""

    tx: Transaction
    sender: bytes
    cost: int
    epoch: int  # the ledger's tip epoch when checked
    # The sender's account at that tip: while the epoch stays, so does the
    # tip state, and the pool rules need not read it again.
    account: Account


# Checked(...) without the NamedTuple's Python __new__ (as accounts.new_account).
_new_checked = partial(tuple.__new__, Checked)


class Ledger:
    def __init__(
        self,
        *,
        params: ChainParams,
        store: BlockStore,
        verify_batch: VerifyBatch = verify_serial,
        mempool_bytes: int = 64 * 1024 * 1024,
        max_per_sender: int = 256,
    ) -> None:
        self.params = params
        self.sigcache = SigCache()
        # Decodes every tx the node receives (see txdecode); exposed for the shell.
        self.decoder = TxDecoder()
        self.chain = Chain(
            params=params,
            store=store,
            sigcache=self.sigcache,
            verify_batch=verify_batch,
            decode_tx=self.decoder.decode,
        )
        self.mempool = Mempool(
            max_bytes=mempool_bytes,
            max_per_sender=max_per_sender,
            min_fee_halflife=MIN_FEE_HALFLIFE_BLOCKS * params.block_time,
        )
        self.verify_batch = verify_batch
        # Bumped whenever the tip moves: a Checked from an older epoch must be
        # checked again in full.
        self._epoch = 0
        # next_context for admission checks, kept while the tip and the clock
        # second stay the same: a batch of txs would build one per tx.
        self._admit_ctx: tuple[IndexEntry, int, ExecContext] | None = None
        # Why recent txs left the mempool unmined (a template refused them, or
        # a reorg could not take them back), so tx.get can tell the sender.
        self.dropped: OrderedDict[bytes, PowernodeError] = OrderedDict()
        # Told each tx let go unmined, as it happens (the node's push
        # subscriptions); set by the shell, never awaited here.
        self.on_dropped: Callable[[bytes, PowernodeError], None] | None = None
        self.templates = Templates(self)
        self.chain.prepared = self.templates.mined_result
        self.chain.own_tx_root = self.templates.root_known

    def load(self) -> None:
        self._epoch += 1  # the tip state moves (see Checked.account)
        self.chain.load()

    # --- accounts -----------------------------------------------------------

    def account(self, addr: bytes) -> Account:
        return get_account(self.chain.state, addr)

    def next_nonce(self, addr: bytes) -> int:
        return self.mempool.next_nonce(addr, self.account(addr).nonce)

    # --- transactions -------------------------------------------------------

    def next_context(self, now: int, miner: bytes = bytes(20)) -> ExecContext:
        tip = self.chain.tip
        ts = max(now, self.chain.min_timestamp(tip))
        return ExecContext(height=tip.height + 1, timestamp=ts, miner=miner, params=self.params)

    def _admission_context(self, now: int) -> ExecContext:
        tip = self.chain.tip
        cached = self._admit_ctx
        if cached is not None and cached[0] is tip and cached[1] == now:
            return cached[2]
        ctx = self.next_context(now)
        self._admit_ctx = (tip, now, ctx)
        return ctx

    def check_tx(self, tx: Transaction, *, now: int, limits: bool = True) -> Checked:
        """Every admission rule but the signature, against the tip state.
        ``limits=False`` (txs the node had already taken, coming back after a
        reorg or a restart) skips the pool's fee floor; a full pool still
        decides in ``add``."""
        return self._check(tx, now, limits=limits, predict_full=limits)

    def _check(self, tx: Transaction, now: int, *, limits: bool, predict_full: bool) -> Checked:
        if tx.txid in self.mempool.by_id:
            raise AlreadyKnown("tx is already in the mempool")
        if why := never_fits(tx, self.params):
            raise OversizeTx(why)
        env = check_envelope(self.chain.state, self.params, tx, queued=True)
        self._check_against_pool(
            tx, env.cost, env.account, now=now, limits=limits, predict_full=predict_full
        )
        precheck = env.handler.precheck
        if precheck is not None:
            precheck(StateView(self.chain.state), self._admission_context(now), tx, env.payload)
        return _new_checked((tx, env.sender, env.cost, self._epoch, env.account))

    def _check_against_pool(
        self,
        tx: Transaction,
        cost: int,
        acct: Account,
        *,
        now: int,
        limits: bool,
        predict_full: bool,
    ) -> PoolEntry | None:
        """The pool's rules, on top of the envelope's: the nonce window,
        replacement, the cost with the sender's pending txs, and (with
        ``limits``) the fee floor. With ``predict_full``, a tx the full pool
        would refuse as its cheapest is refused here already: the caller has
        not checked its signature yet, and need not. Returns the pending tx
        it would replace, if any."""
        pool = self.mempool
        sender = tx.sender_address
        if tx.nonce >= acct.nonce + pool.max_per_sender:
            raise NonceTooHigh(
                f"nonce {tx.nonce} is {pool.max_per_sender} or more ahead of account nonce "
                f"{acct.nonce} (nonces {acct.nonce}..{acct.nonce + pool.max_per_sender - 1} may wait)"
            )
        old, pending = pool.slot(sender, tx.nonce)
        if old is not None and (
            tx.fee <= old.tx.fee or tx.fee * 100 < old.tx.fee * (100 + REPLACE_BUMP_PCT)
        ):
            raise ReplacementUnderpriced(
                f"a tx with nonce {tx.nonce} is pending; a replacement must pay {REPLACE_BUMP_PCT}% more fee"
            )
        needed = pending + cost
        if acct.balance < needed:
            raise InsufficientFunds(
                f"balance {show_units(acct.balance)} < {show_units(needed)} needed with pending txs"
            )
        if not limits:
            return old
        floor = pool.min_fee_rate(now)
        if floor and fee_rate(tx) < floor:
            raise MempoolFull(
                f"fee rate {fee_rate(tx)} per 1000 bytes is below the mempool's minimum {floor} "
                "(it rose when the full pool turned txs away)"
            )
        if predict_full and pool.refuses(tx, sender):
            raise MempoolFull("mempool is full and this tx pays too little to displace any other")
        return old

    def add_checked(self, checked: Checked, *, now: int, limits: bool = True) -> bytes:
        """Admit a tx whose signature the caller has verified. The pool may have
        moved while it was verified, so the pool rules run again; if the tip
        moved too, every rule does. Whether a full pool takes it is left to
        the pool's ``add``, which raises the fee floor if it refuses."""
        tx = checked.tx
        self.sigcache.add(tx.txid)
        if checked.epoch != self._epoch:
            checked = self._check(tx, now, limits=limits, predict_full=False)
            old, _ = self.mempool.slot(checked.sender, tx.nonce)
        else:
            if tx.txid in self.mempool.by_id:
                raise AlreadyKnown("tx is already in the mempool")
            old = self._check_against_pool(
                tx, checked.cost, checked.account, now=now, limits=limits, predict_full=False
            )
        evicted = self.mempool.add(tx, checked.sender, checked.cost)
        self.dropped.pop(tx.txid, None)
        if old is not None:
            self.note_dropped(
                old.tx.txid, Replaced(f"replaced by {tx.txid.hex()}, which pays more fee")
            )
        if evicted:
            emit(log, "mempool.evicted", txs=len(evicted), size=len(self.mempool))
            for e in evicted:
                self.note_dropped(
                    e.tx.txid, MempoolFull("evicted: the full pool kept txs paying more")
                )
        return tx.txid

    def submit_tx(self, tx: Transaction, *, now: int, limits: bool = True) -> bytes:
        """Check, verify (serially, skipping cached signatures) and admit."""
        checked = self.check_tx(tx, now=now, limits=limits)
        self.sigcache.verify_all([tx], self.verify_batch)
        return self.add_checked(checked, now=now, limits=limits)

    def tx_status(self, txid: bytes) -> dict[str, Any]:
        if txid in self.mempool:
            return {"status": "pending"}
        found = self.chain.store.find_tx(txid)
        if found is None:
            why = self.dropped.get(txid)
            if why is not None:
                return {"status": "dropped", "error": why.to_dict()}
            raise NotFound(f"tx {txid.hex()} is not known")
        block_hash, pos = found
        entry = self.chain.index.get(block_hash)
        receipts = self.chain.store.get_receipts(block_hash) or []
        out: dict[str, Any] = {
            "status": "confirmed",
            "block": block_hash.hex(),
            "height": entry.height if entry else None,
            "index": pos,
            "confirmations": (self.chain.height - entry.height + 1) if entry else None,
        }
        if pos < len(receipts):
            out["receipt"] = Receipt.from_obj(txid, receipts[pos]).to_json()
        return out

    # --- blocks -------------------------------------------------------------

    def submit_block(
        self, block: Block, *, now: int, mono: float, source: str = ""
    ) -> tuple[str, ChainUpdate]:
        try:
            outcome, update = self.chain.submit_block(block, now=now, mono=mono, source=source)
        except BaseException:
            # It may have moved the tip before raising (a reorg onto a branch
            # found invalid, a storage error): what was checked before must
            # be checked again (see Checked.account).
            self._epoch += 1
            raise
        if update:
            self._epoch += 1
            self._sync_mempool(update, now)
        return outcome, update

    def _sync_mempool(self, update: ChainUpdate, now: int) -> None:
        pool = self.mempool
        if update.connected:
            pool.block_connected(now)  # the fee floor may start to decay
        if not update.disconnected:
            # Every tx of a connected block used its sender's nonce, so
            # dropping each sender's entries below the new account nonce
            # removes the block's txs and any that conflict with them.
            senders = {tx.sender_address for block, _ in update.connected for tx in block.txs}
            mined = {tx.txid for block, _ in update.connected for tx in block.txs}
            for s in senders:
                for e in pool.drop_stale(s, self.account(s).nonce):
                    if e.tx.txid not in mined:  # another tx used its nonce
                        self.note_dropped(
                            e.tx.txid, NonceTooLow("another tx with its nonce was mined")
                        )
            return
        # A reorg: the undone blocks' txs come back first (they are older),
        # then the pending txs of every account the reorg touched are checked
        # again against the new tip, so none is lost and none applied twice.
        # Accounts it did not touch keep their pending txs as they are: their
        # nonce and balance did not move (the miner re-checks engine rules).
        in_new = {tx.txid for block, _ in update.connected for tx in block.txs}
        resurrect = [
            tx
            for block in reversed(update.disconnected)
            for tx in block.txs
            if tx.txid not in in_new
        ]
        touched = {k for ns, k in update.undone_keys if ns == ACCOUNT_NS}
        for _, result in update.connected:
            touched.update(k for ns, k in result.changed if ns == ACCOUNT_NS)
        pending = [tx for tx in pool.ordered() if tx.sender_address in touched]
        for tx in pending:
            pool.remove(tx.txid)
        # A pending tx the new branch mined left the pool confirmed: offering
        # it again would only record it as dropped (nonce_too_low).
        pending = [tx for tx in pending if tx.txid not in in_new]
        back = self.readmit(resurrect + pending, now=now)
        emit(
            log,
            "mempool.reorg",
            resurrected=len(resurrect),
            rechecked=len(pending),
            readmitted=back,
            size=len(pool),
        )

    def readmit(self, txs: list[Transaction], *, now: int) -> int:
        ok = 0
        for tx in txs:
            try:
                # The node had taken these already: the fee floor that rose
                # since must not drop them (Core's bypass_limits on a reorg).
                self.submit_tx(tx, now=now, limits=False)
                ok += 1
            except AlreadyKnown:
                continue
            except PowernodeError as exc:
                self.note_dropped(tx.txid, exc)
        return ok

    def note_dropped(self, txid: bytes, exc: PowernodeError) -> None:
        self.dropped[txid] = exc
        self.dropped.move_to_end(txid)
        while len(self.dropped) > DROPPED_KEPT:
            self.dropped.popitem(last=False)
        if self.on_dropped is not None:
            self.on_dropped(txid, exc)

    def template(self, miner: bytes, *, now: int) -> Block:
        """A block on the tip with the best-paying txs; the nonce is unsolved
        (see ``Templates``)."""
        return self.templates.template(miner, now=now)

    # --- persistence of the pool -------------------------------------------

    def save_mempool(self, path: Path) -> int:
        """Write the pool to ``path`` whole or not at all: a temporary file
        beside it, synced, then renamed over it. An OSError (a full disk)
        leaves ``path`` as it was and no temporary file."""
        txs = self.mempool.ordered()
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(msgpack.packb([tx.raw for tx in txs], use_bin_type=True))
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return len(txs)

    def load_mempool(self, path: Path, *, now: int) -> int:
        """Re-admit the txs a clean stop saved in ``path``; the number the
        pool then holds (a pool with a smaller bound evicts some again). A file that cannot be read or is not what ``save_mempool``
        writes (truncated, garbage, a directory) must not stop the node: as
        Bitcoin Core does, the pool starts empty, with a warning naming the
        file, and the file is kept aside as ``mempool.dat.corrupt``."""
        try:
            data = path.read_bytes()
            raws = msgpack.unpackb(data, raw=False)
        except FileNotFoundError:
            return 0
        except Exception as exc:  # OSError, or any of msgpack's refusals
            self._set_aside(path, type(exc).__name__)
            return 0
        if not isinstance(raws, list) or not all(isinstance(r, bytes) for r in raws):
            self._set_aside(path, "not_a_tx_list")
            return 0
        txs = []
        skipped: list[PowernodeError] = []
        for raw in raws:
            try:
                txs.append(self.decoder.decode(raw))
            except PowernodeError as exc:
                skipped.append(exc)
        if skipped:
            # The file as a whole is what a clean stop writes; these entries
            # are not txs (this node's rules changed, or the bytes did).
            emit(
                log,
                "mempool.load_skipped",
                logging.WARNING,
                file=str(path),
                skipped=len(skipped),
                reason=skipped[0].code,
            )
        self.readmit(txs, now=now)
        return len(self.mempool)

    @staticmethod
    def _set_aside(path: Path, reason: str) -> None:
        kept = path.with_name(path.name + ".corrupt")
        try:
            # A later bad file replaces the one kept before, of whatever
            # kind (rename cannot put a directory over a file, or over a
            # directory that is not empty).
            if kept.is_dir() and not kept.is_symlink():
                shutil.rmtree(kept)
            elif path.is_dir() and kept.exists():
                kept.unlink()
            os.replace(path, kept)
        except OSError:
            kept = path  # left where it is; the next clean stop replaces a file
        emit(
            log,
            "mempool.load_failed",
            logging.WARNING,
            file=str(path),
            reason=reason,
            kept=str(kept),
        )
