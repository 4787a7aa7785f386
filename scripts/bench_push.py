"""What push subscribers cost: RPC latency with and without WebSocket subscribers.

Usage::

    python scripts/bench_push.py              # progress on stderr, table on stdout
    python scripts/bench_push.py --json       # ... and the figures as JSON

One ``powernode run --metrics`` process on a dev chain (mining off). While
the benchmark runs, a block of ``--txs`` transfers is mined every
``--block-interval`` seconds, so notices flow. Over one keep-alive
connection, sequential ``node.info`` calls are timed for ``--seconds`` a
phase (a time, not a count of calls, so each phase sees about as many
blocks connect: they are what makes the p99):

- ``none``: no subscriber (the baseline, in the same run, first and last:
  the ratios are to the mean of the two p99s);
- ``subscribers``: ``--subscribers`` WebSocket clients each subscribed to
  ``tips`` and to every receipt ``events`` (a notice per transfer), reading
  as fast as they can, in a process of their own (so they do not hold the
  timing thread's GIL, only the machine's cores, as real clients would);
- ``subs_and_scraper``: the same, with ``/metrics`` fetched every second;
- ``slow_client``: one client that subscribes 50 times to ``tips`` and
  ``events`` and never reads (the node should drop it, and go on).

It prints p50/p99 of each, the p99 ratios to the baseline, the notices the
subscribers received and whether the slow client was dropped. With
``--check`` it exits 1 if a p99 ratio is above ``--max-ratio`` (1.2) or the
slow client was not dropped; the figures are for the README's "Benchmarks"
and for comparing runs on one machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_metrics import Scraper, funded_node_dir
from benchkit.guard import percentile, progress
from benchkit.rpc import RawRpc, request_body

from powernode.client import Endpoint, build_transfer
from powernode.core.crypto import KeyPair
from powernode.devnet.process import ProcessNode
from powernode.ws_client import OP_TEXT, WsClient, WsClosed, encode_frame

CHAIN = "powernode-bench-push"
# How long the slow client's backlog is read for the node's close: what a
# dropped client has piled up (its queue and the sockets' buffers) reads in
# well under a second.
DROP_WAIT_S = 5.0


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


class SlowClient:
    """A WebSocket that subscribes many times over and never reads."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.ws = WsClient(endpoint)
        self.ws.connect()
        sock = self.ws._sock
        assert sock is not None
        for i in range(50):
            topic = "tips" if i % 2 else "events"
            call = {"jsonrpc": "2.0", "id": i, "method": "subscribe", "params": [topic]}
            sock.sendall(encode_frame(OP_TEXT, json.dumps(call).encode(), os.urandom(4)))

    def dropped(self) -> bool:
        """Read what piled up: dropped if the node closed the socket within
        ``DROP_WAIT_S``. One deadline for the whole read: blocks go on being
        mined, so a client the node kept never runs out of notices to read."""
        deadline = time.monotonic() + DROP_WAIT_S
        try:
            while True:
                self.ws.recv(deadline)
        except (WsClosed, ConnectionError):  # closed by the node, politely or not
            return True
        except TimeoutError:
            return False
        finally:
            self.ws.close()


def subscribers_main(endpoint: Endpoint, n: int, ready: Any, halt: Any, notices: Any) -> None:
    """A child process running ``n`` subscribers until ``halt`` is set."""
    subs = [Subscriber(endpoint) for _ in range(n)]
    for s in subs:
        s.start()
        s.ready.wait(30)
    ready.set()
    halt.wait()
    for s in subs:
        s.stop()
    notices.value = sum(s.notices for s in subs)


class Subscribers:
    """``n`` subscribers in a child process."""

    def __init__(self, endpoint: Endpoint, n: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.ready = ctx.Event()
        self.halt = ctx.Event()
        self.notices = ctx.Value("q", 0)
        self.proc = ctx.Process(
            target=subscribers_main,
            args=(endpoint, n, self.ready, self.halt, self.notices),
            daemon=True,
        )

    def start(self) -> None:
        self.proc.start()
        if not self.ready.wait(60):
            raise RuntimeError("subscribers did not start")

    def stop(self) -> int:
        self.halt.set()
        self.proc.join(60)
        return int(self.notices.value)


def latencies(conn: RawRpc, seconds: float) -> list[float]:
    body = request_body("node.info", {})
    out = []
    end = time.perf_counter() + seconds
    while (t0 := time.perf_counter()) < end:
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
    p.add_argument("--seconds", type=float, default=5.0, help="timing per phase")
    p.add_argument("--max-ratio", type=float, default=1.2, help="--check's bound on p99 / base")
    p.add_argument("--check", action="store_true", help="exit 1 if a figure misses its bound")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()

    keys = [KeyPair.generate() for _ in range(a.txs)]
    out: dict[str, Any] = {"args": vars(a)}
    with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
        root = Path(tmp)
        datadir = funded_node_dir(root, keys, CHAIN)
        with ProcessNode(datadir) as node:
            node.start("--metrics")
            metrics_url = json.loads((datadir / "node.json").read_text())["metrics"]
            ep = node.endpoint
            blocks = Blocks(ep, keys, a.block_interval)
            blocks.start()
            conn = RawRpc(ep)
            try:
                latencies(conn, 0.5)  # warm up
                runs: dict[str, dict[str, float]] = {}
                phases = (
                    ("none", 0, False, False),
                    ("subscribers", a.subscribers, False, False),
                    ("subs_and_scraper", a.subscribers, True, False),
                    ("slow_client", 0, False, True),
                    ("none_again", 0, False, False),
                )
                for name, n, scrape, slow in phases:
                    subs = Subscribers(ep, n) if n else None
                    if subs is not None:
                        subs.start()
                    scraper = Scraper(metrics_url, 1.0) if scrape else None
                    if scraper is not None:
                        scraper.start()
                    slow_client = SlowClient(ep) if slow else None
                    mined = blocks.blocks
                    runs[name] = summary(latencies(conn, a.seconds))
                    runs[name]["blocks"] = blocks.blocks - mined
                    if scraper is not None:
                        scraper.stop()
                    if subs is not None:
                        out[f"notices_{name}"] = subs.stop()
                    if slow_client is not None:
                        out["slow_client_dropped"] = slow_client.dropped()
                    progress(
                        f"node.info, {name:<17} p50 {runs[name]['p50_ms']:.2f} ms  "
                        f"p99 {runs[name]['p99_ms']:.2f} ms  ({runs[name]['blocks']:.0f} blocks)"
                    )
            finally:
                conn.close()
                blocks.stop()
    base = (runs["none"]["p99_ms"] + runs["none_again"]["p99_ms"]) / 2
    out["node_info"] = runs
    out["p99_ratio"] = {k: v["p99_ms"] / base for k, v in runs.items()}
    print(f"{'run':<18}{'node.info p50':>15}{'p99':>10}{'p99 / base':>12}{'blocks':>8}")
    for name, r in runs.items():
        print(
            f"{name:<18}{r['p50_ms']:>13.2f}ms{r['p99_ms']:>8.2f}ms"
            f"{out['p99_ratio'][name]:>12.2f}{r['blocks']:>8.0f}"
        )
    print(
        f"notices received by {a.subscribers} subscribers: "
        f"{out.get('notices_subscribers', 0)}, with the scraper "
        f"{out.get('notices_subs_and_scraper', 0)}"
    )
    print(f"slow client dropped: {out.get('slow_client_dropped')}")
    if a.json:
        print(json.dumps(out, indent=2))
    # The two baseline runs make the base; only the subscriber runs are judged.
    worst = max(v for k, v in out["p99_ratio"].items() if k not in ("none", "none_again"))
    if a.check and (worst > a.max_ratio or not out.get("slow_client_dropped")):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
