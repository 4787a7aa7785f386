"""What an integrity check of ``chain.db`` costs at start, next to the start itself.

Usage::

    python scripts/bench_store_check.py                 # 10,000 blocks of 10 transfers
    python scripts/bench_store_check.py --blocks 2000 --txs 50

Builds a store in a temporary directory with a private ledger (blocks of
``--txs`` signed transfers each, on a dev genesis), closes it, then times on
that file, best of ``--repeat`` runs each:

- the baseline: what a node's start does with the store (open it, then
  ``Ledger.load``: every header and the whole state read into memory);
- ``PRAGMA quick_check`` (every page of every table and index read and
  checked, the indexes not compared with their tables);
- ``PRAGMA integrity_check`` (the same, and each index checked against its
  table).

The file is in the OS page cache for all three (it was just written), so the
figures are what a restart costs, not a cold boot. The node runs
``quick_check`` at every start unless ``check_db = false`` (the README,
"Storage faults"): these figures are why.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from powernode.chain.ledger import Ledger
from powernode.chain.store import BlockStore
from powernode.client import build_transfer
from powernode.core.block import make_block
from powernode.core.crypto import KeyPair
from powernode.core.params import ChainParams
from powernode.devnet.devchain import dev_genesis, solve
from powernode.state.genesis import parse_genesis

CHAIN = "bench-store-check"


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build(path: Path, blocks: int, txs_per_block: int) -> ChainParams:
    senders = [KeyPair.generate() for _ in range(max(1, txs_per_block))]
    doc = dev_genesis({s.address: 10**15 for s in senders}, chain_id=CHAIN, timestamp=1_700_000_000)
    params = parse_genesis(doc)
    store = BlockStore(path)
    store.open()
    ledger = Ledger(params=params, store=store)
    ledger.load()
    sink = KeyPair.generate().address
    now = params.timestamp
    started = time.monotonic()
    for height in range(1, blocks + 1):
        now += params.block_time
        for s in senders[:txs_per_block]:
            tx = build_transfer(s, chain_id=CHAIN, nonce=height - 1, to=sink, amount=1)
            ledger.submit_tx(tx, now=now)
        tmpl = ledger.template(sink, now=now)
        outcome, _ = ledger.submit_block(
            make_block(solve(tmpl.header), tmpl.txs), now=now, mono=time.monotonic()
        )
        assert outcome == "connected", outcome
        if height % 1000 == 0:
            progress(f"built {height} blocks ({time.monotonic() - started:.0f} s)")
    store.close()
    return params


def load_like_start(path: Path, params: ChainParams) -> None:
    store = BlockStore(path)
    store.open()
    try:
        Ledger(params=params, store=store).load()
    finally:
        store.close()


def pragma(path: Path, name: str) -> None:
    db = sqlite3.connect(path)
    try:
        (result,) = db.execute(f"PRAGMA {name}").fetchone()
        assert result == "ok", result
    finally:
        db.close()


def best_of(repeat: int, fn: Callable[[], None]) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=10_000)
    ap.add_argument("--txs", type=int, default=10, help="transfers per block")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chain.db"
        progress(f"building {a.blocks} blocks of {a.txs} transfers")
        params = build(path, a.blocks, a.txs)
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
        progress("timing")
        base = best_of(a.repeat, lambda: load_like_start(path, params))
        quick = best_of(a.repeat, lambda: pragma(path, "quick_check"))
        full = best_of(a.repeat, lambda: pragma(path, "integrity_check"))
    print(f"store: {a.blocks} blocks, {a.blocks * a.txs} txs, {size / 2**20:.1f} MiB")
    print(f"{'what':<32} {'s':>8} {'x start':>8}")
    print(f"{'start (open + Ledger.load)':<32} {base:8.3f} {1.0:8.2f}")
    print(f"{'PRAGMA quick_check':<32} {quick:8.3f} {quick / base:8.2f}")
    print(f"{'PRAGMA integrity_check':<32} {full:8.3f} {full / base:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
