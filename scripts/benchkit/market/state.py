"""bench_market's passes (b) and (c): the market handlers on a state view, and
the signed txs through ``apply_block`` in blocks."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, cast

from benchkit.guard import percentile, progress
from benchkit.market.stream import (
    CANCEL,
    CAPACITY_W,
    CHAIN_ID,
    FEE,
    MINER,
    SIDES,
    T0,
    Outcome,
    Stream,
    lat_us,
)
from powernode.core.block import make_block
from powernode.core.errors import PowernodeError
from powernode.core.execution import ExecContext, TxHandler
from powernode.core.merkle import merkle_root
from powernode.core.tx import Transaction, sign_tx
from powernode.engines.accounts import ACCOUNT_NS
from powernode.engines.market import queries
from powernode.engines.market.book import BookHead, OrderBook
from powernode.engines.market.clearing import begin_block
from powernode.engines.market.records import BOOK_NS, TRADE_NS, book_key
from powernode.engines.market.session import StateLevels
from powernode.state.apply import apply_block, build_body
from powernode.state.genesis import genesis_block, genesis_result
from powernode.state.registry import HANDLERS
from powernode.state.view import MemoryState, StateView

# --- the engine on state, and blocks ---------------------------------------------


class FakeTx(NamedTuple):
    """What the market handlers read of a tx: no envelope, no signature."""

    sender_address: bytes
    txid: bytes


def ctx_at(s: Stream, height: int) -> ExecContext:
    return ExecContext(height, T0 + 10 + min(height, 3600), MINER, s.params)


def genesis_state(s: Stream) -> tuple[MemoryState, bytes]:
    g = genesis_result(s.params)
    state = MemoryState()
    state.apply_values(g.changed)
    return state, g.state_root


def outcome_of(s: Stream, state: MemoryState, index: Callable[[bytes], int]) -> Outcome:
    recs = sorted(state.namespace(TRADE_NS).values())
    trades = [(index(t.buy_id), index(t.sell_id), t.energy, t.price) for t in recs]
    resting = []
    for slot in s.slots:
        bk = book_key("spot", slot)
        head: BookHead | None = state.get((BOOK_NS, bk))
        book = None if head is None else OrderBook(head, StateLevels(state, bk))
        resting += [(slot, index(r.oid), r.remaining) for r in (book.orders() if book else [])]
    return Outcome(trades, resting)


def money(state: MemoryState) -> int:
    """Every balance plus the market's escrows (orders and settlement): only
    block rewards may change it."""
    held = sum(v.balance for v in state.namespace(ACCOUNT_NS).values())
    return held + queries.held_total(state)


def messages(s: Stream, oid: Callable[[int], bytes]) -> Iterator[tuple[int, str, list[Any]]]:
    """(participant, tx type, payload) of every registration, then of every op;
    ``oid(i)`` is the id of op i's order."""
    for i, role in enumerate(s.roles):
        yield i, "participant.register", [role, f"zone-{i % 8}", CAPACITY_W]
    for kind, who, side, slot, energy, price, source, tif, ref in s.ops:
        if kind == CANCEL:
            yield who, "order.cancel", [oid(ref)]
        else:
            yield who, "order.place", ["spot", SIDES[side], slot, energy, price, source, 0, tif]


def run_state(s: Stream, block_txs: int) -> tuple[dict[str, Any], Outcome, MemoryState]:
    """(b): the handlers' apply, one view per block of orders; registration untimed."""
    state, _ = genesis_state(s)
    items: list[tuple[TxHandler, Transaction, Any]] = []
    ids = [bytes(32)] * len(s.roles) + s.oids  # the FakeTx ids: registrations have none
    for j, (who, kind, payload) in enumerate(messages(s, s.oids.__getitem__)):
        h = HANDLERS[kind]
        items.append((h, cast(Transaction, FakeTx(s.owners[who], ids[j])), h.decode(payload)))
    view = StateView(state)
    for h, tx, p in items[: len(s.roles)]:
        h.apply(view, ctx_at(s, 1), tx, p)
    state.apply_values(view.changed())
    del items[: len(s.roles)]
    lat: list[int] = []
    failed, clock = 0, time.perf_counter_ns
    gc.collect()
    t0 = time.perf_counter()
    for b, start in enumerate(range(0, len(items), block_txs)):
        ctx, view = ctx_at(s, b + 2), StateView(state)
        begin_block(view, ctx)
        for h, tx, p in items[start : start + block_txs]:
            t = clock()
            cp = view.checkpoint()
            try:
                h.apply(view, ctx, tx, p)
            except PowernodeError:
                view.revert(cp)
                failed += 1
            lat.append(clock() - t)
        state.apply_values(view.changed())
    secs = time.perf_counter() - t0
    fig: dict[str, Any] = {"orders": len(items), "seconds": secs, "orders_per_s": len(items) / secs}
    fig |= {"failed": failed, **lat_us(lat)}
    progress(f"b engine on state: {fig['orders_per_s']:,.0f} orders/s, {failed} failed")
    return fig, outcome_of(s, state, lambda oid: int.from_bytes(oid, "big")), state


def sign_stream(s: Stream) -> tuple[list[Transaction], list[Transaction]]:
    """(registrations, one tx per op), each signed with its sender's next nonce."""
    txs: list[Transaction] = []
    n, nonces = len(s.roles), [0] * len(s.keys)
    kw: dict[str, Any] = {"chain_id": CHAIN_ID, "fee": FEE}
    for who, kind, payload in messages(s, lambda i: txs[n + i].txid):
        txs.append(sign_tx(s.keys[who], tx_type=kind, nonce=nonces[who], payload=payload, **kw))
        nonces[who] += 1
        if len(txs) % 25_000 == 0:
            progress(f"signed {len(txs):,} of {n + len(s.ops):,} txs")
    return txs[:n], txs[n:]


def run_blocks(
    s: Stream, regs: list[Transaction], txs: list[Transaction], block_txs: int
) -> tuple[dict[str, Any], Outcome, MemoryState]:
    """(c): registrations in block 1 (untimed), then blocks of ``block_txs``."""
    params = s.params
    state, root = genesis_state(s)
    genesis = genesis_block(params)
    header0, prev = genesis.header.replace(miner=MINER), genesis.hash
    failed = 0

    def connect(height: int, body: list[Transaction]) -> float:
        """Build the block untimed (for its state root), then time apply_block."""
        nonlocal root, prev, failed
        ctx = ctx_at(s, height)
        tmpl = build_body(state, root, ctx, body, max_bytes=params.max_block_bytes)
        if tmpl.rejected:
            raise RuntimeError(f"block {height}: {[e.code for _, e in tmpl.rejected[:3]]}")
        tx_root, state_root = merkle_root([tx.txid for tx in body]), tmpl.result.state_root
        hdr = header0.replace(height=height, prev_hash=prev, timestamp=ctx.timestamp)
        block = make_block(hdr.replace(tx_root=tx_root, state_root=state_root), body)
        del tmpl
        t0 = time.perf_counter()
        result = apply_block(state, root, block, params)
        dt = time.perf_counter() - t0
        state.apply_values(result.changed)
        root, prev = result.state_root, block.hash
        failed += sum(1 for r in result.receipts if not r.ok)
        return dt

    connect(1, regs)
    chunks = [txs[i : i + block_txs] for i in range(0, len(txs), block_txs)]
    times: list[float] = []
    gc.collect()
    for b, chunk in enumerate(chunks):
        times.append(connect(b + 2, chunk))
        if len(chunks) >= 8 and (b + 1) % (len(chunks) // 4) == 0:
            progress(f"c blocks: {b + 1} of {len(chunks)} applied; last {times[-1] * 1000:.1f} ms")
    ms = [t * 1000 for t in times]
    tenth = max(1, len(ms) // 10)
    fig: dict[str, Any] = {"orders": len(txs), "blocks": len(chunks), "block_txs": block_txs}
    fig |= {"seconds": sum(times), "orders_per_s": len(txs) / sum(times), "failed": failed}
    fig |= {"block_ms_p50": percentile(ms, 50), "block_ms_p99": percentile(ms, 99)}
    fig |= {"first_tenth_ms": sum(ms[:tenth]) / tenth, "last_tenth_ms": sum(ms[-tenth:]) / tenth}
    fig |= lat_us([t * 1e6 / len(c) for t, c in zip(times, chunks, strict=True)], 1.0)
    progress(f"c block application: {fig['orders_per_s']:,.0f} orders/s, {failed} failed receipts")
    index = {tx.txid: i for i, tx in enumerate(txs)}
    return fig, outcome_of(s, state, index.__getitem__), state
