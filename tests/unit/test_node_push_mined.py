"""A block our miner finds on our tip goes to the peers before it is
connected here; one found on a tip that moved meanwhile is not sent early."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

from powernode.chain.ledger import Ledger
from powernode.core.block import Block
from powernode.core.crypto import KeyPair
from powernode.node.config import NodeConfig
from powernode.node.node import Node
from tests.unit.helpers import GENESIS_TIME, LedgerFactory, mine, template


class _P2P:
    """Records, for each early push and each chain update, the tip then."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.calls: list[tuple[str, bytes, bytes]] = []

    def push_mined(self, block: Block) -> None:
        self.calls.append(("push_mined", block.hash, self.ledger.chain.tip.hash))

    def chain_updated(self, update: Any, *, tip_moved: bool, made_here: Block | None) -> None:
        assert made_here is not None
        self.calls.append(("chain_updated", made_here.hash, self.ledger.chain.tip.hash))


def _node(tmp_path: Path, ledger: Ledger) -> tuple[Node, _P2P]:
    node = Node(NodeConfig(datadir=tmp_path))
    node._ledger = ledger
    p2p = _P2P(ledger)
    node.p2p = cast(Any, p2p)
    return node, p2p


async def test_a_mined_block_is_pushed_before_it_connects(
    tmp_path: Path, factory: LedgerFactory, params: Any
) -> None:
    ledger = factory.open(params)
    node, p2p = _node(tmp_path, ledger)
    parent = ledger.chain.tip.hash
    block = template(ledger, GENESIS_TIME + 5)
    node._on_mined(block)
    # The connect comes at the loop's next turn, after the peers' writers.
    assert ledger.chain.tip.hash == parent
    await asyncio.sleep(0)
    assert ledger.chain.tip.hash == block.hash
    # Sent while the tip was still its parent, then told once more after the
    # connect (which counts the peers it went to as at its height).
    assert p2p.calls == [
        ("push_mined", block.hash, parent),
        ("chain_updated", block.hash, block.hash),
    ]


def test_a_block_mined_on_a_stale_tip_is_not_pushed(
    tmp_path: Path, factory: LedgerFactory, params: Any
) -> None:
    ledger = factory.open(params)
    node, p2p = _node(tmp_path, ledger)
    stale = template(ledger, GENESIS_TIME + 5)
    # The tip moves on (another miner's block) before the find is handled.
    mine(ledger, GENESIS_TIME + 6, KeyPair.from_seed(bytes(32)))
    node._on_mined(stale)
    assert ledger.chain.tip.hash != stale.hash
    assert [c for c in p2p.calls if c[0] == "push_mined"] == []
