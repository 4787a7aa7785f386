"""Consensus bytes pinned by a recorded chain.

``tests/data/recorded_chain.json`` was recorded by ``tests/tools/record_chain.py``
before the engine-interface refactor: a mixed chain of every engine's tx
types. Replaying it from its genesis document must give the same genesis,
and for every block the same hash, state root, stored receipts and undo
data, and the same final state, byte for byte. A change that means to change
consensus records the file anew (and bumps the chain id); any other change
that makes this fail has changed consensus by accident.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack

from powernode.core.block import decode_block
from powernode.engines.market import queries
from powernode.state.genesis import genesis_block, parse_genesis_json
from tests.tools.record_chain import state_digest
from tests.unit.helpers import MONO, LedgerFactory

RECORDED = Path(__file__).parents[1] / "data" / "recorded_chain.json"


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RECORDED.read_text())
    return data


def test_recording_covers_every_tx_type_and_outcome() -> None:
    data = load()
    types: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    events: Counter[str] = Counter()
    for b in data["blocks"]:
        types.update(tx.type for tx in decode_block(bytes.fromhex(b["raw"])).txs)
        for ok, _fee, code, _msg, evs in msgpack.unpackb(bytes.fromhex(b["receipts"])):
            codes["ok" if ok else code] += 1
            events.update(e["event"] for e in evs)
    assert set(types) == {"transfer", "participant.register", "order.place", "order.cancel"}
    assert {"ok", "insufficient_funds", "order_not_open", "gate_closed", "wrong_role"} <= set(codes)
    assert {"trade", "order_cancelled", "order_killed", "order_filled"} <= set(events)


def test_replay_gives_the_recorded_bytes(tmp_path: Path) -> None:
    data = load()
    params = parse_genesis_json(json.dumps(data["genesis"]))
    assert params.commitment().hex() == data["params_commitment"]
    assert genesis_block(params).hash.hex() == data["genesis_hash"]
    factory = LedgerFactory(tmp_path)
    try:
        ledger = factory.open(params)
        store = ledger.chain.store
        for i, rec in enumerate(data["blocks"]):
            block = decode_block(bytes.fromhex(rec["raw"]))
            assert block.hash.hex() == rec["hash"], i
            outcome, _ = ledger.submit_block(block, now=block.header.timestamp, mono=MONO)
            assert outcome == "connected", (i, outcome)
            tip = ledger.chain.tip
            assert (tip.hash.hex(), tip.header.state_root.hex()) == (rec["hash"], rec["state_root"])
            row = store.db.execute("SELECT data FROM receipts WHERE hash=?", (block.hash,))
            assert bytes(row.fetchone()[0]).hex() == rec["receipts"], i
            row = store.db.execute("SELECT data FROM undo WHERE hash=?", (block.hash,))
            assert bytes(row.fetchone()[0]).hex() == rec["undo"], i
        assert state_digest(list(store.iter_state())) == data["state_digest"]
        # the gate-closure auctions ran: a reserve book traded at one price
        reserve = queries.trades(ledger.chain.state, product="reserve")
        assert (
            reserve and len({t["price"] for t in reserve if t["slot"] == reserve[0]["slot"]}) == 1
        )
    finally:
        factory.close_all()
