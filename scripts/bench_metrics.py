"""What watching a node costs: RPC latency with and without a /metrics scraper.

Usage::

    python scripts/bench_metrics.py              # progress on stderr, table on stdout
    python scripts/bench_metrics.py --json       # ... and the figures as JSON

One ``powernode run --metrics`` process on a dev chain (mining off) is
given ``--senders`` funded accounts, ``--blocks`` blocks of their transfers
and a mempool of ``--pending`` more, so a scrape has real state to read.
Then, over one keep-alive connection, ``--calls`` sequential ``node.info``
calls are timed with no scraper (the baseline, in the same run, first and
last: the ratios are to the mean of the two p99s), with a scraper fetching
``/metrics`` every ``--interval`` seconds (Prometheus scrapes every 15 s by
default; 1 s is already harsh), and with one fetching it back to back (the
worst case). It prints p50/p99 of each,
the p99 ratios to the baseline, and how long one scrape takes (p50/p99) and
how big it is. No target is checked: the figures are for the README's
"Benchmarks" and for comparing runs on one machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchkit.guard import percentile, progress
from benchkit.rpc import RawRpc, request_body

from powernode.client import build_transfer
from powernode.core.crypto import KeyPair
from powernode.core.tx import Transaction
from powernode.devnet.datadir import free_port, init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.process import ProcessNode

CHAIN = "powernode-bench-metrics"


class Scraper(threading.Thread):
    """Fetches ``url`` every ``interval`` s (0: back to back) until stopped."""

    def __init__(self, url: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.interval = interval
        self.ms: list[float] = []
        self.size = 0
        self._halt = threading.Event()

    def run(self) -> None:
        # At least one scrape, however soon it is stopped: a phase's figures
        # need one (a short --calls could end before the first).
        while True:
            t0 = time.perf_counter()
            with urllib.request.urlopen(self.url, timeout=30) as resp:
                self.size = len(resp.read())
            self.ms.append((time.perf_counter() - t0) * 1000)
            if self._halt.wait(self.interval):
                break

    def stop(self) -> None:
        self._halt.set()
        self.join()


def funded_node_dir(root: Path, keys: list[KeyPair], chain_id: str) -> Path:
    """A dev node's data dir under ``root``: every key funded, the RPC on a
    free port (bench_push.py starts its node the same way)."""
    genesis = write_genesis(
        root / "genesis.json", dev_genesis({k.address: 10**12 for k in keys}, chain_id=chain_id)
    )
    datadir = root / "node"
    init_datadir(datadir, genesis)
    cfg = datadir / "config.toml"
    cfg.write_text(cfg.read_text().replace("port = 8647", f"port = {free_port()}"))
    return datadir


def latencies(conn: RawRpc, calls: int) -> list[float]:
    body = request_body("node.info", {})
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        conn.post(body)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def fill(node: ProcessNode, keys: list[KeyPair], blocks: int, pending: int) -> None:
    """``blocks`` blocks of one transfer per sender each, then ``pending``
    txs left in the mempool."""
    conn = RawRpc(node.endpoint)
    to = KeyPair.generate().address
    try:
        nonce = 0
        for _ in range(blocks):
            batch = [build_transfer(k, chain_id=CHAIN, nonce=nonce, to=to, amount=1) for k in keys]
            submit(conn, batch)
            conn.call("dev.mine", {"blocks": 1})
            nonce += 1
        left: list[Transaction] = []
        while len(left) < pending:
            left += [build_transfer(k, chain_id=CHAIN, nonce=nonce, to=to, amount=1) for k in keys]
            nonce += 1
        submit(conn, left[:pending])
    finally:
        conn.close()


def submit(conn: RawRpc, txs: list[Any]) -> None:
    for start in range(0, len(txs), 500):
        calls = [
            {"jsonrpc": "2.0", "id": i, "method": "tx.submit", "params": {"raw": tx.raw.hex()}}
            for i, tx in enumerate(txs[start : start + 500])
        ]
        answers = json.loads(conn.post(json.dumps(calls).encode()))
        bad = [a for a in answers if "error" in a]
        if bad:
            raise RuntimeError(f"tx.submit refused: {bad[0]['error']}")


def summary(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99), "max_ms": max(ms)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--senders", type=int, default=200)
    p.add_argument("--blocks", type=int, default=20)
    p.add_argument("--pending", type=int, default=5000)
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--interval", type=float, default=1.0, help="seconds between scrapes")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()

    keys = [KeyPair.generate() for _ in range(a.senders)]
    out: dict[str, Any] = {"args": vars(a)}
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        root = Path(tmp)
        datadir = funded_node_dir(root, keys, CHAIN)
        with ProcessNode(datadir) as node:
            node.start("--metrics")
            url = json.loads((datadir / "node.json").read_text())["metrics"]
            progress(f"filling: {a.blocks} blocks of {a.senders} txs, {a.pending} pending")
            fill(node, keys, a.blocks, a.pending)
            conn = RawRpc(node.endpoint)
            try:
                latencies(conn, 200)  # warm up
                runs: dict[str, dict[str, float]] = {}
                scrapes: dict[str, dict[str, float]] = {}
                for name, interval in (
                    ("none", None),
                    ("every_interval", a.interval),
                    ("back_to_back", 0.0),
                    ("none_again", None),
                ):
                    scraper = Scraper(url, interval) if interval is not None else None
                    if scraper is not None:
                        scraper.start()
                    runs[name] = summary(latencies(conn, a.calls))
                    if scraper is not None:
                        scraper.stop()
                        scrapes[name] = {**summary(scraper.ms), "count": len(scraper.ms)}
                        out["scrape_bytes"] = scraper.size
                    progress(
                        f"node.info, scraper {name:<15} p50 {runs[name]['p50_ms']:.2f} ms  "
                        f"p99 {runs[name]['p99_ms']:.2f} ms"
                    )
            finally:
                conn.close()
    # The baseline is run first and last, so a drift of the machine shows.
    base = (runs["none"]["p99_ms"] + runs["none_again"]["p99_ms"]) / 2
    out["node_info"] = runs
    out["scrape"] = scrapes
    out["p99_ratio"] = {k: v["p99_ms"] / base for k, v in runs.items()}
    print(
        f"{'scraper':<16}{'node.info p50':>15}{'p99':>10}{'p99 / base':>12}{'scrape p50':>12}{'p99':>9}"
    )
    for name, r in runs.items():
        s = scrapes.get(name)
        scrape = f"{s['p50_ms']:>10.2f}ms{s['p99_ms']:>7.2f}ms" if s else f"{'-':>12}{'-':>9}"
        print(
            f"{name:<16}{r['p50_ms']:>13.2f}ms{r['p99_ms']:>8.2f}ms"
            f"{out['p99_ratio'][name]:>12.2f}{scrape}"
        )
    print(f"one scrape: {out.get('scrape_bytes', 0)} bytes")
    if a.json:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
