"""loadgen's confirmation tracking.

A tracker thread polls every node's ``node.info`` every ``--poll`` s; for
every tip it has not seen it fetches the block (``chain.block``, tx ids only)
and its unseen ancestors, and matches tx ids. A tx's confirmation time is the
first poll at which any node had the block that holds it on the best chain (a
tx in a block that a reorg undid counts from the block that finally holds
it). After the last send the run waits until every accepted tx is confirmed,
or no new one has been for ``--settle`` s, or ``--confirm-timeout`` s.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from powernode.client import Endpoint, RpcClient, RpcError, RpcUnavailable

# --- confirmation tracking ----------------------------------------------------------


@dataclass
class SeenBlock:
    height: int
    prev: str
    txids: list[str]
    seen: float  # monotonic time of the poll that first showed it
    ours: int  # how many of its txs are watched


class Tracker(threading.Thread):
    """Polls every node's tip and records each block it has not seen (with
    the time of the poll that first showed it). The best chain is the one of
    the highest node; a watched tx counts as confirmed while a block on it
    holds the tx, at the time that block was first seen, so a tx in a block
    that a reorg undid counts only once it is in a block of the final chain."""

    def __init__(
        self, endpoints: Sequence[tuple[str, Endpoint]], watch: set[str], interval: float
    ) -> None:
        super().__init__(name="loadgen-tracker", daemon=True)
        self.clients = {name: RpcClient(ep, timeout=60) for name, ep in endpoints}
        self.watch = watch
        self.interval = interval
        self.blocks: dict[str, SeenBlock] = {}
        self.tips: dict[str, tuple[int, str]] = {}
        self.mempool: dict[str, int] = {}
        self.mining: dict[str, bool] = {}
        self.floor = 0
        self.errors: Counter[str] = Counter()
        self.polls = 0
        self.best = ""
        self.confirmed_n = 0  # watched txs on the best chain
        self.best_height = 0
        self._halt = threading.Event()

    def start_tips(self) -> None:
        """Record where the chain is before the run; blocks up to the lowest
        of these heights are never fetched."""
        for name, c in self.clients.items():
            info = c.call("node.info")
            self.tips[name] = (info["height"], info["tip"])
            self.mining[name] = bool(info["mining"])
            self.mempool[name] = info["mempool_size"]
        self.floor = min(h for h, _ in self.tips.values())
        self.best_height = max(h for h, _ in self.tips.values())

    def _fetch(self, c: RpcClient, h: str, now: float) -> SeenBlock:
        b = c.call("chain.block", {"hash": h})
        txids = b["txs"]
        watch = self.watch
        blk = SeenBlock(
            b["height"], b["prev_hash"], txids, now, sum(1 for t in txids if t in watch)
        )
        self.blocks[h] = blk
        return blk

    def _walk(self, c: RpcClient, tip: str, height: int, now: float) -> None:
        h = tip
        while height > self.floor and h not in self.blocks:
            blk = self._fetch(c, h, now)
            h, height = blk.prev, blk.height - 1

    def _chain_from(self, tip: str, height: int) -> list[SeenBlock]:
        out: list[SeenBlock] = []
        h = tip
        while height > self.floor:
            blk = self.blocks.get(h)
            if blk is None:
                break
            out.append(blk)
            h, height = blk.prev, blk.height - 1
        out.reverse()
        return out

    def poll_once(self) -> None:
        for name, c in self.clients.items():
            try:
                info = c.call("node.info")
                now = time.monotonic()
                self.tips[name] = (info["height"], info["tip"])
                self.mempool[name] = info["mempool_size"]
                self.mining[name] = bool(info["mining"])
                self._walk(c, info["tip"], info["height"], now)
            except (RpcError, RpcUnavailable, OSError, ValueError, KeyError) as exc:
                self.errors[f"{name}: {type(exc).__name__}"] += 1
        height, tip = max(self.tips.values())
        if tip != self.best:
            self.best, self.best_height = tip, height
            self.confirmed_n = sum(b.ours for b in self._chain_from(tip, height))
        self.polls += 1

    def run(self) -> None:
        while not self._halt.is_set():
            t0 = time.monotonic()
            self.poll_once()
            self._halt.wait(max(0.0, self.interval - (time.monotonic() - t0)))

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=30)

    def close(self) -> None:
        for c in self.clients.values():
            c.close()

    def main_chain(self) -> list[SeenBlock]:
        """Blocks above the floor on the chain of the highest node, oldest
        first (fetching any this tracker has not seen)."""
        name, (height, tip) = max(self.tips.items(), key=lambda kv: kv[1])
        self._walk(self.clients[name], tip, height, time.monotonic())
        return self._chain_from(tip, height)
