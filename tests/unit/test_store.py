"""The block store: the tx index survives restarts and reorgs, and a schema 2
data dir is migrated in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgpack

from powernode.chain.store import SCHEMA_VERSION
from powernode.core.params import ChainParams
from tests.unit.helpers import (
    ALICE,
    BOB,
    GENESIS_TIME,
    MINER_B,
    LedgerFactory,
    active_blocks,
    mine,
    replay,
    transfer,
)

T = GENESIS_TIME + 100


def _confirmed(factory: LedgerFactory, params: ChainParams, path: Path) -> list[bytes]:
    """Three blocks with txs on a ledger at ``path``; their tx ids."""
    ledger = factory.open(params, path)
    ids = []
    for h in range(3):
        for n in (2 * h, 2 * h + 1):
            tx = transfer(ALICE, BOB, 1_000 + n, nonce=n)
            ledger.submit_tx(tx, now=T)
            ids.append(tx.txid)
        mine(ledger, T + h)
    return ids


def test_tx_index_survives_restart(factory: LedgerFactory, params: ChainParams) -> None:
    path = factory.path()
    ids = _confirmed(factory, params, path)
    factory.close_all()
    again = factory.open(params, path)
    blocks = active_blocks(again)
    for k, txid in enumerate(ids):
        status = again.tx_status(txid)
        assert status["status"] == "confirmed"
        assert status["block"] == blocks[k // 2].hash.hex()
        assert status["index"] == k % 2
        assert status["receipt"]["status"] == "ok"


def test_tx_index_follows_a_reorg(factory: LedgerFactory, params: ChainParams) -> None:
    ledger = factory.open(params)
    tx = transfer(ALICE, BOB, 5, nonce=0)
    ledger.submit_tx(tx, now=T)
    mine(ledger, T)
    assert ledger.chain.store.find_tx(tx.txid) is not None
    # A longer branch without the tx: the index must forget it (the tx goes
    # back to the mempool), and find the blocks of the new branch by height.
    other = factory.open(params)
    side = [mine(other, T + i, MINER_B) for i in range(2)]
    for b in side:
        ledger.submit_block(b, now=T + 5, mono=0.0)
    assert ledger.chain.tip.hash == side[-1].hash
    assert ledger.chain.store.find_tx(tx.txid) is None
    assert ledger.tx_status(tx.txid)["status"] == "pending"


def test_tx_index_without_sqlite_json(factory: LedgerFactory, params: ChainParams) -> None:
    """The fallback for an SQLite built without JSON writes the same rows."""
    ledgers = [factory.open(params), factory.open(params)]
    ledgers[1].chain.store._json_each = False
    txs = [transfer(ALICE, BOB, 1 + n, nonce=n) for n in range(20)]
    for ledger in ledgers:
        for tx in txs:
            ledger.submit_tx(tx, now=T)
        mine(ledger, T)
    rows = [
        ledger.chain.store.db.execute(
            "SELECT txid, height, pos FROM txindex ORDER BY txid"
        ).fetchall()
        for ledger in ledgers
    ]
    assert rows[0] == rows[1]
    assert sorted(r[2] for r in rows[0]) == list(range(20))


def _downgrade_to_schema_2(path: Path) -> None:
    """Rewrite a schema 3 store into the schema 2 layout: the body inside the
    blocks row, the block hash in the tx index."""
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(
        """
        BEGIN;
        ALTER TABLE blocks ADD COLUMN body BLOB;
        UPDATE blocks SET body = (SELECT raw FROM bodies WHERE bodies.hash = blocks.hash);
        CREATE TABLE blocks2 (
            hash BLOB PRIMARY KEY, prev BLOB NOT NULL, height INTEGER NOT NULL,
            header BLOB NOT NULL, body BLOB, status INTEGER NOT NULL, seq INTEGER NOT NULL
        );
        INSERT INTO blocks2 SELECT hash, prev, height, header, body, status, seq FROM blocks;
        DROP TABLE blocks;
        ALTER TABLE blocks2 RENAME TO blocks;
        DROP TABLE bodies;
        CREATE TABLE txindex2 (
            txid BLOB PRIMARY KEY, block BLOB NOT NULL, pos INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO txindex2 SELECT t.txid, c.hash, t.pos FROM txindex t JOIN chain c ON c.height = t.height;
        DROP TABLE txindex;
        ALTER TABLE txindex2 RENAME TO txindex;
        COMMIT;
        """
    )
    db.execute("UPDATE meta SET value=? WHERE key='schema'", (msgpack.packb(2),))
    db.close()


def test_schema_2_store_is_migrated(factory: LedgerFactory, params: ChainParams) -> None:
    path = factory.path()
    ids = _confirmed(factory, params, path)
    before = factory.stores[-1]
    expected = {txid: before.find_tx(txid) for txid in ids}
    tip = before.get_meta("tip")
    factory.close_all()
    _downgrade_to_schema_2(path)

    again = factory.open(params, path)
    store = again.chain.store
    assert msgpack.unpackb(store.get_meta("schema") or b"") == SCHEMA_VERSION
    assert again.chain.tip.hash == tip
    assert {txid: store.find_tx(txid) for txid in ids} == expected
    for b in active_blocks(again):
        assert store.get_block_raw(b.hash) == b.raw
    # and the migrated store keeps working
    tx = transfer(ALICE, BOB, 7, nonce=len(ids))
    again.submit_tx(tx, now=T)
    mine(again, T + 10)
    assert again.tx_status(tx.txid)["status"] == "confirmed"


def test_connected_block_leaves_no_stale_pool_entries(
    factory: LedgerFactory, params: ChainParams
) -> None:
    """Connecting drops each sender's used nonces from the pool, whole queues
    at once, and keeps the txs that are still ahead of the account nonce."""
    ledger = factory.open(params)
    for n in range(4):
        ledger.submit_tx(transfer(ALICE, BOB, 10, nonce=n), now=T)
    ledger.submit_tx(transfer(BOB, ALICE, 10, nonce=0), now=T)
    block = mine(ledger, T)
    assert len(block.txs) == 5
    assert len(ledger.mempool) == 0
    assert ledger.mempool.total_bytes == 0
    assert not ledger.mempool.by_sender

    # A block that uses only part of a queue: the rest stays, costs intact.
    txs = [transfer(ALICE, BOB, 10, nonce=n) for n in range(4, 10)]
    other = replay(factory, params, [block], T)
    for tx in txs[:2]:
        other.submit_tx(tx, now=T)
    used = mine(other, T + 1)
    for tx in txs:
        ledger.submit_tx(tx, now=T + 1)
    outcome, _ = ledger.submit_block(used, now=T + 1, mono=0.0)
    assert outcome == "connected"
    pool = ledger.mempool
    assert [e.tx for e in pool.by_sender[ALICE.address].values()] == txs[2:]
    assert pool.slot(ALICE.address, 10) == (None, 4 * (10 + 10))
    assert pool.total_bytes == sum(tx.size for tx in txs[2:])
