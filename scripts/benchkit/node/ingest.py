"""bench_node's phase 2, tx ingest over RPC: pre-signed transfers submitted
in JSON-RPC ``tx.submit`` batches over several connections, and the sweep over
batch size and connections that picks the setting for the full run."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from benchkit.cpu import Phases, _process_cpu, child_pids
from benchkit.guard import progress
from benchkit.node.txs import nonce_major
from benchkit.rpc import RawRpc
from powernode.client import Endpoint
from powernode.core.tx import Transaction
from powernode.devnet.datadir import init_datadir
from powernode.devnet.process import ProcessNode

SWEEP = ((200, 1), (500, 1), (1000, 1), (200, 2), (500, 2), (1000, 2))


# --- 2. ingest -------------------------------------------------------------------


def node_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds so far of a node process (its event loop and other
    threads) and of its signature workers: per ingested tx, the figure a
    machine shared with other jobs still gives (a wall-clock rate does not)."""
    return _process_cpu(pid), sum(_process_cpu(c) for c in child_pids(pid))


@dataclass
class IngestRun:
    batch: int
    connections: int
    txs: int
    seconds: float
    accepted: int
    errors: Counter[str]

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds > 0 else 0.0


def _batch_bodies(txs: Sequence[Transaction], batch: int) -> list[tuple[bytes, list[str]]]:
    out = []
    for start in range(0, len(txs), batch):
        chunk = txs[start : start + batch]
        doc = [
            {"jsonrpc": "2.0", "id": j, "method": "tx.submit", "params": {"raw": tx.raw.hex()}}
            for j, tx in enumerate(chunk)
        ]
        out.append((json.dumps(doc).encode(), [tx.txid.hex() for tx in chunk]))
    return out


def submit_all(ep: Endpoint, txs: Sequence[Transaction], batch: int, connections: int) -> IngestRun:
    """POST every batch, ``connections`` at a time, each connection taking the
    next unsent batch. Bodies are built before and answers parsed after the
    timed part, which runs from the first request to the last response."""
    bodies = _batch_bodies(txs, batch)
    answers: list[bytes | None] = [None] * len(bodies)
    failures: list[str] = []
    ticket = itertools.count()
    conns = [RawRpc(ep, timeout=120.0) for _ in range(connections)]
    for c in conns:
        c.call("node.info")  # connect before the clock starts
    go = threading.Event()
    ends = [0.0] * connections

    def worker(w: int) -> None:
        c = conns[w]
        go.wait()
        try:
            while True:
                i = next(ticket)
                if i >= len(bodies):
                    break
                answers[i] = c.post(bodies[i][0])
        except Exception as exc:
            failures.append(repr(exc))
        finally:
            ends[w] = time.perf_counter()

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(connections)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    go.set()
    for t in threads:
        t.join()
    seconds = max(ends) - t0
    for c in conns:
        c.close()
    errors: Counter[str] = Counter(failures)
    accepted = 0
    for (_, ids), raw in zip(bodies, answers, strict=True):
        if raw is None:
            errors["no_answer"] += len(ids)
            continue
        by_id = {r.get("id"): r for r in json.loads(raw)}
        for j, txid in enumerate(ids):
            r = by_id.get(j)
            if r is None:
                errors["missing_response"] += 1
            elif "error" in r:
                e = r["error"]
                errors[str((e.get("data") or {}).get("code", e.get("message")))] += 1
            elif r.get("result") != txid:
                errors["wrong_txid"] += 1
            else:
                accepted += 1
    return IngestRun(batch, connections, len(txs), seconds, accepted, errors)


def ingest_sweep(
    workdir: Path, genesis: Path, grid: list[list[Transaction]], phase: Phases
) -> tuple[list[IngestRun], tuple[int, int]]:
    """Each setting gets its own senders on one throwaway node; the fastest wins."""
    per = len(grid) // len(SWEEP)
    runs: list[IngestRun] = []
    with ProcessNode(workdir / "sweep", name="sweep node") as node:
        init_datadir(node.datadir, genesis)
        ep = node.start()
        phase.monitor.pids.add(node.pid)
        progress(
            f"ingest sweep: node up on port {urlsplit(ep.url).port}; "
            f"{per * len(grid[0]):,} txs per setting"
        )
        for k, (batch, connections) in enumerate(SWEEP):
            txs = nonce_major(grid, range(k * per, (k + 1) * per))
            with phase(f"sweep {batch}x{connections}"):
                run = submit_all(ep, txs, batch, connections)
            runs.append(run)
            progress(
                f"ingest sweep: batch {batch:>4} x {connections} conn: {run.rate:,.0f} tx/s"
                + (f"  ERRORS {dict(run.errors)}" if run.errors else "")
            )
    ok = [r for r in runs if not r.errors]
    if not ok:
        raise RuntimeError("every sweep setting had errors")
    best = max(ok, key=lambda r: r.rate)
    return runs, (best.batch, best.connections)
