"""Node benchmark: signature baseline, tx ingest over RPC, block connect, RPC latency.

Usage::

    python scripts/bench_node.py            # progress on stderr, table on stdout
    python scripts/bench_node.py --json     # ... and the figures as JSON after the table
    python scripts/bench_node.py --check    # exit 1 if a target is missed

What it measures (in this order; the table is printed in the numbered order):

1. Baseline: raw Ed25519 verifies per second over 140-byte messages with
   ``cryptography`` directly, on 1 thread and on 2 threads (best of 3 runs).
   The 2-thread figure is *the baseline*. For diagnosis it also times the
   node's own per-tx path (``Transaction.verify_signature``) the same way.
3. Block connect, in process: a 5,000-tx block connected into a fresh
   ledger with an empty signature cache (cold) and into one whose mempool
   already admitted the txs with ``submit_tx`` (warm), both with the node's
   parallel ``Verifier(2)``. Median over repetitions.
2. Ingest: a real node process (``powernode init --genesis`` + ``powernode
   run``, mining off) and 20,000 pre-signed transfers (200 senders x 100
   nonces) submitted with JSON-RPC ``tx.submit`` batches. A short sweep over
   batch size and client connections runs first on a throwaway node; the
   fastest setting is then used on a fresh node for the full 20,000.
   Every tx must be accepted and ``mempool.info`` must say 20,000.
4. RPC latency: p50/p99 of sequential ``node.info`` and ``account.get`` calls
   over one keep-alive connection on that same node (so its mempool holds the
   20,000 txs), with the miner idle and then running on a hard target.

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
import contextlib
import gc
import itertools
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import cryptography
from benchlib import (
    CpuMonitor,
    NodeProcess,
    RawRpc,
    install_budget,
    median,
    percentile,
    progress,
    request_body,
    run_guarded,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from powernode.chain.ledger import Ledger
from powernode.chain.store import BlockStore
from powernode.client import Endpoint, RpcClient, build_transfer
from powernode.core import crypto as pn_crypto
from powernode.core.block import Block, decode_block, make_block
from powernode.core.crypto import KeyPair, sha256
from powernode.core.params import ChainParams, parse_params
from powernode.core.pow import pow_hash
from powernode.core.tx import Transaction
from powernode.node.runtime import freeze_loaded_objects, tune_gc
from powernode.node.verify import Verifier

COIN = 1_000_000
INGEST_CHAIN = "powernode-bench"
BLOCK_CHAIN = "powernode-bench-block"
# 28 leading zero bits: at ~20k PoW hashes/s a block takes hours, so the miner
# in the latency phase hashes without ever connecting a block.
HARD_TARGET = "0000000f" + "ff" * 28
DEV_TARGET = "0fff" + "ff" * 30
FEE = 1000

TARGET_INGEST_RATIO = 0.6
TARGET_WARM_SPEEDUP = 5.0
TARGET_P99_RATIO = 2.0
BUSY_CORES = 0.25  # other processes' load above which a phase's figures are flagged

T = TypeVar("T")

SWEEP = ((200, 1), (500, 1), (1000, 1), (200, 2), (500, 2), (1000, 2))


# --- timed phases -------------------------------------------------------------


class Phases:
    """Records other processes' CPU load while each timed phase runs."""

    def __init__(self, monitor: CpuMonitor) -> None:
        self.monitor = monitor

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.monitor.begin()
        try:
            yield
        finally:
            load = self.monitor.end(name)
            if load["other_cores"] > BUSY_CORES:
                progress(
                    f"WARNING: other processes used {load['other_cores']:.2f} cores "
                    f"during {name}; its figures are unreliable"
                )


# --- keys and txs ----------------------------------------------------------------


def key_for(tag: str, i: int) -> KeyPair:
    """A fixed key per (tag, index), so runs are reproducible."""
    return KeyPair.from_seed(sha256(f"bench-{tag}-{i}".encode()))


def sign_grid(keys: Sequence[KeyPair], nonces: int, chain_id: str) -> list[list[Transaction]]:
    """``grid[sender][nonce]``: one transfer per sender and nonce."""
    recipients = [sha256(f"bench-rcpt-{i}".encode())[:20] for i in range(1000)]
    grid: list[list[Transaction]] = []
    for i, k in enumerate(keys):
        row = [
            build_transfer(
                k,
                chain_id=chain_id,
                nonce=n,
                to=recipients[(i * nonces + n) % len(recipients)],
                amount=1000 + n,
                fee=FEE,
            )
            for n in range(nonces)
        ]
        grid.append(row)
    return grid


def nonce_major(grid: list[list[Transaction]], senders: Sequence[int]) -> list[Transaction]:
    """Every sender's nonce 0, then every sender's nonce 1, ...: each batch then
    carries many senders, as traffic from many wallets would."""
    nonces = len(grid[0])
    return [grid[s][n] for n in range(nonces) for s in senders]


def genesis_doc(
    chain_id: str, keys: Sequence[KeyPair], *, target: str, dev: bool, timestamp: int
) -> dict[str, Any]:
    return {
        "_comment": "written by scripts/bench_node.py",
        "chain_id": chain_id,
        "timestamp": timestamp,
        "block_time": 10,
        "initial_target": target,
        "pow_limit": target,
        "dev": dev,
        "allocations": {k.address.hex(): 1_000 * COIN for k in keys},
    }


# --- 1. baseline -------------------------------------------------------------------


def _best_rates(n: int, runs: int, fns: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Items per second of each function, best of ``runs``; the runs are
    interleaved so a slow spell of the machine hits every variant alike."""
    best = dict.fromkeys(fns, math.inf)
    for _ in range(runs):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: n / t for name, t in best.items()}


def _split(items: Sequence[T], parts: int) -> list[Sequence[T]]:
    size = -(-len(items) // parts)
    return [items[i : i + size] for i in range(0, len(items), size)]


def bench_baseline(
    n: int, runs: int, msg_bytes: int, sample_txs: Sequence[Transaction]
) -> dict[str, Any]:
    privs = [Ed25519PrivateKey.from_private_bytes(sha256(b"baseline-%d" % i)) for i in range(64)]
    pubs = [p.public_key() for p in privs]
    items: list[tuple[Ed25519PublicKey, bytes, bytes]] = []
    for j in range(n):
        msg = os.urandom(msg_bytes)
        items.append((pubs[j % len(pubs)], privs[j % len(privs)].sign(msg), msg))

    def raw(chunk: Sequence[tuple[Ed25519PublicKey, bytes, bytes]]) -> None:
        for pub, sig, msg in chunk:
            pub.verify(sig, msg)

    def node_path(chunk: Sequence[Transaction]) -> None:
        for tx in chunk:
            tx.verify_signature()

    txs = [sample_txs[i % len(sample_txs)] for i in range(n)]
    out: dict[str, Any] = {
        "signatures": n,
        "message_bytes": msg_bytes,
        "runs": runs,
        "node_path_tx_bytes": txs[0].size,
    }
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(raw, _split(items[:200], 2)))  # start and warm both threads
        halves = _split(items, 2)
        tx_halves = _split(txs, 2)
        rates = _best_rates(
            n,
            runs,
            {
                "verify_per_s_1t": lambda: raw(items),
                "verify_per_s_2t": lambda: list(pool.map(raw, halves)),
                "node_path_per_s_1t": lambda: node_path(txs),
                "node_path_per_s_2t": lambda: list(pool.map(node_path, tx_halves)),
            },
        )
    out.update(rates)
    progress(f"baseline: 1 thread  {out['verify_per_s_1t']:,.0f} verifies/s")
    progress(f"baseline: 2 threads {out['verify_per_s_2t']:,.0f} verifies/s (the baseline)")
    progress(
        "baseline: node path Transaction.verify_signature "
        f"{out['node_path_per_s_1t']:,.0f}/s (1 thread), {out['node_path_per_s_2t']:,.0f}/s (2)"
    )
    return out


# --- 3. block connect ------------------------------------------------------------


def _open_ledger(path: Path, params: ChainParams, verifier: Verifier) -> tuple[Ledger, BlockStore]:
    store = BlockStore(path)
    store.open()
    ledger = Ledger(params=params, store=store, verify_batch=verifier.verify_blocking)
    ledger.load()
    freeze_loaded_objects()
    return ledger, store


def _solve(block: Block) -> Block:
    commitment = block.header.pow_commitment()
    target = block.header.target_int
    for n in range(10_000_000):
        if pow_hash(commitment, n) <= target:
            return make_block(block.header.with_nonce(n), block.txs)
    raise RuntimeError("no nonce found for the dev target")


def bench_block_connect(workdir: Path, senders: int, nonces: int, reps: int) -> dict[str, Any]:
    keys = [key_for("block", i) for i in range(senders)]
    now = int(time.time())
    params = parse_params(
        genesis_doc(BLOCK_CHAIN, keys, target=DEV_TARGET, dev=True, timestamp=now - 600)
    )
    progress(f"block connect: signing {senders * nonces:,} transfers")
    txs = nonce_major(sign_grid(keys, nonces, BLOCK_CHAIN), range(senders))
    workdir.mkdir(parents=True, exist_ok=True)
    # The node process runs with these GC settings (node/runtime.py); measure
    # its block connect under the same ones.
    tune_gc()
    verifier = Verifier(2)
    verifier.start()
    cold: list[float] = []
    warm: list[float] = []
    try:
        a, a_store = _open_ledger(workdir / "a.db", params, verifier)
        try:
            for tx in txs:
                a.submit_tx(tx, now=now)
            tmpl = a.template(key_for("miner", 0).address, now=now)
        finally:
            a_store.close()
        if len(tmpl.txs) != len(txs):
            raise RuntimeError(f"template holds {len(tmpl.txs)} txs, expected {len(txs)}")
        # Decode from bytes, as a block from a peer would arrive.
        block = decode_block(_solve(tmpl).raw)
        progress(
            f"block connect: block of {len(block.txs):,} txs, {len(block.raw):,} bytes; "
            f"{reps} repetitions"
        )
        for r in range(reps):
            b, b_store = _open_ledger(workdir / f"cold{r}.db", params, verifier)
            try:
                pn_crypto._public_key.cache_clear()  # cold: no parsed keys either
                gc.collect()
                t0 = time.perf_counter()
                outcome, _ = b.submit_block(block, now=now, mono=time.monotonic())
                dt = (time.perf_counter() - t0) * 1000
                if outcome != "connected" or b.sigcache.misses != len(block.txs):
                    raise RuntimeError(f"cold connect: outcome {outcome}, {b.sigcache.misses=}")
            finally:
                b_store.close()
            cold.append(dt)
            c, c_store = _open_ledger(workdir / f"warm{r}.db", params, verifier)
            try:
                for tx in txs:
                    c.submit_tx(tx, now=now)
                hits = c.sigcache.hits
                gc.collect()
                t0 = time.perf_counter()
                outcome, _ = c.submit_block(block, now=now, mono=time.monotonic())
                dt = (time.perf_counter() - t0) * 1000
                if outcome != "connected" or c.sigcache.hits - hits != len(block.txs):
                    raise RuntimeError(f"warm connect: outcome {outcome}, cache hits wrong")
                if len(c.mempool):
                    raise RuntimeError("warm connect left txs in the mempool")
            finally:
                c_store.close()
            warm.append(dt)
            progress(f"block connect: rep {r + 1}: cold {cold[-1]:.1f} ms, warm {warm[-1]:.1f} ms")
    finally:
        verifier.stop()
    cold_med, warm_med = median(cold), median(warm)
    return {
        "txs": len(block.txs),
        "block_bytes": len(block.raw),
        "reps": reps,
        "cold_ms": cold,
        "warm_ms": warm,
        "cold_ms_median": cold_med,
        "warm_ms_median": warm_med,
        "cold_ms_min": min(cold),
        "warm_ms_min": min(warm),
        "speedup": cold_med / warm_med,
    }


# --- 2. ingest -------------------------------------------------------------------


@dataclass
class IngestRun:
    batch: int
    connections: int
    txs: int
    seconds: float
    accepted: int
    errors: Counter[str]

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds > 0 else 0.0


def _batch_bodies(txs: Sequence[Transaction], batch: int) -> list[tuple[bytes, list[str]]]:
    out = []
    for start in range(0, len(txs), batch):
        chunk = txs[start : start + batch]
        doc = [
            {"jsonrpc": "2.0", "id": j, "method": "tx.submit", "params": {"raw": tx.raw.hex()}}
            for j, tx in enumerate(chunk)
        ]
        out.append((json.dumps(doc).encode(), [tx.txid.hex() for tx in chunk]))
    return out


def submit_all(ep: Endpoint, txs: Sequence[Transaction], batch: int, connections: int) -> IngestRun:
    """POST every batch, ``connections`` at a time, each connection taking the
    next unsent batch. Bodies are built before and answers parsed after the
    timed part, which runs from the first request to the last response."""
    bodies = _batch_bodies(txs, batch)
    answers: list[bytes | None] = [None] * len(bodies)
    failures: list[str] = []
    ticket = itertools.count()
    conns = [RawRpc(ep, timeout=120.0) for _ in range(connections)]
    for c in conns:
        c.call("node.info")  # connect before the clock starts
    go = threading.Event()
    ends = [0.0] * connections

    def worker(w: int) -> None:
        c = conns[w]
        go.wait()
        try:
            while True:
                i = next(ticket)
                if i >= len(bodies):
                    break
                answers[i] = c.post(bodies[i][0])
        except Exception as exc:
            failures.append(repr(exc))
        finally:
            ends[w] = time.perf_counter()

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(connections)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    go.set()
    for t in threads:
        t.join()
    seconds = max(ends) - t0
    for c in conns:
        c.close()
    errors: Counter[str] = Counter(failures)
    accepted = 0
    for (_, ids), raw in zip(bodies, answers, strict=True):
        if raw is None:
            errors["no_answer"] += len(ids)
            continue
        by_id = {r.get("id"): r for r in json.loads(raw)}
        for j, txid in enumerate(ids):
            r = by_id.get(j)
            if r is None:
                errors["missing_response"] += 1
            elif "error" in r:
                e = r["error"]
                errors[str((e.get("data") or {}).get("code", e.get("message")))] += 1
            elif r.get("result") != txid:
                errors["wrong_txid"] += 1
            else:
                accepted += 1
    return IngestRun(batch, connections, len(txs), seconds, accepted, errors)


def ingest_sweep(
    workdir: Path, genesis: Path, grid: list[list[Transaction]], phase: Phases
) -> tuple[list[IngestRun], tuple[int, int]]:
    """Each setting gets its own senders on one throwaway node; the fastest wins."""
    per = len(grid) // len(SWEEP)
    runs: list[IngestRun] = []
    with NodeProcess(workdir / "sweep", genesis, name="sweep node") as node:
        ep = node.start()
        phase.monitor.pids.add(node.pid)
        progress(
            f"ingest sweep: node up on port {node.port}; {per * len(grid[0]):,} txs per setting"
        )
        for k, (batch, connections) in enumerate(SWEEP):
            txs = nonce_major(grid, range(k * per, (k + 1) * per))
            with phase(f"sweep {batch}x{connections}"):
                run = submit_all(ep, txs, batch, connections)
            runs.append(run)
            progress(
                f"ingest sweep: batch {batch:>4} x {connections} conn: {run.rate:,.0f} tx/s"
                + (f"  ERRORS {dict(run.errors)}" if run.errors else "")
            )
    ok = [r for r in runs if not r.errors]
    if not ok:
        raise RuntimeError("every sweep setting had errors")
    best = max(ok, key=lambda r: r.rate)
    return runs, (best.batch, best.connections)


# --- 4. RPC latency ----------------------------------------------------------------


def _latencies(conn: RawRpc, body: bytes, calls: int) -> list[float]:
    out: list[float] = []
    bad = 0
    for _ in range(calls):
        t0 = time.perf_counter()
        data = conn.post(body)
        out.append((time.perf_counter() - t0) * 1000)
        if b'"result"' not in data:
            bad += 1
    if bad:
        raise RuntimeError(f"{bad} of {calls} latency calls returned an error")
    return out


def _summary(ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
        "mean_ms": sum(ms) / len(ms),
    }


def bench_latency(ep: Endpoint, address: str, calls: int, settle: float) -> dict[str, Any]:
    bodies = {
        "node.info": request_body("node.info", {}),
        "account.get": request_body("account.get", {"address": address}),
    }
    out: dict[str, Any] = {"calls": calls, "settle_s": settle, "methods": {}}
    conn = RawRpc(ep, timeout=30.0)
    ctl = RpcClient(ep, timeout=60.0)
    try:
        info = ctl.call("node.info")
        out["mempool_size"] = info["mempool_size"]
        height0 = info["height"]
        for body in bodies.values():
            _latencies(conn, body, 100)  # warm up
        for state in ("idle", "running"):
            if state == "running":
                ctl.call("miner.start")
                time.sleep(settle)
                if not ctl.call("node.info")["mining"]:
                    raise RuntimeError("miner.start did not start the miner")
            for name, body in bodies.items():
                s = _summary(_latencies(conn, body, calls))
                out["methods"].setdefault(name, {})[state] = s
                progress(
                    f"latency: {name:<11} miner {state:<7} p50 {s['p50_ms']:.2f} ms  "
                    f"p99 {s['p99_ms']:.2f} ms  max {s['max_ms']:.1f} ms"
                )
        t0 = time.perf_counter()
        ctl.call("miner.stop")
        out["miner_stop_ms"] = (time.perf_counter() - t0) * 1000
        out["blocks_found"] = ctl.call("node.info")["height"] - height0
    finally:
        conn.close()
        ctl.close()
    for m in out["methods"].values():
        m["p99_ratio"] = m["running"]["p99_ms"] / m["idle"]["p99_ms"]
    out["p99_ratio_worst"] = max(m["p99_ratio"] for m in out["methods"].values())
    return out


# --- the run -----------------------------------------------------------------------


def run(
    args: argparse.Namespace, workdir: Path, results: dict[str, Any], monitor: CpuMonitor
) -> None:
    phase = Phases(monitor)
    senders, nonces = args.senders, args.nonces
    keys = [key_for("sender", i) for i in range(senders)]
    progress(f"signing {senders * nonces:,} ingest transfers ({senders} senders x {nonces})")
    t0 = time.perf_counter()
    grid = sign_grid(keys, nonces, INGEST_CHAIN)
    all_txs = nonce_major(grid, range(senders))
    progress(f"signed in {time.perf_counter() - t0:.1f} s; tx size {all_txs[0].size} bytes")

    # 1. baseline
    with phase("baseline"):
        results["baseline"] = bench_baseline(args.sigs, 3, 140, all_txs)

    # 3. block connect (in process; no node running, so it has the CPU)
    with phase("block_connect"):
        results["block_connect"] = bench_block_connect(
            workdir / "block", args.block_senders, args.block_nonces, args.block_reps
        )

    # 2. ingest
    genesis = workdir / "genesis.json"
    genesis.write_text(
        json.dumps(
            genesis_doc(
                INGEST_CHAIN, keys, target=args.target, dev=False, timestamp=int(time.time())
            ),
            indent=1,
        )
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
    with NodeProcess(workdir / "node", genesis, name="node") as node:
        ep = node.start()
        monitor.pids.add(node.pid)
        progress(
            f"ingest: node up on port {node.port}; submitting {len(all_txs):,} txs, "
            f"batch {batch} x {connections} conn"
        )
        with phase("ingest"):
            r = submit_all(ep, all_txs, batch, connections)
        with RpcClient(ep) as c:
            pool = c.call("mempool.info")
        ingest.update(
            seconds=r.seconds,
            accepted=r.accepted,
            errors=dict(r.errors),
            tx_per_s=r.rate,
            mempool_size=pool["size"],
            ratio_to_baseline=r.rate / results["baseline"]["verify_per_s_2t"],
        )
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


# --- output ------------------------------------------------------------------------


def targets(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ing = results.get("ingest", {})
    if "ratio_to_baseline" in ing:
        v = ing["ratio_to_baseline"]
        out["ingest_ratio"] = {
            "value": v,
            "target": f">= {TARGET_INGEST_RATIO}",
            "met": v >= TARGET_INGEST_RATIO,
        }
    bc = results.get("block_connect", {})
    if "speedup" in bc:
        v = bc["speedup"]
        out["warm_speedup"] = {
            "value": v,
            "target": f">= {TARGET_WARM_SPEEDUP}",
            "met": v >= TARGET_WARM_SPEEDUP,
        }
    lat = results.get("rpc_latency", {})
    if "p99_ratio_worst" in lat:
        v = lat["p99_ratio_worst"]
        out["p99_ratio"] = {
            "value": v,
            "target": f"<= {TARGET_P99_RATIO}",
            "met": v <= TARGET_P99_RATIO,
        }
    return out


def print_table(results: dict[str, Any]) -> None:
    rows: list[tuple[str, str, str, str]] = []
    t = results.get("targets", {})

    def met(key: str) -> tuple[str, str]:
        if key not in t:
            return "", ""
        return t[key]["target"], "yes" if t[key]["met"] else "NO"

    b = results.get("baseline")
    if b:
        rows.append(("1 Ed25519 verify, 1 thread", f"{b['verify_per_s_1t']:,.0f} /s", "", ""))
        rows.append(
            ("1 Ed25519 verify, 2 threads (baseline)", f"{b['verify_per_s_2t']:,.0f} /s", "", "")
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
        rows.append(
            ("2 ingest / baseline", f"{ing['ratio_to_baseline']:.2f}", *met("ingest_ratio"))
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

    env = results["env"]
    print()
    print(
        f"powernode node benchmark: {env['cpus']} CPUs, Python {env['python']}, "
        f"cryptography {env['cryptography']}"
    )
    w = max([len(r[0]) for r in rows] + [20])
    v = max([len(r[1]) for r in rows] + [10])
    print(f"{'figure':<{w}}  {'value':>{v}}  {'target':<8}  met")
    print("-" * (w + v + 17))
    for name, value, target, ok in rows:
        print(f"{name:<{w}}  {value:>{v}}  {target:<8}  {ok}".rstrip())
    if ing.get("mempool_size") is not None:
        print(f"(ingest: mempool.info size {ing['mempool_size']:,}; ", end="")
        print(f"latency measured with {lat['mempool_size']:,} txs pending)" if lat else ")")
    load = results.get("load", {})
    if load:
        busy = {k: v for k, v in load.items() if v["other_cores"] > BUSY_CORES}
        print(
            "other processes' CPU load per phase (cores): "
            + ", ".join(f"{k} {v['other_cores']:.2f}" for k, v in load.items())
        )
        if busy:
            print(
                f"WARNING: the machine was busy (> {BUSY_CORES} cores used by other processes) "
                f"during: {', '.join(busy)}; those figures are unreliable"
            )
    for problem in results.get("problems", []):
        print(f"PROBLEM: {problem}")
    if "error" in results:
        print(f"RUN FAILED: {results['error']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    ap.add_argument("--budget", type=float, default=175.0, help="hard limit in seconds")
    ap.add_argument("--senders", type=int, default=200)
    ap.add_argument("--nonces", type=int, default=100)
    ap.add_argument("--sigs", type=int, default=4000, help="signatures for the baseline")
    ap.add_argument("--block-senders", type=int, default=50)
    ap.add_argument("--block-nonces", type=int, default=100)
    ap.add_argument("--block-reps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=0, help="skip the sweep: this batch size")
    ap.add_argument("--connections", type=int, default=0, help="skip the sweep: this many")
    ap.add_argument("--latency-calls", type=int, default=2000)
    ap.add_argument("--settle", type=float, default=0.5, help="s after miner.start")
    ap.add_argument("--target", default=HARD_TARGET, help="PoW target of the ingest chain")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=20.0,
        help="wait up to this many s for other processes to go quiet (0: don't)",
    )
    args = ap.parse_args(argv)
    if args.nonces > 256:
        ap.error("--nonces above the node's max_per_sender (256)")

    results: dict[str, Any] = {
        "env": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "cryptography": cryptography.__version__,
            "platform": platform.platform(),
        }
    }
    workdir = Path(tempfile.mkdtemp(prefix="powernode-bench-"))
    progress(f"work dir {workdir}; budget {args.budget:.0f} s")
    started = time.monotonic()
    install_budget(args.budget)
    monitor = CpuMonitor()

    def body() -> None:
        if args.wait_quiet > 0:
            load = monitor.wait_quiet(args.wait_quiet, BUSY_CORES)
            results["env"]["other_cores_at_start"] = load
            progress(f"other processes use {load:.2f} cores")
        run(args, workdir, results, monitor)

    try:
        code = run_guarded(body, results)
    finally:
        if args.keep:
            progress(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["seconds_total"] = time.monotonic() - started
    results["load"] = monitor.phases
    results["targets"] = targets(results)
    progress(f"done in {results['seconds_total']:.1f} s")
    print_table(results)
    if args.json:
        print(json.dumps(results, indent=2))
    if code == 0 and results.get("problems"):
        code = 2
    if code == 0 and args.check and not all(t["met"] for t in results["targets"].values()):
        code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
