"""The loop's CPU per tx on a tx's way in: over RPC ``tx.submit`` and over
P2P gossip (a scripted peer announces txs with ``inv``, the node asks with
``getdata``, the peer answers with ``txs`` frames).

Each path runs on a fresh node process (mining off) with its own pre-signed
transfers; the figure is the CPU time of the node's main thread (its event
loop), read from ``/proc/<pid>/task/<pid>/stat`` before and after, divided
by the txs admitted. A CPU-time figure holds on a shared machine where a
wall-clock rate does not.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from benchkit.cpu import _CLK, _process_cpu, child_pids
from benchkit.node.ingest import submit_all
from benchkit.p2pclient import dialler_hello, handshake
from powernode.client import RpcClient
from powernode.core.crypto import KeyPair
from powernode.core.tx import Transaction
from powernode.devnet.datadir import init_datadir
from powernode.devnet.process import ProcessNode
from powernode.protocol.messages import MAX_TXS, GetData, Inv, Txs, decode_message

# Hashes per ``inv`` the scripted peer sends (a busy peer's 50 ms trickle).
INV_CHUNK = 500


def thread_cpu(pid: int, tid: int) -> float:
    """CPU seconds of one thread of ``pid``."""
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        data = f.read()
    fields = data[data.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK


def _sample(pid: int) -> tuple[float, float, float]:
    return (
        thread_cpu(pid, pid),
        _process_cpu(pid),
        sum(_process_cpu(c) for c in child_pids(pid)),
    )


def _pool_size(node: ProcessNode) -> int:
    with RpcClient(node.endpoint) as c:
        size: int = c.call("mempool.info")["size"]
    return size


def _per_tx(before: tuple[float, ...], after: tuple[float, ...], n: int) -> dict[str, float]:
    loop, process, workers = ((b - a) / n * 1e6 for a, b in zip(before, after, strict=True))
    return {"loop_us": loop, "process_us": process, "workers_us": workers}


def rpc_path(
    workdir: Path, genesis: Path, txs: Sequence[Transaction], *, batch: int = 500, conns: int = 2
) -> dict[str, Any]:
    with ProcessNode(workdir / "rpc", name="rpc node") as node:
        init_datadir(node.datadir, genesis)
        ep = node.start()
        before = _sample(node.pid)
        t0 = time.perf_counter()
        r = submit_all(ep, txs, batch, conns)
        seconds = time.perf_counter() - t0
        after = _sample(node.pid)
        out = _per_tx(before, after, max(r.accepted, 1))
        out.update(accepted=r.accepted, errors=dict(r.errors), tx_per_s=r.accepted / seconds)
        return out


async def _gossip(address: str, chain_id: str, genesis: bytes, txs: Sequence[Transaction]) -> None:
    by_id = {tx.txid: tx.raw for tx in txs}
    key = KeyPair.generate()
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://{address}/p2p", max_msg_size=64 << 20) as ws,
    ):
        hello = dialler_hello(chain_id, genesis, key, agent="bench-txpath/1")
        if not await handshake(ws, hello, key):
            raise RuntimeError("the node refused the handshake")
        served = 0

        async def answer() -> None:
            nonlocal served
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    continue
                m = decode_message(msg.data, max_bytes=64 << 20)
                if isinstance(m, GetData) and m.kind == "tx":
                    raws = [by_id[h] for h in m.hashes if h in by_id]
                    for i in range(0, len(raws), MAX_TXS):
                        await ws.send_bytes(Txs(raws[i : i + MAX_TXS]).encode())
                    served += len(raws)

        reader = asyncio.create_task(answer())
        try:
            for i in range(0, len(txs), INV_CHUNK):
                await ws.send_bytes(Inv("tx", [tx.txid for tx in txs[i : i + INV_CHUNK]]).encode())
                # Announce as a peer would: a little at a time, not all at once.
                await asyncio.sleep(0.005)
            deadline = time.monotonic() + 120
            while served < len(txs) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            reader.cancel()


def gossip_path(workdir: Path, genesis: Path, txs: Sequence[Transaction]) -> dict[str, Any]:
    with ProcessNode(workdir / "gossip", name="gossip node") as node:
        init_datadir(node.datadir, genesis, p2p=True)
        node.start()
        info = node.call("node.info")
        before = _sample(node.pid)
        t0 = time.perf_counter()
        asyncio.run(_gossip(info["p2p"], info["chain_id"], bytes.fromhex(info["genesis"]), txs))
        deadline = time.monotonic() + 120
        while (size := _pool_size(node)) < len(txs) and time.monotonic() < deadline:
            time.sleep(0.05)
        seconds = time.perf_counter() - t0
        after = _sample(node.pid)
        out = _per_tx(before, after, max(size, 1))
        out.update(accepted=size, tx_per_s=size / seconds)
        return out


def cpu_note() -> str:
    return f"load average {os.getloadavg()[0]:.2f}"
