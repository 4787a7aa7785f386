"""A network of real node processes on 127.0.0.1, for e2e tests.

Every node gets a data dir initialised from one genesis document, p2p on and
every other node as a bootstrap peer, and is started the README way
(``powernode run``, see ``ProcessNode``). Leaving the context manager stops
every node (SIGTERM, then SIGKILL), whatever happened; data dirs and logs stay
under ``root`` for the post-mortem.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from powernode.client import RpcClient
from powernode.node.config import load_config
from tests.harness.network import enable_p2p
from tests.harness.nodes import ProcessNode, init_datadir, wait_until, write_genesis


class ProcessNetwork:
    def __init__(self, root: Path, genesis: dict[str, Any], n: int, *, mining: bool = False):
        self.root = root
        self.genesis = write_genesis(root / "genesis.json", genesis)
        self.n = n
        self.mining = mining
        self.nodes: list[ProcessNode] = []

    def start(self, *, timeout: float = 60.0) -> list[ProcessNode]:
        """Start every node, then wait until each one is connected to all the others."""
        dirs = [self.root / f"node{i}" for i in range(self.n)]
        for d in dirs:
            init_datadir(d, self.genesis, mining=self.mining)
        listen = [f"127.0.0.1:{load_config(d).p2p.port}" for d in dirs]
        for i, d in enumerate(dirs):
            enable_p2p(d, peers=[a for j, a in enumerate(listen) if j != i])
        self.nodes = [ProcessNode(d) for d in dirs]
        with ThreadPoolExecutor(self.n) as pool:
            list(pool.map(lambda node: node.start(timeout=timeout), self.nodes))
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
            node.ensure_stopped()

    def __enter__(self) -> ProcessNetwork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
