"""A block mined from our own template is not hashed again for its tx root
(the template's tree gave it); anything else is."""

from __future__ import annotations

from typing import Any

import pytest

from powernode.core import block as block_mod
from powernode.core.block import make_block, make_header
from powernode.core.errors import BadMerkleRoot
from powernode.core.merkle import merkle_root
from powernode.devnet.devchain import solve
from tests.unit.helpers import ALICE, BOB, GENESIS_TIME, MONO, LedgerFactory, template, transfer

T = GENESIS_TIME + 5


def _count_roots(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []

    def counted(leaves: Any) -> bytes:
        calls.append(len(leaves))
        return merkle_root(leaves)

    monkeypatch.setattr(block_mod, "merkle_root", counted)
    return calls


def _funded_ledger(factory: LedgerFactory, params: Any) -> Any:
    ledger = factory.open(params)
    for n in range(3):
        ledger.submit_tx(transfer(ALICE, BOB, 1, nonce=n), now=T)
    return ledger


def test_a_block_from_our_template_is_not_hashed_again(
    factory: LedgerFactory, params: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = _funded_ledger(factory, params)
    block = template(ledger, T)
    assert len(block.txs) == 3
    calls = _count_roots(monkeypatch)
    outcome, _ = ledger.submit_block(block, now=T, mono=MONO)
    assert outcome == "connected"
    assert calls == []


def test_the_same_txs_under_a_wrong_root_are_refused(
    factory: LedgerFactory, params: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = _funded_ledger(factory, params)
    good = template(ledger, T)
    h = good.header
    wrong = make_header(
        h.version, h.height, h.prev_hash, h.timestamp, h.target, 0, bytes(32), h.state_root, h.miner
    )
    bad = make_block(solve(wrong), good.txs)
    calls = _count_roots(monkeypatch)
    with pytest.raises(BadMerkleRoot):
        ledger.submit_block(bad, now=T, mono=MONO)
    assert calls == [3]  # hashed in full, not taken from the template


def test_a_peer_block_is_hashed(
    factory: LedgerFactory, params: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = _funded_ledger(factory, params), _funded_ledger(factory, params)
    ours.template(ALICE.address, now=T)  # we hold a template of our own
    block = template(theirs, T)
    calls = _count_roots(monkeypatch)
    outcome, _ = ours.submit_block(block, now=T, mono=MONO)
    assert outcome == "connected"
    assert calls == [3]
