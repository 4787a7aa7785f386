"""loadgen's pre-signing: the run's configuration, and every transfer of the
run signed and encoded before the first one is sent.

Every transfer of the run is signed (on ``--sign-procs`` processes) and
encoded into JSON-RPC batch bodies before the first one is sent, so signing
never limits the rate. ``--rate R --duration S`` signs R x S txs,
``--count N`` signs N, ``--max --duration S`` signs ``--presign`` txs
(default 3,000 x S) and stops early if they run out. Senders: ``--senders K``
fresh keys, or with ``--demo-keys`` the demo keys themselves (few senders, so
at most 256 pending txs each: the node's ``max_per_sender``).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from benchkit.guard import progress
from powernode.client import build_transfer
from powernode.core.crypto import KeyPair

AMOUNT = 1  # micro-units per transfer
FEE = 1000
RECIPIENTS = 1000

Log = Callable[[str], None]


# --- configuration and results ----------------------------------------------------


@dataclass
class LoadConfig:
    dir: Path
    rate: float | None = None  # tx/s over all nodes; None means as fast as possible
    duration: float | None = None
    count: int | None = None
    senders: int = 200
    batch: int = 100
    conns: int = 2  # client connections per node, each with its own senders
    demo_keys: bool = False
    presign: int = 0  # --max --duration: txs to sign (0: 3,000 x duration)
    sign_procs: int = 0  # 0: cpu count
    poll: float = 0.1
    settle: float = 30.0
    confirm_timeout: float = 120.0
    fund_timeout: float = 120.0
    nodes: list[str] | None = None  # node names to send to (default: every running node)

    def planned(self) -> int:
        if self.count is not None:
            return self.count
        assert self.duration is not None
        if self.rate is not None:
            return max(1, round(self.rate * self.duration))
        return self.presign or round(3000 * self.duration)


@dataclass
class Batch:
    body: bytes
    txids: list[str]


# --- signing -----------------------------------------------------------------------


def _sign_range(
    seed: bytes, chain_id: str, nonce0: int, count: int, recipients: list[bytes], offset: int
) -> list[tuple[str, str]]:
    """(txid hex, raw hex) of ``count`` transfers from one key; runs in a
    worker process."""
    key = KeyPair.from_seed(seed)
    out = []
    for j in range(count):
        tx = build_transfer(
            key,
            chain_id=chain_id,
            nonce=nonce0 + j,
            to=recipients[(offset + j) % len(recipients)],
            amount=AMOUNT,
            fee=FEE,
        )
        out.append((tx.txid.hex(), tx.raw.hex()))
    return out


def presign(
    keys: Sequence[KeyPair],
    nonce0: Sequence[int],
    per_sender: Sequence[int],
    chain_id: str,
    procs: int,
) -> list[list[tuple[str, str]]]:
    """``out[s]``: sender s's txs in nonce order, signed on ``procs`` processes."""
    recipients = [os.urandom(20) for _ in range(RECIPIENTS)]
    jobs: list[tuple[int, int, int]] = []  # sender, first nonce, count
    step = 500
    for s, n in enumerate(per_sender):
        for start in range(0, n, step):
            jobs.append((s, nonce0[s] + start, min(step, n - start)))
    out: list[list[tuple[str, str]]] = [[] for _ in keys]
    if procs <= 1 or sum(per_sender) < 2000:
        for s, first, n in jobs:
            out[s] += _sign_range(keys[s].seed(), chain_id, first, n, recipients, s * 7919)
        return out
    # spawn: the caller may have threads running, and fork with threads is unsafe.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(procs, mp_context=ctx) as pool:
        futs = [
            pool.submit(_sign_range, keys[s].seed(), chain_id, first, n, recipients, s * 7919)
            for s, first, n in jobs
        ]
        try:
            for (s, _, _), fut in zip(jobs, futs, strict=True):
                out[s] += fut.result()
        except BaseException:
            for f in futs:
                f.cancel()
            raise
    return out


def batch_body(items: Sequence[tuple[str, str]]) -> bytes:
    doc = [
        {"jsonrpc": "2.0", "id": j, "method": "tx.submit", "params": {"raw": raw}}
        for j, (_, raw) in enumerate(items)
    ]
    return json.dumps(doc, separators=(",", ":")).encode()


def make_batches(rows: list[list[tuple[str, str]]], size: int) -> list[Batch]:
    """The senders' txs nonce-major (every sender's next nonce, then the
    next), in ``tx.submit`` batches of ``size``."""
    order = [
        row[j]
        for j in range(max((len(r) for r in rows), default=0))
        for row in rows
        if j < len(row)
    ]
    return [
        Batch(batch_body(order[a : a + size]), [t for t, _ in order[a : a + size]])
        for a in range(0, len(order), size)
    ]


# --- preparing a run ---------------------------------------------------------------


@dataclass
class Prepared:
    """Sender keys and every tx of a run, signed (``signed[s]``: sender s's
    txs in nonce order, as (txid hex, raw hex))."""

    chain_id: str
    keys: list[KeyPair]
    signed: list[list[tuple[str, str]]]
    seconds: float


def prepare(
    cfg: LoadConfig,
    chain_id: str,
    log: Log = progress,
    *,
    keys: list[KeyPair] | None = None,
    nonce0: list[int] | None = None,
) -> Prepared:
    """Sign every tx of a run: from ``keys`` starting at ``nonce0``, or from
    ``cfg.senders`` fresh keys starting at nonce 0. Needs no running node, so
    a benchmark can sign before it starts its testnet."""
    total = cfg.planned()
    if keys is None:
        keys = [KeyPair.generate() for _ in range(cfg.senders)]
        nonce0 = [0] * len(keys)
    assert nonce0 is not None and len(nonce0) == len(keys)
    k = len(keys)
    per_sender = [total // k + (1 if s < total % k else 0) for s in range(k)]
    procs = cfg.sign_procs or os.cpu_count() or 1
    log(f"pre-signing {total:,} transfers from {k} senders on {procs} processes")
    t0 = time.monotonic()
    signed = presign(keys, nonce0, per_sender, chain_id, procs)
    seconds = time.monotonic() - t0
    log(f"signed in {seconds:.1f} s ({total / max(seconds, 1e-6):,.0f} tx/s)")
    return Prepared(chain_id, keys, signed, seconds)
