"""A network of real node processes on 127.0.0.1, for e2e tests.

The network is a testnet directory as ``scripts/testnet.py`` writes it
(``powernode.devnet.testnet``): one genesis, a data dir per node with p2p on
and every other node as a bootstrap peer, each node started the README way
(``powernode run``, see ``ProcessNode``). Leaving the context manager stops
every node (SIGTERM, then SIGKILL), whatever happened; data dirs and logs stay
under ``root`` for the post-mortem.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from powernode.client import RpcClient
from powernode.devnet.process import ProcessNode
from powernode.devnet.testnet import TestnetLayout, start_testnet
from powernode.devnet.wait import wait_until


class ProcessNetwork:
    def __init__(self, root: Path, genesis: dict[str, Any], n: int, *, mining: bool = False):
        self.root = root
        self.genesis = genesis
        self.n = n
        self.mining = mining
        self.nodes: list[ProcessNode] = []

    def start(self, *, timeout: float = 60.0) -> list[ProcessNode]:
        """Start every node, then wait until each one is connected to all the others."""
        layout = TestnetLayout.create(self.root, self.genesis, nodes=self.n)
        self.nodes = start_testnet(layout, mining=self.mining, timeout=timeout)
        wait_until(self.meshed, timeout=timeout, what=f"{self.n} nodes fully connected")
        return self.nodes

    def meshed(self) -> bool:
        for node in self.nodes:
            peers = node.call("peer.list")
            linked = {p["listen"] for p in peers if p.get("direction") in ("in", "out")}
            if len(linked) < self.n - 1:
                return False
        return True

    def clients(self, *, timeout: float = 30.0) -> list[RpcClient]:
        """One fresh RPC client per node (for use from another thread)."""
        return [RpcClient(node.endpoint, timeout=timeout) for node in self.nodes]

    def tips(self) -> list[tuple[str, str]]:
        """(tip hash, state root) of every node."""
        infos = [node.call("node.info") for node in self.nodes]
        return [(i["tip"], i["state_root"]) for i in infos]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> ProcessNetwork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
