"""chain/backup.py: a copy of a store that another connection writes while it
is made is the store as of one commit, and a refused backup writes nothing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from powernode.chain.backup import backup_store
from powernode.core.errors import BackupFailed


def make_store(path: Path) -> sqlite3.Connection:
    """A WAL database with the store's meta/chain tables and bulk rows, each
    "block" adding one row to both in one transaction."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
    db.execute("CREATE TABLE chain (height INTEGER PRIMARY KEY, hash BLOB NOT NULL)")
    db.execute("CREATE TABLE rows (height INTEGER NOT NULL, data BLOB NOT NULL)")
    db.execute("CREATE TABLE blocks (hash BLOB PRIMARY KEY, height INTEGER NOT NULL)")
    db.execute("CREATE TABLE bodies (hash BLOB PRIMARY KEY, raw BLOB NOT NULL)")
    db.execute("INSERT INTO chain VALUES (0, x'00')")
    db.execute("INSERT INTO meta VALUES ('tip', x'00')")
    for _ in range(500):
        db.execute("INSERT INTO rows VALUES (0, randomblob(2000))")
    return db


def store_block(db: sqlite3.Connection, height: int) -> None:
    """A block stored, not connected yet: its own commit, as the store's."""
    h = height.to_bytes(4, "big")
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO blocks VALUES (?, ?)", (h, height))
    db.execute("INSERT INTO bodies VALUES (?, randomblob(100))", (h,))
    db.execute("COMMIT")


def connect_block(db: sqlite3.Connection, height: int) -> None:
    h = height.to_bytes(4, "big")
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO rows VALUES (?, randomblob(2000))", (height,))
    db.execute("INSERT INTO chain VALUES (?, ?)", (height, h))
    db.execute("UPDATE meta SET value = ? WHERE key = 'tip'", (h,))
    db.execute("COMMIT")


def test_a_copy_made_under_writes_is_one_commit(tmp_path: Path) -> None:
    db = make_store(tmp_path / "chain.db")
    stop = threading.Event()
    going = threading.Event()  # a few blocks in: the copy starts mid-stream
    written = [0]

    def writer() -> None:
        while not stop.is_set():
            written[0] += 1
            store_block(db, written[0])
            connect_block(db, written[0])
            if written[0] == 5:
                going.set()

    steps: list[tuple[int, int]] = []
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert going.wait(timeout=60)
        # Small steps: many chances for a commit to land between two of them.
        out = tmp_path / "backup.db"
        r = backup_store(
            tmp_path / "chain.db",
            out,
            progress=lambda d, t: steps.append((d, t)),
            pages_per_step=20,
        )
    finally:
        stop.set()
        thread.join()
    assert len(steps) > 10 and steps[-1][0] == steps[-1][1]
    copy = sqlite3.connect(out)
    tip = copy.execute("SELECT value FROM meta WHERE key = 'tip'").fetchone()[0]
    assert tip == r.tip and int.from_bytes(tip, "big") == r.height
    # Every row of the blocks up to the tip, none after: one commit's view.
    assert copy.execute("SELECT max(height), count(*) FROM rows").fetchone() == (
        r.height,
        500 + r.height,
    )
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    # Blocks stored past the tip (not connected in the snapshot) are left out:
    # a node started from the copy starts at its tip.
    assert r.height >= 5
    assert copy.execute("SELECT max(height), count(*) FROM blocks").fetchone() == (
        r.height,
        r.height,
    )
    assert copy.execute("SELECT count(*) FROM bodies").fetchone()[0] == r.height
    assert r.bytes == out.stat().st_size
    assert not list(tmp_path.glob(".*partial"))


def test_refusals_write_nothing(tmp_path: Path) -> None:
    make_store(tmp_path / "chain.db").close()
    src = tmp_path / "chain.db"
    existing = tmp_path / "exists.db"
    existing.write_bytes(b"keep")
    for out, why in (
        (Path("relative.db"), "absolute"),
        (existing, "exists"),
        (tmp_path / "missing" / "b.db", "does not exist"),
        (tmp_path, "directory"),
        # what the file system refuses to even look up: still BackupFailed
        (tmp_path / ("x" * 5000), "cannot write"),
        (tmp_path / "nul\x00.db", "cannot write"),
    ):
        with pytest.raises(BackupFailed, match=why):
            backup_store(src, out)
    assert existing.read_bytes() == b"keep"
    # The node's own store (or its log and index), even with force, and by
    # any name that leads there.
    store = src.read_bytes()
    for own in (src, tmp_path / "chain.db-wal", tmp_path / "sub" / ".." / "chain.db"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(BackupFailed, match="own store"):
            backup_store(src, own, force=True)
    assert src.read_bytes() == store
    # The data dir's other files beside the store: a key, the config, the
    # log, a restore in the making. Refused with force, and without it where
    # the file does not exist yet (p2p.key before P2P is first turned on).
    for name in ("node.key", "config.toml", "node.log.2", "chain.db.restore", "p2p.key"):
        target = tmp_path / name
        if name != "p2p.key":
            target.write_bytes(b"mine")
        with pytest.raises(BackupFailed, match=r"own (store|files)"):
            backup_store(src, target, force=True)
        assert not target.exists() if name == "p2p.key" else target.read_bytes() == b"mine"
    started: list[bool] = []
    with pytest.raises(BackupFailed):
        backup_store(src, existing, started=lambda: started.append(True))
    assert started == [], "a refused backup was told as started"
    backup_store(src, existing, force=True, started=lambda: started.append(True))
    assert started == [True]
    assert existing.read_bytes().startswith(b"SQLite format 3")
    # A backup of its own name in the data dir is a backup like any other,
    # even one whose name starts as the log's does.
    backup_store(src, tmp_path / "chain.db.bak")
    backup_store(src, tmp_path / "node.logbook.db")


def test_a_copy_stopped_by_its_progress_leaves_no_file(tmp_path: Path) -> None:
    make_store(tmp_path / "chain.db").close()
    out = tmp_path / "b.db"

    def stop(done: int, total: int) -> None:
        raise BackupFailed("the node is stopping")

    with pytest.raises(BackupFailed, match="stopping"):
        backup_store(tmp_path / "chain.db", out, progress=stop, pages_per_step=10)
    assert [p.name for p in tmp_path.iterdir()] == ["chain.db"]
