"""Metering and certificates benchmark: signed meter readings (each issuing a
certificate) and certificate txs through block application, a deep
certificate lineage traced and proven, and the state a fleet's readings
take.

    python scripts/bench_certs.py [--quick] [--devices N] [--intervals N] [--hub-intervals N]
                                  [--e2e-devices N] [--json]

Setup (untimed): ``--owners`` participants register ``--devices`` generation
devices (solar, wind, hydro, thermal in turn; thermal earns no certificate),
an authority approves them.

a. Readings: one signed reading per device per interval for ``--intervals``
   intervals, relayed by the owner, in blocks of ``--block-txs``:
   ``apply_block`` timed per block (envelope, fee, nonce, the reading's
   rules, the certificate it issues, receipts, state root). Signatures are
   not checked here; they are measured on their own: the Ed25519 baseline
   (2 threads, the same as bench_node's) and a reading's two signatures
   (``verify_tx``) on one thread.
b. Certificate txs: for each issued certificate, a transfer of part of it to
   another owner (a split) and a retirement of part of what is left (a
   second split), in blocks.
c. A certificate ``--lineage`` splits deep (two owners handing a shrinking
   part back and forth, one split per block); ``cert.trace`` of the deepest
   child on the state, best of 5; ``cert.proof`` of it built from a chain
   store holding those blocks, and verified offline.
d. State bytes: the stored form of the metering and certificate namespaces
   after (a), per 100,000 readings.
e. Aggregate form (``--hub-intervals`` intervals of the same fleet): the
   readings as ``meter.batch`` txs (a data hub relaying 100 meter-signed
   readings per tx) against the same readings as ``meter.report`` txs, each
   on its own copy of the fleet's chain, through ``apply_block`` (CPU us per
   reading, this thread: it is the block connect); the signatures per
   reading of each form (``verify_tx``, one thread: 2 per report, 1 + 1/100
   per batch entry); tx and state bytes per reading, and chain.db bytes per
   reading (at most 200 devices' readings of 5 intervals connected into a
   real chain store). Printed with ratios to an Ed25519 baseline of the
   same run in CPU time (raw checks on one thread, per CPU-second).
f. End to end (``--e2e-devices``, 0 skips it): one ``powernode run`` node
   (dev chain, mining, signature workers) receives over RPC a data hub's
   meter.batch txs for that many devices' readings of one interval, then
   the same fleet's readings of another interval as meter.report txs:
   readings/s from the first send until every reading is in the chain, and
   the node's CPU (process and signature workers) per reading.

Checks: no receipt fails; every reading of a certifying source issued its
certificate and the certified Wh equal the metered Wh. Exit status 0; 1 with
--check if a target is missed; 2 if a check or phase failed or the --budget
ran out; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, cast

from benchkit.certs import (
    INTERVAL,
    READING_NAMESPACES,
    T0,
    Chain,
    Fleet,
    deep_lineage,
    proof_figures,
    reading_signatures,
    root_id,
    run_blocks,
    setup_fleet,
    sign_readings,
    state_bytes,
)
from benchkit.cpu import print_phase_load
from benchkit.guard import progress
from benchkit.hub import batch_vs_report, db_bytes_per_reading
from benchkit.hub_e2e import run as hub_e2e
from benchkit.node.baseline import bench_baseline
from benchkit.runner import BenchRun, Targets, bench_parser, parse_args, target

from powernode.core.tx import Transaction
from powernode.engines.certificates import queries as cert_queries
from powernode.engines.metering.params import cert_params
from powernode.node.runtime import tune_gc

TARGET_READINGS = 10_000  # readings/s through block application, signatures excluded
TARGET_TRACE_MS = 50.0  # cert.trace of a 1,000-step lineage


def sign_cert_txs(chain: Chain, fleet: Fleet, readings: list[Transaction]) -> list[Transaction]:
    """Per issued certificate: a split transfer to the next owner, then a
    retirement of part of what the first owner keeps."""
    per_owner = len(fleet.devices) // len(fleet.owners)
    certifying = set(cert_params(fleet.params).sources)
    index = {d: i for i, d in enumerate(fleet.devices)}
    txs: list[Transaction] = []
    for tx in readings:
        device, start, produced = tx.payload[0], tx.payload[1], tx.payload[2]
        if chain.state.get(("met.dev", device)).source not in certifying or produced < 4:
            continue
        o = index[device] // per_owner
        owner, to = fleet.owners[o], fleet.owners[(o + 1) % len(fleet.owners)]
        cid = root_id(device, start)
        txs.append(fleet.sign(owner, "cert.transfer", [cid, to.address, produced // 2]))
        txs.append(
            fleet.sign(owner, "cert.retire", [cid, produced // 4, "bench", "", start, start + 1])
        )
    return txs


def run(args: argparse.Namespace, bench: BenchRun) -> None:
    r, mon = bench.results, bench.monitor
    progress(f"setup: {args.owners} owners, {args.devices:,} devices registered and approved")
    chain, fleet = setup_fleet(args.owners, args.devices // args.owners)
    readings = sign_readings(fleet, args.intervals)
    r["workload"] = {
        "owners": args.owners,
        "devices": len(fleet.devices),
        "intervals": args.intervals,
        "readings": len(readings),
    }
    mon.begin()
    r["baseline"] = bench_baseline(args.sigs, 3, 140, readings[:1000])
    r["baseline"] |= reading_signatures(readings, min(args.sigs, 4000))
    mon.end("baseline")

    after = T0 + args.intervals * INTERVAL + 10
    mon.begin()
    r["readings"] = run_blocks(chain, readings, args.block_txs, lambda b: after + b, "a readings")
    mon.end("a")
    r["readings"]["ratio_to_baseline"] = r["readings"]["per_s"] / r["baseline"]["verify_per_s_2t"]
    sizes = state_bytes(chain.state, READING_NAMESPACES)
    total = sum(sizes.values())
    r["state"] = {
        "by_namespace": sizes,
        "bytes": total,
        "bytes_per_100k_readings": total * 100_000 // max(1, len(readings)),
    }
    r["check"] = check_issuance(chain, fleet, readings)

    cert_txs = sign_cert_txs(chain, fleet, readings)
    mon.begin()
    r["cert_txs"] = run_blocks(
        chain, cert_txs, args.block_txs, lambda b: after + 10_000 + b, "b certificate txs"
    )
    mon.end("b")

    mon.begin()
    leaf, _ = deep_lineage(chain, fleet, args.lineage)
    trace = cast("dict[str, Any]", cert_queries.trace(chain.state, leaf))  # the leaf exists
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        cert_queries.trace(chain.state, leaf)
        times.append(time.perf_counter() - t0)
    r["lineage"] = {
        "splits": args.lineage,
        "steps": len(trace["steps"]),
        "trace_ms": min(times) * 1000,
    }
    progress(f"c trace: {len(trace['steps']):,} steps in {min(times) * 1000:.1f} ms")
    r["lineage"] |= proof_figures(bench.workdir, args.lineage)
    progress(
        f"c proof: built in {r['lineage']['proof_ms']:.1f} ms, verified offline in "
        f"{r['lineage']['verify_ms']:.1f} ms, {r['lineage']['proof_bytes']:,} bytes"
    )
    mon.end("c")

    mon.begin()
    r["hub"] = batch_vs_report(
        args.owners, args.devices, args.hub_intervals, args.block_txs, min(args.sigs, 4000)
    )
    r["hub"]["db_bytes_per_reading"] = db_bytes_per_reading(
        bench.workdir, min(args.devices, 200), min(args.hub_intervals, 5)
    )
    mon.end("e")
    r["check"]["problems"] += r["hub"]["problems"]
    if args.e2e_devices:
        mon.begin()
        r["hub_e2e"] = hub_e2e(bench.workdir, args.e2e_devices, args.e2e_owners, 600.0)
        mon.end("f")
    if chain.failed:
        r["check"]["problems"].append(f"{chain.failed} failed receipts: {chain.failures[:3]}")


def check_issuance(chain: Chain, fleet: Fleet, readings: list[Transaction]) -> dict[str, Any]:
    certifying = set(cert_params(fleet.params).sources)
    metered = certified = missing = 0
    for tx in readings:
        device, start, produced = tx.payload[0], tx.payload[1], tx.payload[2]
        dev = chain.state.get(("met.dev", device))
        if dev.source not in certifying:
            continue
        metered += produced
        cert = chain.state.get(("crt.cert", root_id(device, start)))
        if cert is None:
            missing += 1
        else:
            certified += cert.wh
    problems = []
    if missing:
        problems.append(f"{missing} readings issued no certificate")
    if certified != metered:
        problems.append(f"certified {certified} Wh != metered {metered} Wh")
    return {"metered_wh": metered, "certified_wh": certified, "problems": problems}


def print_table(r: dict[str, Any]) -> None:
    env, targets = r["env"], r.get("targets", {})
    print(
        f"\npowernode metering and certificates benchmark: {env['cpus']} CPUs, "
        f"Python {env['python']}, cryptography {env['cryptography']}"
    )
    w = r.get("workload")
    if w:
        print(
            f"workload: {w['devices']:,} devices of {w['owners']} owners, {w['intervals']} "
            f"intervals, {w['readings']:,} readings"
        )
    rows: list[tuple[str, str, str]] = []
    b = r.get("baseline")
    if b:
        rows.append(("Ed25519 verify, 2 threads (baseline)", f"{b['verify_per_s_2t']:,.0f} /s", ""))
        rows.append(("reading's 2 signatures, 1 thread", f"{b['readings_per_s_1t']:,.0f} /s", ""))
    a = r.get("readings")
    if a:
        t = targets.get("readings", {})
        rows.append(
            (
                "a readings through block application",
                f"{a['per_s']:,.0f} /s",
                f">= {TARGET_READINGS:,}: {'yes' if t.get('met') else 'NO'}",
            )
        )
        rows.append(("  a / baseline", f"{a['ratio_to_baseline']:.2f}", ""))
        rows.append(
            ("  a CPU us/reading (1 thread)", f"{a['cpu_s'] * 1e6 / max(1, a['txs']):.1f}", "")
        )
        rows.append(
            ("  block p50 / p99", f"{a['block_ms_p50']:.0f} / {a['block_ms_p99']:.0f} ms", "")
        )
    c = r.get("cert_txs")
    if c:
        rows.append(("b certificate txs through block application", f"{c['per_s']:,.0f} /s", ""))
    lin = r.get("lineage")
    if lin:
        t = targets.get("trace", {})
        rows.append(
            (
                f"c cert.trace, {lin['splits']:,} splits ({lin['steps']:,} steps)",
                f"{lin['trace_ms']:.1f} ms",
                f"<= {TARGET_TRACE_MS:.0f}: {'yes' if t.get('met') else 'NO'}",
            )
        )
        if "proof_ms" in lin:
            rows.append(("c cert.proof build", f"{lin['proof_ms']:.1f} ms", ""))
            rows.append(("c proof verify offline", f"{lin['verify_ms']:.1f} ms", ""))
            rows.append(("c proof size", f"{lin['proof_bytes']:,} bytes", ""))
    s = r.get("state")
    if s:
        rows.append(("d state bytes per 100,000 readings", f"{s['bytes_per_100k_readings']:,}", ""))
    rows += hub_rows(r)
    for name, value, goal in rows:
        print(f"{name:<48} {value:>18}  {goal}".rstrip())
    ck = r.get("check")
    if ck:
        print(
            f"check: metered {ck['metered_wh']:,} Wh, certified {ck['certified_wh']:,} Wh: "
            + ("PROBLEMS" if ck["problems"] else "equal, every reading certified once")
        )
        for p in ck["problems"]:
            print(f"PROBLEM: {p}")
    load = r.get("load", {})
    if load:
        print_phase_load(load)
    if "error" in r:
        print(f"RUN FAILED: {r['error']}")


def hub_rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Phase e: per reading, the two forms side by side, and what one core
    does against the Ed25519 baseline's verifies (2 threads) of this run."""
    h = r.get("hub")
    if not h:
        return []
    # The CPU-time baseline (one thread, raw checks) of this phase: a busy
    # machine distorts the wall-clock one far more.
    base = h["ed25519"]["per_cpu_s"]
    rows = [
        ("e Ed25519 verify per CPU-second (1 thread)", f"{base:,.0f} /s", "e's baseline"),
        (f"e {h['readings']:,} readings, meter.report vs meter.batch of {h['batch_size']}",
         "report / batch", ""),
    ]  # fmt: skip
    rep, bat = h["report"], h["batch"]
    rows.append(
        (
            "  apply CPU us/reading (1 thread)",
            f"{rep['apply_us_per_reading']:.1f} / {bat['apply_us_per_reading']:.1f}",
            f"x{h['apply_ratio']:.2f}",
        )
    )
    rows.append(
        (
            "  verify CPU us/reading (1 thread)",
            f"{rep['verify']['us_per_reading']:.1f} / {bat['verify']['us_per_reading']:.1f}",
            f"x{h['verify_ratio']:.2f}",
        )
    )
    rows.append(
        (
            "  apply + verify CPU us/reading",
            f"{rep['total_us_per_reading']:.1f} / {bat['total_us_per_reading']:.1f}",
            f"x{rep['total_us_per_reading'] / bat['total_us_per_reading']:.2f}",
        )
    )
    for what, key in (("apply", "apply_us_per_reading"), ("verify", None)):
        per_s = [1e6 / (f[key] if key else f["verify"]["us_per_reading"]) for f in (rep, bat)]
        ratio = f"{per_s[0] / base:.2f} / {per_s[1] / base:.2f} of baseline" if base else ""
        rows.append(
            (f"  readings/CPU-s, {what} (1 core)", f"{per_s[0]:,.0f} / {per_s[1]:,.0f}", ratio)
        )
    rows.append(
        (
            "  apply readings/s wall (block p50 ms)",
            f"{rep['readings_per_s']:,.0f} / {bat['readings_per_s']:,.0f}",
            f"{rep['block_ms_p50']:.0f} / {bat['block_ms_p50']:.0f} ms",
        )
    )
    rows.append(
        (
            "  tx bytes / state bytes per reading",
            f"{rep['tx_bytes_per_reading']:.0f} / {bat['tx_bytes_per_reading']:.0f}",
            f"state {rep['state_bytes_per_reading']:.0f} / {bat['state_bytes_per_reading']:.0f}",
        )
    )
    db = h.get("db_bytes_per_reading")
    if db:
        rows.append(
            ("  chain.db bytes per reading", f"{db['report']:,.0f} / {db['batch']:,.0f}", "")
        )
    e = r.get("hub_e2e")
    if e:
        rows.append((f"f end to end, one node, {e['devices']:,} devices", "report / batch", ""))
        rep, bat = e["report"], e["batch"]
        rows.append(
            (
                "  readings/s, first send to all in chain",
                f"{rep['readings_per_s']:,.0f} / {bat['readings_per_s']:,.0f}",
                f"x{e['ratio']:.2f}",
            )
        )
        rows.append(
            (
                "  node CPU us/reading (with sig workers)",
                f"{rep['node_cpu_us_per_reading']:.0f} / {bat['node_cpu_us_per_reading']:.0f}",
                "",
            )
        )
        for what in ("main", "workers"):
            rows.append(
                (
                    f"    of which the node's {'process' if what == 'main' else 'sig workers'}",
                    f"{rep[what + '_cpu_us_per_reading']:.0f} / "
                    f"{bat[what + '_cpu_us_per_reading']:.0f}",
                    "",
                )
            )
    return rows


def targets(r: dict[str, Any]) -> Targets:
    out: Targets = {}
    if "readings" in r:
        out["readings"] = target(r["readings"]["per_s"], TARGET_READINGS)
    if "lineage" in r:
        out["trace"] = target(r["lineage"]["trace_ms"], TARGET_TRACE_MS, at_most=True)
    return out


# --quick's sizes; an option given on the command line keeps its value.
QUICK = {
    "owners": 10, "devices": 100, "intervals": 20, "lineage": 200, "sigs": 1000,
    "hub_intervals": 3, "e2e_devices": 200, "e2e_owners": 4,
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser(__doc__, budget=1800.0)
    ap.add_argument("--owners", type=int, default=100)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--intervals", type=int, default=100)
    ap.add_argument("--block-txs", type=int, default=5000)
    ap.add_argument("--lineage", type=int, default=1000, help="splits of the deep lineage")
    ap.add_argument("--sigs", type=int, default=4000, help="signatures for the baseline")
    ap.add_argument(
        "--e2e-devices", type=int, default=10_000, help="devices of phase f (0: skip it)"
    )
    ap.add_argument("--e2e-owners", type=int, default=20, help="owners of phase f's devices")
    ap.add_argument(
        "--hub-intervals", type=int, default=10, help="intervals of phase e (batch vs report)"
    )
    ap.add_argument("--quick", action="store_true", help="100 devices, 20 intervals, 200 splits")
    args = parse_args(ap, argv, quick=QUICK)
    if min(args.owners, args.devices, args.intervals, args.block_txs, args.lineage) < 1:
        ap.error("--owners, --devices, --intervals, --block-txs and --lineage must be positive")
    if args.hub_intervals < 1:
        ap.error("--hub-intervals must be positive")
    if args.e2e_devices < 0 or args.e2e_owners < 1:
        ap.error("--e2e-devices: 0 or more; --e2e-owners: at least 1")
    if args.owners < 2 or args.devices % args.owners:
        ap.error("--owners: at least 2, and --devices a multiple of it")
    bench = BenchRun(args, workdir="powernode-bench-certs-")
    tune_gc()
    code = bench.execute(lambda: run(args, bench))
    problems = bench.results.get("check", {}).get("problems", [])
    return bench.finish(code, print_table, targets=targets, problems=problems)


if __name__ == "__main__":
    sys.exit(main())
