"""Phase b of ``scripts/bench_network.py``: block propagation over a 5-node
testnet, timed from the nodes' ``block.connected`` log lines."""

from __future__ import annotations

import time
from typing import Any

from benchkit.guard import median, progress
from benchkit.net.common import DemoSigner, submit, wait_mempools
from benchkit.net.testnet import Testnet, log_events

# --- b. propagation ------------------------------------------------------------------


def connected_at(tn: Testnet, name: str, block_hash: str) -> float | None:
    for ts, _, f in log_events(tn.datadir(name) / "node.log", {"block.connected"}):
        if f.get("hash") == block_hash:
            return ts
    return None


def phase_propagation(
    tn: Testnet, signer: DemoSigner, rounds: int, txs: int, timeout: float
) -> dict[str, Any]:
    names = tn.names
    clients = {n: tn.client(n) for n in names}
    per_round: list[dict[str, Any]] = []
    try:
        batches = [signer.sign(txs) for _ in range(rounds)]
        for r, batch in enumerate(batches):
            submit(clients[names[0]], batch)
            gossip_s, sizes = wait_mempools(clients, txs, timeout)
            if min(sizes.values()) < txs:
                progress(f"propagation: round {r + 1}: mempools after {timeout:.0f} s: {sizes}")
            miner = names[r % len(names)]
            t_call = time.time()
            block_hash = clients[miner].call("dev.mine", {"blocks": 1})["hashes"][0]
            seen: dict[str, float] = {}
            deadline = time.monotonic() + timeout
            while len(seen) < len(names) and time.monotonic() < deadline:
                for n, c in clients.items():
                    if n not in seen and c.call("node.info")["tip"] == block_hash:
                        seen[n] = time.time()
                time.sleep(0.005)
            if len(seen) < len(names):
                raise RuntimeError(
                    f"block {block_hash[:16]} reached only {sorted(seen)} in {timeout:.0f} s"
                )
            logged = {n: connected_at(tn, n, block_hash) for n in names}
            missing = [n for n, t in logged.items() if t is None]
            if missing:
                raise RuntimeError(f"no block.connected line for {block_hash[:16]} in {missing}")
            at = {n: float(t) for n, t in logged.items() if t is not None}
            others = sorted(at[n] - at[miner] for n in names if n != miner)
            block = clients[miner].call("chain.block", {"hash": block_hash})
            row = {
                "round": r + 1,
                "miner": miner,
                "hash": block_hash,
                "txs": len(block["txs"]),
                "bytes": block["size"],
                "mempools_filled_s": gossip_s,
                "propagation_ms": 1000 * others[-1],
                "first_peer_ms": 1000 * others[0],
                "per_peer_ms": [1000 * x for x in others],
                "mine_call_to_connected_ms": 1000 * (at[miner] - t_call),
                "call_to_all_tips_polled_ms": 1000 * (max(seen.values()) - t_call),
            }
            per_round.append(row)
            progress(
                f"propagation: round {r + 1}/{rounds}: {row['txs']:,}-tx block "
                f"({row['bytes']:,} B) mined on {miner}; all 5 connected "
                f"{row['propagation_ms']:.0f} ms after it (first peer {row['first_peer_ms']:.0f} "
                f"ms); mempools filled in {gossip_s:.1f} s"
            )
    finally:
        for c in clients.values():
            c.close()
    props = [r["propagation_ms"] for r in per_round]
    polled = [r["call_to_all_tips_polled_ms"] for r in per_round]
    return {
        "nodes": len(names),
        "txs_per_block": txs,
        "rounds": per_round,
        "propagation_ms_p50": median(props),
        "propagation_ms_min": min(props),
        "propagation_ms_max": max(props),
        "first_peer_ms_p50": median([r["first_peer_ms"] for r in per_round]),
        "call_to_all_tips_ms_p50": median(polled),
        "mempools_filled_s_p50": median([r["mempools_filled_s"] for r in per_round]),
    }
