"""bench_node's phase 3, block connect in process: a block connected into a
fresh ledger with a cold signature cache and into one whose mempool already
admitted its txs (warm)."""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

from benchkit.guard import median, progress
from benchkit.node.txs import bench_genesis, key_for, nonce_major, sign_grid
from powernode.chain.ledger import Ledger
from powernode.chain.store import BlockStore
from powernode.core.block import decode_block, make_block
from powernode.core.params import ChainParams
from powernode.devnet.devchain import DEV_TARGET, solve
from powernode.node.runtime import freeze_loaded_objects, tune_gc
from powernode.node.verify import Verifier
from powernode.state.genesis import parse_genesis

BLOCK_CHAIN = "powernode-bench-block"


# --- 3. block connect ------------------------------------------------------------


def _open_ledger(path: Path, params: ChainParams, verifier: Verifier) -> tuple[Ledger, BlockStore]:
    store = BlockStore(path)
    store.open()
    ledger = Ledger(params=params, store=store, verify_batch=verifier.verify_blocking)
    ledger.load()
    freeze_loaded_objects()
    return ledger, store


def bench_block_connect(workdir: Path, senders: int, nonces: int, reps: int) -> dict[str, Any]:
    keys = [key_for("block", i) for i in range(senders)]
    now = int(time.time())
    params = parse_genesis(
        bench_genesis(BLOCK_CHAIN, keys, target=DEV_TARGET, dev=True, timestamp=now - 600)
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
        block = decode_block(make_block(solve(tmpl.header), tmpl.txs).raw)
        progress(
            f"block connect: block of {len(block.txs):,} txs, {len(block.raw):,} bytes; "
            f"{reps} repetitions"
        )
        for r in range(reps):
            b, b_store = _open_ledger(workdir / f"cold{r}.db", params, verifier)
            try:
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
