"""bench_node's phase 4, RPC latency: p50/p99 of sequential calls over one
keep-alive connection, with the miner idle and then running."""

from __future__ import annotations

import time
from typing import Any

from benchkit.guard import percentile, progress
from benchkit.rpc import RawRpc, request_body
from powernode.client import Endpoint, RpcClient

# --- 4. RPC latency ----------------------------------------------------------------


def _latencies(conn: RawRpc, body: bytes, calls: int) -> list[float]:
    out: list[float] = []
    bad = 0
    for _ in range(calls):
        t0 = time.perf_counter()
        data = conn.post(body)
        out.append((time.perf_counter() - t0) * 1000)
        if b'"result"' not in data:
            bad += 1
    if bad:
        raise RuntimeError(f"{bad} of {calls} latency calls returned an error")
    return out


def _summary(ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
        "mean_ms": sum(ms) / len(ms),
    }


def bench_latency(ep: Endpoint, address: str, calls: int, settle: float) -> dict[str, Any]:
    bodies = {
        "node.info": request_body("node.info", {}),
        "account.get": request_body("account.get", {"address": address}),
    }
    out: dict[str, Any] = {"calls": calls, "settle_s": settle, "methods": {}}
    conn = RawRpc(ep, timeout=30.0)
    ctl = RpcClient(ep, timeout=60.0)
    try:
        info = ctl.call("node.info")
        out["mempool_size"] = info["mempool_size"]
        height0 = info["height"]
        for body in bodies.values():
            _latencies(conn, body, 100)  # warm up
        for state in ("idle", "running"):
            if state == "running":
                ctl.call("miner.start")
                time.sleep(settle)
                if not ctl.call("node.info")["mining"]:
                    raise RuntimeError("miner.start did not start the miner")
            for name, body in bodies.items():
                s = _summary(_latencies(conn, body, calls))
                out["methods"].setdefault(name, {})[state] = s
                progress(
                    f"latency: {name:<11} miner {state:<7} p50 {s['p50_ms']:.2f} ms  "
                    f"p99 {s['p99_ms']:.2f} ms  max {s['max_ms']:.1f} ms"
                )
        t0 = time.perf_counter()
        ctl.call("miner.stop")
        out["miner_stop_ms"] = (time.perf_counter() - t0) * 1000
        out["blocks_found"] = ctl.call("node.info")["height"] - height0
    finally:
        conn.close()
        ctl.close()
    for m in out["methods"].values():
        m["p99_ratio"] = m["running"]["p99_ms"] / m["idle"]["p99_ms"]
    out["p99_ratio_worst"] = max(m["p99_ratio"] for m in out["methods"].values())
    return out
