"""The miner's block template, and the shortcut for connecting a block mined
from it.

A template is built incrementally: while the tip stays, txs that arrived since
the last one are applied on top of it, not the whole pool again. When our own
block mined from it comes back to be connected, the builder has already
executed its txs on the parent's state, so its state is sealed instead of
executing them a second time.
"""

from __future__ import annotations

import logging
from itertools import islice
from typing import Protocol

from powernode.chain.chain import Chain
from powernode.chain.index import IndexEntry
from powernode.chain.mempool import Mempool
from powernode.core.block import (
    BLOCK_VERSION,
    HEADER_MAX_BYTES,
    Block,
    make_block,
    make_header,
)
from powernode.core.errors import NonceTooHigh, PowernodeError
from powernode.core.execution import ExecContext
from powernode.core.merkle import MerkleAccumulator
from powernode.core.params import ChainParams
from powernode.core.pow import target_to_bytes
from powernode.core.tx import Transaction
from powernode.engines.accounts import Account, get_account
from powernode.logkit import emit
from powernode.state.apply import TX_FRAMING, BlockResult, BodyBuilder, apply_block
from powernode.state.registry import tx_weight

log = logging.getLogger("powernode.ledger")

# A template is extended for at most this long, then rebuilt (fresh
# timestamp, fee order re-applied from scratch).
TEMPLATE_MAX_AGE_S = 10
# What a template leaves of max_block_bytes for the header (at most
# HEADER_MAX_BYTES by consensus) and the block's framing: its array and the
# txs array's headers (each tx's own bin header is in its TX_FRAMING).
HEADER_RESERVE = HEADER_MAX_BYTES + 16
# One own block in this many (by height) is also executed from scratch and
# compared with what its template sealed (see mined_result).
SELF_CHECK_EVERY = 16
# The node's miner builds its template this many candidate txs at a time,
# yielding to the event loop in between (``extend``): a template over a
# big pool is tens to hundreds of ms, and a peer's block waiting behind it
# is time in which our miner hashes on a tip that is already beaten.
TEMPLATE_SLICE = 1000


class TemplateSource(Protocol):
    """What templates need of the ledger (``chain.ledger.Ledger``)."""

    params: ChainParams
    chain: Chain
    mempool: Mempool

    def account(self, addr: bytes) -> Account: ...

    def next_context(self, now: int, miner: bytes = ...) -> ExecContext: ...

    def note_dropped(self, txid: bytes, exc: PowernodeError) -> None: ...


def never_fits(tx: Transaction, params: ChainParams) -> str:
    """Why no block template can ever hold ``tx`` (its weight toward
    ``max_block_txs``, or its bytes, is more than a whole block's), or "".
    The pool refuses such a tx: the template stops at the first tx that
    does not fit, so one that never does would hold back every tx after it."""
    weight = tx_weight(tx)
    if weight > params.max_block_txs:
        return (
            f"tx weighs {weight} toward max_block_txs ({params.max_block_txs}): "
            "no block can hold it"
        )
    room = params.max_block_bytes - HEADER_RESERVE
    if len(tx.raw) + TX_FRAMING > room:
        return (
            f"tx is {len(tx.raw)} bytes; a block of max_block_bytes "
            f"({params.max_block_bytes}) holds {max(room - TX_FRAMING, 0)} bytes of one tx"
        )
    return ""


class Templates:
    def __init__(self, ledger: TemplateSource) -> None:
        self.ledger = ledger
        # The template under construction: (tip, miner, started, builder).
        self._kept: tuple[IndexEntry, bytes, int, BodyBuilder] | None = None
        # The tx root of that builder's txs, extended as it grows (a refresh
        # hashes the new txs' leaves, not the whole tree again).
        self._tx_root: tuple[BodyBuilder, MerkleAccumulator] | None = None

    def builder_for(self, miner: bytes, now: int) -> BodyBuilder:
        """The template builder to extend, or a new one: a new tip, another
        miner, a builder older than TEMPLATE_MAX_AGE_S, or one holding a tx
        the mempool no longer has (replaced or evicted) starts afresh."""
        tip = self.ledger.chain.tip
        kept = self._kept
        if kept is not None:
            b_tip, b_miner, b_started, b = kept
            if (
                b_tip is tip
                and not b.broken
                and b_miner == miner
                and 0 <= now - b_started <= TEMPLATE_MAX_AGE_S
                and all(txid in self.ledger.mempool.by_id for txid in b.ids)
            ):
                return b
        ctx = self.ledger.next_context(now, miner)
        b = BodyBuilder(
            self.ledger.chain.state,
            tip.header.state_root,
            ctx,
            max_bytes=self.ledger.params.max_block_bytes - HEADER_RESERVE,
        )
        self._kept = (tip, miner, now, b)
        return b

    def mined_result(self, block: Block, parent: IndexEntry) -> BlockResult | None:
        """Connecting a block mined from our own template: the builder already
        executed its txs on the parent's state, so seal that instead of
        executing them again. Only when the block is exactly the builder's
        body (same parent, miner, timestamp and txs, in order) and the sealed
        root is the header's; anything else is executed as usual."""
        kept = self._kept
        if kept is None:
            return None
        b_tip, _, _, b = kept
        h = block.header
        if (
            b_tip is not parent
            or b.broken
            or b.ctx.miner != h.miner
            or b.ctx.timestamp != h.timestamp
            or len(b.txs) != len(block.txs)
            or any(x.txid != y.txid for x, y in zip(b.txs, block.txs, strict=True))
        ):
            return None
        self._kept = self._tx_root = None
        result = b.seal_block()
        if result.state_root != h.state_root:
            return None
        if h.height % SELF_CHECK_EVERY == 0:
            # The header's root came from this same builder, so it proves
            # nothing about the builder: now and then execute the block as
            # peers will, and say so loudly if the two ever differ.
            executed = apply_block(
                self.ledger.chain.state, parent.header.state_root, block, self.ledger.params
            )
            if (executed.diff, executed.undo, executed.receipts) != (
                result.diff,
                result.undo,
                result.receipts,
            ):
                emit(log, "template.mismatch", logging.ERROR, height=h.height, hash=h.hash)
                return executed
        return result

    def root_known(self, block: Block) -> bool:
        """Whether ``block``'s tx root is the one the kept builder's tree gave
        for exactly the block's txs (the same objects, in order): a block
        mined from our template, whose root need not be hashed again."""
        kept = self._tx_root
        if kept is None:
            return False
        builder, acc = kept
        txs = block.txs
        return (
            len(acc) == len(txs) == len(builder.txs)
            and all(x is y for x, y in zip(builder.txs, txs, strict=True))
            and acc.root() == block.header.tx_root
        )

    def _root_of(self, builder: BodyBuilder, txs: tuple[Transaction, ...]) -> bytes:
        """The tx root of ``txs``, the builder's body so far (it only grows)."""
        kept = self._tx_root
        if kept is None or kept[0] is not builder:
            kept = self._tx_root = (builder, MerkleAccumulator())
        acc = kept[1]
        acc.extend([tx.txid for tx in txs[len(acc) :]])
        return acc.root()

    def extend(self, miner: bytes, *, now: int, limit: int) -> bool:
        """Apply at most ``limit`` more candidates to the template builder
        (``builder_for``: a new one if the tip moved); whether it is done,
        the pool holding no more candidates for it, the body full, or a
        candidate refused (it would come first again in the next slice:
        ``template`` deals with it). Then ``template`` finishes it: a
        template built in slices is the one ``template`` alone builds (the
        same builder, the same candidates in the same order), the event
        loop free between slices."""
        builder = self.builder_for(miner, now)
        view = builder.view
        before = len(builder.txs)
        candidates = self.ledger.mempool.select(lambda a: get_account(view, a).nonce)
        builder.add(islice(candidates, limit))
        return len(builder.txs) - before < limit or builder.broken

    def template(self, miner: bytes, *, now: int) -> Block:
        """A block on the tip with the best-paying txs; the nonce is unsolved.
        Built incrementally: while the tip stays, txs that arrived since the
        last template are applied on top of it, not the whole pool again."""
        chain = self.ledger.chain
        tip = chain.tip
        builder = self.builder_for(miner, now)
        ctx = builder.ctx
        # Candidates start at each sender's nonce in the builder's view, not
        # the tip's: the txs a kept builder holds already are not walked
        # through the pool's fee heap again at every refresh (that walk cost
        # work in proportion to the whole pool per template).
        view = builder.view
        builder.add(self.ledger.mempool.select(lambda a: get_account(view, a).nonce))
        tmpl = builder.finish()
        for tx, exc in tmpl.rejected:
            if (
                not isinstance(exc, NonceTooHigh)
                and self.ledger.mempool.remove(tx.txid) is not None
            ):
                self.ledger.note_dropped(tx.txid, exc)
        if builder.broken:
            # Its view may hold changes a revert could not undo: build again
            # from the tip, without the tx that broke it (dropped above).
            self._kept = None
            return self.template(miner, now=now)
        header = make_header(
            BLOCK_VERSION,
            tip.height + 1,
            tip.hash,
            ctx.timestamp,
            target_to_bytes(chain.expected_target(tip)),
            0,
            self._root_of(builder, tmpl.txs),
            tmpl.result.state_root,
            miner,
        )
        return make_block(header, tmpl.txs)
