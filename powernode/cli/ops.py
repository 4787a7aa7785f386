"""The operator's data commands: backup and restore of ``chain.db``, export
and import of blocks (README "Running it for real")."""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from powernode.chain.blockfile import (
    BlockFileError,
    BlockFileHeader,
    iter_blocks,
    read_header,
    write_block,
    write_header,
)
from powernode.cli.common import (
    Subparsers,
    UserError,
    add_command,
    counted,
    emit,
    out_file,
    rpc_client,
    whole_number,
)
from powernode.cli.datadir_lock import DatadirLocked, lock_datadir, node_json_pid
from powernode.core.errors import ConfigError, GenesisError
from powernode.core.params import ChainParams
from powernode.state.genesis import genesis_block, parse_genesis_json

# A backup of a large store takes minutes; the call waits for it.
BACKUP_TIMEOUT_S = 6 * 3600.0
DB_NAME = "chain.db"


# --- backup and restore -------------------------------------------------------


def cmd_backup(a: argparse.Namespace) -> int:
    # The node writes the file: a relative path means the caller's folder.
    out = Path(a.out).expanduser().absolute()
    with rpc_client(a, timeout=BACKUP_TIMEOUT_S) as c:
        r = c.call("node.backup", {"path": str(out), "force": a.force})
    emit(
        a,
        r,
        lambda r: (
            f"backup of height {r['height']} (tip {r['tip']}) written to {r['path']}, "
            f"{r['bytes']} bytes in {r['ms'] / 1000:.1f} s"
        ),
    )
    return 0


def datadir_params(datadir: Path) -> ChainParams:
    """The chain of an initialised data dir, from its genesis file."""
    if not (datadir / "config.toml").exists():
        raise UserError(f"{datadir} is not initialised (no config.toml); run 'powernode init'")
    # The config's genesis key is almost always the default; a data dir
    # naming another file is read through the node's own config loader.
    from powernode.node.config import load_config

    try:
        path = load_config(datadir).genesis_path
        return parse_genesis_json(path.read_bytes())
    except (GenesisError, ConfigError) as exc:
        raise UserError(f"{datadir}: {exc.message}") from None
    except OSError as exc:
        raise UserError(f"cannot read the genesis file of {datadir}: {exc.strerror}") from None


def read_only_uri(path: Path) -> str:
    """An SQLite URI opening ``path`` read-only (a path with ``?``, ``#`` or
    ``%`` in it percent-encoded, as a plain ``file:`` string would not be)."""
    return path.absolute().as_uri() + "?mode=ro"


def store_chain(path: Path) -> tuple[bytes, int]:
    """The genesis hash and tip height of the store at ``path``, read
    without writing; UserError for a file that is not a powernode store."""
    if not path.exists():
        raise UserError(f"{path} not found")
    if not path.is_file():
        raise UserError(f"{path} is not a file")
    try:
        db = sqlite3.connect(read_only_uri(path), uri=True)
        try:
            genesis = db.execute("SELECT value FROM meta WHERE key='genesis'").fetchone()
            tip = db.execute(
                "SELECT c.height FROM meta m JOIN chain c ON c.hash = m.value WHERE m.key='tip'"
            ).fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise UserError(f"{path} is not a powernode store ({exc})") from None
    if genesis is None or tip is None:
        raise UserError(f"{path} is not a powernode store (no genesis or tip)")
    return bytes(genesis[0]), int(tip[0])


def copy_store(src: Path, dst: Path) -> None:
    """``src`` into a new file ``dst`` through SQLite's backup API, not as
    bytes: a store in WAL mode holds its latest commits in ``src-wal``,
    which a copy of the main file alone would leave out."""
    dst.unlink(missing_ok=True)
    source = sqlite3.connect(read_only_uri(src), uri=True)
    try:
        target = sqlite3.connect(dst)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()


def cmd_restore(a: argparse.Namespace) -> int:
    d: Path = a.datadir
    params = datadir_params(d)
    # Held until this command ends: no node starts on the store being
    # replaced, and one still loading its chain (no node.json yet) is seen.
    try:
        lock = lock_datadir(d, holder="restore")
    except DatadirLocked as exc:
        raise UserError(f"{exc.node} runs in {d}; stop it first ('powernode stop')") from None
    try:
        return _restore(a, d, params, locked=lock is not None)
    finally:
        if lock is not None:
            os.close(lock)


def _restore(a: argparse.Namespace, d: Path, params: ChainParams, *, locked: bool) -> int:
    src = Path(a.src)
    # A node that took no lock (an earlier version's, or where flock is
    # missing) is still named by node.json.
    pid = node_json_pid(d, locked=locked)
    if pid is not None:
        raise UserError(f"a node (pid {pid}) runs in {d}; stop it first ('powernode stop')")
    genesis, height = store_chain(src)
    want = genesis_block(params).hash
    if genesis != want:
        raise UserError(
            f"{src} holds chain {genesis.hex()[:16]}, {d} is chain {want.hex()[:16]} "
            f"({params.chain_id}); not restoring"
        )
    db = d / DB_NAME
    if db.exists() and not a.force:
        raise UserError(f"{db} exists; give --force to replace it with the backup")
    tmp = d / f"{DB_NAME}.restore"
    try:
        copy_store(src, tmp)
        # What was copied, not what was read before: the source may be a
        # live store that moved on meanwhile.
        genesis, height = store_chain(tmp)
        if genesis != want:
            raise UserError(f"{src} changed chain while it was copied; not restoring")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        # The old store's log and index go first: a -wal left beside the
        # restored file would be replayed into it.
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                (d / f"{DB_NAME}{suffix}").unlink()
        os.replace(tmp, db)
    except (OSError, sqlite3.Error, UserError) as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, UserError):
            raise
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise UserError(f"cannot restore into {d}: {why}") from None
    print(f"restored {src} into {db}: height {height}; start the node with 'powernode run'")
    return 0


# --- export and import ------------------------------------------------------------


def cmd_export(a: argparse.Namespace) -> int:
    d: Path = a.datadir
    params = datadir_params(d)
    db_path = d / DB_NAME
    genesis, tip = store_chain(db_path)
    if tip == 0:
        raise UserError(f"the chain in {d} has no blocks past genesis: nothing to export")
    first = a.first
    last = tip if a.last is None else a.last
    if last > tip:
        raise UserError(f"--to {last}: the chain in {d} ends at height {tip}")
    if first > last:
        raise UserError(f"--from {first} is past --to {last}")
    out = out_file(a.out, force=a.force)
    tmp = out.with_name(f".{out.name}.partial")
    header = BlockFileHeader(chain_id=params.chain_id, genesis=genesis, first=first, last=last)
    try:
        # A running node may connect blocks meanwhile: one read transaction
        # reads one snapshot (WAL mode), and only main-chain rows in it.
        db = sqlite3.connect(read_only_uri(db_path), uri=True, isolation_level=None)
        try:
            db.execute("BEGIN")
            rows = db.execute(
                "SELECT c.height, b.raw FROM chain c JOIN bodies b ON b.hash = c.hash"
                " WHERE c.height BETWEEN ? AND ? ORDER BY c.height",
                (first, last),
            )
            with open(tmp, "wb") as f:
                write_header(f, header)
                expected = first
                for height, raw in rows:
                    if height != expected:
                        raise UserError(f"{db_path} has no block body at height {expected}")
                    write_block(f, bytes(raw))
                    expected += 1
                if expected != last + 1:
                    raise UserError(f"{db_path} has no block at height {expected}")
                f.flush()
                os.fsync(f.fileno())
        finally:
            db.close()
        os.replace(tmp, out)
    except sqlite3.Error as exc:
        raise UserError(f"cannot read {db_path}: {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    print(f"exported blocks {first}..{last} of {params.chain_id} to {out}")
    return 0


def cmd_import(a: argparse.Namespace) -> int:
    src = Path(a.file)
    try:
        f = open(src, "rb")  # noqa: SIM115 -- closed below, after the node is reached
    except OSError as exc:
        raise UserError(f"cannot read {src}: {exc.strerror}") from None
    with f:
        try:
            header = read_header(f)
        except BlockFileError as exc:
            raise UserError(f"{src}: {exc}") from None
        with rpc_client(a) as c:
            info = c.call("node.info")
            if bytes.fromhex(info["genesis"]) != header.genesis:
                raise UserError(
                    f"{src} holds blocks of chain {header.chain_id} "
                    f"(genesis {header.genesis.hex()[:16]}), the node runs {info['chain_id']} "
                    f"(genesis {info['genesis'][:16]}); not importing"
                )
            outcomes: dict[str, int] = {}
            t0 = time.monotonic()
            try:
                for raw in iter_blocks(f, header):
                    r = c.call("block.submit", {"raw": raw.hex()})
                    outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
            except BlockFileError as exc:
                raise UserError(f"{src}: {exc}") from None
            height = c.call("node.info")["height"]
    result = {
        "blocks": header.count,
        "outcomes": outcomes,
        "height": height,
        "seconds": round(time.monotonic() - t0, 3),
    }
    emit(a, result, import_text)
    return 0


def import_text(r: dict[str, Any]) -> str:
    """``imported 2 blocks (1 connected, 1 duplicate), node height 7``."""
    outcomes = ", ".join(f"{n} {k}" for k, n in sorted(r["outcomes"].items()))
    return f"imported {counted(r['blocks'], 'block')} ({outcomes}), node height {r['height']}"


# --- parser -----------------------------------------------------------------------


def add_commands(sub: Subparsers) -> None:
    sp = add_command(
        sub, "backup", cmd_backup, "copy the running node's chain.db to a file, consistent"
    )
    sp.add_argument(
        "--out", required=True, metavar="FILE", help="the copy, on the node's host (made absolute)"
    )
    sp.add_argument("--force", action="store_true", help="replace FILE if it exists")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = add_command(
        sub, "restore", cmd_restore, "put a backup in place as a stopped node's chain.db"
    )
    sp.add_argument("--from", dest="src", required=True, metavar="FILE", help="the backup file")
    sp.add_argument("--force", action="store_true", help="replace the data dir's chain.db")

    sp = add_command(sub, "export", cmd_export, "write main-chain blocks of a data dir to a file")
    sp.add_argument("--out", required=True, metavar="FILE", help="the export file")
    sp.add_argument(
        "--from",
        dest="first",
        type=whole_number("--from", lo=1),
        default=1,
        metavar="H",
        help="first height (default 1: genesis comes from the genesis file)",
    )
    sp.add_argument(
        "--to",
        dest="last",
        type=whole_number("--to"),
        metavar="H",
        help="last height (default the tip)",
    )
    sp.add_argument("--force", action="store_true", help="replace FILE if it exists")

    sp = add_command(sub, "import", cmd_import, "submit the blocks of an export file to the node")
    sp.add_argument("file", metavar="FILE", help="a file 'powernode export' wrote")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
