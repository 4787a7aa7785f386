"""A bug in execution (an exception no rule names) must not wedge the node:
the block that triggers it is set aside, the tx that triggers it in a
template is dropped, and the chain goes on."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from powernode.chain.ledger import Ledger
from powernode.core.errors import InternalFault
from powernode.engines.accounts import TransferHandler
from tests.unit.helpers import (
    ALICE,
    BOB,
    DAVE,
    MINER_B,
    MONO,
    LedgerFactory,
    make_params,
    template,
    transfer,
)

T = 1_010
CURSED = 13  # the amount our injected bug chokes on


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return LedgerFactory(tmp_path).open(make_params())


def _buggy(monkeypatch: pytest.MonkeyPatch) -> None:
    real = TransferHandler.apply

    def apply(self: TransferHandler, view: Any, ctx: Any, tx: Any, payload: Any) -> Any:
        if payload.amount == CURSED:
            raise KeyError("injected bug")
        return real(self, view, ctx, tx, payload)

    monkeypatch.setattr(TransferHandler, "apply", apply)


def test_block_that_hits_a_bug_is_set_aside_and_the_chain_goes_on(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cursed = transfer(ALICE, DAVE, CURSED, nonce=0)
    ledger.submit_tx(cursed, now=T)
    bad = template(ledger, T)  # built before the bug exists: a valid block
    assert bad.txs == (cursed,)
    # Another miner's template replaces ours, so ``bad`` arrives like a
    # peer's block and is executed (our own is sealed from its template).
    template(ledger, T, miner=MINER_B)
    _buggy(monkeypatch)
    with pytest.raises(InternalFault) as ei:
        ledger.submit_block(bad, now=T, mono=MONO)
    assert ei.value.code == "internal_error" and ledger.chain.height == 0
    # One event with fields (README's log table), the traceback attached.
    (rec,) = [r for r in caplog.records if r.getMessage() == "block.internal_error"]
    assert rec.levelno == logging.ERROR and rec.exc_info is not None
    assert rec.fields == {"height": 1, "hash": bad.hash}  # type: ignore[attr-defined]
    # Not retried forever: a competing block at the same height connects.
    ledger.mempool.clear()
    ledger.submit_tx(transfer(BOB, DAVE, 5, nonce=0), now=T)
    good = template(ledger, T + 1, miner=MINER_B)
    outcome, _ = ledger.submit_block(good, now=T + 1, mono=MONO)
    assert outcome == "connected" and ledger.chain.tip.hash == good.hash


def test_tx_that_hits_a_bug_in_a_template_is_dropped(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    _buggy(monkeypatch)
    cursed = transfer(ALICE, DAVE, CURSED, nonce=0)
    fine = transfer(BOB, DAVE, 5, nonce=0)
    ledger.submit_tx(cursed, now=T)
    ledger.submit_tx(fine, now=T)
    block = template(ledger, T)
    assert block.txs == (fine,)
    assert ledger.tx_status(cursed.txid)["error"]["code"] == "internal_error"
    outcome, _ = ledger.submit_block(block, now=T, mono=MONO)
    assert outcome == "connected"
