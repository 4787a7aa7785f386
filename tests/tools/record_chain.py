"""Record a mixed chain for ``tests/unit/test_recorded_chain.py``.

Run once, with the code whose consensus bytes the test pins:

    .venv/bin/python -m tests.tools.record_chain > tests/data/recorded_chain.json

The chain mixes every tx type of every engine: transfers (one failing),
registrations, orders of each product, price rule and time in force, cancels
(some refused), expiries, gate closures and a uniform-price auction, at block
times that cross them. The file holds the genesis document and, per block,
its raw bytes, hash, state root, and stored receipts and undo data (as the
store writes them), and
the final state's digest. Refactors that must not change consensus replay it
and compare every field; a change that means to change consensus records it
anew and says so.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from random import Random
from typing import Any

from powernode.core import encoding
from powernode.core.crypto import sha256
from powernode.state.genesis import parse_genesis
from tests.unit import test_market_properties as props
from tests.unit.helpers import LedgerFactory, active_blocks, genesis_doc, transfer
from tests.unit.market_helpers import ALICE, BOB, CAROL, DAVE, ERIN, T0, Market
from tests.unit.test_market_properties import (
    BOOKS,
    CAPACITY_W,
    MARKETS,
    PARAMS,
    ROLE,
    WHO,
    queue_actions,
    random_stream,
)

SEEDS = (11, 23, 42, 77)


def queue_shifted(m: Market, actions: list[Any], base: int) -> None:
    """``queue_actions`` with every slot and expiry ``base`` seconds later."""
    shifted = []
    for a in actions:
        if a[0] == "place":
            *head, expiry = a
            shifted.append((*head, expiry + base if expiry else 0))
        else:
            shifted.append(a)
    books = BOOKS
    try:
        props.BOOKS = tuple((p, s + base) for p, s in books)
        queue_actions(m, shifted)
    finally:
        props.BOOKS = books


def state_digest(items: list[tuple[str, bytes, bytes]]) -> str:
    return sha256(encoding.encode(sorted(items))).hex()


def record(root: Path) -> dict[str, Any]:
    factory = LedgerFactory(root)
    try:
        doc = genesis_doc(
            timestamp=T0,
            markets=MARKETS,
            allocations={a.hex(): v for a, v in PARAMS.allocations} | {ERIN.address.hex(): 1_000},
        )
        params = parse_genesis(doc)
        ledger = factory.open(params)
        m = Market(ledger)
        for k in WHO:
            m.register(k, ROLE[k], capacity_w=CAPACITY_W)
        m.register(ERIN, "consumer")
        m.mine()
        # ERIN's buy cannot be escrowed: a failed receipt
        m.place(ERIN, "buy", product="spot", slot=BOOKS[0][1], energy=10_000, price=500_000)
        rng = Random(2026)
        for seed in SEEDS:
            # each stream trades in books of its own, after the last one's
            base = (m.now - T0) // 900 * 900 + 900
            for dt, actions in random_stream(seed):
                queue_shifted(m, actions, base)
                who = rng.choice((ALICE, BOB, CAROL, DAVE))
                m.queue(
                    transfer(who, rng.choice(WHO), rng.randint(1, 5_000_000), nonce=m.nonce(who))
                )
                m.mine(max(m.now + dt, m.now + 1))
        # a transfer that fails in execution (more than the balance)
        m.queue(transfer(DAVE, ALICE, 10**15, nonce=m.nonce(DAVE)))
        # and blocks from the ledger's own template (mempool path)
        for k in (ALICE, BOB):
            m.submit(transfer(k, CAROL, 1_000, nonce=m.nonce(k)))
        m.mine()
        m.mine(m.now + 3_600)  # past every gate and expiry
        blocks = []
        for b in active_blocks(ledger):
            db = ledger.chain.store.db
            receipts = db.execute("SELECT data FROM receipts WHERE hash=?", (b.hash,)).fetchone()
            undo = db.execute("SELECT data FROM undo WHERE hash=?", (b.hash,)).fetchone()
            blocks.append(
                {
                    "raw": b.raw.hex(),
                    "hash": b.hash.hex(),
                    "state_root": b.header.state_root.hex(),
                    "receipts": bytes(receipts[0]).hex(),
                    "undo": bytes(undo[0]).hex(),
                }
            )
        return {
            "_note": __doc__.strip().splitlines()[0],
            "genesis": doc,
            "params_commitment": params.commitment().hex(),
            "genesis_hash": ledger.chain.active[0].hash.hex(),
            "blocks": blocks,
            "state_digest": state_digest(list(ledger.chain.store.iter_state())),
        }
    finally:
        factory.close_all()


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        json.dump(record(Path(d)), sys.stdout, indent=1)
        sys.stdout.write("\n")


if __name__ == "__main__":
    main()
