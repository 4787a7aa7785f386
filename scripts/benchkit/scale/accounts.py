"""Row: block connect and RPC p99 against the number of funded accounts.

The accounts are genesis allocations (the state a chain's first block sees);
the block is the same size at every account count: ``block_txs`` transfers
from 200 senders to recipients spread over all accounts. Connect is timed
warm (the block's txs were admitted to the mempool first, so their
signatures are in the cache), as on a node that saw the txs gossiped: the
figure is the state's, not Ed25519's. Then a node process starts on the
resulting chain.db (start-up time, RSS) and answers ``account.get`` (over
200 different funded addresses) and ``node.info`` one after another on one
keep-alive connection, then the listings of one participant: ``cert.list``,
``cert.cfe``, ``market.orders`` and ``market.trades`` (p50 over ``calls / 10``
calls), and the node process's CPU per call (from ``/proc``, 10 ms ticks over
the calls). The listings read only their own namespaces of the tip state, so
they should stay flat as the accounts grow.
"""

from __future__ import annotations

import gc
import shutil
import time
from pathlib import Path
from typing import Any

from benchkit.cpu import _process_cpu
from benchkit.guard import median, progress
from benchkit.node.latency import _latencies, _summary
from benchkit.node.txs import key_for
from benchkit.rpc import RawRpc, request_body
from benchkit.scale.common import (
    FEE,
    close_ledger,
    filler_addresses,
    funded_genesis,
    mine,
    node_datadir,
    open_ledger,
    rss_mib,
    start_timed,
)
from powernode.client import build_transfer
from powernode.core.block import Block
from powernode.devnet.process import ProcessNode
from powernode.node.runtime import tune_gc
from powernode.state.genesis import parse_genesis

CHAIN_ID = "bench-scale-accounts"
SENDERS = 200


def _latency_bodies(addresses: list[bytes]) -> list[bytes]:
    return [request_body("account.get", {"address": a.hex()}, i) for i, a in enumerate(addresses)]


def _cycled_latencies(conn: RawRpc, bodies: list[bytes], calls: int) -> list[float]:
    out: list[float] = []
    for i in range(calls):
        out += _latencies(conn, bodies[i % len(bodies)], 1)
    return out


def one_size(workdir: Path, accounts: int, block_txs: int, reps: int, calls: int) -> dict[str, Any]:
    now = int(time.time())
    senders = [key_for("scale-acct", i) for i in range(SENDERS)]
    filler = filler_addresses(max(0, accounts - SENDERS))
    progress(f"accounts {accounts:,}: genesis with {accounts:,} allocations")
    doc = funded_genesis(
        CHAIN_ID,
        [k.address for k in senders] + filler,
        timestamp=now - 600,
        max_block_txs=block_txs,
    )
    t0 = time.perf_counter()
    params = parse_genesis(doc)
    nonces = -(-block_txs // SENDERS)
    blocks: list[Block] = []
    a = open_ledger(workdir / "a.db", params)
    genesis_s = time.perf_counter() - t0
    try:
        for r in range(reps):
            for n in range(r * nonces, (r + 1) * nonces):
                for i, k in enumerate(senders):
                    to = (
                        filler[(n * SENDERS + i) * 7919 % len(filler)]
                        if filler
                        else senders[0].address
                    )
                    tx = build_transfer(k, chain_id=CHAIN_ID, nonce=n, to=to, amount=1000, fee=FEE)
                    a.submit_tx(tx, now=now)
            blocks.append(mine(a, now + r))
    finally:
        close_ledger(a)
    progress(f"accounts {accounts:,}: {reps} blocks of {len(blocks[0].txs):,} txs; connecting")
    tune_gc()
    b = open_ledger(workdir / "b.db", params)
    times: list[float] = []
    try:
        for r, block in enumerate(blocks):
            for tx in block.txs:
                b.submit_tx(tx, now=now + r)
            gc.collect()
            t0 = time.perf_counter()
            outcome, _ = b.submit_block(block, now=now + r, mono=time.monotonic())
            times.append((time.perf_counter() - t0) * 1000)
            if outcome != "connected":
                raise RuntimeError(f"accounts {accounts}: block {r + 1} {outcome}")
    finally:
        close_ledger(b)
    out: dict[str, Any] = {
        "accounts": accounts,
        "genesis_setup_s": genesis_s,
        "block_txs": len(blocks[0].txs),
        "connect_ms": times,
        "connect_ms_median": median(times),
    }
    progress(f"accounts {accounts:,}: connect median {out['connect_ms_median']:.1f} ms")
    datadir = node_datadir(workdir / "node", doc, workdir / "b.db")
    with ProcessNode(datadir, name=f"accounts-{accounts}") as node:
        out["start_s"] = start_timed(node, timeout=900)
        out["rss_mib"] = rss_mib(node.pid)
        conn = RawRpc(node.endpoint, timeout=120.0)
        try:
            acct = _latency_bodies(
                (filler or [senders[0].address])[:: max(1, len(filler) // 200)][:200]
            )
            info = [request_body("node.info", {})]
            _cycled_latencies(conn, acct, 100)  # warm up
            _cycled_latencies(conn, info, 100)
            out["account_get"] = _summary(_cycled_latencies(conn, acct, calls))
            out["node_info"] = _summary(_cycled_latencies(conn, info, calls))
            # Listings: fewer calls, as they cost more than a lookup.
            addr = senders[0].address.hex()
            listings = (
                ("cert_list", "cert.list", {"owner": addr}),
                ("cert_cfe", "cert.cfe", {"participant": addr, "start": 0, "end": now}),
                ("market_orders", "market.orders", {"participant": addr}),
                ("market_trades", "market.trades", {"participant": addr}),
            )
            for name, method, call_params in listings:
                body = [request_body(method, call_params)]
                _cycled_latencies(conn, body, 5)
                n = max(20, calls // 10)
                cpu0 = _process_cpu(node.pid)
                out[name] = _summary(_cycled_latencies(conn, body, n))
                # The node's own CPU per call: what the listing costs it,
                # less swayed than latency by other processes on the cores.
                out[name]["cpu_ms"] = (_process_cpu(node.pid) - cpu0) * 1000 / n
        finally:
            conn.close()
    progress(
        f"accounts {accounts:,}: node start {out['start_s']:.1f} s, RSS {out['rss_mib']:.0f} MiB, "
        f"account.get p99 {out['account_get']['p99_ms']:.2f} ms, "
        f"node.info p99 {out['node_info']['p99_ms']:.2f} ms, "
        + ", ".join(f"{m} p50 {out[k]['p50_ms']:.2f} ms" for k, m, _ in listings)
    )
    shutil.rmtree(workdir, ignore_errors=True)
    return out


def run(
    workdir: Path, sizes: list[int], block_txs: int, reps: int, calls: int
) -> list[dict[str, Any]]:
    return [one_size(workdir / f"accounts-{n}", n, block_txs, reps, calls) for n in sizes]
