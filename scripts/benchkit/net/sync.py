"""Phase c of ``scripts/bench_network.py``: a longer chain is mined on the
5-node testnet, then a 6th node (the late joiner) syncs it from scratch."""

from __future__ import annotations

import time
from typing import Any

from benchkit.cpu import CpuMonitor
from benchkit.guard import progress
from benchkit.net.common import DemoSigner, submit, wait_same_tip
from benchkit.net.testnet import Testnet, log_events
from powernode.devnet.datadir import LOOPBACK, init_datadir
from powernode.devnet.process import NodeExited, ProcessNode
from powernode.devnet.wait import WaitTimeout, wait_until

# --- c. late joiner ---------------------------------------------------------------------


def build_chain(
    tn: Testnet, signer: DemoSigner, blocks: int, txs: int, timeout: float
) -> dict[str, Any]:
    name = tn.names[0]
    progress(f"sync: signing {blocks * txs:,} transfers for {blocks} blocks")
    all_txs = signer.sign(blocks * txs)
    t0 = time.monotonic()
    with tn.client(name) as c:
        for b in range(blocks):
            submit(c, all_txs[b * txs : (b + 1) * txs])
            c.call("dev.mine", {"blocks": 1})
            if (b + 1) % 100 == 0:
                dt = time.monotonic() - t0
                progress(f"sync: mined {b + 1}/{blocks} blocks on {name} ({(b + 1) / dt:.1f}/s)")
    clients = {n: tn.client(n) for n in tn.names}
    try:
        same, tips = wait_same_tip(clients, timeout)
    finally:
        for cl in clients.values():
            cl.close()
    if not same:
        raise RuntimeError(f"the 5 nodes did not converge in {timeout:.0f} s: {tips}")
    height, tip = next(iter(tips.values()))
    return {"seconds": time.monotonic() - t0, "height": height, "tip": tip}


def start_joiner(tn: Testnet, name: str) -> ProcessNode:
    """A 6th node with a fresh data dir on the testnet's genesis, the five as
    its bootstrap peers, started (not waited for)."""
    node = ProcessNode(tn.root / name, name=name)
    init_datadir(
        node.datadir,
        tn.root / "genesis.json",
        p2p=True,
        peers=[f"{LOOPBACK}:{n.p2p_port}" for n in tn.nodes],
    )
    node.spawn()
    tn.adopt(node)
    return node


def phase_sync(
    tn: Testnet, signer: DemoSigner, blocks: int, txs: int, timeout: float, monitor: CpuMonitor
) -> dict[str, Any]:
    built = build_chain(tn, signer, blocks, txs, timeout)
    progress(
        f"sync: chain at height {built['height']} on all 5 nodes ({built['seconds']:.0f} s); "
        "starting a 6th node"
    )
    t_spawn = time.monotonic()
    joiner = start_joiner(tn, "joiner")
    datadir = joiner.datadir
    monitor.pids.add(joiner.pid)
    height = 0
    last_log = t_spawn

    def at_tip() -> bool:
        nonlocal height, last_log
        if not joiner.is_running():
            raise NodeExited(f"the joiner exited with {joiner.exit_code}; see {datadir}")
        info = joiner.call("node.info")
        height = info["height"]
        if time.monotonic() - last_log > 5:
            last_log = time.monotonic()
            progress(f"sync: joiner at height {height} of {built['height']}")
        return bool(info["tip"] == built["tip"])

    try:
        try:
            joiner.wait_ready(timeout)
            t_rpc = time.monotonic()
            wait_until(
                at_tip,
                timeout=max(0.0, t_spawn + timeout - t_rpc),
                what="the joiner at the others' tip",
            )
        except NodeExited as exc:
            raise RuntimeError(str(exc)) from None
        except WaitTimeout:
            raise RuntimeError(
                f"the joiner reached height {height} of {built['height']} in {timeout:.0f} s"
            ) from None
        t_done = time.monotonic()
    finally:
        joiner.stop(timeout=20)
    events = log_events(datadir / "node.log", {"block.connected", "sync.started", "sync.done"})
    conn = [(ts, f) for ts, e, f in events if e == "block.connected"]
    done = [f for _, e, f in events if e == "sync.done"]
    started = [ts for ts, e, _ in events if e == "sync.started"]
    txs_total = sum(int(f.get("txs", 0)) for _, f in conn)
    out: dict[str, Any] = {
        "chain_height": built["height"],
        "chain_build_s": built["seconds"],
        "blocks": len(conn),
        "txs": txs_total,
        "spawn_to_rpc_s": t_rpc - t_spawn,
        "spawn_to_tip_s": t_done - t_spawn,
        "rpc_to_tip_s": t_done - t_rpc,
    }
    if done:
        d = done[-1]
        secs = int(d["ms"]) / 1000
        out["node_sync_done"] = {
            "blocks": int(d["blocks"]),
            "ms": int(d["ms"]),
            "blocks_per_s": float(d["blocks_per_s"]),
        }
        out["blocks_per_s"] = int(d["blocks"]) / secs if secs else 0.0
        out["tx_per_s"] = txs_total / secs if secs else 0.0
        out["source"] = "node's sync.done line"
    elif conn:
        secs = max(conn[-1][0] - (started[0] if started else conn[0][0]), 1e-3)
        out["blocks_per_s"] = len(conn) / secs
        out["tx_per_s"] = txs_total / secs
        out["source"] = "block.connected timestamps (no sync.done line)"
    if conn:
        span = max(conn[-1][0] - conn[0][0], 1e-3)
        out["connect_span_s"] = span
    progress(
        f"sync: joiner caught up {out['blocks']} blocks / {txs_total:,} txs: "
        f"{out.get('blocks_per_s', 0):,.0f} blocks/s, {out.get('tx_per_s', 0):,.0f} tx/s "
        f"({out.get('source', '')}); start to tip {out['spawn_to_tip_s']:.1f} s"
    )
    return out
