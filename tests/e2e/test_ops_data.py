"""Running a node for real, its data: a backup taken under load restored into
a fresh data dir, ``run --reindex`` rebuilding the state, and blocks
exported from one node and imported into another."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from powernode.cli.common import UserError
from powernode.cli.ops import store_chain
from powernode.client import build_register, build_transfer
from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import init_datadir, write_config, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.process import ProcessNode
from powernode.devnet.wait import wait_until
from tests.harness import TEST_CHAIN

pytestmark = pytest.mark.e2e


def pn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "powernode.cli", *args], capture_output=True, text=True, timeout=300
    )


def ok(*args: str) -> str:
    r = pn(*args)
    assert r.returncode == 0, f"powernode {' '.join(args)} failed: {r.stderr}"
    return r.stdout


def one_line_error(r: subprocess.CompletedProcess[str], needle: str) -> None:
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr


@pytest.fixture
def keys() -> list[KeyPair]:
    return [KeyPair.generate() for _ in range(3)]


def make_genesis(path: Path, keys: list[KeyPair], chain_id: str = TEST_CHAIN) -> Path:
    return write_genesis(path, dev_genesis({k.address: 10**12 for k in keys}, chain_id=chain_id))


def state_at(node: ProcessNode, height: int) -> tuple[str, str]:
    b = node.call("chain.block", {"height": height})
    return b["hash"], b["state_root"]


def tip_of(node: ProcessNode) -> tuple[int, str, str]:
    i = node.call("node.info")
    return i["height"], i["tip"], i["state_root"]


def mixed_blocks(node: ProcessNode, keys: list[KeyPair], rounds: int) -> None:
    """``rounds`` blocks, each with transfers between the keys; the first
    also registers each key as a market participant."""
    nonces = [0] * len(keys)
    for r in range(rounds):
        for i, k in enumerate(keys):
            to = keys[(i + 1) % len(keys)].address
            if r == 0:
                tx = build_register(
                    k,
                    chain_id=TEST_CHAIN,
                    nonce=nonces[i],
                    role="prosumer",
                    location="zone-a",
                    capacity_w=5_000,
                )
            else:
                tx = build_transfer(k, chain_id=TEST_CHAIN, nonce=nonces[i], to=to, amount=r + i)
            node.call("tx.submit", {"raw": tx.raw.hex()})
            nonces[i] += 1
        node.call("dev.mine", {"blocks": 1})


def raw_offset(raw: bytes, height: int) -> int:
    """Where block ``height``'s length prefix starts in an export from 1."""
    pos = 8
    pos += 4 + int.from_bytes(raw[pos : pos + 4], "big")
    for _ in range(1, height):
        pos += 4 + int.from_bytes(raw[pos : pos + 4], "big")
    return pos


class TxLoad:
    """Transfers submitted from a thread until stopped (a mining node's load)."""

    def __init__(self, node: ProcessNode, key: KeyPair, to: bytes) -> None:
        self.node, self.key, self.to = node, key, to
        self.sent = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rpc = ProcessNode(self.node.datadir).rpc  # a client of its own
        try:
            while not self._stop.is_set():
                tx = build_transfer(
                    self.key, chain_id=TEST_CHAIN, nonce=self.sent, to=self.to, amount=1
                )
                rpc.call("tx.submit", {"raw": tx.raw.hex()})
                self.sent += 1
        except Exception as exc:  # told to the test, which fails on it
            self.errors.append(repr(exc))
        finally:
            rpc.close()

    def __enter__(self) -> TxLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def test_backup_under_load_restores_to_the_same_tip_and_state_root(
    tmp_path: Path, keys: list[KeyPair]
) -> None:
    genesis = make_genesis(tmp_path / "genesis.json", keys)
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    init_datadir(a_dir, genesis, key=keys[0])
    _, a_p2p = write_config(a_dir, p2p=True)
    init_datadir(b_dir, genesis)
    write_config(b_dir, p2p=True, peers=[f"127.0.0.1:{a_p2p}"])
    out = tmp_path / "backups" / "chain-backup.db"
    out.parent.mkdir()
    with ProcessNode(a_dir) as a:
        a.start("--mine")
        with TxLoad(a, keys[1], keys[2].address) as load:
            wait_until(lambda: load.sent >= 20 and a.call("node.info")["height"] >= 10)
            r = json.loads(ok("backup", "--datadir", str(a_dir), "--out", str(out), "--json"))
            # The node kept mining and taking txs while the copy was made.
            wait_until(lambda: a.call("node.info")["height"] > r["height"] and load.sent > 40)
        assert not load.errors, load.errors
        assert r["path"] == str(out) and r["bytes"] == out.stat().st_size > 0
        backup_hash, backup_root = state_at(a, r["height"])
        assert backup_hash == r["tip"]
        assert "backup.done" in a.log_text()
        # An existing file is refused without --force, with one line.
        again = pn("backup", "--datadir", str(a_dir), "--out", str(out))
        one_line_error(again, "exists")
        # The node writes the file: a path relative to its own folder is refused.
        refused = pn("rpc", "--datadir", str(a_dir), "node.backup", '{"path": "x.db"}')
        one_line_error(refused, "absolute")

        # A store of another chain, or a file that is no store, is not restored.
        other_dir = tmp_path / "other"
        other = make_genesis(tmp_path / "other.json", keys, chain_id="powernode-other")
        init_datadir(other_dir, other)
        one_line_error(
            pn("restore", "--datadir", str(other_dir), "--from", str(out)), "not restoring"
        )
        one_line_error(
            pn("restore", "--datadir", str(b_dir), "--from", str(genesis)), "not a powernode store"
        )
        assert not (other_dir / "chain.db").exists() and not (b_dir / "chain.db").exists()
        ok("restore", "--datadir", str(b_dir), "--from", str(out))

        with ProcessNode(b_dir) as b:
            b.start()
            # It started at the backup's tip (before syncing on from A)...
            loaded = [line for line in b.log_text().splitlines() if "chain.loaded" in line]
            assert len(loaded) == 1
            assert f"height={r['height']} hash={r['tip']} " in loaded[0]
            assert state_at(b, r["height"]) == (r["tip"], backup_root)
            # ...and syncs on from its peer, the original still mining.
            target = a.call("node.info")["height"]
            wait_until(
                lambda: b.call("node.info")["height"] >= target, timeout=120, what="b synced"
            )
            assert state_at(b, target) == state_at(a, target)
            # A restore into a running node's data dir is refused.
            one_line_error(
                pn("restore", "--datadir", str(b_dir), "--from", str(out), "--force"),
                "stop it first",
            )
        # Stopped: an existing chain.db is replaced only with --force, and
        # the old store's log goes with it.
        one_line_error(pn("restore", "--datadir", str(b_dir), "--from", str(out)), "--force")
        (b_dir / "chain.db-wal").write_bytes(b"an old log")
        ok("restore", "--datadir", str(b_dir), "--from", str(out), "--force")
        assert not (b_dir / "chain.db-wal").exists()
        # Copied through SQLite (not byte for byte): the same chain and tip.
        assert store_chain(b_dir / "chain.db") == store_chain(out)


def test_reindex_reaches_the_same_tip_and_state_root(tmp_path: Path, keys: list[KeyPair]) -> None:
    genesis = make_genesis(tmp_path / "genesis.json", keys)
    d = tmp_path / "node"
    init_datadir(d, genesis)
    with ProcessNode(d) as node:
        node.start()
        mixed_blocks(node, keys, 40)
        node.call("dev.mine", {"blocks": 260})
        before = tip_of(node)
        balances = [node.call("account.get", {"address": k.address.hex()}) for k in keys]
        assert before[0] == 300
        node.stop()
        node.start("--reindex")
        assert tip_of(node) == before
        assert [node.call("account.get", {"address": k.address.hex()}) for k in keys] == balances
        log = node.log_text()
        assert "reindex.started" in log
        done = [line for line in log.splitlines() if "reindex.done" in line]
        assert len(done) == 1 and f"height={before[0]} " in done[0] and before[2] in done[0]
        # 300 blocks connected again, each one logged as on any connect.
        after_start = log[log.index("reindex.started") :]
        assert after_start.count("block.connected") >= 300
        node.call("dev.mine", {"blocks": 1})
        assert node.call("node.info")["height"] == 301


def test_export_import_bootstraps_a_fresh_node(tmp_path: Path, keys: list[KeyPair]) -> None:
    genesis = make_genesis(tmp_path / "genesis.json", keys)
    other = make_genesis(tmp_path / "other.json", keys, chain_id="powernode-other")
    a_dir, c_dir, x_dir = tmp_path / "a", tmp_path / "c", tmp_path / "x"
    for d, g in ((a_dir, genesis), (c_dir, genesis), (x_dir, other)):
        init_datadir(d, g)
    export = tmp_path / "blocks.pwn"
    with ProcessNode(a_dir) as a:
        a.start()
        mixed_blocks(a, keys, 10)
        a.call("dev.mine", {"blocks": 30})
        want = tip_of(a)
        # Export works from a running node's data dir (one read snapshot).
        ok("export", "--datadir", str(a_dir), "--out", str(export))
        one_line_error(pn("export", "--datadir", str(a_dir), "--out", str(export)), "exists")
    with ProcessNode(c_dir) as c:
        c.start()
        res = json.loads(ok("import", "--datadir", str(c_dir), str(export), "--json"))
        assert res["blocks"] == want[0] and res["height"] == want[0]
        assert tip_of(c) == want
    with ProcessNode(x_dir) as x:
        x.start()
        one_line_error(pn("import", "--datadir", str(x_dir), str(export)), "not importing")
        assert x.call("node.info")["height"] == 0
    # A file cut short inside block 6: the five before it are imported.
    cut = tmp_path / "cut.pwn"
    raw = export.read_bytes()
    with ProcessNode(tmp_path / "d") as d_node:
        init_datadir(d_node.datadir, genesis)
        d_node.start()
        offset = raw_offset(raw, 6)
        cut.write_bytes(raw[: offset + 10])
        one_line_error(pn("import", "--datadir", str(d_node.datadir), str(cut)), "cut short")
        assert d_node.call("node.info")["height"] == 5
    garbage = tmp_path / "garbage.pwn"
    garbage.write_bytes(b"not an export")
    one_line_error(pn("import", "--datadir", str(c_dir), str(garbage)), "not a powernode")
    # Bytes after the last block: said once every block is sent.
    trailing = tmp_path / "trailing.pwn"
    trailing.write_bytes(raw + b"x")
    with ProcessNode(c_dir) as c:
        c.start()
        one_line_error(
            pn("import", "--datadir", str(c_dir), str(trailing)), "bytes after the last block"
        )
        assert tip_of(c) == want
    # A store with nothing past genesis has nothing to export.
    none = tmp_path / "none.pwn"
    one_line_error(pn("export", "--datadir", str(x_dir), "--out", str(none)), "nothing to export")
    assert not none.exists()


def test_restore_from_a_live_stores_copy_takes_its_log_too(
    tmp_path: Path, keys: list[KeyPair]
) -> None:
    """A copy of a running node's chain.db and chain.db-wal: the latest
    blocks are in the -wal. The restored store is at the height restore
    prints, the copy's tip, not the main file's older one."""
    genesis = make_genesis(tmp_path / "genesis.json", keys)
    a_dir, b_dir, src = tmp_path / "a", tmp_path / "b", tmp_path / "src"
    init_datadir(a_dir, genesis)
    init_datadir(b_dir, genesis)
    src.mkdir()
    with ProcessNode(a_dir) as a:
        a.start()
        mixed_blocks(a, keys, rounds=6)
        height, tip, _ = tip_of(a)
        wal = a_dir / "chain.db-wal"
        assert wal.stat().st_size > 0  # the test needs commits still in the log
        (src / "chain.db").write_bytes((a_dir / "chain.db").read_bytes())
        (src / "chain.db-wal").write_bytes(wal.read_bytes())
    # The main file alone is behind: what a byte copy of it would restore.
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "chain.db").write_bytes((src / "chain.db").read_bytes())
    try:
        behind = store_chain(alone / "chain.db")[1] < height
    except UserError:  # not even a store yet: all of it is in the log
        behind = True
    assert behind
    out = ok("restore", "--datadir", str(b_dir), "--from", str(src / "chain.db"))
    assert f"height {height};" in out, out
    with ProcessNode(b_dir) as b:
        b.start()
        assert tip_of(b)[:2] == (height, tip)
