"""A peer's block on our tip stops the miner's hashing before the block is
connected, not after; a block made here bumps it once it is connected."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from powernode.chain.ledger import Ledger
from powernode.node.config import NodeConfig
from powernode.node.node import Node
from tests.unit.helpers import GENESIS_TIME, LedgerFactory, template


class _Miner:
    """Records the tip the ledger had at each ``new_tip`` call."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.tips: list[bytes] = []

    def new_tip(self) -> None:
        self.tips.append(self.ledger.chain.tip.hash)


def _node(tmp_path: Path, ledger: Ledger) -> tuple[Node, _Miner]:
    node = Node(NodeConfig(datadir=tmp_path))
    node._ledger = ledger
    miner = _Miner(ledger)
    node.miner = cast(Any, miner)
    return node, miner


def test_a_peer_block_pauses_the_miner_before_it_connects(
    tmp_path: Path, factory: LedgerFactory, params: Any
) -> None:
    ours, theirs = factory.open(params), factory.open(params)
    node, miner = _node(tmp_path, ours)
    parent = ours.chain.tip.hash
    block = template(theirs, GENESIS_TIME + 5)
    outcome, _ = node.accept_block(block, source="127.0.0.1:9")
    assert outcome == "connected" and ours.chain.tip.hash == block.hash
    # Once, and while the tip was still the parent.
    assert miner.tips == [parent]


def test_a_block_made_here_bumps_the_miner_after_it_connects(
    tmp_path: Path, factory: LedgerFactory, params: Any
) -> None:
    ours = factory.open(params)
    node, miner = _node(tmp_path, ours)
    block = template(ours, GENESIS_TIME + 5)
    outcome, _ = node.accept_block(block)
    assert outcome == "connected"
    assert miner.tips == [block.hash]
