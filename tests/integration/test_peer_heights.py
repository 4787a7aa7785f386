"""``peer.list`` heights follow what each peer has, not its hello: the node
that mined the tip sees its peers at its own height once they have the
blocks, and ``node.info``'s ``best_peer_height`` and ``syncing`` agree."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from powernode.client import endpoint_from_datadir
from powernode.core.crypto import KeyPair
from powernode.node.node import Node
from tests.harness.arpc import AsyncRpc
from tests.harness.network import Network, async_wait_until, sync_all


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Network]:
    network = Network(tmp_path, [KeyPair.generate()])
    try:
        yield network
    finally:
        await network.stop()


async def _peer_heights(net: Network, i: int) -> list[int]:
    async with AsyncRpc(endpoint_from_datadir(net.root / f"node{i}")) as rpc:
        peers = await rpc.call("peer.list")
    return [p["height"] for p in peers if "height" in p]


async def _info(net: Network, i: int) -> dict[str, object]:
    async with AsyncRpc(endpoint_from_datadir(net.root / f"node{i}")) as rpc:
        info: dict[str, object] = await rpc.call("node.info")
    return info


def _height(node: Node) -> int:
    return node.ledger.chain.tip.height


async def test_the_miner_sees_its_peers_at_its_height(net: Network) -> None:
    nodes = await net.start(3)
    miner = nodes[0]
    for round_ in range(2):
        await miner.mine_now(3)
        await sync_all(nodes)
        tip = _height(miner)
        assert tip == 3 * (round_ + 1)
        # Every node, the miner included, sees both its peers at the tip.
        for i in range(3):

            async def at_tip(i: int = i, tip: int = tip) -> bool:
                return await _peer_heights(net, i) == [tip, tip]

            await async_wait_until(at_tip, timeout=30, what=f"node{i}'s peers at {tip}")
            info = await _info(net, i)
            assert info["best_peer_height"] == tip
            assert info["syncing"] is False
