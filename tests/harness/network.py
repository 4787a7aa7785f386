"""In-process networks of nodes on loopback: start, connect, cut, heal, sync.

Links are cut with the nodes' own peer controls: a mutual ban keeps two
nodes from dialling or accepting each other (and address gossip cannot
undo it), an unban plus a dial heals the link.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from powernode.core.crypto import KeyPair
from powernode.node.config import load_config
from powernode.node.node import Node
from tests.harness.nodes import genesis_doc, init_datadir, write_genesis

T = TypeVar("T")


async def until(
    cond: Callable[[], T | Awaitable[T]], *, timeout: float = 30.0, what: str = "condition"
) -> T:
    """Poll ``cond`` (sync or async) until truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = cond()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def enable_p2p(datadir: Path, *, peers: Sequence[str] = (), **settings: int) -> None:
    """Turn on p2p in a data dir's config, with optional overrides."""
    cfg = datadir.joinpath("config.toml").read_text()
    cfg = cfg.replace("[p2p]\nenabled = false", "[p2p]\nenabled = true")
    peer_list = ", ".join(f'"{p}"' for p in peers)
    cfg = re.sub(r"^peers = \[.*?\]", f"peers = [{peer_list}]", cfg, flags=re.M)
    for key, value in settings.items():
        cfg = re.sub(rf"^{key} = .*$", f"{key} = {value}", cfg, flags=re.M)
    datadir.joinpath("config.toml").write_text(cfg)


class Network:
    """N in-process nodes sharing one dev genesis, p2p on, miners off."""

    def __init__(self, root: Path, users: Sequence[KeyPair], *, funds: int = 10**12) -> None:
        self.root = root
        self.users = list(users)
        self.genesis = write_genesis(
            root / "genesis.json", genesis_doc({u.address: funds for u in users})
        )
        self.nodes: list[Node] = []

    async def add_node(self, *, connect_to: Sequence[Node] = (), **p2p: int) -> Node:
        connect_to = list(connect_to)
        datadir = self.root / f"node{len(self.nodes)}"
        init_datadir(datadir, self.genesis)
        enable_p2p(datadir, **{"ban_seconds": 600, **p2p})
        node = Node(load_config(datadir))
        await node.start()
        self.nodes.append(node)
        for other in connect_to:
            await connect(node, other)
        return node

    async def start(self, n: int, *, mesh: bool = True) -> list[Node]:
        for _ in range(n):
            await self.add_node(connect_to=self.nodes if mesh else ())
        return self.nodes

    async def stop(self) -> None:
        for node in self.nodes:
            await node.stop()


def p2p_of(node: Node):  # type: ignore[no-untyped-def]
    assert node.p2p is not None, "p2p is off on this node"
    return node.p2p


def linked(a: Node, b: Node) -> bool:
    pa, pb = p2p_of(a), p2p_of(b)
    return any(p.proto.remote and p.proto.remote.node_id == pb.node_id for p in pa.peers.values())


async def connect(a: Node, b: Node, *, timeout: float = 15.0) -> None:
    p2p_of(a).add_address(p2p_of(b).listen)
    await until(lambda: linked(a, b) and linked(b, a), timeout=timeout, what="connection")


async def cut(a: Node, b: Node, *, timeout: float = 15.0) -> None:
    """Sever the link both ways and keep it severed."""
    pa, pb = p2p_of(a), p2p_of(b)
    pa.ban(pb.listen, 3600, "test_partition")
    pb.ban(pa.listen, 3600, "test_partition")
    await until(lambda: not linked(a, b) and not linked(b, a), timeout=timeout, what="link cut")


async def heal(a: Node, b: Node, *, timeout: float = 15.0) -> None:
    pa, pb = p2p_of(a), p2p_of(b)
    pa.unban(pb.listen)
    pb.unban(pa.listen)
    await connect(a, b, timeout=timeout)


async def partition(side_a: Sequence[Node], side_b: Sequence[Node]) -> None:
    for a in side_a:
        for b in side_b:
            await cut(a, b)


async def heal_all(side_a: Sequence[Node], side_b: Sequence[Node]) -> None:
    for a in side_a:
        for b in side_b:
            await heal(a, b)


def tips(nodes: Sequence[Node]) -> set[bytes]:
    return {n.ledger.chain.tip.hash for n in nodes}


async def sync_all(nodes: Sequence[Node], *, timeout: float = 60.0) -> None:
    """Wait until every node has the same tip (and so the same state root)."""
    await until(lambda: len(tips(nodes)) == 1, timeout=timeout, what="equal tips")


async def sync_mempools(nodes: Sequence[Node], *, timeout: float = 30.0) -> None:
    def same() -> bool:
        pools = [set(n.ledger.mempool.by_id) for n in nodes]
        return all(p == pools[0] for p in pools)

    await until(same, timeout=timeout, what="equal mempools")
