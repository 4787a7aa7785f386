"""The block store: the tx index survives restarts and reorgs, a schema 2
data dir is migrated in place, and every write is one all-or-nothing
transaction."""

from __future__ import annotations

import functools
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

from powernode.chain.index import HAVE_DATA
from powernode.chain.store import SCHEMA_VERSION, BlockStore
from powernode.core.errors import ParentInvalid
from powernode.core.params import ChainParams
from tests.unit.helpers import (
    ALICE,
    BOB,
    DAVE,
    GENESIS_TIME,
    MINER_B,
    MONO,
    LedgerFactory,
    active_blocks,
    mine,
    rebuild,
    replay,
    template,
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


# --- transactions -----------------------------------------------------------

TABLES = ("meta", "blocks", "bodies", "undo", "receipts", "chain", "txindex", "state")


def dump(store: BlockStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table."""
    return {t: sorted(store.db.execute(f"SELECT * FROM {t}").fetchall()) for t in TABLES}


def fail_on_insert(store: BlockStore, table: str, when: str = "1") -> None:
    """Make the store's next matching INSERT into ``table`` fail in SQLite
    (a per-connection TEMP trigger: the file's schema stays as it is)."""
    store.db.execute(
        f"CREATE TEMP TRIGGER fail_{table} BEFORE INSERT ON {table} WHEN {when}"
        " BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
    )


class Interrupt(BaseException):
    """Stands in for a KeyboardInterrupt or a task cancellation."""


@pytest.mark.parametrize("failure", ["sql", "interrupt"])
def test_failure_inside_connect_leaves_the_store_unchanged(
    factory: LedgerFactory, params: ChainParams, failure: str
) -> None:
    a = factory.open(params)
    a.submit_tx(transfer(ALICE, BOB, 1_000, nonce=0), now=T)
    b1 = mine(a, T)
    a.submit_tx(transfer(ALICE, BOB, 2_000, nonce=1), now=T + 1)
    store = a.chain.store
    before: dict[str, list[tuple[Any, ...]]] = {}
    real_connect = store.connect

    def connect(*args: Any) -> None:
        # the stored block (put_block ran in its own transaction) is what
        # the failed connect must leave behind
        before.update(dump(store))
        real_connect(*args)

    store.connect = connect  # type: ignore[method-assign, assignment]
    if failure == "sql":
        # the new tip is the last write of a connect: everything else is in
        # the transaction when it fails
        fail_on_insert(store, "meta", "NEW.key = 'tip'")
        expected: type[BaseException] = sqlite3.IntegrityError
    else:
        real_index = store._index_txs

        def index_txs(block: Any) -> None:
            # undo, receipts and chain rows are written by now
            assert store.db.execute("SELECT count(*) FROM chain").fetchone() == (3,)
            real_index(block)
            raise Interrupt

        store._index_txs = index_txs  # type: ignore[method-assign]
        expected = Interrupt
    with pytest.raises(expected):
        mine(a, T + 1)
    assert before, "connect was not reached"
    assert not store.db.in_transaction
    assert dump(store) == before
    assert store.get_meta("tip") == b1.hash
    assert store.main_chain() == [a.chain.genesis.hash, b1.hash]
    # the store is intact: a restart connects the stored block
    path = store.path
    factory.close_all()
    again = factory.open(params, path)
    assert again.chain.height == 2
    assert again.chain.store.main_chain()[2] == again.chain.tip.hash


def test_a_failing_statement_leaves_nothing_behind(
    factory: LedgerFactory, params: ChainParams
) -> None:
    """put_block writes the index row, then the body; the body fails."""
    a = factory.open(params)
    block = template(a, T)
    store = a.chain.store
    before = dump(store)
    fail_on_insert(store, "bodies")
    with pytest.raises(sqlite3.IntegrityError, match="injected failure"):
        store.put_block(block, HAVE_DATA, 1)
    assert not store.db.in_transaction
    assert dump(store) == before
    assert store.db.execute("SELECT 1 FROM blocks WHERE hash=?", (block.hash,)).fetchone() is None


def test_transactions_do_not_nest(factory: LedgerFactory, params: ChainParams) -> None:
    """A write method called inside a transaction refuses, and the outer
    transaction rolls back with it."""
    store = factory.open(params).chain.store
    before = dump(store)
    with pytest.raises(RuntimeError, match="do not nest"), store._transaction() as db:
        db.execute("INSERT INTO meta VALUES ('outer', x'01')")
        store.set_meta("inner", b"\x02")
    assert not store.db.in_transaction
    assert dump(store) == before


def test_a_batch_is_one_commit_and_a_crash_inside_it_leaves_the_last_one(
    factory: LedgerFactory, params: ChainParams, tmp_path: Path
) -> None:
    """Blocks submitted inside ``Chain.batch()`` are committed together at
    its end: a copy of the files taken mid-batch (what a kill -9 leaves)
    opens at the tip before the batch, consistent; after it, at its last
    block, with one COMMIT for the whole run."""
    a = factory.open(params)
    store = a.chain.store
    b1 = mine(a, T)
    committed = dump(store)
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)
    with a.chain.batch():
        for n in range(3):
            a.submit_tx(transfer(ALICE, BOB, 1_000 + n, nonce=n), now=T + n)
            mine(a, T + 1 + n)
        assert a.chain.height == 4  # memory runs ahead of the store
        mid = tmp_path / "killed.db"
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{store.path}{suffix}").exists():
                shutil.copyfile(f"{store.path}{suffix}", f"{mid}{suffix}")
        reader = sqlite3.connect(store.path)
        assert reader.execute("SELECT value FROM meta WHERE key='tip'").fetchone() == (b1.hash,)
        reader.close()
    store.db.set_trace_callback(None)
    assert [q for q in statements if q in ("BEGIN IMMEDIATE", "COMMIT")] == [
        "BEGIN IMMEDIATE",
        "COMMIT",
    ]
    assert store.get_meta("tip") == a.chain.tip.hash
    killed = factory.open(params, mid)
    assert killed.chain.tip.hash == b1.hash
    assert dump(killed.chain.store) == committed
    assert killed.chain.state.snapshot() == replay(factory, params, [b1], T).chain.state.snapshot()
    # And the batch's blocks are there after a restart, as one-at-a-time left them.
    path = store.path
    tip, state = a.chain.tip.hash, a.chain.state.snapshot()
    factory.close_all()
    again = factory.open(params, path)
    assert again.chain.tip.hash == tip and again.chain.state.snapshot() == state


def test_a_failure_inside_a_batch_keeps_the_calls_that_completed(
    factory: LedgerFactory, params: ChainParams
) -> None:
    """A write call that fails inside a batch is undone alone (its
    savepoint); the batch still commits the blocks connected before it, as
    the chain in memory holds them, and the error reaches the caller."""
    a = factory.open(params)
    store = a.chain.store
    with pytest.raises(sqlite3.IntegrityError, match="injected failure"), a.chain.batch():
        b1 = mine(a, T)
        a.submit_tx(transfer(ALICE, BOB, 1_000, nonce=0), now=T + 1)
        fail_on_insert(store, "meta", "NEW.key = 'tip'")
        mine(a, T + 1)
    store.db.execute("DROP TRIGGER temp.fail_meta")
    assert not store.db.in_transaction
    assert store.get_meta("tip") == b1.hash == a.chain.tip.hash
    assert store.main_chain() == [a.chain.genesis.hash, b1.hash]
    path = store.path
    state = a.chain.state.snapshot()
    factory.close_all()
    again = factory.open(params, path)
    # The failed block was stored in its own savepoint and connects now.
    assert again.chain.height == 2
    assert again.chain.store.main_chain()[1] == b1.hash
    assert state == replay(factory, params, [b1], T).chain.state.snapshot()


def test_batches_do_not_nest(factory: LedgerFactory, params: ChainParams) -> None:
    store = factory.open(params).chain.store
    before = dump(store)
    with pytest.raises(RuntimeError, match="do not nest"), store.batch():
        store.set_meta("outer", b"\x01")
        with store.batch():
            pass
    assert not store.db.in_transaction
    # The outer batch's completed call is kept (no fault): memory may hold it.
    assert store.get_meta("outer") == b"\x01"
    assert dump(store) != before


# Every public method of BlockStore, by whether it writes.
WRITERS = {
    "batch",
    "commit_batch",
    "open",
    "set_meta",
    "put_block",
    "set_status",
    "connect",
    "disconnect",
    "init_genesis",
    "reset_to_genesis",
}
READERS = {
    "block_count",
    "close",
    "db",
    "get_meta",
    "get_block_raw",
    "iter_index",
    "main_chain",
    "get_undo",
    "get_receipts",
    "find_tx",
    "iter_state",
}
WRITE_VERBS = {"INSERT", "REPLACE", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP"}


def test_no_write_outside_a_transaction(
    factory: LedgerFactory, params: ChainParams, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every statement the store runs is traced through a life that calls
    every public write method (a fresh store, blocks, a reorg onto an invalid
    branch, a restart, a schema migration): each write sits between BEGIN
    IMMEDIATE and COMMIT, and no write method returns inside a transaction."""
    public = {n for n in vars(BlockStore) if not n.startswith("_")}
    assert public == WRITERS | READERS, "classify the new public method"

    traces: dict[int, list[str]] = {}
    conns: list[sqlite3.Connection] = []  # kept alive: ids stay unique
    connect = sqlite3.connect

    def traced_connect(*args: Any, **kw: Any) -> sqlite3.Connection:
        conn = connect(*args, **kw)
        conns.append(conn)
        conn.set_trace_callback(traces.setdefault(id(conn), []).append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    called: list[str] = []
    store_conns: list[int] = []

    def checked(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(self: BlockStore, *args: Any, **kw: Any) -> Any:
            result = method(self, *args, **kw)
            called.append(name)
            store_conns.append(id(self.db))
            # Inside a batch the batch's one transaction stays open.
            assert self._batched or not self.db.in_transaction, (
                f"{name} returned inside a transaction"
            )
            return result

        return wrapper

    for name in WRITERS:
        monkeypatch.setattr(BlockStore, name, checked(name, getattr(BlockStore, name)))

    a = factory.open(params)
    b = factory.open(params)
    a.submit_tx(transfer(ALICE, DAVE, 1_000, nonce=0), now=T)
    mine(a, T - 5)
    a2 = mine(a, T)
    mine(b, T - 5, MINER_B)
    good2 = template(b, T, MINER_B)
    bad2 = rebuild(good2, state_root=b"\x00" * 32)
    b3 = rebuild(good2, txs=[], prev_hash=bad2.hash, height=3, timestamp=T + 5)
    for blk in (b.chain.get_block(b.chain.tip.hash), bad2):
        assert a.submit_block(blk, now=T + 5, mono=MONO)[0] == "side"
    with pytest.raises(ParentInvalid):
        a.submit_block(b3, now=T + 5, mono=MONO)  # disconnect, connect, fail, back
    assert a.chain.tip.hash == a2.hash
    a.chain.store.set_meta("note", b"\x01")
    path = a.chain.store.path
    factory.close_all()
    monkeypatch.setattr(sqlite3, "connect", connect)  # the downgrade is not the store's
    _downgrade_to_schema_2(path)
    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    again = factory.open(params, path)  # migrates
    assert again.chain.tip.hash == a2.hash
    factory.close_all()
    plain = factory.open(params, path)  # and a plain reopen
    plain.chain.reset_for_reindex()  # a reindex: the next load re-applies
    factory.close_all()
    # The invalid branch (more work) is checked again and fails again.
    final = factory.open(params, path)
    assert final.chain.tip.hash == a2.hash
    with final.chain.batch():  # a run of blocks in one transaction (sync)
        mine(final, T + 6)
        final.chain.store.commit_batch()  # a reindex's runs
        mine(final, T + 7)

    assert set(called) == WRITERS
    assert len(set(store_conns)) == 5
    for conn_id in set(store_conns):
        trace = traces[conn_id]
        assert trace, "nothing traced"
        open_tx = False
        writes = 0
        for sql in trace:
            verb = sql.split(None, 1)[0].upper()
            if sql == "BEGIN IMMEDIATE":
                assert not open_tx
                open_tx = True
            elif verb in ("SAVEPOINT", "RELEASE") or sql.startswith("ROLLBACK TO"):
                assert open_tx, f"savepoint outside a transaction: {sql[:80]}"
            elif verb in ("COMMIT", "ROLLBACK"):
                assert open_tx
                open_tx = False
            elif verb in WRITE_VERBS:
                assert open_tx, f"write outside a transaction: {sql[:80]}"
                writes += 1
            else:
                assert verb in ("SELECT", "PRAGMA"), sql[:80]
        assert not open_tx
        assert writes
