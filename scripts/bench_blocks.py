"""What a node's event loop spends per tx on blocks, in process: a peer's
block (decode, checks, connect, mempool removal), the template rebuilt on
the new tip, and a block of our own template connected.

Usage::

    python scripts/bench_blocks.py                      # 400 senders x 20 nonces
    python scripts/bench_blocks.py --senders 400 --nonces 10 --repeat 5

Setup (not timed): ``--senders`` x ``--nonces`` signed transfers on a dev
genesis, admitted into the mempool of a fresh ledger ("us") with
``submit_tx``, which then builds its template on the tip as a mining node
would have. The peer's block holds the first half of the nonces of every
sender (every sender's account changes, as under the load test), built on
another ledger from the same txs and decoded from its bytes.

Timed, thread CPU time (``time.thread_time``), best of ``--repeat`` runs,
each on fresh ledgers, per tx of the peer's block unless said:

- baseline: SHA-256 of each tx's bytes, once (what any block receive costs
  at the least: a tx id per tx);
- decode: ``decode_block`` with the pool's decoded txs reused (as gossip does);
- check_block: size, PoW, duplicate txs, tx root;
- apply_block: executing the block on the parent state (alone);
- submit_block: the whole connect: check_block, signature cache, execution,
  store commit, mempool removal;
- template after the tip: the miner's template on the new tip, over the
  pending txs left (per pending tx);
- own block: connecting a block mined from our own template (its execution
  is sealed from the template, per tx of that block).

The figures are per tx and single-threaded, so a busy machine slows them
less than wall-clock figures; still, run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchkit.node.txs import bench_genesis, key_for, nonce_major, sign_grid

from powernode.chain.ledger import Ledger
from powernode.chain.store import BlockStore
from powernode.core.block import (
    BLOCK_VERSION,
    Block,
    check_block,
    decode_block,
    make_block,
    make_header,
)
from powernode.core.crypto import sha256
from powernode.core.merkle import merkle_root
from powernode.core.params import ChainParams
from powernode.core.pow import target_to_bytes
from powernode.core.tx import Transaction
from powernode.devnet.devchain import DEV_TARGET, solve
from powernode.node.runtime import tune_gc
from powernode.state.apply import apply_block, build_body
from powernode.state.genesis import parse_genesis

CHAIN = "powernode-bench-blocks"


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Setup:
    def __init__(self, workdir: Path, senders: int, nonces: int) -> None:
        keys = [key_for("blocks", i) for i in range(senders)]
        self.now = int(time.time())
        self.params: ChainParams = parse_genesis(
            bench_genesis(CHAIN, keys, target=DEV_TARGET, dev=True, timestamp=self.now - 600)
        )
        progress(f"signing {senders * nonces:,} transfers")
        grid = sign_grid(keys, nonces, CHAIN)
        self.txs = nonce_major(grid, range(senders))
        self.first_half = nonce_major([row[: nonces // 2] for row in grid], range(senders))
        self.workdir = workdir
        self.n = 0
        peer = self.ledger()
        self.peer_block = self._peer_block(peer)
        peer.chain.store.close()

    def ledger(self, *, pool: bool = True) -> Ledger:
        self.n += 1
        store = BlockStore(self.workdir / f"l{self.n}.db")
        store.open()
        ledger = Ledger(params=self.params, store=store)
        ledger.load()
        if pool:
            for tx in self.txs:
                ledger.submit_tx(tx, now=self.now)
        return ledger

    def _peer_block(self, peer: Ledger) -> Block:
        tip = peer.chain.tip
        ctx = peer.next_context(self.now, key_for("miner", 1).address)
        body = build_body(
            peer.chain.state,
            tip.header.state_root,
            ctx,
            self.first_half,
            max_bytes=self.params.max_block_bytes,
        )
        header = make_header(
            BLOCK_VERSION,
            tip.height + 1,
            tip.hash,
            ctx.timestamp,
            target_to_bytes(peer.chain.expected_target(tip)),
            0,
            merkle_root([tx.txid for tx in body.txs]),
            body.result.state_root,
            ctx.miner,
        )
        return decode_block(make_block(solve(header), body.txs).raw)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.thread_time()
    out = fn()
    return time.thread_time() - t0, out


def one_run(s: Setup) -> dict[str, float]:
    raw = s.peer_block.raw
    block_txs = len(s.peer_block.txs)
    us = s.ledger()
    miner = key_for("miner", 0).address
    us.template(miner, now=s.now)  # the template a mining node holds on the old tip
    out: dict[str, float] = {}

    def known(txid: bytes) -> Transaction | None:
        e = us.mempool.get(txid)
        return None if e is None else e.tx

    secs, _ = timed(lambda: [sha256(tx.raw) for tx in s.peer_block.txs])
    out["baseline"] = secs / block_txs
    secs, block = timed(lambda: decode_block(raw, known=known, decode=us.decoder.decode))
    out["decode"] = secs / block_txs
    p = s.params
    secs, _ = timed(
        lambda: check_block(block, max_txs=p.max_block_txs, max_bytes=p.max_block_bytes)
    )
    out["check_block"] = secs / block_txs
    chain = us.chain
    secs, _ = timed(lambda: apply_block(chain.state, chain.tip.header.state_root, block, p))
    out["apply_block"] = secs / block_txs
    secs, (outcome, _) = timed(lambda: us.submit_block(block, now=s.now, mono=time.monotonic()))
    if outcome != "connected":
        raise RuntimeError(f"peer block: {outcome}")
    out["submit_block"] = secs / block_txs
    pending = len(us.mempool)
    secs, tmpl = timed(lambda: us.template(miner, now=s.now))
    if len(tmpl.txs) != pending:
        raise RuntimeError(f"template holds {len(tmpl.txs)} of {pending} pending txs")
    out["template"] = secs / pending
    us.chain.store.close()

    own = s.ledger()
    tmpl = own.template(miner, now=s.now)
    mined = make_block(solve(tmpl.header), tmpl.txs)
    secs, (outcome, _) = timed(lambda: own.submit_block(mined, now=s.now, mono=time.monotonic()))
    if outcome != "connected":
        raise RuntimeError(f"own block: {outcome}")
    out["own_block"] = secs / len(mined.txs)
    own.chain.store.close()
    return out


ROWS = (
    ("baseline", "baseline: SHA-256 of each tx's bytes"),
    ("decode", "peer block: decode (pool's txs reused)"),
    ("check_block", "peer block: check_block"),
    ("apply_block", "peer block: apply_block alone"),
    ("submit_block", "peer block: submit_block (whole connect)"),
    ("template", "template on the new tip, per pending tx"),
    ("own_block", "own block: submit_block (sealed)"),
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--senders", type=int, default=400)
    ap.add_argument("--nonces", type=int, default=20, help="per sender (even)")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    if a.nonces < 2 or a.senders < 1 or a.repeat < 1:
        ap.error("--senders and --repeat at least 1, --nonces at least 2")
    tune_gc()  # as the node runs (node/runtime.py)
    with tempfile.TemporaryDirectory(prefix="powernode-bench-blocks-") as tmp:
        s = Setup(Path(tmp), a.senders, a.nonces)
        runs = []
        for r in range(a.repeat):
            runs.append(one_run(s))
            progress(f"run {r + 1} of {a.repeat}")
    best = {k: min(run[k] for run in runs) for k in runs[0]}
    base = best["baseline"]
    print(
        f"blocks: {len(s.txs):,} pending txs from {a.senders} senders, peer block of "
        f"{len(s.peer_block.txs):,} txs; thread CPU, best of {a.repeat}"
    )
    print(f"{'what':<46} {'us per tx':>10} {'x baseline':>11}")
    for key, label in ROWS:
        print(f"{label:<46} {best[key] * 1e6:10.2f} {best[key] / base:11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
