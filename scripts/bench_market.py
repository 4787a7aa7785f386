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
import sys
from typing import Any

from benchkit.cpu import print_phase_load
from benchkit.guard import progress
from benchkit.market.state import money, run_blocks, run_state, sign_stream
from benchkit.market.stream import (
    CANCEL,
    PLACE,
    TARGET_BLOCKS,
    TARGET_ENGINE,
    Outcome,
    Stream,
    make_stream,
    run_engine,
)
from benchkit.node.baseline import bench_baseline
from benchkit.runner import BenchRun, Targets, bench_parser, parse_args

from powernode.engines.market import queries
from powernode.engines.market.book import BUY, SELL
from powernode.node.runtime import tune_gc
from powernode.state.view import MemoryState

# What tests/unit/test_bench_market.py reaches through this module.
__all__ = [
    "CANCEL",
    "PLACE",
    "cross_check",
    "make_stream",
    "run_blocks",
    "run_engine",
    "run_state",
    "sign_stream",
]

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
        print_phase_load(load)
    if "error" in r:
        print(f"RUN FAILED: {r['error']}")


def run(args: argparse.Namespace, bench: BenchRun) -> None:
    r, mon = bench.results, bench.monitor
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


def targets(r: dict[str, Any]) -> Targets:
    return {
        k: {"value": r[k]["orders_per_s"], "target": t, "met": r[k]["orders_per_s"] >= t}
        for k, t in (("engine", TARGET_ENGINE), ("blocks", TARGET_BLOCKS))
        if k in r
    }


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser(__doc__, budget=600.0)
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--block-txs", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="at most 20,000 orders, 1 pass of (a)")
    ap.add_argument("--participants", type=int, default=200)
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3, help="passes of (a); the best counts")
    ap.add_argument("--sigs", type=int, default=4000, help="signatures for the baseline")
    args = parse_args(ap, argv, workdir=False)
    if args.quick:
        args.orders, args.reps, args.sigs = min(args.orders, 20_000), 1, min(args.sigs, 2000)
    if min(args.block_txs, args.orders, args.reps, args.slots, args.sigs) < 1:
        ap.error("--block-txs, --orders, --reps, --slots and --sigs must be positive")
    if args.participants < 4:
        ap.error("--participants: at least 4 (every role, and two sellers)")
    bench = BenchRun(args)
    tune_gc()  # the node process's GC settings
    code = bench.execute(lambda: run(args, bench))
    problems = bench.results.get("check", {}).get("problems", [])
    return bench.finish(code, print_table, targets=targets, problems=problems)


if __name__ == "__main__":
    sys.exit(main())
