"""Market benchmark: the order book alone, the market engine on state, and
full block application, over one seeded order stream.

    python scripts/bench_market.py [--quick] [--orders N] [--seed S] [--block-txs N] [--json]

The stream: ``--participants`` producers, consumers and prosumers on
``--slots`` spot slots. A message is a cancel of a random resting order (25%),
a marketable order 0-2 ticks through the best opposite price (15%; GTC, IOC or
FOK), or a limit order 1-5 ticks behind its slot's mid, which walks at random.
It is planned against an order book, so every cancel names a resting order.
An "order" below is one message, a placement or a cancel.

a. Engine alone: the stream through ``OrderBook`` (fillable, match, add,
   remove): no state, money or signatures. Best of ``--reps`` passes, and one
   pass timing each order.
b. Engine on state: the market handlers' ``apply`` on a ``StateView`` over a
   ``MemoryState`` (validation, escrow, capacity, settlement, records), a view
   per ``--block-txs`` orders after the market's block hook. No tx envelope.
c. Block application: the txs, signed before timing, in blocks of
   ``--block-txs``: ``apply_block`` (envelope, fees, nonces, receipts, state
   diff and root) timed per block. Signatures are not checked: the Ed25519
   baseline (bench_node's ``bench_baseline``) is measured in the same run.

Checks: a, b and c make the same trades (buy and sell order, energy, price, in
order) and leave the same orders resting; a never fills an order beyond its
energy; no tx of b or c fails; no money is created or lost. Exit status 0; 1
with --check if a target is missed; 2 if a check or phase failed or the
--budget ran out; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

import cryptography
from bench_node import bench_baseline
from benchlib import CpuMonitor, install_budget, percentile, progress, run_guarded

from powernode.core.block import make_block
from powernode.core.crypto import KeyPair, sha256
from powernode.core.errors import PowernodeError
from powernode.core.execution import ExecContext, TxHandler
from powernode.core.merkle import merkle_root
from powernode.core.params import ChainParams, parse_params
from powernode.core.tx import Transaction, sign_tx
from powernode.engines.accounts import ACCOUNT_NS
from powernode.engines.market import BEGIN_BLOCK, queries
from powernode.engines.market.book import BUY, MIDPOINT, SELL, BookHead, OrderBook, Resting
from powernode.engines.market.records import BOOK_NS, SOURCES, TRADE_NS, book_key
from powernode.engines.market.session import StateLevels
from powernode.node.runtime import tune_gc
from powernode.state.apply import apply_block, build_body
from powernode.state.genesis import genesis_block, genesis_result
from powernode.state.registry import HANDLERS
from powernode.state.view import MemoryState, StateView

CHAIN_ID = "bench-market"
T0 = 1_767_268_800  # 2026-01-01 12:00 UTC: the first block's time
SLOT0 = T0 + 6 * 3600  # the first delivery slot; its gate is after the last block
TICK = 10_000  # the default price tick, micro-units per kWh
FUNDS = 10**12  # micro-units per participant
CAPACITY_W = 10**9
FEE = 10
MARKETS = {"spot": {"open_hour": 0, "close_hour": 24, "buyer_fee_bps": 5, "seller_fee_bps": 5}}
MINER = sha256(b"bench-market-miner")[:20]
P_CANCEL, P_CROSS, DEPTH = 0.25, 0.15, 5
TARGET_ENGINE, TARGET_BLOCKS = 200_000, 20_000
BUSY_CORES = 0.25  # other processes' load above which a phase's figures are flagged
PLACE, CANCEL = 0, 1
SIDES = {BUY: "buy", SELL: "sell"}

# kind, participant, side, slot, energy (Wh), price, source, tif, ref (a cancel's order)
Op = tuple[int, int, int, int, int, int, str, str, int]


class Outcome(NamedTuple):
    trades: list[tuple[int, int, int, int]]  # buy op, sell op, energy, price; in order
    resting: list[tuple[int, int, int]]  # slot, op, remaining; in book priority


@dataclass
class Stream:
    keys: list[KeyPair]
    roles: list[str]
    slots: list[int]
    params: ChainParams
    oids: list[bytes]  # order ids in (a) and (b): the op index, 32 bytes
    ops: list[Op] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.owners = [k.address for k in self.keys]


def engine_step(books: dict[int, OrderBook], s: Stream, i: int, op: Op, fills: list[Any]) -> bool:
    """Op ``i`` through its book as the handlers use it; True if it rests."""
    kind, who, side, slot, energy, price, source, tif, ref = op
    book = books[slot]
    if kind == CANCEL:
        placed = s.ops[ref]
        book.remove(placed[2], placed[5], s.oids[ref])  # its side and price
        return False
    inc = Resting(s.oids[i], s.owners[who], side, price, energy, source, i, 0)
    if tif == "FOK" and book.fillable(inc) < energy:
        return False
    for r, qty, px in book.match(inc, MIDPOINT):
        fills.append((inc, r, qty, px))
    if inc.remaining and tif == "GTC":
        book.add(inc)
        return True
    return False


def make_stream(n: int, seed: int, participants: int = 200, slots: int = 4) -> Stream:
    rng = random.Random(seed)
    keys = [
        KeyPair.from_seed(sha256(b"bench-market-%d-%d" % (seed, i))) for i in range(participants)
    ]
    roles = [("producer", "consumer", "prosumer", "prosumer")[i % 4] for i in range(participants)]
    doc = {"chain_id": CHAIN_ID, "timestamp": T0, "initial_target": "ff" * 32, "dev": True}
    doc |= {"pow_limit": "ff" * 32, "markets": MARKETS, "max_block_txs": 100_000}
    doc["allocations"] = {k.address.hex(): FUNDS for k in keys}
    slot_list = [SLOT0 + 900 * k for k in range(slots)]
    s = Stream(keys, roles, slot_list, parse_params(doc), [i.to_bytes(32, "big") for i in range(n)])
    who_by_side = {
        side: [i for i, r in enumerate(roles) if r != no]
        for side, no in ((BUY, "producer"), (SELL, "consumer"))
    }
    books = {slot: OrderBook() for slot in s.slots}
    mid = dict.fromkeys(s.slots, 50)  # in ticks
    live: list[int] = []  # the resting orders (op indices) and their positions in ``live``
    pos: dict[int, int] = {}
    counts = dict.fromkeys(("limit", "cross", "cancel", "rested", "fills"), 0)

    def drop(j: int) -> None:
        k, last = pos.pop(j), live.pop()
        if last != j:
            live[k], pos[last] = last, k

    for i in range(n):
        u = rng.random()
        if u < P_CANCEL and live:
            ref = live[rng.randrange(len(live))]
            op: Op = (CANCEL, *s.ops[ref][1:4], 0, 0, "", "", ref)
            drop(ref)
            counts["cancel"] += 1
        else:
            slot = s.slots[rng.randrange(slots)]
            mid[slot] = min(200, max(20, mid[slot] + rng.choice((-1, 0, 0, 1))))
            side = BUY if rng.random() < 0.5 else SELL
            sign = 1 if side == BUY else -1
            source = rng.choice(SOURCES) if side == SELL or rng.random() < 0.15 else "any"
            tif = "GTC"
            if u < P_CANCEL + P_CROSS:
                best = books[slot].head.ask_px[:1] if side == BUY else books[slot].head.bid_px[-1:]
                ticks = (best[0] // TICK if best else mid[slot]) + sign * rng.randint(0, 2)
                tif = rng.choices(("GTC", "IOC", "FOK"), (6, 3, 1))[0]
                counts["cross"] += 1
            else:
                ticks = mid[slot] - sign * rng.randint(1, DEPTH)
                counts["limit"] += 1
            who = rng.choice(who_by_side[side])
            op = (PLACE, who, side, slot, rng.randint(1, 50) * 1000, ticks * TICK, source, tif, -1)
        s.ops.append(op)
        fills: list[Any] = []
        if engine_step(books, s, i, op, fills):
            pos[i] = len(live)
            live.append(i)
            counts["rested"] += 1
        for _, r, _, _ in fills:
            if r.remaining == 0:
                drop(r.seq)
        counts["fills"] += len(fills)
    s.summary = {"orders": n, "participants": participants, "slots": slots, "seed": seed}
    s.summary |= {**counts, "resting_at_end": len(live)}
    return s


def lat_us(values: list[int] | list[float], scale: float = 1e-3) -> dict[str, float]:
    v = [x * scale for x in values]
    return {"mean_us": sum(v) / len(v), "p50_us": percentile(v, 50), "p99_us": percentile(v, 99)}


def run_engine(s: Stream, reps: int) -> tuple[dict[str, Any], Outcome]:
    """(a): best of ``reps`` timed passes, then one pass timing each order."""
    n, ops, step, clock = len(s.ops), s.ops, engine_step, time.perf_counter_ns
    best = float("inf")
    for _ in range(reps):
        books: dict[int, OrderBook] = {slot: OrderBook() for slot in s.slots}
        fills: list[Any] = []
        gc.collect()
        t0 = time.perf_counter()
        for i in range(n):
            step(books, s, i, ops[i], fills)
        best = min(best, time.perf_counter() - t0)
    books, fills, lat = {slot: OrderBook() for slot in s.slots}, [], []
    gc.collect()
    for i in range(n):
        t = clock()
        step(books, s, i, ops[i], fills)
        lat.append(clock() - t)
    fig = {"orders": n, "reps": reps, "seconds": best, "orders_per_s": n / best, **lat_us(lat)}
    progress(f"a engine alone: {fig['orders_per_s']:,.0f} orders/s (best of {reps})")
    # Resting.seq is the op index here
    trades = [
        (i.seq, r.seq, q, p) if i.side == BUY else (r.seq, i.seq, q, p) for i, r, q, p in fills
    ]
    resting = [(slot, r.seq, r.remaining) for slot in s.slots for r in books[slot].orders()]
    return fig, Outcome(trades, resting)


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
    recs = sorted(v for (ns, _), v in state.data.items() if ns == TRADE_NS)
    trades = [(index(t.buy_id), index(t.sell_id), t.energy, t.price) for t in recs]
    resting = []
    for slot in s.slots:
        bk = book_key("spot", slot)
        head: BookHead | None = state.get((BOOK_NS, bk))
        book = None if head is None else OrderBook(head, StateLevels(state, bk))
        resting += [(slot, index(r.oid), r.remaining) for r in (book.orders() if book else [])]
    return Outcome(trades, resting)


def money(state: MemoryState) -> int:
    """Every balance plus the market's escrow: only block rewards may change it."""
    held = sum(v.balance for (ns, _), v in state.data.items() if ns == ACCOUNT_NS)
    return held + queries.escrow_total(state)


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
        BEGIN_BLOCK(view, ctx)
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


# --- checks and the table ---------------------------------------------------------


def cross_check(
    s: Stream, outs: dict[str, Outcome], states: dict[str, MemoryState], r: dict[str, Any]
) -> dict[str, Any]:
    """Compare the ``outs`` of a, b and c (``states`` of b and c; ``r`` their figures)."""
    problems: list[str] = []
    a = outs["a"]
    filled = [0] * len(s.ops)
    for buy, sell, qty, _ in a.trades:
        filled[buy] += qty
        filled[sell] += qty
        if s.ops[buy][2] != BUY or s.ops[sell][2] != SELL:
            problems.append(f"(a) trade of ops {buy} and {sell}: sides wrong")
    if any(filled[i] > op[4] for i, op in enumerate(s.ops) if op[0] == PLACE):
        problems.append("(a) filled an order beyond its energy")
    if any(s.ops[i][4] - filled[i] != rem for _, i, rem in a.resting):
        problems.append("(a) a resting order's remaining energy != energy - fills")
    alloc = sum(v for _, v in s.params.allocations)
    rewards = s.params.block_reward * (r["blocks"]["blocks"] + 1)
    for k, fig, expect in (("b", r["state"], alloc), ("c", r["blocks"], alloc + rewards)):
        if outs[k].trades != a.trades:
            problems.append(f"({k}) trades differ from (a)'s")
        if outs[k].resting != a.resting:
            problems.append(f"({k}) resting orders differ from (a)'s")
        if fig["failed"]:
            problems.append(f"({k}) {fig['failed']} txs failed")
        if money(states[k]) != expect:
            problems.append(f"({k}) balances + escrow = {money(states[k]):,}, expected {expect:,}")
    return {
        "trades": {k: len(o.trades) for k, o in outs.items()},
        "volume_wh": {k: sum(t[2] for t in o.trades) for k, o in outs.items()},
        "resting": {k: len(o.resting) for k, o in outs.items()},
        "value": {k: queries.stats(st)["value"] for k, st in states.items()},
        "problems": problems,
    }


RATE, LAT = "{orders_per_s:,.0f} orders/s", "{mean_us:.1f} / {p50_us:.1f} / {p99_us:.1f} us"
ROWS = (
    ("engine", "a engine alone (OrderBook)", RATE),
    ("engine", "  per order mean / p50 / p99", LAT),
    ("state", "b engine on state (handlers)", RATE),
    ("state", "  per order mean / p50 / p99", LAT),
    ("blocks", "c block application ({block_txs:,}-tx blocks)", RATE),
    ("blocks", "  per order mean / p50 / p99", LAT),
    ("blocks", "  block p50 / p99", "{block_ms_p50:.1f} / {block_ms_p99:.1f} ms"),
    ("blocks", "  first / last tenth of blocks", "{first_tenth_ms:.1f} / {last_tenth_ms:.1f} ms"),
    ("baseline", "Ed25519 verify, 1 thread", "{verify_per_s_1t:,.0f} /s"),
    ("baseline", "Ed25519 verify, 2 threads (baseline)", "{verify_per_s_2t:,.0f} /s"),
    ("blocks", "c / baseline", "{ratio_to_baseline:.2f}"),
)
STREAM = (
    "stream (seed {seed}): {orders:,} orders by {participants} participants on {slots} slots: "
    "{limit:,} limit, {cross:,} marketable, {cancel:,} cancels; {rested:,} rested, {fills:,} "
    "fills, {resting_at_end:,} resting at the end"
)


def print_table(r: dict[str, Any]) -> None:
    env, targets = r["env"], r.get("targets", {})
    print(
        f"\npowernode market benchmark: {env['cpus']} CPUs, Python {env['python']}, "
        f"cryptography {env['cryptography']}"
    )
    if "stream" in r:
        print(STREAM.format(**r["stream"]))
    for key, name, fmt in ROWS:
        f = r.get(key)
        if f is None or ("ratio" in fmt and "ratio_to_baseline" not in f):
            continue
        t = targets.get(key) if fmt == RATE else None
        goal = f"target >= {t['target']:,}: {'yes' if t['met'] else 'NO'}" if t else ""
        print(f"{name.format(**f):<40} {fmt.format(**f):>24}  {goal}".rstrip())
    ck = r.get("check")
    if ck:
        abc = {k: "/".join(f"{x:,}" for x in ck[k].values()) for k in ck if k != "problems"}
        print(
            f"check a/b/c: trades {abc['trades']}, volume {abc['volume_wh']} Wh, resting "
            f"{abc['resting']}; value b/c {abc['value']}: "
            + ("PROBLEMS" if ck["problems"] else "the runs agree")
        )
        for p in ck["problems"]:
            print(f"PROBLEM: {p}")
    load = r.get("load", {})
    if load:
        print(
            "other processes' CPU load per phase (cores): "
            + ", ".join(f"{k} {v['other_cores']:.2f}" for k, v in load.items())
        )
        if any(v["other_cores"] > BUSY_CORES for v in load.values()):
            print(f"WARNING: other processes used > {BUSY_CORES} cores; figures are unreliable")
    if "error" in r:
        print(f"RUN FAILED: {r['error']}")


def run(args: argparse.Namespace, r: dict[str, Any], mon: CpuMonitor) -> None:
    if args.wait_quiet > 0:
        load = mon.wait_quiet(args.wait_quiet, BUSY_CORES)
        progress(f"other processes use {load:.2f} cores")
    progress(f"planning a stream of {args.orders:,} orders (seed {args.seed})")
    s = make_stream(args.orders, args.seed, args.participants, args.slots)
    r["stream"] = s.summary
    mon.begin()
    r["engine"], a = run_engine(s, args.reps)
    mon.end("a")
    progress(f"b: {len(s.ops):,} orders in views of {args.block_txs:,}")
    mon.begin()
    r["state"], b, b_state = run_state(s, args.block_txs)
    mon.end("b")
    progress(f"signing {len(s.ops) + len(s.keys):,} txs")
    regs, txs = sign_stream(s)
    mon.begin()
    r["baseline"] = bench_baseline(args.sigs, 3, 140, txs[:1000])
    mon.end("baseline")
    mon.begin()
    r["blocks"], c, c_state = run_blocks(s, regs, txs, args.block_txs)
    mon.end("c")
    r["blocks"]["ratio_to_baseline"] = (
        r["blocks"]["orders_per_s"] / r["baseline"]["verify_per_s_2t"]
    )
    r["check"] = cross_check(s, {"a": a, "b": b, "c": c}, {"b": b_state, "c": c_state}, r)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--block-txs", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="at most 20,000 orders, 1 pass of (a)")
    ap.add_argument("--participants", type=int, default=200)
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3, help="passes of (a); the best counts")
    ap.add_argument("--sigs", type=int, default=4000, help="signatures for the baseline")
    ap.add_argument("--budget", type=float, default=600.0, help="hard limit in seconds")
    ap.add_argument("--wait-quiet", type=float, default=20.0, help="s to wait for an idle machine")
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args(argv)
    if args.quick:
        args.orders, args.reps, args.sigs = min(args.orders, 20_000), 1, min(args.sigs, 2000)
    if min(args.block_txs, args.orders, args.reps, args.slots, args.sigs) < 1:
        ap.error("--block-txs, --orders, --reps, --slots and --sigs must be positive")
    if args.participants < 4:
        ap.error("--participants: at least 4 (every role, and two sellers)")
    env = {"cpus": os.cpu_count(), "python": platform.python_version()}
    r: dict[str, Any] = {"env": env | {"cryptography": cryptography.__version__}}
    install_budget(args.budget)
    tune_gc()  # the node process's GC settings
    mon = CpuMonitor()
    code = run_guarded(lambda: run(args, r, mon), r)
    r["load"] = mon.phases
    r["targets"] = {
        k: {"value": r[k]["orders_per_s"], "target": t, "met": r[k]["orders_per_s"] >= t}
        for k, t in (("engine", TARGET_ENGINE), ("blocks", TARGET_BLOCKS))
        if k in r
    }
    progress("done")
    print_table(r)
    if args.json:
        print(json.dumps(r, indent=2))
    if code == 0 and r.get("check", {}).get("problems"):
        code = 2
    if code == 0 and args.check and not all(t["met"] for t in r["targets"].values()):
        code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
