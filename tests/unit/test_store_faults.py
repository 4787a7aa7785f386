"""Storage faults in process: what the store refuses to open, how a fault
while running is typed and kept (sticky, reported once, never the block's
fault), how SQLite and OS errors are told apart, a damaged ``mempool.dat``
and a ``node.log`` that cannot be written.

A full disk is SQLite's own: ``PRAGMA max_page_count`` caps the file, and a
write past it fails with SQLITE_FULL as on a full file system.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
from pathlib import Path

import msgpack
import pytest

from powernode.chain.ledger import Ledger
from powernode.chain.storage_faults import from_os_error, from_sqlite
from powernode.chain.store import SCHEMA_VERSION, BlockStore
from powernode.core.errors import (
    DiskFull,
    ReadOnlyStorage,
    StorageError,
    StoreCorrupt,
    StoreUnusable,
)
from powernode.core.params import ChainParams
from powernode.node.logging_setup import LogFile, watch_log_file
from tests.unit.helpers import ALICE, DAVE, GENESIS_TIME, MONO, LedgerFactory, mine, transfer

T = GENESIS_TIME + 100


def _chain_with_txs(factory: LedgerFactory, params: ChainParams, path: Path, blocks: int) -> Ledger:
    ledger = factory.open(params, path)
    for h in range(blocks):
        ledger.submit_tx(transfer(ALICE, DAVE, 1 + h, nonce=h), now=T)
        mine(ledger, T + h)
    return ledger


# --- refused at open ------------------------------------------------------------------


def _empty(db: Path) -> None:
    db.write_bytes(b"")


def _garbage(db: Path) -> None:
    db.write_bytes(os.urandom(64 * 1024))


def _directory(db: Path) -> None:
    db.mkdir()


def _wal_without_store(db: Path) -> None:
    db.with_name(db.name + "-wal").write_bytes(b"\0" * 32)


def _foreign(db: Path) -> None:
    other = sqlite3.connect(db)
    other.execute("CREATE TABLE t (a)")
    other.commit()
    other.close()


def _newer_schema(db: Path) -> None:
    store = BlockStore(db)
    store.open()
    store.set_meta("schema", msgpack.packb(SCHEMA_VERSION + 1))
    store.close()


@pytest.mark.parametrize(
    ("make", "fault", "says"),
    [
        (_empty, StoreCorrupt, "empty (0 bytes)"),
        (_garbage, StoreCorrupt, "not a database"),
        (_directory, StoreUnusable, "is a directory"),
        (_wal_without_store, StoreUnusable, "chain.db-wal is there"),
        (_foreign, StoreUnusable, "not a powernode store (tables: t)"),
        (_newer_schema, StoreUnusable, f"schema {SCHEMA_VERSION + 1}"),
    ],
    ids=["empty", "garbage", "directory", "wal_without_store", "foreign", "newer_schema"],
)
def test_open_refuses_what_is_not_a_sound_store(
    tmp_path: Path, make: object, fault: type[StorageError], says: str
) -> None:
    db = tmp_path / "chain.db"
    make(db)  # type: ignore[operator]
    before = db.read_bytes() if db.is_file() else None
    store = BlockStore(db)
    with pytest.raises(fault, match=r"\(" + fault.code + r"\); ") as caught:
        store.open()
    assert says in caught.value.message
    assert caught.value.path == str(db) and "move chain.db" in caught.value.fix
    if before is not None:
        assert db.read_bytes() == before, "a refused file is left as it was"


@pytest.mark.parametrize("suffix", ["-wal", "-shm"])
def test_a_log_or_index_that_is_a_directory_is_named(tmp_path: Path, suffix: str) -> None:
    """SQLite says only "unable to open database file": the fault names the
    directory in the way, not the store's permissions."""
    db = tmp_path / "chain.db"
    store = BlockStore(db)
    store.open()
    store.close()
    (tmp_path / f"chain.db{suffix}").unlink(missing_ok=True)
    (tmp_path / f"chain.db{suffix}").mkdir()
    with pytest.raises(StorageError) as caught:
        BlockStore(db).open()
    assert caught.value.path == str(tmp_path / f"chain.db{suffix}")
    assert f"chain.db{suffix} is a directory" in caught.value.message
    assert f"move {tmp_path / f'chain.db{suffix}'} out of the way" in caught.value.fix


def test_a_new_store_appears_whole(tmp_path: Path) -> None:
    db = tmp_path / "chain.db"
    store = BlockStore(db)
    store.open()
    store.close()
    assert not db.with_name("chain.db.new").exists()
    again = BlockStore(db)
    again.open(check=True)
    assert again.get_meta("schema") == msgpack.packb(SCHEMA_VERSION)
    again.close()


def _spoil_page_of(db: Path, table: str) -> None:
    probe = sqlite3.connect(db)
    (root,) = probe.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()
    (size,) = probe.execute("PRAGMA page_size").fetchone()
    probe.close()
    with open(db, "r+b") as f:
        f.seek((root - 1) * size)
        f.write(b"\xa5" * size)


def test_the_start_check_finds_a_page_the_load_does_not_read(
    factory: LedgerFactory, params: ChainParams
) -> None:
    path = factory.path()
    _chain_with_txs(factory, params, path, blocks=3)
    factory.close_all()
    _spoil_page_of(path, "txindex")
    unchecked = BlockStore(path)
    unchecked.open()
    unchecked.close()
    with pytest.raises(StoreCorrupt, match="quick_check"):
        BlockStore(path).open(check=True)


def test_a_store_without_a_usable_tip_is_corrupt(
    factory: LedgerFactory, params: ChainParams
) -> None:
    path = factory.path()
    _chain_with_txs(factory, params, path, blocks=2)
    factory.close_all()
    db = sqlite3.connect(path)
    db.execute("DELETE FROM meta WHERE key = 'tip'")
    db.commit()
    db.close()
    with pytest.raises(StoreCorrupt, match="no usable tip"):
        factory.open(params, path)


# --- a fault while running ----------------------------------------------------------


def test_a_full_disk_refuses_the_block_whole_and_the_store_stays_stopped(
    factory: LedgerFactory, params: ChainParams
) -> None:
    path = factory.path()
    ledger = _chain_with_txs(factory, params, path, blocks=2)
    store = ledger.chain.store
    faults: list[StorageError] = []
    store.on_fault = faults.append
    (pages,) = store.db.execute("PRAGMA page_count").fetchone()
    store.db.execute(f"PRAGMA max_page_count = {pages}")
    nonce, last = 2, ledger.chain.tip
    with pytest.raises(DiskFull) as caught:
        for h in range(200):
            for _ in range(20):
                ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=nonce), now=T)
                nonce += 1
            last = ledger.chain.tip
            mine(ledger, T + 10 + h)
    fault = caught.value
    assert fault.code == "disk_full" and "free space" in fault.fix
    assert faults == [fault], "told once"
    # Not the block's fault: it is not marked invalid, the tip did not move.
    assert ledger.chain.tip is last
    assert not any(e.failed for e in ledger.chain.index.entries.values())
    # Sticky: every later call is refused with the same fault.
    with pytest.raises(DiskFull) as again:
        store.get_meta("tip")
    assert again.value is fault
    assert faults == [fault]

    # Space freed (a new connection has no page cap): the last connected
    # block is the tip, and the state is what a replay of its blocks gives.
    factory.close_all()
    reopened = factory.open(params, path)
    assert reopened.chain.tip.hash == last.hash
    replayed = factory.open(params)
    for entry in reopened.chain.active[1:]:
        outcome, _ = replayed.submit_block(
            reopened.chain.get_block(entry.hash), now=T + 500, mono=MONO
        )
        assert outcome == "connected"
    assert replayed.chain.state.snapshot() == reopened.chain.state.snapshot()


def _maybe_batch(store: BlockStore, batched: bool) -> contextlib.AbstractContextManager[None]:
    return store.batch() if batched else contextlib.nullcontext()


@pytest.mark.parametrize("batched", [False, True], ids=["alone", "in_a_batch"])
def test_an_error_of_the_callers_own_between_store_calls_is_no_store_fault(
    factory: LedgerFactory, params: ChainParams, batched: bool
) -> None:
    """An ``OSError`` (no space) raised by the caller's own code between two
    store calls (a file of its own) reaches it as it is, inside a batch (a
    sync run) exactly as outside one: the store is not stopped, nobody is
    told of a fault, and the call completed before it is kept."""
    store = factory.open(params).chain.store
    faults: list[StorageError] = []
    store.on_fault = faults.append
    with pytest.raises(OSError) as caught, _maybe_batch(store, batched):
        store.set_meta("before", b"\x01")
        raise OSError(errno.ENOSPC, "No space left on device", "elsewhere")
    assert type(caught.value) is OSError
    assert store.fault is None and faults == []
    assert not store.db.in_transaction
    assert store.get_meta("before") == b"\x01"
    store.set_meta("after", b"\x02")  # still writing
    assert store.get_meta("after") == b"\x02"


@pytest.mark.parametrize("batched", [False, True], ids=["alone", "in_a_batch"])
def test_a_full_disk_inside_a_batch_is_the_same_fault_as_outside_one(
    factory: LedgerFactory, params: ChainParams, batched: bool
) -> None:
    """The store fills up: the call that meets it raises ``disk_full``, told
    once; every later call (a caller that swallowed the first one included)
    and the batch's end raise the same fault, and what is on disk is what
    was committed before: the calls before the fault alone, the state
    before the batch in a batch."""
    path = factory.path()
    store = factory.open(params, path).chain.store
    faults: list[StorageError] = []
    store.on_fault = faults.append
    (pages,) = store.db.execute("PRAGMA page_count").fetchone()
    store.db.execute(f"PRAGMA max_page_count = {pages + 2}")
    written = 0
    with pytest.raises(DiskFull) as caught, _maybe_batch(store, batched):
        for n in range(1_000):
            try:
                store.set_meta(f"k{n}", os.urandom(3_000))
            except DiskFull as first:
                with pytest.raises(DiskFull) as again:
                    store.get_meta("tip")
                assert again.value is first
                break  # swallowed: the batch's end must still refuse
            written += 1
        else:
            pytest.fail("the store never filled up")
        if not batched:
            raise faults[0]
    assert faults == [caught.value]
    assert written > 0
    factory.close_all()
    reopened = BlockStore(path)
    reopened.open()
    try:
        kept = [n for n in range(written) if reopened.get_meta(f"k{n}") is not None]
    finally:
        reopened.close()
    assert kept == ([] if batched else list(range(written)))


def test_a_page_gone_bad_under_a_running_store_is_a_sticky_store_corrupt(
    factory: LedgerFactory, params: ChainParams
) -> None:
    path = factory.path()
    _chain_with_txs(factory, params, path, blocks=3)
    factory.close_all()
    ledger = factory.open(params, path)
    store = ledger.chain.store
    faults: list[StorageError] = []
    store.on_fault = faults.append
    _spoil_page_of(path, "txindex")
    with pytest.raises(StoreCorrupt) as caught:
        ledger.tx_status(transfer(ALICE, DAVE, 1, nonce=0).txid)
    assert faults == [caught.value]
    with pytest.raises(StoreCorrupt):
        store.get_block_raw(ledger.chain.tip.hash)
    assert faults == [caught.value]


# --- telling faults apart -----------------------------------------------------------


def _sqlite_error(code: int, text: str) -> sqlite3.Error:
    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorcode = code
    return exc


@pytest.mark.parametrize(
    ("code", "fault"),
    [
        (13, DiskFull),  # SQLITE_FULL
        (11, StoreCorrupt),  # SQLITE_CORRUPT
        (26, StoreCorrupt),  # SQLITE_NOTADB
        (5, StoreUnusable),  # SQLITE_BUSY
        (266, StorageError),  # SQLITE_IOERR_READ on a writable disk with room
    ],
)
def test_sqlite_codes(tmp_path: Path, code: int, fault: type[StorageError]) -> None:
    got = from_sqlite(_sqlite_error(code, "x"), tmp_path / "chain.db")
    assert type(got) is fault
    assert got.path == str(tmp_path / "chain.db")


@pytest.mark.parametrize(
    ("err", "fault"),
    [
        (errno.ENOSPC, DiskFull),
        (errno.EDQUOT, DiskFull),
        (errno.EROFS, ReadOnlyStorage),
        (errno.EACCES, StorageError),
        (errno.EIO, StorageError),
    ],
)
def test_os_errors(tmp_path: Path, err: int, fault: type[StorageError]) -> None:
    got = from_os_error(OSError(err, os.strerror(err)), tmp_path / "node.log")
    assert type(got) is fault
    assert os.strerror(err) in got.message and got.fix


# --- mempool.dat ----------------------------------------------------------------------


def _truncated_pool(ledger: Ledger, path: Path) -> None:
    for n in range(5):
        ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=n), now=T)
    ledger.save_mempool(path)
    path.write_bytes(path.read_bytes()[:-40])


@pytest.mark.parametrize("kept_before", ["none", "file", "directory"])
@pytest.mark.parametrize("kind", ["truncated", "garbage", "not_a_list", "directory"])
def test_a_damaged_mempool_file_is_set_aside_and_the_pool_starts_empty(
    factory: LedgerFactory,
    params: ChainParams,
    tmp_path: Path,
    kind: str,
    kept_before: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Set aside whatever an earlier bad file left as mempool.dat.corrupt
    (a later one replaces it, of whatever kind)."""
    path = tmp_path / "mempool.dat"
    old = path.with_name("mempool.dat.corrupt")
    if kept_before == "file":
        old.write_bytes(b"older")
    elif kept_before == "directory":
        (old / "sub").mkdir(parents=True)
    if kind == "truncated":
        _truncated_pool(factory.open(params), path)
    elif kind == "garbage":
        path.write_bytes(os.urandom(300))
    elif kind == "not_a_list":
        path.write_bytes(msgpack.packb({"txs": [b"x"]}))
    else:
        path.mkdir()
    ledger = factory.open(params)
    with caplog.at_level(logging.WARNING):
        assert ledger.load_mempool(path, now=T) == 0
    assert len(ledger.mempool) == 0
    assert not path.exists()
    assert old.exists() and old.is_dir() == (kind == "directory")
    assert not (old / "sub").exists() and (old.is_dir() or old.read_bytes() != b"older")
    (record,) = [r for r in caplog.records if r.getMessage() == "mempool.load_failed"]
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["file"] == str(path) and fields["kept"].endswith("mempool.dat.corrupt")


def test_a_failed_mempool_save_leaves_the_old_file(
    factory: LedgerFactory, params: ChainParams, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = factory.open(params)
    ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=0), now=T)
    path = tmp_path / "pool" / "mempool.dat"
    path.parent.mkdir()
    path.write_bytes(b"old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        ledger.save_mempool(path)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in path.parent.iterdir()) == ["mempool.dat"]


# --- node.log -----------------------------------------------------------------------


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_log_file_that_cannot_be_written_is_dropped_quietly_and_reported_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = LogFile(Path("/dev/full"))
    seen: list[tuple[int | None, Path]] = []
    logger = logging.getLogger("powernode.test_store_faults")
    logger.propagate = False
    logger.addHandler(handler)
    root = logging.getLogger("powernode")
    root.addHandler(handler)  # where watch_log_file looks for it
    try:
        handler.on_failure = lambda exc, path: seen.append((exc.errno, path))
        logger.error("first")
        logger.error("second")
        assert seen == [(errno.ENOSPC, Path("/dev/full"))]
        assert handler.failed is not None
        late: list[int | None] = []
        watch_log_file(lambda exc, path: late.append(exc.errno))
        assert late == [errno.ENOSPC], "a watcher that comes late is told at once"
    finally:
        logger.removeHandler(handler)
        root.removeHandler(handler)
        handler.close()
    assert capsys.readouterr().err == "", "no '--- Logging error ---' report"
