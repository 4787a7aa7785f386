"""Delivery and contracts benchmark: trade settlement in one block hook, PPA
deliveries from meter readings and declarative contract executions through
block application, signatures excluded and the verify baseline measured in
the same run.

    python scripts/bench_contracts.py [--quick] [--phases settle,ppa,contracts]
        [--trades N] [--sellers S] [--reps R] [--devices N] [--intervals N] [--json]

s. Settlement (``benchkit/settlement.py``): ``--trades`` trades of one spot
   slot, made through the market handlers with the sellers' device readings
   in (untimed), settled by the settlement engine's block hook at the first
   block past the slot's reading window: each trade's delivered energy,
   payment, refund, penalty and certificate bundle. Timed alone (best of
   ``--reps``, garbage collector off, as the node tunes it), then the state
   diff of what it wrote. Target: 10,000 trades in under 1 s. Checks: every
   trade settled, money plus escrows conserved, no trade bundles more
   certificate energy than was delivered.

Setup (untimed): ``--owners`` participants register ``--devices`` generation
devices (benchkit.certs' fleet: 1,000 kWh per 15-minute interval each), an
authority approves them; each device gets a PPA from its owner to the next
owner (half its production, 0.10/kWh), accepted and funded with what the
run's deliveries cost.

a. PPA deliveries: one signed reading per device per interval for
   ``--intervals`` intervals, in blocks of ``--block-txs``; each reading
   issues its certificate and delivers half of it to the device's PPA: the
   energy recorded, the seller paid from escrow and the certificate energy
   split off to the buyer (``bundle``), in the same tx. ``apply_block``
   timed per block; the figure is deliveries/s (one per reading).
b. Contract executions: ``--contracts`` contracts (4 terms each: after a
   time, a device's production in an interval at least 1 Wh and at most
   its capacity, pay the next owner) created untimed, then executed, in
   blocks; ``apply_block`` timed: executions/s.

Signatures are not checked in (s), (a) or (b); the Ed25519 baseline (2 threads,
as bench_node's) is measured in the same run. Checks: no receipt fails;
each PPA delivered exactly its share of its readings and was paid exactly
delivered x price; escrow plus payments equal what was funded; every
contract executed. Exit status 0; 1 with --check if a target is missed; 2 if
a check or phase failed or the --budget ran out; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from benchkit.certs import INTERVAL, T0, Chain, Fleet, run_blocks, setup_fleet
from benchkit.contracts import (
    check_contracts,
    check_ppas,
    setup_ppas,
    sign_contracts,
    sign_ppa_readings,
)
from benchkit.cpu import print_phase_load
from benchkit.guard import progress
from benchkit.node.baseline import bench_baseline
from benchkit.runner import BenchRun, Targets, bench_parser, parse_args, target
from benchkit.settlement import bench_settlement

from powernode.node.runtime import tune_gc

TARGET_DELIVERIES = 10_000  # PPA deliveries/s through block application, signatures excluded
TARGET_SETTLE_SECONDS = 1.0  # 10,000 trades settled in one block hook
PHASES = ("settle", "ppa", "contracts")


def settlement_phase(args: argparse.Namespace, bench: BenchRun) -> None:
    """(s): the settlement block hook over ``--trades`` trades of one slot."""
    bench.monitor.begin()
    fig = bench_settlement(args.trades, args.sellers, args.reps)
    bench.monitor.end("s")
    bench.results["settlement"] = fig
    bench.results.setdefault("check", {})["settlement"] = {"problems": fig["problems"]}
    progress(
        f"s settlement: {fig['trades']:,} trades in {fig['hook_seconds']:.3f} s "
        f"({fig['trades_per_s']:,.0f} trades/s)"
    )


def baseline_phase(args: argparse.Namespace, bench: BenchRun, sample: list[Any]) -> None:
    bench.monitor.begin()
    bench.results["baseline"] = bench_baseline(args.sigs, 3, 140, sample[:1000])
    bench.monitor.end("baseline")


def ppa_phase(args: argparse.Namespace, bench: BenchRun, chain: Chain, fleet: Fleet) -> None:
    """(a): readings that each make a PPA delivery, through apply_block."""
    r = bench.results
    ids = setup_ppas(chain, fleet, args.intervals, args.block_txs)
    readings = sign_ppa_readings(fleet, args.intervals)
    progress(f"signed {len(readings):,} readings")
    baseline_phase(args, bench, readings)
    after = T0 + args.intervals * INTERVAL + 10
    bench.monitor.begin()
    fig = run_blocks(chain, readings, args.block_txs, lambda b: after + b, "a PPA deliveries")
    bench.monitor.end("a")
    fig["deliveries"] = len(readings)
    fig["ratio_to_baseline"] = fig["per_s"] / r["baseline"]["verify_per_s_2t"]
    r["ppa"] = fig
    r.setdefault("check", {})["ppa"] = check_ppas(chain, ids, readings)
    r["workload"] |= {"ppas": len(ids), "readings": len(readings)}


def contract_phase(args: argparse.Namespace, bench: BenchRun, chain: Chain, fleet: Fleet) -> None:
    """(b): contract executions through apply_block (creations untimed)."""
    r = bench.results
    creates, executes = sign_contracts(fleet, args.contracts, readings_interval=0)
    at = T0 + args.intervals * INTERVAL + 100_000
    for i in range(0, len(creates), args.block_txs):
        chain.connect(creates[i : i + args.block_txs], at)
    if chain.failed:
        raise RuntimeError(f"contract setup: {chain.failed} failed: {chain.failures[:3]}")
    progress(f"setup: {len(creates):,} contracts created")
    bench.monitor.begin()
    fig = run_blocks(chain, executes, args.block_txs, lambda b: at + 10 + b, "b executions")
    bench.monitor.end("b")
    r["contracts"] = fig
    r.setdefault("check", {})["contracts"] = check_contracts(chain, creates)
    r["workload"]["contracts"] = len(creates)


def run(args: argparse.Namespace, bench: BenchRun) -> None:
    r = bench.results
    r["workload"] = {}
    if "settle" in args.phases:
        settlement_phase(args, bench)
    if "ppa" not in args.phases and "contracts" not in args.phases:
        return
    progress(f"setup: {args.owners} owners, {args.devices:,} devices registered and approved")
    chain, fleet = setup_fleet(args.owners, args.devices // args.owners)
    r["workload"] |= {
        "owners": args.owners,
        "devices": len(fleet.devices),
        "intervals": args.intervals,
    }
    if "ppa" in args.phases:
        ppa_phase(args, bench, chain, fleet)
    else:  # the contracts' conditions read the first interval's readings
        readings = sign_ppa_readings(fleet, 1)
        baseline_phase(args, bench, readings)
        run_blocks(chain, readings, args.block_txs, lambda b: T0 + INTERVAL + 10 + b, "readings")
    if "contracts" in args.phases:
        contract_phase(args, bench, chain, fleet)
    if chain.failed:
        r.setdefault("check", {}).setdefault("problems", []).append(
            f"{chain.failed} failed receipts: {chain.failures[:3]}"
        )


def problems_of(r: dict[str, Any]) -> list[str]:
    ck = r.get("check", {})
    return [
        *ck.get("problems", []),
        *ck.get("ppa", {}).get("problems", []),
        *ck.get("contracts", {}).get("problems", []),
        *ck.get("settlement", {}).get("problems", []),
    ]


def print_table(r: dict[str, Any]) -> None:
    env, targets = r["env"], r.get("targets", {})
    print(
        f"\npowernode delivery and contracts benchmark: {env['cpus']} CPUs, "
        f"Python {env['python']}, cryptography {env['cryptography']}"
    )
    w = r.get("workload")
    if w and "devices" in w:
        print(
            f"workload: {w['devices']:,} devices of {w['owners']} owners, "
            f"{w.get('ppas', 0):,} PPAs, {w['intervals']} intervals, "
            f"{w.get('readings', 0):,} readings, {w.get('contracts', 0):,} contracts"
        )
    rows: list[tuple[str, str, str]] = []
    st = r.get("settlement")
    if st:
        t = targets.get("settlement", {})
        goal = f"< {TARGET_SETTLE_SECONDS:.0f} s: {'yes' if t.get('met') else 'NO'}" if t else ""
        rows.append(
            (
                f"s settlement of {st['trades']:,} trades, one block hook",
                f"{st['hook_seconds']:.3f} s",
                goal,
            )
        )
        rows.append(("  trades settled per second", f"{st['trades_per_s']:,.0f} /s", ""))
        rows.append(
            (f"  state diff ({st['changed_keys']:,} keys)", f"{st['diff_seconds']:.3f} s", "")
        )
    b = r.get("baseline")
    if b:
        rows.append(("Ed25519 verify, 2 threads (baseline)", f"{b['verify_per_s_2t']:,.0f} /s", ""))
    a = r.get("ppa")
    if a:
        t = targets.get("deliveries", {})
        rows.append(
            (
                "a PPA deliveries through block application",
                f"{a['per_s']:,.0f} /s",
                f">= {TARGET_DELIVERIES:,}: {'yes' if t.get('met') else 'NO'}",
            )
        )
        rows.append(("  a / baseline", f"{a['ratio_to_baseline']:.2f}", ""))
        rows.append(
            ("  block p50 / p99", f"{a['block_ms_p50']:.0f} / {a['block_ms_p99']:.0f} ms", "")
        )
    c = r.get("contracts")
    if c:
        rows.append(
            ("b contract executions through block application", f"{c['per_s']:,.0f} /s", "")
        )
        rows.append(
            ("  block p50 / p99", f"{c['block_ms_p50']:.0f} / {c['block_ms_p99']:.0f} ms", "")
        )
    for name, value, goal in rows:
        print(f"{name:<48} {value:>18}  {goal}".rstrip())
    ck = r.get("check", {})
    if st:
        print(f"check: settlement outcomes {st['statuses']}, money and escrows conserved")
    p = ck.get("ppa")
    if p:
        print(
            f"check: delivered {p['delivered_wh']:,} Wh of {p['expected_wh']:,} Wh expected, "
            f"paid {p['paid']:,}: " + ("PROBLEMS" if p["problems"] else "exact")
        )
    k = ck.get("contracts")
    if k:
        print(f"check: {k['executed']:,} of {k['contracts']:,} contracts executed")
    for line in problems_of(r):
        print(f"PROBLEM: {line}")
    load = r.get("load", {})
    if load:
        print_phase_load(load)
    if "error" in r:
        print(f"RUN FAILED: {r['error']}")


def targets(r: dict[str, Any]) -> Targets:
    out: Targets = {}
    st = r.get("settlement")
    if st and st["trades"] >= 10_000:  # the target is for 10,000 trades
        out["settlement"] = target(st["hook_seconds"], TARGET_SETTLE_SECONDS, at_most=True)
    if "ppa" in r:
        out["deliveries"] = target(r["ppa"]["per_s"], TARGET_DELIVERIES)
    return out


def phases_arg(text: str) -> tuple[str, ...]:
    """``--phases``: names of PHASES, comma-separated; another name is a
    usage error, not a run of nothing."""
    names = tuple(p for p in text.split(",") if p)
    unknown = [p for p in names if p not in PHASES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected names of {','.join(PHASES)}, got {text!r}")
    return names


# --quick's sizes; an option given on the command line keeps its value.
QUICK = {"trades": 1000, "owners": 10, "devices": 100, "intervals": 10, "contracts": 1000,
         "sigs": 1000}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser(__doc__, budget=900.0)
    ap.add_argument(
        "--phases",
        type=phases_arg,
        default=PHASES,
        help=f"comma-separated, of {','.join(PHASES)} (default all)",
    )
    ap.add_argument("--trades", type=int, default=10_000, help="settlement: trades of one slot")
    ap.add_argument("--sellers", type=int, default=100, help="settlement: sellers")
    ap.add_argument("--reps", type=int, default=3, help="settlement: best of this many runs")
    ap.add_argument("--owners", type=int, default=100)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--intervals", type=int, default=20)
    ap.add_argument("--contracts", type=int, default=10_000)
    ap.add_argument("--block-txs", type=int, default=5000)
    ap.add_argument("--sigs", type=int, default=4000, help="signatures for the baseline")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="1,000 trades, 100 devices, 10 intervals, 1,000 contracts",
    )
    args = parse_args(ap, argv, quick=QUICK)
    if min(args.owners, args.devices, args.intervals, args.block_txs, args.contracts) < 1:
        ap.error("--owners, --devices, --intervals, --contracts and --block-txs must be positive")
    if args.owners < 2 or args.devices % args.owners:
        ap.error("--owners: at least 2, and --devices a multiple of it")
    bench = BenchRun(args, workdir="powernode-bench-contracts-")
    tune_gc()
    code = bench.execute(lambda: run(args, bench))
    return bench.finish(code, print_table, targets=targets, problems=problems_of(bench.results))


if __name__ == "__main__":
    sys.exit(main())
