from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from powernode.client import endpoint_from_datadir
from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import init_datadir, write_genesis
from powernode.devnet.devchain import ALWAYS_OPEN_MARKETS, dev_genesis
from powernode.node.config import load_config
from powernode.node.node import Node
from tests.harness import TEST_CHAIN
from tests.harness.arpc import AsyncRpc

FUNDS = 1_000 * 1_000_000


@dataclass
class DevNode:
    node: Node
    rpc: AsyncRpc
    genesis: Path
    datadir: Path
    users: list[KeyPair]
    chain_id: str


@pytest.fixture
def users() -> list[KeyPair]:
    return [KeyPair.generate() for _ in range(4)]


@pytest.fixture
async def dev_node(tmp_path: Path, users: list[KeyPair]) -> AsyncIterator[DevNode]:
    """An in-process dev node (miner off) with four funded users."""
    genesis = write_genesis(
        tmp_path / "genesis.json",
        dev_genesis({u.address: FUNDS for u in users}, chain_id=TEST_CHAIN),
    )
    datadir = tmp_path / "node"
    init_datadir(datadir, genesis)
    node = Node(load_config(datadir))
    await node.start()
    dev: DevNode | None = None
    try:
        async with AsyncRpc(endpoint_from_datadir(datadir)) as rpc:
            dev = DevNode(node, rpc, genesis, datadir, users, TEST_CHAIN)
            yield dev
    finally:
        # A test may have replaced the node (restart tests); stop whichever runs.
        await (dev.node if dev else node).stop()


@asynccontextmanager
async def running_node(
    tmp_path: Path, users: list[KeyPair], genesis_doc: dict[str, Any], *, p2p: bool = False
) -> AsyncIterator[DevNode]:
    """An in-process node (miner off) of the chain ``genesis_doc`` describes,
    stopped on exit. ``p2p``: listening, no peers."""
    genesis = write_genesis(tmp_path / "genesis.json", genesis_doc)
    datadir = tmp_path / "node"
    init_datadir(datadir, genesis, p2p=p2p)
    node = Node(load_config(datadir))
    await node.start()
    try:
        async with AsyncRpc(endpoint_from_datadir(datadir)) as rpc:
            yield DevNode(node, rpc, genesis, datadir, users, TEST_CHAIN)
    finally:
        await node.stop()


@asynccontextmanager
async def authority_node(
    tmp_path: Path, users: list[KeyPair], *, interval_seconds: int = 900, p2p: bool = False
) -> AsyncIterator[DevNode]:
    """An in-process dev node (miner off) whose only certificate authority is
    users[3], metering ``interval_seconds`` intervals with a half-hour reading
    window; markets trade around the clock. ``p2p``: listening, no peers."""
    doc = dev_genesis(
        {u.address: FUNDS for u in users}, chain_id=TEST_CHAIN, markets=ALWAYS_OPEN_MARKETS
    )
    doc["certificates"] = {
        "authorities": [users[3].address.hex()],
        "interval_seconds": interval_seconds,
        "reading_window": 1800,
        "validity": 604800,
    }
    async with running_node(tmp_path, users, doc, p2p=p2p) as dev:
        yield dev
