"""Rows: node start-up time and RSS against the chain's length, a late
joiner's sync, and DB bytes per transfer.

One chain is built through the node's own ledger (mempool admission,
template, connect into SQLite), ``txs_per_block`` transfers a block, and
its chain.db copied (SQLite's backup) when it reaches each size asked for.
A node process then starts on each copy: seconds from spawn to its first
RPC answer, and its RSS then. The start-up includes ``check_db`` (SQLite's
quick_check, on by default), reading the block index and loading the state
into memory.

The late joiner: a node on the ``sync_blocks`` copy (P2P on) and a fresh
node with it as its only peer; blocks/s and tx/s from the joiner's first
RPC answer to the other's tip, and over each half of the chain (a rate
that falls in the second half grows with the chain). Also the joiner's CPU
per block over the sync, its main process and its signature workers apart:
on a busy machine the rates follow the load, the CPU per block much less.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from benchkit.cpu import child_pids
from benchkit.guard import progress
from benchkit.node.txs import key_for
from benchkit.scale.common import (
    FEE,
    close_ledger,
    funded_genesis,
    mine,
    node_datadir,
    open_ledger,
    rss_mib,
    start_timed,
)
from powernode.client import build_transfer
from powernode.core.crypto import sha256
from powernode.devnet.process import ProcessNode
from powernode.devnet.wait import wait_until
from powernode.state.genesis import parse_genesis

CHAIN_ID = "bench-scale-chain"
SENDERS = 1000


def build(workdir: Path, heights: list[int], txs_per_block: int) -> dict[str, Any]:
    """Build to max(heights), copying chain.db at each; returns the genesis
    document, the copies' paths and sizes."""
    top = max(heights)
    keys = [key_for("scale-chain", i) for i in range(SENDERS)]
    sink = [sha256(b"bench-scale-rcpt-%d" % i)[:20] for i in range(1000)]
    now = int(time.time())
    t_genesis = now - 2 * top - 3600
    doc = funded_genesis(CHAIN_ID, [k.address for k in keys], timestamp=t_genesis)
    params = parse_genesis(doc)
    ledger = open_ledger(workdir / "build.db", params)
    copies: dict[int, dict[str, Any]] = {}
    t0 = time.monotonic()
    j = 0
    try:
        for h in range(1, top + 1):
            for _ in range(txs_per_block):
                k, n = keys[j % SENDERS], j // SENDERS
                tx = build_transfer(
                    k, chain_id=CHAIN_ID, nonce=n, to=sink[j % 1000], amount=1, fee=FEE
                )
                ledger.submit_tx(tx, now=t_genesis + 2 * h)
                j += 1
            mine(ledger, t_genesis + 2 * h)
            if h in heights:
                path = workdir / f"chain-{h}.db"
                with sqlite3.connect(path) as dst:
                    ledger.chain.store.db.backup(dst)
                dst.close()
                copies[h] = {"path": path, "bytes": path.stat().st_size, "txs": j}
            if h % max(1, top // 10) == 0:
                progress(
                    f"chain: {h:,} of {top:,} blocks built ({h / (time.monotonic() - t0):,.0f}/s)"
                )
    finally:
        close_ledger(ledger)
    return {"genesis": doc, "copies": copies, "txs_per_block": txs_per_block}


def startup(workdir: Path, built: dict[str, Any], heights: list[int]) -> list[dict[str, Any]]:
    out = []
    for h in heights:
        copy = built["copies"][h]
        datadir = node_datadir(workdir / f"start-{h}", built["genesis"], copy["path"])
        with ProcessNode(datadir, name=f"start-{h}") as node:
            secs = start_timed(node, timeout=1800)
            rss = rss_mib(node.pid)
            height = node.call("node.info")["height"]
        if height != h:
            raise RuntimeError(f"node on the {h}-block chain reports height {height}")
        out.append({"blocks": h, "start_s": secs, "rss_mib": rss, "db_bytes": copy["bytes"]})
        progress(
            f"start-up at {h:,} blocks: {secs:.2f} s, RSS {rss:.0f} MiB, db {copy['bytes']:,} bytes"
        )
    return out


def db_bytes_per_tx(built: dict[str, Any], heights: list[int]) -> dict[str, Any]:
    """Bytes chain.db grows by per transfer (block overhead shared out),
    between the smallest and the largest copy."""
    lo, hi = built["copies"][min(heights)], built["copies"][max(heights)]
    txs = hi["txs"] - lo["txs"]
    return {"txs": txs, "bytes": hi["bytes"] - lo["bytes"],
            "bytes_per_tx": (hi["bytes"] - lo["bytes"]) / txs if txs else 0.0}  # fmt: skip


def _cpu_s(pid: int) -> float:
    """CPU seconds (user and system) ``pid`` has used; 0 once it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = data[data.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK


_CLK = os.sysconf("SC_CLK_TCK")


def _joiner_cpu(pid: int) -> tuple[float, float]:
    """(main process, signature workers) CPU seconds so far."""
    return _cpu_s(pid), sum(_cpu_s(c) for c in child_pids(pid))


def sync(workdir: Path, built: dict[str, Any], blocks: int, timeout: float) -> dict[str, Any]:
    src_dir = node_datadir(
        workdir / "sync-source", built["genesis"], built["copies"][blocks]["path"], p2p=True
    )
    with ProcessNode(src_dir, name="sync-source") as source:
        source.start(timeout=1800)
        p2p = source.call("node.info")["p2p"]
        joiner_dir = node_datadir(workdir / "sync-joiner", built["genesis"], None, p2p=True,
                                  peers=[p2p], key=key_for("node", 1))  # fmt: skip
        with ProcessNode(joiner_dir, name="sync-joiner") as joiner:
            joiner.start(timeout=120)
            t0 = time.monotonic()
            cpu0 = _joiner_cpu(joiner.pid)
            marks: dict[str, float] = {}
            last = [t0]

            def at_tip() -> bool:
                height = int(joiner.call("node.info")["height"])
                if "half" not in marks and height >= blocks // 2:
                    marks["half"] = time.monotonic()
                if time.monotonic() - last[0] > 10:
                    last[0] = time.monotonic()
                    progress(f"sync: joiner at {height:,} of {blocks:,}")
                return height >= blocks

            wait_until(
                at_tip, timeout=timeout, interval=0.05, what="the joiner at the source's tip"
            )
            t_end = time.monotonic()
            cpu1 = _joiner_cpu(joiner.pid)
    txs = blocks * built["txs_per_block"]
    secs = t_end - t0
    half = marks.get("half", t_end)
    out = {
        "blocks": blocks,
        "txs": txs,
        "seconds": secs,
        "blocks_per_s": blocks / secs,
        "tx_per_s": txs / secs,
        "first_half_blocks_per_s": (blocks // 2) / max(half - t0, 1e-3),
        "second_half_blocks_per_s": (blocks - blocks // 2) / max(t_end - half, 1e-3),
        "main_cpu_ms_per_block": (cpu1[0] - cpu0[0]) * 1000 / blocks,
        "workers_cpu_ms_per_block": (cpu1[1] - cpu0[1]) * 1000 / blocks,
        "load_average": os.getloadavg()[0],
    }
    progress(
        f"sync: {blocks:,} blocks in {secs:.1f} s: {out['blocks_per_s']:,.0f} blocks/s, "
        f"{out['tx_per_s']:,.0f} tx/s (halves {out['first_half_blocks_per_s']:,.0f} / "
        f"{out['second_half_blocks_per_s']:,.0f} blocks/s); joiner CPU per block: "
        f"{out['main_cpu_ms_per_block']:.2f} ms main, {out['workers_cpu_ms_per_block']:.2f} ms "
        f"workers (load average {out['load_average']:.1f})"
    )
    return out
