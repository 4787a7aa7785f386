"""What push subscribers cost: RPC latency with and without WebSocket subscribers.

Usage::

    python scripts/bench_push.py              # progress on stderr, table on stdout
    python scripts/bench_push.py --json       # ... and the figures as JSON

One ``powernode run`` process on a dev chain (mining off). While the
benchmark runs, a block of ``--txs`` transfers is mined every
``--block-interval`` seconds, so notices flow. Over one keep-alive
connection, ``--calls`` sequential ``node.info`` calls are timed with no
subscriber (the baseline, in the same run, first and last: the ratios are
to the mean of the two p99s), and with ``--subscribers`` WebSocket clients
each subscribed to ``tips`` and to every receipt ``events`` (a notice per
transfer), reading as fast as they can. It prints p50/p99 of each, the p99
ratios to the baseline, and the notices the subscribers received. No target
is checked: the figures are for the README's "Benchmarks" and for comparing
runs on one machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchkit.guard import percentile, progress
from benchkit.rpc import RawRpc, request_body

from powernode.client import Endpoint, build_transfer
from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.process import ProcessNode
from powernode.ws_client import WsClient

CHAIN = "powernode-bench-push"


class Blocks(threading.Thread):
    """Submits ``txs`` transfers and mines a block every ``interval`` s."""

    def __init__(self, endpoint: Endpoint, keys: list[KeyPair], interval: float) -> None:
        super().__init__(daemon=True)
        self.endpoint = endpoint
        self.keys = keys
        self.interval = interval
        self.nonce = 0
        self.blocks = 0
        self._halt = threading.Event()

    def run(self) -> None:
        conn = RawRpc(self.endpoint)
        to = KeyPair.generate().address
        try:
            while not self._halt.is_set():
                txs = [
                    build_transfer(k, chain_id=CHAIN, nonce=self.nonce, to=to, amount=1)
                    for k in self.keys
                ]
                calls = [
                    {
                        "jsonrpc": "2.0",
                        "id": i,
                        "method": "tx.submit",
                        "params": {"raw": t.raw.hex()},
                    }
                    for i, t in enumerate(txs)
                ]
                conn.post(json.dumps(calls).encode())
                conn.call("dev.mine", {"blocks": 1})
                self.nonce += 1
                self.blocks += 1
                self._halt.wait(self.interval)
        finally:
            conn.close()

    def stop(self) -> None:
        self._halt.set()
        self.join()


class Subscriber(threading.Thread):
    """A WebSocket client on ``tips`` and ``events``, reading every notice."""

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(daemon=True)
        self.ws = WsClient(endpoint)
        self.notices = 0
        self.ready = threading.Event()
        self._halt = threading.Event()

    def run(self) -> None:
        with self.ws as ws:
            ws.call("subscribe", {"topic": "tips"})
            ws.call("subscribe", {"topic": "events"})
            self.ready.set()
            while not self._halt.is_set():
                try:
                    ws.notice(time.monotonic() + 0.2)
                except TimeoutError:
                    continue
                self.notices += 1

    def stop(self) -> None:
        self._halt.set()
        self.join()


def latencies(conn: RawRpc, calls: int) -> list[float]:
    body = request_body("node.info", {})
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        conn.post(body)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99), "max_ms": max(ms)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subscribers", type=int, default=10)
    p.add_argument("--txs", type=int, default=50, help="transfers per block")
    p.add_argument("--block-interval", type=float, default=0.25, help="seconds between blocks")
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()

    keys = [KeyPair.generate() for _ in range(a.txs)]
    out: dict[str, Any] = {"args": vars(a)}
    with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
        root = Path(tmp)
        genesis = write_genesis(
            root / "genesis.json", dev_genesis({k.address: 10**12 for k in keys}, chain_id=CHAIN)
        )
        datadir = root / "node"
        init_datadir(datadir, genesis)
        with ProcessNode(datadir) as node:
            node.start()
            ep = node.endpoint
            blocks = Blocks(ep, keys, a.block_interval)
            blocks.start()
            conn = RawRpc(ep)
            try:
                latencies(conn, 200)  # warm up
                runs: dict[str, dict[str, float]] = {}
                for name, n in (("none", 0), ("subscribers", a.subscribers), ("none_again", 0)):
                    subs = [Subscriber(ep) for _ in range(n)]
                    for s in subs:
                        s.start()
                        s.ready.wait(30)
                    mined = blocks.blocks
                    runs[name] = summary(latencies(conn, a.calls))
                    runs[name]["blocks"] = blocks.blocks - mined
                    for s in subs:
                        s.stop()
                    if subs:
                        out["notices"] = sum(s.notices for s in subs)
                    progress(
                        f"node.info, {n:>3} subscribers  p50 {runs[name]['p50_ms']:.2f} ms  "
                        f"p99 {runs[name]['p99_ms']:.2f} ms  ({runs[name]['blocks']:.0f} blocks)"
                    )
            finally:
                conn.close()
                blocks.stop()
    base = (runs["none"]["p99_ms"] + runs["none_again"]["p99_ms"]) / 2
    out["node_info"] = runs
    out["p99_ratio"] = {k: v["p99_ms"] / base for k, v in runs.items()}
    print(f"{'run':<14}{'node.info p50':>15}{'p99':>10}{'p99 / base':>12}{'blocks':>8}")
    for name, r in runs.items():
        print(
            f"{name:<14}{r['p50_ms']:>13.2f}ms{r['p99_ms']:>8.2f}ms"
            f"{out['p99_ratio'][name]:>12.2f}{r['blocks']:>8.0f}"
        )
    print(f"notices received by {a.subscribers} subscribers: {out.get('notices', 0)}")
    if a.json:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
