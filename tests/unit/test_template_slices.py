"""The miner's template built in slices, the event loop free in between, is
the template built in one go; a tip that moves between slices starts it
afresh on the new tip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from powernode.chain.ledger import Ledger
from powernode.core.block import Block
from powernode.node import node as node_mod
from powernode.node.config import NodeConfig
from powernode.node.node import Node
from tests.unit.helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    GENESIS_TIME,
    MINER,
    MINER_B,
    LedgerFactory,
    mine,
    transfer,
)

T = GENESIS_TIME + 5


def _pool(ledger: Ledger, nonces: int = 12) -> None:
    # Three senders with different fees, so the candidates interleave.
    for n in range(nonces):
        for i, (who, fee) in enumerate(((ALICE, 10), (BOB, 30), (CAROL, 20))):
            ledger.submit_tx(transfer(who, DAVE, 1 + i, nonce=n, fee=fee), now=T)


def _sliced(ledger: Ledger, limit: int) -> tuple[Block, int]:
    slices = 1
    while not ledger.templates.extend(MINER.address, now=T, limit=limit):
        slices += 1
    return ledger.template(MINER.address, now=T), slices


def test_a_template_built_in_slices_is_the_one_built_at_once(
    factory: LedgerFactory, params: Any
) -> None:
    a, b = factory.open(params), factory.open(params)
    _pool(a)
    _pool(b)
    sliced, slices = _sliced(a, limit=5)
    whole = b.template(MINER.address, now=T)
    assert slices == 8  # 36 txs, 5 at a time: the 8th slice finds one left
    assert [tx.txid for tx in sliced.txs] == [tx.txid for tx in whole.txs]
    assert len(sliced.txs) == 36
    assert sliced.header == whole.header


def test_a_tip_that_moves_between_slices_restarts_the_template_on_it(
    factory: LedgerFactory, params: Any
) -> None:
    a, b = factory.open(params), factory.open(params)
    _pool(a)
    _pool(b)
    assert not a.templates.extend(MINER.address, now=T, limit=5)
    # A peer's block (here: another miner's template, all 36 txs) connects
    # between two slices, and 3 more txs arrive.
    peer = mine(b, T, MINER_B)
    outcome, _ = a.submit_block(peer, now=T, mono=0.0)
    assert outcome == "connected"
    for who in (ALICE, BOB, CAROL):
        a.submit_tx(transfer(who, DAVE, 1, nonce=12), now=T)
    tmpl, _ = _sliced(a, limit=2)
    assert tmpl.header.prev_hash == peer.hash
    assert {tx.nonce for tx in tmpl.txs} == {12} and len(tmpl.txs) == 3
    # Its state root is the one executing it on the new tip gives.
    a.templates._kept = None
    assert a.template(MINER.address, now=T).header.state_root == tmpl.header.state_root


async def test_the_nodes_template_is_built_in_slices(
    tmp_path: Path, factory: LedgerFactory, params: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = factory.open(params), factory.open(params)
    _pool(a, nonces=50)  # 150 txs
    _pool(b, nonces=50)
    monkeypatch.setattr(node_mod, "TEMPLATE_SLICE", 40)
    slices: list[int] = []
    extend = a.templates.extend

    def counted(miner: bytes, *, now: int, limit: int) -> bool:
        slices.append(limit)
        return extend(miner, now=now, limit=limit)

    monkeypatch.setattr(a.templates, "extend", counted)
    node = Node(NodeConfig(datadir=tmp_path))
    node._ledger = a
    node.mining_address = MINER.address
    block = await node._template()
    whole = b.template(MINER.address, now=block.header.timestamp)
    assert slices == [40, 40, 40, 40]  # the 4th finds 30: done
    assert [tx.txid for tx in block.txs] == [tx.txid for tx in whole.txs]
    assert len(block.txs) == 150
