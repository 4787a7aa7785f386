"""The baseline of every benchmark (bench_node's phase 1): raw Ed25519
verifies per second with ``cryptography`` directly, and the node's own per-tx
path, on 1 and 2 threads. bench_market.py measures it beside its figures over
its own txs (``bench_baseline``), bench_network.py over sample transfers
(``transfer_baseline``)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from benchkit.guard import progress
from benchkit.node.txs import FEE
from powernode.client import build_transfer
from powernode.core.crypto import KeyPair, sha256
from powernode.core.tx import Transaction

T = TypeVar("T")


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


def transfer_baseline(sigs: int) -> dict[str, Any]:
    """``bench_baseline`` with 200 transfers from one key as the node-path sample."""
    key = KeyPair.from_seed(sha256(b"net-baseline"))
    sample = [
        build_transfer(key, chain_id="powernode-bench", nonce=n, to=bytes(20), amount=1, fee=FEE)
        for n in range(200)
    ]
    return bench_baseline(sigs, 3, 140, sample)
