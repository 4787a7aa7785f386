"""In-process networks of nodes on loopback: start, connect, cut, heal, sync;
and ``async_wait_until``, the asyncio twin of ``powernode.devnet.wait``'s
``wait_until`` for conditions that in-process nodes (on this event loop) must
make true.

Links are cut with the nodes' own peer controls, as RPC ``peer.ban`` does:
each node bans the other's listen address, which bans the node id proven
there too, so neither dials nor accepts the other (and address gossip
cannot undo it); an unban plus a dial heals the link.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.wait import DEFAULT_INTERVAL, DEFAULT_TIMEOUT, Poll
from powernode.node.config import load_config
from powernode.node.node import Node
from powernode.node.p2p import P2P
from tests.harness import TEST_CHAIN

T = TypeVar("T")


@overload
async def async_wait_until(
    cond: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = ...,
    interval: float = ...,
    what: str = ...,
) -> T: ...


@overload
async def async_wait_until(
    cond: Callable[[], T | None],
    *,
    timeout: float = ...,
    interval: float = ...,
    what: str = ...,
) -> T: ...


async def async_wait_until(
    cond: Callable[[], Any],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    what: str = "condition",
) -> Any:
    """``wait_until`` for the event loop: the same ``Poll`` rule and
    ``WaitTimeout``, sleeping with ``asyncio.sleep`` so the nodes run
    meanwhile; ``cond`` may be a coroutine function."""
    poll = Poll(what=what, timeout=timeout, interval=interval)
    while True:
        try:
            result = cond()
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            if not poll.absorb(exc):
                raise
        else:
            if result:
                return result
        await asyncio.sleep(poll.pause())


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
            root / "genesis.json",
            dev_genesis({u.address: funds for u in users}, chain_id=TEST_CHAIN),
        )
        self.nodes: list[Node] = []

    async def add_node(self, *, connect_to: Sequence[Node] = (), **p2p: int) -> Node:
        connect_to = list(connect_to)
        datadir = self.root / f"node{len(self.nodes)}"
        init_datadir(datadir, self.genesis)
        enable_p2p(datadir, peers=(), **{"ban_seconds": 600, **p2p})
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


def p2p_of(node: Node) -> P2P:
    assert node.p2p is not None, "p2p is off on this node"
    return node.p2p


def linked(a: Node, b: Node) -> bool:
    pa, pb = p2p_of(a), p2p_of(b)
    return any(p.proto.remote and p.proto.remote.node_id == pb.node_id for p in pa.peers.values())


async def connect(a: Node, b: Node, *, timeout: float = 15.0) -> None:
    p2p_of(a).add_address(p2p_of(b).listen)
    await async_wait_until(
        lambda: linked(a, b) and linked(b, a), timeout=timeout, what="connection"
    )


async def cut(a: Node, b: Node, *, timeout: float = 15.0) -> None:
    """Sever the link both ways and keep it severed."""
    pa, pb = p2p_of(a), p2p_of(b)
    pa.ban_address(pb.listen, 3600, "test_partition")
    pb.ban_address(pa.listen, 3600, "test_partition")
    await async_wait_until(
        lambda: not linked(a, b) and not linked(b, a), timeout=timeout, what="link cut"
    )


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
    await async_wait_until(lambda: len(tips(nodes)) == 1, timeout=timeout, what="equal tips")


async def sync_mempools(nodes: Sequence[Node], *, timeout: float = 30.0) -> None:
    def same() -> bool:
        pools = [set(n.ledger.mempool.by_id) for n in nodes]
        return all(p == pools[0] for p in pools)

    await async_wait_until(same, timeout=timeout, what="equal mempools")
