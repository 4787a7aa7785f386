"""Row: mempool admission against the number of pending txs.

A ledger's mempool is filled with ``pending`` transfers (``per_sender``
each, 100 by default, nonce-major as wallets' traffic arrives), untimed; then ``probe`` more,
each from a sender new to the pool, are admitted one by one through
``Ledger.submit_tx`` (the RPC's and gossip's path: decode done, signature
check through the cache, state and pool checks, insert) and timed. A block
template over the full pool (``pending + probe`` txs) is timed too, per tx
it takes (at most a block's worth: ``max_block_txs``). Each timed template
is built for another miner: the ledger keeps a template for its tip and
miner and only extends it, so a second call for the same miner would time a
refresh, not a template. The template's selection starts from one entry
per sender in the pool, so ``per_sender`` 1 shows what many senders cost it.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

from benchkit.guard import median, progress
from benchkit.node.txs import key_for
from benchkit.scale.common import FEE, close_ledger, funded_genesis, open_ledger
from powernode.client import build_transfer
from powernode.core.crypto import sha256
from powernode.state.genesis import parse_genesis

CHAIN_ID = "bench-scale-mempool"
PER_SENDER = 100


def one_size(
    workdir: Path, pending: int, probe: int, per_sender: int = PER_SENDER
) -> dict[str, Any]:
    senders = -(-pending // per_sender)
    keys = [key_for("scale-pool", i) for i in range(senders + probe)]
    now = int(time.time())
    doc = funded_genesis(CHAIN_ID, [k.address for k in keys], timestamp=now - 600)
    params = parse_genesis(doc)
    sink = sha256(b"bench-scale-pool-sink")[:20]
    progress(f"mempool {pending:,}: signing {pending + probe:,} transfers")
    fill = [build_transfer(keys[s], chain_id=CHAIN_ID, nonce=n, to=sink, amount=1, fee=FEE)
            for n in range(per_sender) for s in range(senders)][:pending]  # fmt: skip
    probes = [build_transfer(k, chain_id=CHAIN_ID, nonce=0, to=sink, amount=1, fee=FEE)
              for k in keys[senders:]]  # fmt: skip
    ledger = open_ledger(workdir / f"pool-{pending}.db", params, mempool_bytes=1 << 30)
    try:
        for tx in fill:
            ledger.submit_tx(tx, now=now)
        if len(ledger.mempool) != pending:
            raise RuntimeError(f"mempool holds {len(ledger.mempool)}, expected {pending}")
        gc.collect()
        t0 = time.perf_counter()
        for tx in probes:
            ledger.submit_tx(tx, now=now)
        admit = time.perf_counter() - t0
        tmpl_ms: list[float] = []
        tmpl_txs = 0
        for i in range(3):
            miner = sha256(b"bench-scale-pool-miner" + bytes([i]))[:20]
            t1 = time.perf_counter()
            tmpl_txs = len(ledger.template(miner, now=now + 1).txs)
            tmpl_ms.append((time.perf_counter() - t1) * 1000)
    finally:
        close_ledger(ledger)
    out = {
        "pending": pending,
        "probe": probe,
        "admit_us_per_tx": admit * 1e6 / probe,
        "template_ms": median(tmpl_ms),
        "template_txs": tmpl_txs,
        "template_us_per_tx": median(tmpl_ms) * 1000 / max(tmpl_txs, 1),
    }
    progress(f"mempool {pending:,}: admission {out['admit_us_per_tx']:.0f} us/tx, "
             f"template {out['template_ms']:.0f} ms for {tmpl_txs:,} txs")  # fmt: skip
    (workdir / f"pool-{pending}.db").unlink(missing_ok=True)
    return out


def run(workdir: Path, sizes: list[int], probe: int, per_sender: int) -> list[dict[str, Any]]:
    workdir.mkdir(parents=True, exist_ok=True)
    return [one_size(workdir, n, probe, per_sender) for n in sizes]
