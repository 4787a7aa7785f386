"""bench_node's phase 5, a full mempool (issue 12, item 2): ingest into a
pool at its byte bound as a share of ingest into an empty one, and RPC
latency while a P2P peer floods the full pool with fee-0 txs.

One node process (P2P on, mining off) whose ``[mempool] max_bytes`` is the
size of exactly ``senders x nonces`` txs, each sender with its own keys:

- ``empty``: that many transfers at fee 2,000 into the empty pool (the
  baseline: the pool ends exactly full);
- ``full, admitted``: as many at fee 3,000 from other senders; each evicts
  one of the first set;
- ``full, refused``: as many at fee 1,000 from others again; the full pool
  refuses every one (``mempool_full``);
- ``node.info`` p50/p99 on the full pool, alone and then while a scripted
  peer (``Flooder``) sends 6,000 fee-0 txs in three ``txs`` frames over and
  over, reconnecting whenever the node drops it.

All three ingests use the same batch size and connections, on the same
node, so their rates compare.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from benchkit.cpu import Phases
from benchkit.guard import progress
from benchkit.node.ingest import submit_all
from benchkit.node.latency import _latencies, _summary
from benchkit.node.txs import key_for, nonce_major
from benchkit.p2pclient import dialler_hello, handshake
from benchkit.rpc import RawRpc, request_body
from powernode.client import RpcClient, build_transfer
from powernode.core.crypto import KeyPair, sha256
from powernode.core.tx import Transaction
from powernode.devnet.datadir import init_datadir
from powernode.devnet.process import ProcessNode
from powernode.protocol.messages import MAX_TXS, Txs

FEE_EMPTY = 2_000
FEE_ADMIT = 3_000
FEE_REFUSE = 1_000
FLOOD_SENDERS = 30  # 30 x 200 = 6,000 fee-0 txs, each within the nonce window
FLOOD_NONCES = 200


@dataclass
class FullPoolKeys:
    empty: list[KeyPair]
    admit: list[KeyPair]
    refuse: list[KeyPair]
    flood: list[KeyPair]

    @property
    def all(self) -> list[KeyPair]:
        return [*self.empty, *self.admit, *self.refuse, *self.flood]


def fullpool_keys(senders: int) -> FullPoolKeys:
    return FullPoolKeys(
        empty=[key_for("fp-empty", i) for i in range(senders)],
        admit=[key_for("fp-admit", i) for i in range(senders)],
        refuse=[key_for("fp-refuse", i) for i in range(senders)],
        flood=[key_for("fp-flood", i) for i in range(FLOOD_SENDERS)],
    )


def _grid(keys: Sequence[KeyPair], nonces: int, fee: int, chain_id: str) -> list[Transaction]:
    sink = sha256(b"bench-fullpool-sink")[:20]
    grid = [
        [
            build_transfer(k, chain_id=chain_id, nonce=n, to=sink, amount=1000, fee=fee)
            for n in range(nonces)
        ]
        for k in keys
    ]
    return nonce_major(grid, range(len(keys)))


class Flooder:
    """A peer that shakes hands, then sends the same fee-0 ``txs`` frames
    as fast as the node reads them; when the node hangs up it dials again.
    Runs its own event loop in a thread, beside the latency calls."""

    def __init__(self, address: str, chain_id: str, genesis: bytes, frames: list[bytes]) -> None:
        self.address = address
        self.chain_id = chain_id
        self.genesis = genesis
        self.frames = frames
        self.connections = 0
        self.dropped = 0  # connections the node ended
        self.frames_sent = 0
        self.errors: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    async def _run(self) -> None:
        async with aiohttp.ClientSession() as session:
            while not self._stop.is_set():
                try:
                    await self._connection(session)
                except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                    self.errors[type(exc).__name__] += 1
                    await asyncio.sleep(0.05)  # the node may not listen yet: retry

    async def _connection(self, session: aiohttp.ClientSession) -> None:
        async with session.ws_connect(
            f"http://{self.address}/p2p",
            max_msg_size=64 << 20,
            timeout=aiohttp.ClientWSTimeout(ws_close=2),
        ) as ws:
            self.connections += 1
            # A fresh node id each time, as an attacker would mint them (the
            # node holds a peer it dropped back by id for a while).
            key = KeyPair.generate()
            hello = dialler_hello(self.chain_id, self.genesis, key, agent="bench-flooder/1")
            if not await handshake(ws, hello, key):
                self.dropped += 1
                return
            closed = asyncio.Event()

            async def read() -> None:  # answers nothing; notices the close
                async for _ in ws:
                    pass
                closed.set()

            reader = asyncio.create_task(read())
            try:
                while not self._stop.is_set() and not closed.is_set() and not ws.closed:
                    for frame in self.frames:
                        await ws.send_bytes(frame)
                        self.frames_sent += 1
                    await asyncio.sleep(0)
            except (aiohttp.ClientError, ConnectionError):
                pass
            finally:
                if closed.is_set() or ws.closed:
                    self.dropped += 1
                reader.cancel()


def _set_mempool_bytes(datadir: Path, max_bytes: int) -> None:
    cfg = datadir / "config.toml"
    text = cfg.read_text()
    old = "\nmax_bytes = 67108864\n"
    if old not in text:
        raise RuntimeError("config layout changed: no [mempool] max_bytes line")
    cfg.write_text(text.replace(old, f"\nmax_bytes = {max_bytes}\n"))


def bench_full_pool(
    workdir: Path,
    genesis: Path,
    keys: FullPoolKeys,
    *,
    chain_id: str,
    nonces: int,
    batch: int,
    connections: int,
    latency_calls: int,
    phase: Phases,
) -> dict[str, Any]:
    progress(
        f"full pool: signing {3 * len(keys.empty) * nonces:,} transfers "
        f"({len(keys.empty)} senders x {nonces} per set) and {FLOOD_SENDERS * FLOOD_NONCES:,} "
        "fee-0 flood txs"
    )
    sets = {
        "empty": _grid(keys.empty, nonces, FEE_EMPTY, chain_id),
        "full_admitted": _grid(keys.admit, nonces, FEE_ADMIT, chain_id),
        "full_refused": _grid(keys.refuse, nonces, FEE_REFUSE, chain_id),
    }
    flood = _grid(keys.flood, FLOOD_NONCES, 0, chain_id)
    frames = [
        Txs([tx.raw for tx in flood[i : i + MAX_TXS]]).encode()
        for i in range(0, len(flood), MAX_TXS)
    ]
    max_bytes = sum(tx.size for tx in sets["empty"])
    out: dict[str, Any] = {
        "txs_per_set": len(sets["empty"]),
        "senders_per_set": len(keys.empty),
        "max_bytes": max_bytes,
        "batch": batch,
        "connections": connections,
        "problems": [],
    }
    with ProcessNode(workdir / "fullpool", name="full-pool node") as node:
        init_datadir(node.datadir, genesis, p2p=True)
        _set_mempool_bytes(node.datadir, max_bytes)
        ep = node.start()
        phase.monitor.pids.add(node.pid)
        for name, txs in sets.items():
            with phase(f"full pool: {name}"):
                r = submit_all(ep, txs, batch, connections)
            with RpcClient(ep) as c:
                pool = c.call("mempool.info")
            out[name] = {
                "txs": len(txs),
                "seconds": r.seconds,
                "tx_per_s": len(txs) / r.seconds if r.seconds > 0 else 0.0,
                "accepted": r.accepted,
                "errors": dict(r.errors),
                "pool_size": pool["size"],
                "pool_bytes": pool["bytes"],
                "min_fee_rate": pool.get("min_fee_rate"),
            }
            progress(
                f"full pool: {name:<14} {out[name]['tx_per_s']:>9,.0f} tx/s "
                f"({r.accepted:,} accepted, errors {dict(r.errors)}); pool {pool['size']:,} txs, "
                f"{pool['bytes']:,} of {max_bytes:,} bytes"
            )
        want = {"empty": len(sets["empty"]), "full_admitted": len(sets["empty"]), "full_refused": 0}
        for name, accepted in want.items():
            if out[name]["accepted"] != accepted:
                out["problems"].append(
                    f"full pool {name}: {out[name]['accepted']} accepted, expected {accepted}"
                )
        base = out["empty"]["tx_per_s"]
        out["admitted_ratio"] = out["full_admitted"]["tx_per_s"] / base if base else 0.0
        out["refused_ratio"] = out["full_refused"]["tx_per_s"] / base if base else 0.0

        # node.info latency, the pool full: alone, then under a flood.
        body = request_body("node.info", {})
        conn = RawRpc(ep, timeout=120.0)
        try:
            info = conn.call("node.info")
            _latencies(conn, body, 100)  # warm up
            with phase("full pool: node.info"):
                out["latency_quiet"] = _summary(_latencies(conn, body, latency_calls))
            p2p_addr = info["p2p"]
            flooder = Flooder(p2p_addr, info["chain_id"], bytes.fromhex(info["genesis"]), frames)
            flooder.start()
            try:
                deadline = time.monotonic() + 10
                while flooder.frames_sent < len(frames) and time.monotonic() < deadline:
                    time.sleep(0.01)  # the flood is under way before the clock starts
                with phase("full pool: node.info under flood"):
                    out["latency_flood"] = _summary(_latencies(conn, body, latency_calls))
            finally:
                flooder.stop()
            out["flood"] = {
                "txs_per_frame": MAX_TXS,
                # Written by the flooder: a dropped connection's last frames
                # may never have been read by the node.
                "frames_written": flooder.frames_sent,
                "connections": flooder.connections,
                "dropped_by_node": flooder.dropped,
                "errors": dict(flooder.errors),
            }
            pool = conn.call("mempool.info")
            out["flood"]["pool_size_after"] = pool["size"]
        finally:
            conn.close()
        lq, lf = out["latency_quiet"], out["latency_flood"]
        progress(
            f"full pool: node.info p50/p99 quiet {lq['p50_ms']:.2f}/{lq['p99_ms']:.2f} ms, "
            f"under flood {lf['p50_ms']:.2f}/{lf['p99_ms']:.2f} ms (max {lf['max_ms']:.0f}); "
            f"flood: {flooder.connections} connections, {flooder.dropped} dropped by the node"
        )
    return out
