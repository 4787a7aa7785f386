"""Bursts of peers against one node process, for bench_p2p_limits.py: many
WebSocket peers connecting and shaking hands at once (from this host, or
from another loopback IP, which the node takes for another host), and a
peer that is dropped and redials as fast as it can."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from benchkit.p2pclient import dialler_hello, handshake
from powernode.client import RpcClient
from powernode.core.crypto import KeyPair
from powernode.protocol.messages import MAX_TXS, Txs


@dataclass
class Peer:
    """One connection's fate: ``accepted`` (handshake done, still open when
    the burst settled), or why not."""

    outcome: str = ""
    ws: aiohttp.ClientWebSocketResponse | None = None


@dataclass
class Sampler:
    """Polls RPC ``peer.stats`` in a thread while a burst runs, keeping the
    most inbound connections the node reported at once."""

    rpc: RpcClient
    samples: int = 0
    max_inbound: int = 0
    max_held: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            s = self.rpc.call("peer.stats")
            self.samples += 1
            self.max_inbound = max(self.max_inbound, int(s["inbound"]))
            self.max_held = max(self.max_held, int(s["inbound_held"]))


def _session(local_ip: str) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=0, local_addr=(local_ip, 0) if local_ip else None)
    return aiohttp.ClientSession(connector=connector)


async def _one(
    session: aiohttp.ClientSession,
    address: str,
    chain_id: str,
    genesis: bytes,
    start: asyncio.Event,
) -> Peer:
    peer = Peer()
    await start.wait()  # every connection goes at once
    key = KeyPair.generate()
    try:
        ws = await session.ws_connect(f"http://{address}/p2p", max_msg_size=64 << 20)
    except aiohttp.WSServerHandshakeError as exc:
        peer.outcome = f"refused_http_{exc.status}"
        return peer
    except (aiohttp.ClientError, OSError) as exc:
        peer.outcome = f"error_{type(exc).__name__}"
        return peer
    peer.ws = ws
    try:
        ok = await handshake(ws, dialler_hello(chain_id, genesis, key, agent="bench/1"), key)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        ok, peer.outcome = False, f"error_{type(exc).__name__}"
    if ok:
        peer.outcome = "handshaken"
    elif not peer.outcome:
        peer.outcome = f"closed_{ws.close_code}"
    return peer


async def burst(
    address: str, chain_id: str, genesis: bytes, n: int, *, local_ip: str = "", waves: int = 5
) -> dict[str, Any]:
    """Waves of ``n`` peers, each wave connecting and shaking hands at once
    while the peers of earlier waves stay connected, until a wave gets no
    peer in (or ``waves`` ran). Returns how many the node held at the end
    and, per wave, why the rest did not get in."""
    held: list[Peer] = []
    out: dict[str, Any] = {"attempts_per_wave": n, "waves": []}
    async with _session(local_ip) as session:
        try:
            for _ in range(waves):
                start = asyncio.Event()
                tasks = [
                    asyncio.create_task(_one(session, address, chain_id, genesis, start))
                    for _ in range(n)
                ]
                await asyncio.sleep(0.2)  # all created and waiting on the start
                t0 = time.perf_counter()
                start.set()
                peers = await asyncio.gather(*tasks)
                seconds = time.perf_counter() - t0
                await asyncio.sleep(0.3)  # any the node took, then hung up on, are closed
                got = [p for p in peers if p.outcome == "handshaken" and p.ws and not p.ws.closed]
                held = [p for p in held if p.ws and not p.ws.closed] + got
                out["waves"].append(
                    {
                        "seconds": seconds,
                        "new": len(got),
                        "held": len(held),
                        "outcomes": dict(Counter(p.outcome for p in peers)),
                    }
                )
                for p in peers:
                    if p not in got and p.ws is not None:
                        await p.ws.close()
                if not got:
                    break
            out["held"] = len([p for p in held if p.ws and not p.ws.closed])
        finally:
            for p in held:
                if p.ws is not None:
                    await p.ws.close()
    return out


async def redial(
    address: str, chain_id: str, genesis: bytes, seconds: float, *, local_ip: str
) -> dict[str, Any]:
    """A peer that gets itself dropped (a ``txs`` frame of 2,000 unasked
    junk txs: ``tx_flood``, disconnected without a ban), then redials as
    fast as it can for ``seconds``, each time with a fresh node id;
    counts the redials the node let through the handshake."""
    async with _session(local_ip) as session:
        key = KeyPair.generate()
        ws = await session.ws_connect(f"http://{address}/p2p", max_msg_size=64 << 20)
        if not await handshake(ws, dialler_hello(chain_id, genesis, key, agent="bench/1"), key):
            raise RuntimeError("the flooder's first handshake failed")
        await ws.send_bytes(Txs([b"\x00"] * MAX_TXS).encode())
        msg = await ws.receive(timeout=10)
        dropped_with = f"{ws.close_code} {msg.extra or ''}".strip()
        await ws.close()
        attempts, accepted = 0, 0
        refusals: Counter[str] = Counter()
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            attempts += 1
            key = KeyPair.generate()
            try:
                ws = await session.ws_connect(f"http://{address}/p2p", max_msg_size=64 << 20)
            except aiohttp.WSServerHandshakeError as exc:
                refusals[f"http_{exc.status}"] += 1
                continue
            hello = dialler_hello(chain_id, genesis, key, agent="bench/1")
            if await handshake(ws, hello, key):
                accepted += 1
            else:
                refusals[f"closed_{ws.close_code}"] += 1
            await ws.close()
    return {
        "dropped_with": dropped_with,
        "seconds": seconds,
        "redials": attempts,
        "redials_per_s": attempts / seconds,
        "accepted": accepted,
        "accepted_per_s": accepted / seconds,
        "refusals": dict(refusals),
    }
