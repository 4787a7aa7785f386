"""The state transition: apply a tx, apply a block, commit to the state root.

Pure functions over a ``StateView``: no clock, no I/O. Signatures are checked
before this runs (chain/ does it with a cache and worker threads); everything
else about validity is decided here.

Two kinds of tx failure:
- envelope failures (wrong chain, unknown type, undecodable payload, wrong
  nonce, fee below the minimum or unaffordable) make a block invalid and keep
  a tx out of the mempool;
- execution failures (the engine refuses, e.g. the amount is unaffordable)
  still include the tx: the fee is charged, the nonce used, the engine's
  writes reverted, and the receipt says ``failed`` with the code. This is
  Ethereum's rule; it stops a tx that fails in a block from being free spam.

State root: ``SHA-256("powernode-state" || parent_root || SHA-256(diff))``
where diff is the canonical encoding of the sorted list of changed keys with
their new values. A node that computes any different state diverges at the
first block where it happens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

from powernode.core import encoding
from powernode.core.block import Block
from powernode.core.crypto import sha256
from powernode.core.errors import (
    BadStateRoot,
    BadTxInBlock,
    InternalFault,
    OversizeBlock,
    PowernodeError,
)
from powernode.core.execution import Event, ExecContext
from powernode.core.params import ChainParams
from powernode.core.tx import Transaction
from powernode.engines.accounts import ACCOUNT_NS, credit, new_account
from powernode.state.envelope import Envelope, check_envelope
from powernode.state.registry import AFTER_TX, BLOCK_HOOKS, TEMPLATE_CHECKS, WEIGHTS, tx_weight
from powernode.state.view import DiffEntry, StateReader, StateView

_ROOT_TAG = b"powernode-state"


class Receipt(NamedTuple):
    """What a tx did. A NamedTuple rather than a frozen dataclass: one is made
    per tx, and construction cost shows in block connect time."""

    txid: bytes
    ok: bool
    fee: int
    code: str = ""
    message: str = ""
    events: tuple[Event, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": "ok" if self.ok else "failed",
            "fee": self.fee,
            "events": [_hexed(e) for e in self.events],
        }
        if not self.ok:
            out["error"] = {"code": self.code, "message": self.message}
        return out

    def to_obj(self) -> tuple[Any, ...]:
        """Stored form; the tx id is the position in the block, not repeated."""
        return self[1:]

    @staticmethod
    def stored(receipts: Iterable[Receipt]) -> list[tuple[Any, ...]]:
        """``to_obj`` of many: slices of the tuples (packed as arrays), without
        a method call each, as a block connect stores thousands."""
        return [r[1:] for r in receipts]

    @classmethod
    def from_obj(cls, txid: bytes, obj: Sequence[Any]) -> Receipt:
        return cls(txid, obj[0], obj[1], obj[2], obj[3], tuple(obj[4]))


# Receipt(...) without the NamedTuple's Python __new__ (see new_account).
_new_receipt = partial(tuple.__new__, Receipt)


def _hexed(event: Event) -> Event:
    return {k: v.hex() if isinstance(v, bytes) else v for k, v in event.items()}


@dataclass(frozen=True, slots=True)
class BlockResult:
    receipts: tuple[Receipt, ...]
    diff: list[DiffEntry]
    undo: list[DiffEntry]
    state_root: bytes
    changed: dict[Any, Any] = field(repr=False)


def compute_state_root(parent_root: bytes, diff: list[DiffEntry]) -> bytes:
    return sha256(_ROOT_TAG + parent_root + sha256(encoding.encode_trusted(diff)))


def apply_tx(view: StateView, ctx: ExecContext, tx: Transaction) -> Receipt:
    """Apply one tx. Raises a typed error for envelope failures (anything but
    the signature that must hold for a tx to be includable now), else returns
    a receipt (``ok`` or ``failed``)."""
    return execute(view, ctx, tx, check_envelope(view, ctx.params, tx))


def execute(view: StateView, ctx: ExecContext, tx: Transaction, env: Envelope) -> Receipt:
    """Charge the fee, use the nonce, run the engine: the rest of ``apply_tx``
    once ``check_envelope`` has passed on this view."""
    acct = env.account
    view.put((ACCOUNT_NS, env.sender), new_account((acct.balance - tx.fee, acct.nonce + 1)))
    cp = view.checkpoint()
    try:
        events = env.handler.apply(view, ctx, tx, env.payload)
        after = AFTER_TX.get(tx.type)
        if after is not None:
            events = list(events)
            for hook in after:
                events += hook(view, ctx, tx, env.payload)
    except PowernodeError as exc:
        view.revert(cp)
        return Receipt(tx.txid, False, tx.fee, exc.code, exc.message, ())
    return _new_receipt((tx.txid, True, tx.fee, "", "", tuple(events)))


def begin_block(view: StateView, ctx: ExecContext) -> None:
    for hook in BLOCK_HOOKS:
        hook(view, ctx)


def finish_block(view: StateView, ctx: ExecContext, fees: int) -> None:
    credit(view, ctx.miner, ctx.params.block_reward + fees)


def context_for(block: Block, params: ChainParams) -> ExecContext:
    h = block.header
    return ExecContext(height=h.height, timestamp=h.timestamp, miner=h.miner, params=params)


def seal(
    view: StateView, parent_root: bytes, receipts: Iterable[Receipt], *, with_undo: bool = True
) -> BlockResult:
    """The block's result; ``with_undo=False`` (a miner's template, which is
    never connected as such) leaves the undo list empty."""
    changed = view.changed()
    diff = view.diff(changed)
    return BlockResult(
        receipts=tuple(receipts),
        diff=diff,
        undo=view.undo(changed) if with_undo else [],
        state_root=compute_state_root(parent_root, diff),
        changed=changed,
    )


def check_weight(txs: Iterable[Transaction], params: ChainParams) -> None:
    """Consensus: a block's txs weigh at most ``max_block_txs`` (a tx weighs
    1, a ``meter.batch`` its entries: the limit was set for txs of one
    reading at most)."""
    weight = sum(map(tx_weight, txs))
    if weight > params.max_block_txs:
        raise OversizeBlock(
            f"block weighs {weight} txs (a meter.batch counts its entries), "
            f"limit {params.max_block_txs}"
        )


def apply_block(
    state: StateReader, parent_root: bytes, block: Block, params: ChainParams
) -> BlockResult:
    """Execute ``block`` on ``state`` (the parent's state); raise InvalidBlock if
    it weighs more than ``max_block_txs``, any tx envelope is invalid or the
    resulting root differs from the header's."""
    check_weight(block.txs, params)
    ctx = context_for(block, params)
    view = StateView(state)
    begin_block(view, ctx)
    receipts = []
    fees = 0
    for i, tx in enumerate(block.txs):
        try:
            receipts.append(apply_tx(view, ctx, tx))
        except PowernodeError as exc:
            raise BadTxInBlock(f"tx {i} ({tx.txid.hex()[:16]}): {exc.code}: {exc.message}") from exc
        fees += tx.fee
    finish_block(view, ctx, fees)
    result = seal(view, parent_root, receipts)
    if result.state_root != block.header.state_root:
        raise BadStateRoot(
            f"state root {result.state_root.hex()[:16]} != header {block.header.state_root.hex()[:16]}"
        )
    return result


@dataclass(frozen=True, slots=True)
class Template:
    """A block body chosen by the miner, with the state root it leads to."""

    txs: tuple[Transaction, ...]
    result: BlockResult
    rejected: tuple[tuple[Transaction, PowernodeError], ...]


# What a tx adds to a block's bytes besides its own: its bin header in the
# block's txs array (at most 5 bytes), counted as 8.
TX_FRAMING = 8


class BodyBuilder:
    """A block body built in steps: ``add`` applies candidates on one view,
    ``finish`` seals what is there so far without closing the builder, so a
    miner can extend its template as txs arrive instead of re-applying the
    whole mempool each time (the tip and the timestamp stay those it began
    with; start a new builder when the tip moves).

    Miner policy, not consensus: a candidate whose envelope is invalid here,
    or that its engine's admission checks (``precheck``, run after the
    envelope) refuse at this point of the block (an order whose gate has
    closed since it entered the mempool, say), is left out and reported,
    rather than included as a failed tx that pays its fee for nothing. A
    handler with a ``template_check`` is judged by it instead of its
    precheck (a ``meter.batch`` goes in while one entry would still record).
    The body stops at the first tx that would take it past
    ``max_block_txs`` by weight (see ``check_weight``) or ``max_bytes``.
    """

    def __init__(
        self, state: StateReader, parent_root: bytes, ctx: ExecContext, *, max_bytes: int
    ) -> None:
        self.ctx = ctx
        self.parent_root = parent_root
        self.max_bytes = max_bytes
        self.view = StateView(state)
        begin_block(self.view, ctx)
        self.txs: list[Transaction] = []
        self.ids: set[bytes] = set()
        self.receipts: list[Receipt] = []
        self.rejected: list[tuple[Transaction, PowernodeError]] = []
        self.fees = 0
        self.size = 0
        self.weight = 0
        self.broken = False

    def add(self, candidates: Iterable[Transaction]) -> None:
        """Apply candidates in order (skipping those already in), keeping
        those whose envelope is valid, until the block is full."""
        view, ctx = self.view, self.ctx
        txs, receipts, ids = self.txs, self.receipts, self.ids
        max_txs, max_bytes = ctx.params.max_block_txs, self.max_bytes
        weights, template_checks = WEIGHTS, TEMPLATE_CHECKS
        for tx in candidates:
            if tx.txid in ids:
                continue
            size = len(tx.raw) + TX_FRAMING
            weigh = weights.get(tx.type)
            weight = 1 if weigh is None else weigh(tx.payload)
            if self.weight + weight > max_txs or self.size + size > max_bytes:
                break
            cp = view.checkpoint()
            try:
                env = check_envelope(view, ctx.params, tx)
                precheck = template_checks.get(tx.type) or env.handler.precheck
                if precheck is not None:
                    precheck(view, ctx, tx, env.payload)
                receipt = execute(view, ctx, tx, env)
            except PowernodeError as exc:
                view.revert(cp)
                self.rejected.append((tx, exc))
                continue
            except Exception as exc:  # a bug: leave the tx out rather than fail every template
                # The view may hold in-place changes the journal cannot undo:
                # mark it so the ledger starts the next template afresh.
                view.revert(cp)
                self.broken = True
                self.rejected.append((tx, InternalFault(f"{type(exc).__name__}: {exc}")))
                continue
            receipts.append(receipt)
            txs.append(tx)
            ids.add(tx.txid)
            self.fees += tx.fee
            self.size += size
            self.weight += weight

    def finish(self) -> Template:
        """The body so far, sealed (miner reward included), and what was
        refused since the last ``finish``. The builder can go on: the reward
        is taken back out of its view. The result's ``changed`` values may be
        changed in place by later ``add`` calls (engines' copy-on-write
        values belong to the view): use the result before adding more."""
        cp = self.view.checkpoint()
        finish_block(self.view, self.ctx, self.fees)
        result = seal(self.view, self.parent_root, self.receipts, with_undo=False)
        self.view.revert(cp)
        rejected, self.rejected = self.rejected, []
        return Template(tuple(self.txs), result, tuple(rejected))

    def seal_block(self) -> BlockResult:
        """The result of connecting exactly the body built so far, undo list
        included: what ``apply_block`` returns for the block mined from the
        last ``finish``, without executing its txs again. It ends the builder
        (its view now holds the miner's reward)."""
        self.broken = True
        finish_block(self.view, self.ctx, self.fees)
        return seal(self.view, self.parent_root, self.receipts)


def build_body(
    state: StateReader,
    parent_root: bytes,
    ctx: ExecContext,
    candidates: Iterable[Transaction],
    *,
    max_bytes: int,
) -> Template:
    """Apply candidates in order, keeping those whose envelope is valid, until
    the block is full. What does not fit or fails is reported, not raised
    (see ``BodyBuilder``)."""
    builder = BodyBuilder(state, parent_root, ctx, max_bytes=max_bytes)
    builder.add(candidates)
    return builder.finish()
