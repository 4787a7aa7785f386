"""Node benchmark: signature baseline, tx ingest over RPC, block connect, RPC latency.

Usage::

    python scripts/bench_node.py            # progress on stderr, table on stdout
    python scripts/bench_node.py --json     # ... and the figures as JSON after the table
    python scripts/bench_node.py --check    # exit 1 if a target is missed
    python scripts/bench_node.py --baseline-only   # phase 1 alone: the verifier figures

What it measures (in this order; the table is printed in the numbered order):

1. Baseline: raw Ed25519 verifies per second over 140-byte messages with
   the node's verifier, libsodium (PyNaCl), directly, on 1 thread and on 2
   threads (best of ``--baseline-runs`` interleaved runs), and on 2 worker
   processes. The 2-thread figure is *the baseline*. For diagnosis it also
   times the node's own per-tx path (``Transaction.verify_signature``) the
   same way. Beside it, on the same messages, keys and signatures, the
   verifier candidates (``benchkit/node/baseline.py``): ``cryptography``
   (OpenSSL, the verifier before), PyNaCl raw and behind the node's rules,
   and coincurve's BIP340 Schnorr (its own keys; comparison only), each per
   core and on 2 threads, best of 100-signature slices interleaved across
   candidates, with its per-core ratio to ``cryptography`` (target: PyNaCl
   behind the node's rules, as ``signature_ok`` runs it, at least 1.8); a candidate not installed is shown as such.
3. Block connect, in process: a 5,000-tx block connected into a fresh
   ledger with an empty signature cache (cold) and into one whose mempool
   already admitted the txs with ``submit_tx`` (warm), both with the node's
   parallel ``Verifier(2)``. Median over repetitions.
2. Ingest: a real node process (a data dir as ``powernode init --genesis``
   writes it, then ``powernode run``, mining off) and 20,000 pre-signed
   transfers (200 senders x 100 nonces) submitted with JSON-RPC
   ``tx.submit`` batches. A short sweep over batch size and client
   connections runs first on a throwaway node; the fastest setting is then
   used on a fresh node for the full 20,000.
   Every tx must be accepted and ``mempool.info`` must say 20,000. The
   2-thread baseline is measured again once the node has stopped, and the
   ingest ratio is taken against the higher of the two measurements (the
   whole-pass figure swings by up to a third between minutes on a shared
   box; a ratio to one low pass could meet the target by luck). Beside
   the rate, the node's CPU per ingested tx (its own process, and its
   signature workers), read from ``/proc``: the figure a shared machine
   still gives.
4. RPC latency: p50/p99 of sequential ``node.info`` and ``account.get`` calls
   over one keep-alive connection on that same node (so its mempool holds the
   20,000 txs), with the miner idle and then running on a hard target.
5. Full mempool (``benchkit/node/fullpool.py``; ``--skip-full-pool`` leaves
   it out): a node whose pool holds exactly ``--fp-senders`` x ``--fp-nonces``
   txs. Ingest of that many txs into the empty pool (the baseline), then as
   many paying more (each evicts one) and as many paying less (each refused),
   same batch and connections; the full-pool rates as a share of the empty
   one. Then ``node.info`` p50/p99 on the full pool, quiet and while a
   scripted P2P peer sends 6,000 fee-0 txs in three ``txs`` frames over and
   over, dialling again whenever the node drops it.

The machine must be otherwise idle for the figures to mean anything: the run
first waits (up to ``--wait-quiet`` seconds) for other processes to go quiet,
then records how many cores other processes used during each timed phase and
flags any phase where that exceeded 0.25.

The whole run is bounded by ``--budget`` seconds; node processes are stopped
(SIGTERM, then SIGKILL) whatever happens. Exit status: 0 when every phase ran
(with ``--check``: and every target was met, else 1), 2 when a phase failed or
the budget ran out, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from benchkit.cpu import Phases, print_phase_load
from benchkit.guard import progress
from benchkit.node.baseline import bench_baseline
from benchkit.node.connect import bench_block_connect
from benchkit.node.fullpool import bench_full_pool, fullpool_keys
from benchkit.node.ingest import ingest_sweep, node_cpu, submit_all
from benchkit.node.latency import bench_latency
from benchkit.node.txs import bench_genesis, key_for, nonce_major, sign_grid
from benchkit.runner import (
    BenchRun,
    Row,
    Targets,
    bench_parser,
    parse_args,
    print_figures,
    target,
)

from powernode.client import RpcClient
from powernode.devnet.datadir import init_datadir, write_genesis
from powernode.devnet.process import ProcessNode

INGEST_CHAIN = "powernode-bench"
# 28 leading zero bits: at ~20k PoW hashes/s a block takes hours, so the miner
# in the latency phase hashes without ever connecting a block.
HARD_TARGET = "0000000f" + "ff" * 28

TARGET_INGEST_RATIO = 0.85
# Issue 15: the chosen verifier (libsodium behind the node's rules) per core
# against cryptography's.
TARGET_VERIFIER_RATIO = 1.8
TARGET_WARM_SPEEDUP = 5.0
TARGET_P99_RATIO = 2.0
TARGET_FULL_POOL_RATIO = 0.5
TARGET_FLOOD_P99_MS = 100.0


# --- the run -----------------------------------------------------------------------


def run(args: argparse.Namespace, bench: BenchRun) -> None:
    results, monitor, workdir = bench.results, bench.monitor, bench.workdir
    phase = Phases(monitor)
    senders, nonces = args.senders, args.nonces
    keys = [key_for("sender", i) for i in range(senders)]
    fp_keys = fullpool_keys(0 if args.skip_full_pool else args.fp_senders)
    progress(f"signing {senders * nonces:,} ingest transfers ({senders} senders x {nonces})")
    t0 = time.perf_counter()
    grid = sign_grid(keys, nonces, INGEST_CHAIN)
    all_txs = nonce_major(grid, range(senders))
    progress(f"signed in {time.perf_counter() - t0:.1f} s; tx size {all_txs[0].size} bytes")

    # 1. baseline
    with phase("baseline"):
        results["baseline"] = bench_baseline(
            args.sigs, args.baseline_runs, 140, all_txs, candidates=True
        )
    if args.baseline_only:
        return

    # 3. block connect (in process; no node running, so it has the CPU)
    with phase("block_connect"):
        results["block_connect"] = bench_block_connect(
            workdir / "block", args.block_senders, args.block_nonces, args.block_reps
        )

    # 2. ingest
    genesis = write_genesis(
        workdir / "genesis.json",
        bench_genesis(
            INGEST_CHAIN,
            keys + fp_keys.all,
            target=args.target,
            dev=False,
            timestamp=int(time.time()),
        ),
    )
    ingest: dict[str, Any] = {"txs": len(all_txs), "senders": senders, "nonces": nonces}
    results["ingest"] = ingest
    if args.batch and args.connections:
        batch, connections = args.batch, args.connections
        ingest["choice"] = "given on the command line"
    else:
        sweep, (batch, connections) = ingest_sweep(workdir, genesis, grid, phase)
        ingest["sweep"] = [
            {
                "batch": r.batch,
                "connections": r.connections,
                "txs": r.txs,
                "tx_per_s": r.rate,
                "errors": dict(r.errors),
            }
            for r in sweep
        ]
        ingest["choice"] = "fastest in the sweep"
    ingest["batch"] = batch
    ingest["connections"] = connections
    with ProcessNode(workdir / "node", name="node") as node:
        init_datadir(node.datadir, genesis)
        ep = node.start()
        monitor.pids.add(node.pid)
        progress(
            f"ingest: node up on port {urlsplit(ep.url).port}; submitting {len(all_txs):,} txs, "
            f"batch {batch} x {connections} conn"
        )
        cpu0 = node_cpu(node.pid)
        with phase("ingest"):
            r = submit_all(ep, all_txs, batch, connections)
        cpu1 = node_cpu(node.pid)
        with RpcClient(ep) as c:
            pool = c.call("mempool.info")
        ingest.update(
            seconds=r.seconds,
            accepted=r.accepted,
            errors=dict(r.errors),
            tx_per_s=r.rate,
            mempool_size=pool["size"],
        )
        if r.accepted:
            main_us, workers_us = (
                (b - a) / r.accepted * 1e6 for a, b in zip(cpu0, cpu1, strict=True)
            )
            ingest["cpu_us_per_tx"] = {
                "main": main_us,
                "workers": workers_us,
                "total": main_us + workers_us,
            }
        progress(
            f"ingest: {r.accepted:,} accepted in {r.seconds:.2f} s = {r.rate:,.0f} tx/s; "
            f"mempool {pool['size']:,}"
        )
        if r.errors or r.accepted != len(all_txs) or pool["size"] != len(all_txs):
            problem = (
                f"ingest incomplete: accepted {r.accepted} of {len(all_txs)}, "
                f"mempool {pool['size']}, errors {dict(r.errors)}"
            )
            results.setdefault("problems", []).append(problem)
            progress(f"PROBLEM: {problem}; node log tail:\n{node.stderr_tail()}")

        # 4. RPC latency, on the same node
        progress(f"latency: {args.latency_calls} sequential calls per method and state")
        with phase("rpc_latency"):
            results["rpc_latency"] = bench_latency(
                ep, keys[0].address.hex(), args.latency_calls, args.settle
            )
        progress("stopping the node")
    results["node_exit_code"] = node.exit_code

    # The baseline again, right after the ingest: on a shared or throttled
    # box the whole-pass 2-thread figure swings by a third from minute to
    # minute, so a ratio against one low measurement could pass by luck.
    # The ratio uses the higher of the two.
    with phase("baseline_again"):
        again = bench_baseline(args.sigs, args.baseline_runs, 140, all_txs)
    first = results["baseline"]["verify_per_s_2t"]
    ingest["baseline_again_per_s_2t"] = again["verify_per_s_2t"]
    ingest["baseline_used_per_s_2t"] = base = max(first, again["verify_per_s_2t"])
    if r.rate:
        ingest["ratio_to_baseline"] = r.rate / base

    # 5. a full mempool, on a node of its own
    if not args.skip_full_pool:
        fp = bench_full_pool(
            workdir,
            genesis,
            fp_keys,
            chain_id=INGEST_CHAIN,
            nonces=args.fp_nonces,
            batch=batch,
            connections=connections,
            latency_calls=args.fp_latency_calls,
            phase=phase,
        )
        results["full_pool"] = fp
        results.setdefault("problems", []).extend(fp.pop("problems"))


# --- output ------------------------------------------------------------------------


def targets(results: dict[str, Any]) -> Targets:
    out: Targets = {}
    # The node's verifier as it runs: libsodium behind the node's own rules.
    chosen = results.get("baseline", {}).get("candidates", {}).get("pynacl_node_rules", {})
    if chosen.get("ratio_to_cryptography_1t") is not None:
        out["verifier_ratio"] = target(chosen["ratio_to_cryptography_1t"], TARGET_VERIFIER_RATIO)
    ing = results.get("ingest", {})
    if "ratio_to_baseline" in ing:
        out["ingest_ratio"] = target(ing["ratio_to_baseline"], TARGET_INGEST_RATIO)
    bc = results.get("block_connect", {})
    if "speedup" in bc:
        out["warm_speedup"] = target(bc["speedup"], TARGET_WARM_SPEEDUP)
    lat = results.get("rpc_latency", {})
    if "p99_ratio_worst" in lat:
        out["p99_ratio"] = target(lat["p99_ratio_worst"], TARGET_P99_RATIO, at_most=True)
    fp = results.get("full_pool", {})
    if "admitted_ratio" in fp:
        out["full_pool_ratio"] = target(fp["admitted_ratio"], TARGET_FULL_POOL_RATIO)
    if "latency_flood" in fp:
        out["flood_p99_ms"] = target(
            fp["latency_flood"]["p99_ms"], TARGET_FLOOD_P99_MS, at_most=True
        )
    return out


def print_table(results: dict[str, Any]) -> None:
    rows: list[Row] = []
    t = results.get("targets", {})

    def met(key: str) -> tuple[str, str]:
        if key not in t:
            return "", ""
        return t[key]["target"], "yes" if t[key]["met"] else "NO"

    b = results.get("baseline")
    if b:
        rows.append(
            ("1 Ed25519 verify (libsodium), 1 thread", f"{b['verify_per_s_1t']:,.0f} /s", "", "")
        )
        rows.append(
            ("1 Ed25519 verify, 2 threads (baseline)", f"{b['verify_per_s_2t']:,.0f} /s", "", "")
        )
        if "verify_per_s_2p" in b:
            rows.append(
                ("1 Ed25519 verify, 2 processes", f"{b['verify_per_s_2p']:,.0f} /s", "", "")
            )
        rows.append(
            (
                "  node path tx.verify_signature, 1 thread",
                f"{b['node_path_per_s_1t']:,.0f} /s",
                "",
                "",
            )
        )
        rows.append(
            (
                "  node path tx.verify_signature, 2 threads",
                f"{b['node_path_per_s_2t']:,.0f} /s",
                "",
                "",
            )
        )
        for name, c in b.get("candidates", {}).items():
            if c.get("missing"):
                rows.append((f"  candidate {name}", "not installed", "", ""))
                continue
            rows.append(
                (
                    f"  candidate {name}: per core / 2 threads",
                    f"{c['per_s_1t']:,.0f} / {c['per_s_2t']:,.0f} /s",
                    "",
                    "",
                )
            )
            ratio = c["ratio_to_cryptography_1t"]
            if ratio is not None and name != "cryptography":
                target_cols = met("verifier_ratio") if name == "pynacl_node_rules" else ("", "")
                rows.append(
                    (f"  candidate {name} / cryptography, per core", f"{ratio:.2f}", *target_cols)
                )
    ing = results.get("ingest", {})
    for s in ing.get("sweep", []):
        rows.append(
            (
                f"  sweep: batch {s['batch']} x {s['connections']} conn ({s['txs']:,} txs)",
                f"{s['tx_per_s']:,.0f} tx/s",
                "",
                "",
            )
        )
    if "tx_per_s" in ing:
        rows.append(
            (
                f"2 ingest {ing['accepted']:,} txs, batch {ing['batch']} x {ing['connections']} conn",
                f"{ing['tx_per_s']:,.0f} tx/s",
                "",
                "",
            )
        )
        rows.append(("  ingest wall time", f"{ing['seconds']:.2f} s", "", ""))
        rows.append((f"  batch size and connections: {ing['choice']}", "", "", ""))
        if "baseline_again_per_s_2t" in ing:
            rows.append(
                (
                    "  baseline measured again after the ingest",
                    f"{ing['baseline_again_per_s_2t']:,.0f} /s",
                    "",
                    "",
                )
            )
        if "ratio_to_baseline" in ing:
            rows.append(
                (
                    "2 ingest / baseline (the higher of the two)",
                    f"{ing['ratio_to_baseline']:.2f}",
                    *met("ingest_ratio"),
                )
            )
        cpu = ing.get("cpu_us_per_tx")
        if cpu:
            rows.append(
                (
                    "  node CPU per ingested tx: event loop / sig workers / total",
                    f"{cpu['main']:.1f} / {cpu['workers']:.1f} / {cpu['total']:.1f} us",
                    "",
                    "",
                )
            )
    bc = results.get("block_connect")
    if bc:
        n = f"{bc['txs']:,}-tx block"
        rows.append(
            (f"3 connect {n}, cold sig cache (median)", f"{bc['cold_ms_median']:.1f} ms", "", "")
        )
        rows.append(
            (f"3 connect {n}, warm sig cache (median)", f"{bc['warm_ms_median']:.1f} ms", "", "")
        )
        rows.append(("3 speedup cold/warm", f"{bc['speedup']:.2f}x", *met("warm_speedup")))
    lat = results.get("rpc_latency")
    if lat and "p99_ratio_worst" in lat:
        for name, m in lat["methods"].items():
            for state in ("idle", "running"):
                s = m[state]
                rows.append(
                    (
                        f"4 {name} miner {state}: p50 / p99 (max)",
                        f"{s['p50_ms']:.2f} / {s['p99_ms']:.2f} ms ({s['max_ms']:.0f})",
                        "",
                        "",
                    )
                )
            rows.append((f"4 {name} p99 running/idle", f"{m['p99_ratio']:.2f}", "", ""))
        rows.append(
            ("4 worst p99 running/idle", f"{lat['p99_ratio_worst']:.2f}", *met("p99_ratio"))
        )

    fp = results.get("full_pool", {})
    if "admitted_ratio" in fp:
        n = f"{fp['txs_per_set']:,} txs, {fp['senders_per_set']:,} senders"
        for name, label in (
            ("empty", "into the empty pool (baseline)"),
            ("full_admitted", "into the full pool, each evicting one"),
            ("full_refused", "into the full pool, each refused"),
        ):
            rows.append((f"5 ingest {n}, {label}", f"{fp[name]['tx_per_s']:,.0f} tx/s", "", ""))
        rows.append(
            ("5 full (admitted) / empty", f"{fp['admitted_ratio']:.2f}", *met("full_pool_ratio"))
        )
        rows.append(("5 full (refused) / empty", f"{fp['refused_ratio']:.2f}", "", ""))
    if "latency_flood" in fp:
        for key, label in (("latency_quiet", "quiet"), ("latency_flood", "under a fee-0 flood")):
            s = fp[key]
            rows.append(
                (
                    f"5 node.info, full pool, {label}: p50 / p99 (max)",
                    f"{s['p50_ms']:.2f} / {s['p99_ms']:.2f} ms ({s['max_ms']:.0f})",
                    *(met("flood_p99_ms") if key == "latency_flood" else ("", "")),
                )
            )
        f = fp["flood"]
        rows.append(
            (
                "5 flood: connections / dropped by the node",
                f"{f['connections']} / {f['dropped_by_node']}",
                "",
                "",
            )
        )

    env = results["env"]
    print_figures(
        f"powernode node benchmark: {env['cpus']} CPUs, Python {env['python']}, "
        f"PyNaCl {env['pynacl']}, cryptography {env['cryptography']}",
        rows,
    )
    if ing.get("mempool_size") is not None:
        print(f"(ingest: mempool.info size {ing['mempool_size']:,}; ", end="")
        print(f"latency measured with {lat['mempool_size']:,} txs pending)" if lat else ")")
    load = results.get("load", {})
    if load:
        print_phase_load(load)
    for problem in results.get("problems", []):
        print(f"PROBLEM: {problem}")
    if "error" in results:
        print(f"RUN FAILED: {results['error']}")


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser(__doc__, budget=300.0)
    ap.add_argument("--senders", type=int, default=200)
    ap.add_argument("--nonces", type=int, default=100)
    ap.add_argument("--sigs", type=int, default=4000, help="signatures for the baseline")
    ap.add_argument("--baseline-runs", type=int, default=5, help="baseline: best of this many")
    ap.add_argument(
        "--baseline-only", action="store_true", help="run phase 1 only (the verifier figures)"
    )
    ap.add_argument("--block-senders", type=int, default=50)
    ap.add_argument("--block-nonces", type=int, default=100)
    ap.add_argument("--block-reps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=0, help="skip the sweep: this batch size")
    ap.add_argument("--connections", type=int, default=0, help="skip the sweep: this many")
    ap.add_argument("--latency-calls", type=int, default=2000)
    ap.add_argument("--settle", type=float, default=0.5, help="s after miner.start")
    ap.add_argument("--target", default=HARD_TARGET, help="PoW target of the ingest chain")
    ap.add_argument("--skip-full-pool", action="store_true", help="leave out phase 5")
    ap.add_argument("--fp-senders", type=int, default=5000, help="phase 5: senders per tx set")
    ap.add_argument("--fp-nonces", type=int, default=2, help="phase 5: txs per sender")
    ap.add_argument("--fp-latency-calls", type=int, default=1000)
    args = parse_args(ap, argv)
    if args.nonces > 256:
        ap.error("--nonces above the node's max_per_sender (256)")
    bench = BenchRun(args, workdir="powernode-bench-")
    code = bench.execute(lambda: run(args, bench))
    return bench.finish(
        code, print_table, targets=targets, problems=bench.results.get("problems", [])
    )


if __name__ == "__main__":
    sys.exit(main())
