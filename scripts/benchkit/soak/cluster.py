"""The soak's testnet: four mining node processes on 127.0.0.1 started the
way ``scripts/testnet.py up`` starts them, killed with SIGKILL and started
again, cut into two sides with ``peer.ban`` and healed with ``peer.unban`` and
``peer.add``, all over RPC; and settling (miners paused until every node
holds one tip)."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from powernode.client import RpcClient, RpcError, RpcUnavailable
from powernode.devnet.datadir import LOOPBACK
from powernode.devnet.process import ProcessNode
from powernode.devnet.testnet import TestnetLayout, start_testnet
from powernode.devnet.wait import WaitTimeout, wait_until

BAN_SECONDS = 3600  # longer than any partition: the heal lifts it
RPC_TIMEOUT = 10.0
CHAIN_EVENT = re.compile(r"(block\.connected|block\.disconnected) height=(\d+) hash=(\S+)")
LOADED = re.compile(r"chain\.loaded .*height=(\d+) hash=(\S+)")


@dataclass(frozen=True)
class Restart:
    """What a killed node's log says: where its chain stood when it died (the
    last block connected, or below the last one disconnected) and where it
    loaded its chain on the way back up."""

    died_at: int
    died_hash: str
    loaded_at: int
    loaded_hash: str
    ms: float

    @property
    def exact(self) -> bool:
        return (self.loaded_at, self.loaded_hash) == (self.died_at, self.died_hash)


def last_tip_in_log(text: str) -> tuple[int, str]:
    """(height, hash) of the tip the log last reports: a connect puts the tip
    at its block; a disconnect puts it one below (its hash is not logged)."""
    height, block = 0, ""
    for m in CHAIN_EVENT.finditer(text):
        if m.group(1) == "block.connected":
            height, block = int(m.group(2)), m.group(3)
        else:
            height, block = int(m.group(2)) - 1, ""
    return height, block


class Cluster:
    def __init__(self, layout: TestnetLayout, *, miner_cpu: int) -> None:
        self.layout = layout
        self.miner_cpu = miner_cpu
        self.nodes: list[ProcessNode] = []
        self._clients: dict[int, RpcClient] = {}
        self.cut: tuple[list[int], list[int]] | None = None

    # --- lifecycle --------------------------------------------------------------

    def start(self, *, timeout: float, log: Callable[[str], None]) -> None:
        self.nodes = start_testnet(
            self.layout, mining=True, miner_cpu=self.miner_cpu, timeout=timeout, log=log
        )
        wait_until(self.meshed, timeout=timeout, what="every node linked to every other")

    def stop(self) -> list[int | None]:
        self.close_clients()
        return [n.stop() for n in self.nodes]

    def p2p(self, i: int) -> str:
        return f"{LOOPBACK}:{self.layout.nodes[i].p2p_port}"

    def alive(self) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if n.is_running()]

    def client(self, i: int) -> RpcClient:
        c = self._clients.get(i)
        if c is None:
            # The cookie is fresh at every start: read it again after a restart.
            c = self._clients[i] = RpcClient(self.nodes[i].endpoint, timeout=RPC_TIMEOUT)
        return c

    def drop_client(self, i: int) -> None:
        c = self._clients.pop(i, None)
        if c is not None:
            c.close()

    def batch(self, i: int, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        try:
            return list(self.client(i).batch(calls))
        except (RpcUnavailable, OSError):
            self.drop_client(i)
            raise

    def close_clients(self) -> None:
        for i in list(self._clients):
            self.drop_client(i)

    def call(self, i: int, method: str, params: dict[str, Any] | None = None) -> Any:
        try:
            return self.client(i).call(method, params)
        except (RpcUnavailable, OSError):
            self.drop_client(i)
            raise

    # --- kill -9 ------------------------------------------------------------------

    def kill(self, i: int) -> tuple[int, int]:
        """SIGKILL node i; (the size of its log then, its pid)."""
        node = self.nodes[i]
        pid = node.pid
        self.drop_client(i)
        node.kill()
        return (node.log_path.stat().st_size if node.log_path.exists() else 0), pid

    def restart(self, i: int, log_offset: int) -> Restart:
        """Start node i again; read from its log where it died and where it
        loaded its chain; ``ms`` from spawn to RPC answering."""
        node = self.nodes[i]
        text = node.log_text()
        started = time.monotonic()
        node.start(timeout=60)
        ms = (time.monotonic() - started) * 1000
        died_at, died_hash = last_tip_in_log(text[:log_offset])
        after = node.log_text()[log_offset:]
        m = LOADED.search(after)
        loaded_at, loaded_hash = (int(m.group(1)), m.group(2)) if m else (-1, "")
        return Restart(died_at, died_hash, loaded_at, loaded_hash, ms)

    # --- partitions -----------------------------------------------------------------

    def linked(self, i: int) -> set[str]:
        peers = self.call(i, "peer.list")
        return {str(p.get("listen")) for p in peers if p.get("direction") in ("in", "out")}

    def meshed(self) -> bool:
        for i in range(len(self.nodes)):
            others = {self.p2p(j) for j in range(len(self.nodes)) if j != i}
            if not others <= self.linked(i):
                return False
        return True

    def partition(self, side_a: list[int], side_b: list[int]) -> None:
        """Each node bans every node of the other side (which closes the links)."""
        self.cut = (side_a, side_b)
        for mine, theirs in ((side_a, side_b), (side_b, side_a)):
            for i in mine:
                for j in theirs:
                    self.call(i, "peer.ban", {"address": self.p2p(j), "seconds": BAN_SECONDS})

    def cut_holds(self) -> bool:
        """No node has a link to the other side."""
        assert self.cut is not None
        for mine, theirs in (self.cut, self.cut[::-1]):
            other = {self.p2p(j) for j in theirs}
            for i in mine:
                if self.linked(i) & other:
                    return False
        return True

    def heal(self, timeout: float) -> None:
        """Lift the bans, dial across again, wait until every node links to every other."""
        assert self.cut is not None
        for mine, theirs in (self.cut, self.cut[::-1]):
            for i in mine:
                for j in theirs:
                    self.call(i, "peer.unban", {"address": self.p2p(j)})
                    self.call(i, "peer.add", {"address": self.p2p(j)})
        self.cut = None
        wait_until(self.meshed, timeout=timeout, interval=0.2, what="the sides linked again")

    # --- settling ---------------------------------------------------------------------

    def tips(self) -> list[tuple[str, str, int]]:
        """(tip, state root, height) of every node."""
        infos = [self.call(i, "node.info") for i in range(len(self.nodes))]
        return [(x["tip"], x["state_root"], x["height"]) for x in infos]

    def settle(self, timeout: float) -> list[tuple[str, str, int]]:
        """Pause every miner and wait until all nodes hold one tip. Two tips of
        equal work stay apart (ties go to the first seen), so if they do not
        meet, node0 mines until its height moves, and they try again."""
        for i in range(len(self.nodes)):
            self.call(i, "miner.stop")
        tries = 0
        while True:
            try:
                wait_until(
                    lambda: len({(x[0], x[1]) for x in self.tips()}) == 1,
                    timeout=timeout / 4,
                    interval=0.2,
                    what="one tip on every node",
                )
                return self.tips()
            except WaitTimeout:
                tries += 1
                if tries >= 4:
                    raise
                h = self.call(0, "node.info")["height"]
                self.call(0, "miner.start")

                def mined(h: int = h) -> bool:
                    return self.call(0, "node.info")["height"] > h

                wait_until(
                    mined,
                    timeout=timeout / 4,
                    what="node0 to mine a tie-breaking block",
                )
                self.call(0, "miner.stop")

    def resume_mining(self) -> None:
        for i in self.alive():
            # A node that does not answer is reported by the next check that needs it.
            with contextlib.suppress(RpcError, RpcUnavailable, OSError):
                self.call(i, "miner.start")
