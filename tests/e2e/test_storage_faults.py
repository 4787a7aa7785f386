"""Storage faults with real node processes: a damaged ``chain.db``, a data dir
that is read-only at start or turns read-only under the node, a full disk.

Each stops the node with exit status 1 and one ``powernode run: error:``
line naming the fault's code, never a traceback, and leaves what was
committed intact: once the fault is cleared the node starts at its last
connected block, with the state a replay of its blocks gives.

Read-only and full disks are real: a small tmpfs, and an ext4 image on a
loop device for a file system the kernel turns read-only under a running
node (ext4's ``errors=remount-ro`` and its ``trigger_fs_error`` switch; a
plain ``mount -o remount,ro`` is refused while files are open for writing).
Mounting needs root: these tests skip when not root.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from powernode.client import RpcError, RpcUnavailable, build_transfer
from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.process import ProcessNode
from powernode.devnet.wait import wait_until
from tests.e2e.test_crash_recovery import FUNDS, cli_init, replay_matches
from tests.harness import TEST_CHAIN

pytestmark = pytest.mark.e2e

ERROR_LINE = "powernode run: error: "
# A log event line: "2026-11-23T18:41:09.365Z INFO  chain block.connected ..."
EVENT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")
CONNECTED = re.compile(r" block\.connected height=(\d+) hash=([0-9a-f]{64})")


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: mounts a tmpfs or an ext4 image as the data dir")


# --- mounts -----------------------------------------------------------------------


class Mounts:
    """Mount points made by one test, all unmounted when it ends."""

    def __init__(self) -> None:
        self.points: list[Path] = []

    def _mount(self, *args: str) -> None:
        proc = subprocess.run(["mount", *args], capture_output=True, text=True)
        assert proc.returncode == 0, f"mount {' '.join(args)}: {proc.stderr.strip()}"

    def tmpfs(self, where: Path, size_kib: int) -> Path:
        need_root()
        where.mkdir(parents=True)
        self._mount("-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(where))
        self.points.append(where)
        return where

    def ext4(self, where: Path, image: Path, size_mib: int) -> Path:
        """An ext4 image on a loop device that turns itself read-only on an
        error (``trigger_read_only``)."""
        need_root()
        if shutil.which("mkfs.ext4") is None or not Path("/sys/fs/ext4").is_dir():
            pytest.skip("no mkfs.ext4 or no ext4 in this kernel")
        with open(image, "wb") as f:
            f.truncate(size_mib * 2**20)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
        where.mkdir(parents=True)
        self.mount_ext4(where, image)
        return where

    def mount_ext4(self, where: Path, image: Path) -> None:
        proc = subprocess.run(
            ["mount", "-o", "loop,errors=remount-ro", str(image), str(where)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 and "loop" in proc.stderr:
            pytest.skip(f"no loop device here: {proc.stderr.strip()}")
        assert proc.returncode == 0, proc.stderr
        self.points.append(where)
        probe = where / ".probe"
        try:
            probe.write_bytes(b"x")
            probe.unlink()
        except OSError as exc:
            opts = subprocess.run(
                ["findmnt", "-n", "-o", "SOURCE,OPTIONS", str(where)],
                capture_output=True,
                text=True,
            ).stdout
            raise AssertionError(f"{where} mounted but not writable ({exc}): {opts}") from exc

    def remount(self, where: Path, mode: str) -> None:
        self._mount("-o", f"remount,{mode}", str(where))

    def umount(self, where: Path) -> None:
        subprocess.run(["umount", str(where)], check=True, capture_output=True)
        self.points.remove(where)

    def release(self) -> None:
        for where in reversed(self.points):
            # Lazy: a test that failed may have left a process in there.
            subprocess.run(["umount", "-l", str(where)], capture_output=True)
        self.points.clear()


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    m = Mounts()
    try:
        yield m
    finally:
        m.release()


def trigger_read_only(where: Path) -> None:
    """Make the ext4 file system at ``where`` read-only under its writers, as
    the kernel does on a disk error with ``errors=remount-ro``."""
    source = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", str(where)], check=True, capture_output=True, text=True
    ).stdout.strip()
    switch = Path(f"/sys/fs/ext4/{Path(source).name}/trigger_fs_error")
    if not switch.exists():
        pytest.skip("this kernel's ext4 has no trigger_fs_error")
    switch.write_text("test\n")


# --- a node and its chain -------------------------------------------------------


def new_datadir(where: Path, genesis_dir: Path) -> tuple[Path, KeyPair]:
    """A data dir under ``where`` on a dev chain funding one sender."""
    sender = KeyPair.generate()
    genesis = write_genesis(
        genesis_dir / "genesis.json", dev_genesis({sender.address: FUNDS}, chain_id=TEST_CHAIN)
    )
    datadir = where / "node"
    cli_init(datadir, genesis)
    return datadir, sender


def mine_with_txs(node: ProcessNode, sender: KeyPair, blocks: int, txs: int) -> None:
    """``blocks`` blocks of ``txs`` transfers each, through RPC."""
    sink = KeyPair.generate().address
    nonce = node.call("account.get", {"address": sender.address.hex()})["next_nonce"]
    for _ in range(blocks):
        calls = []
        for _ in range(txs):
            tx = build_transfer(sender, chain_id=TEST_CHAIN, nonce=nonce, to=sink, amount=1)
            calls.append(("tx.submit", {"raw": tx.raw.hex()}))
            nonce += 1
        for res in node.rpc.batch(calls):
            assert not isinstance(res, RpcError), res
        node.call("dev.mine", {"blocks": 1})


def run_to_exit(datadir: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``powernode run`` on ``datadir``, expected to stop by itself."""
    return subprocess.run(
        [sys.executable, "-m", "powernode.cli", "run", "--datadir", str(datadir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_failure(code: int | None, stderr: str, fault: str) -> str:
    """Exit status 1 and exactly one error line naming ``fault``; every
    other line on stderr is a log event. Returns the error line."""
    assert code == 1, f"exit status {code}:\n{stderr}"
    assert "Traceback" not in stderr and "Logging error" not in stderr, stderr
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith(ERROR_LINE)]
    assert len(errors) == 1, stderr
    assert f"({fault})" in errors[0], errors[0]
    strays = [line for line in lines if not (line.startswith(ERROR_LINE) or EVENT_LINE.match(line))]
    assert strays == [], strays
    return errors[0]


def last_connected(stderr: str) -> tuple[int, str]:
    found = CONNECTED.findall(stderr)
    assert found, "no block.connected event"
    height, block_hash = found[-1]
    return int(height), block_hash


def assert_continues_at(node: ProcessNode, height: int, tip: str) -> int:
    """The restarted node holds ``tip`` at ``height`` as its tip, or one
    block past it: a block stored (its own transaction) before the fault hit
    the write that connects it is connected at start, as after a crash.
    Returns the node's height."""
    info = node.call("node.info")
    assert info["height"] in (height, height + 1), (info, height)
    assert node.call("chain.block", {"height": height})["hash"] == tip
    return int(info["height"])


def node_failed_event(datadir: Path) -> str:
    events = [
        line for line in (datadir / "node.log").read_text().splitlines() if "node.failed" in line
    ]
    assert len(events) == 1, events
    return events[0]


# --- a damaged chain.db, at start -------------------------------------------------


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, KeyPair]:
    """A data dir whose node made 12 blocks of 20 transfers, stopped
    cleanly, and the key that sent them (funded still)."""
    where = tmp_path_factory.mktemp("made")
    datadir, sender = new_datadir(where, where)
    with ProcessNode(datadir) as node:
        node.start()
        mine_with_txs(node, sender, blocks=12, txs=20)
        assert node.stop() == 0
    return datadir, sender


@pytest.fixture
def stopped_node(made: tuple[Path, KeyPair]) -> Path:
    return made[0]


def _garbage(db: Path) -> None:
    db.write_bytes(os.urandom(db.stat().st_size))


def _truncated(db: Path) -> None:
    with open(db, "r+b") as f:
        f.truncate(db.stat().st_size // 2)


def _empty(db: Path) -> None:
    db.write_bytes(b"")


def _directory(db: Path) -> None:
    db.unlink()
    db.mkdir()


def _foreign(db: Path) -> None:
    db.unlink()
    other = sqlite3.connect(db)
    other.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER)")
    other.execute("INSERT INTO invoices VALUES (1, 100)")
    other.commit()
    other.close()


def _other_chain(db: Path) -> None:
    """The genesis file replaced under the store (or, the same to the node,
    a backup of another chain put in by hand)."""
    genesis = db.parent / "genesis.json"
    doc = json.loads(genesis.read_text())
    doc["timestamp"] += 1
    genesis.write_text(json.dumps(doc))


def _bad_header(db: Path) -> None:
    """A row SQLite keeps intact whose bytes are not a header."""
    other = sqlite3.connect(db)
    other.execute("UPDATE blocks SET header = x'00' WHERE height = 3")
    other.commit()
    other.close()


@pytest.mark.parametrize(
    ("damage", "fault"),
    [
        (_garbage, "store_corrupt"),
        (_bad_header, "store_corrupt"),
        (_truncated, "store_corrupt"),
        (_empty, "store_corrupt"),
        (_directory, "store_unusable"),
        (_foreign, "store_unusable"),
        (_other_chain, "store_unusable"),
    ],
    ids=["garbage", "bad_header", "truncated", "empty", "directory", "other_schema", "other_chain"],
)
def test_a_damaged_store_stops_the_start_with_one_line(
    stopped_node: Path, tmp_path: Path, damage: object, fault: str
) -> None:
    datadir = tmp_path / "node"
    shutil.copytree(stopped_node, datadir)
    db = datadir / "chain.db"
    damage(db)  # type: ignore[operator]
    before = None if db.is_dir() else db.read_bytes()

    proc = run_to_exit(datadir)

    line = assert_one_line_failure(proc.returncode, proc.stderr, fault)
    assert str(db) in line and "move chain.db" in line
    event = node_failed_event(datadir)
    assert f"reason={fault}" in event and f"file={db}" in event and "fix=" in event
    # Refused as found: not written, not turned into a new store.
    if before is not None and damage is not _bad_header:
        assert db.read_bytes() == before
    assert not (datadir / "node.json").exists()


def test_corruption_found_while_running_stops_the_node(stopped_node: Path, tmp_path: Path) -> None:
    """A page the node reads only on demand (the tx index) goes bad under it:
    the first read of it stops the node with one line, not an error per
    request. (With ``check_db`` the start's quick_check would have put the
    page in SQLite's cache, and the node would not read the bad copy.)"""
    datadir = tmp_path / "node"
    shutil.copytree(stopped_node, datadir)
    config = datadir / "config.toml"
    config.write_text(config.read_text().replace("check_db = true", "check_db = false"))
    db = datadir / "chain.db"
    probe = sqlite3.connect(db)
    (root,) = probe.execute("SELECT rootpage FROM sqlite_master WHERE name='txindex'").fetchone()
    (page_size,) = probe.execute("PRAGMA page_size").fetchone()
    (txid,) = probe.execute("SELECT txid FROM txindex LIMIT 1").fetchone()
    probe.close()

    node = ProcessNode(datadir)
    try:
        node.start()
        with open(db, "r+b") as f:
            f.seek((root - 1) * page_size)
            f.write(b"\xa5" * page_size)
        with pytest.raises((RpcError, RpcUnavailable)):
            node.call("tx.get", {"id": bytes(txid).hex()})
        wait_until(lambda: not node.is_running(), timeout=30, what="the node to stop")
        assert_one_line_failure(node.exit_code, node.stderr_tail(10_000), "store_corrupt")
        assert "reason=store_corrupt" in node_failed_event(datadir)
    finally:
        node.stop()


# --- a full disk ------------------------------------------------------------------


def test_a_full_disk_stops_the_node_and_a_restart_continues(mounts: Mounts, tmp_path: Path) -> None:
    where = mounts.tmpfs(tmp_path / "mnt", size_kib=16 * 1024)
    datadir, sender = new_datadir(where, tmp_path)
    stderr = tmp_path / "stderr.log"
    node = ProcessNode(datadir, stderr_path=stderr)
    try:
        node.start()
        mine_with_txs(node, sender, blocks=3, txs=20)
        # Leave about 300 KiB: a few blocks of 100 transfers fill it.
        st = os.statvfs(where)
        filler = where / "filler"
        with open(filler, "wb") as f:
            f.write(b"\0" * (st.f_bavail * st.f_frsize - 300 * 1024))
        with pytest.raises((RpcError, RpcUnavailable)):
            mine_with_txs(node, sender, blocks=200, txs=100)
        wait_until(lambda: not node.is_running(), timeout=30, what="the node to stop")
        text = stderr.read_text()
        line = assert_one_line_failure(node.exit_code, text, "disk_full")
        assert "free space" in line
        height, tip = last_connected(text)
        assert height > 3

        filler.unlink()
        node.start()
        now = assert_continues_at(node, height, tip)
        node.call("dev.mine", {"blocks": 1})
        assert node.stop() == 0
        assert replay_matches(datadir) == now + 1
    finally:
        node.stop()


# --- a read-only data dir ---------------------------------------------------------


def test_a_read_only_data_dir_at_start_then_writable_again(mounts: Mounts, tmp_path: Path) -> None:
    where = mounts.tmpfs(tmp_path / "mnt", size_kib=16 * 1024)
    datadir, sender = new_datadir(where, tmp_path)
    node = ProcessNode(datadir, stderr_path=tmp_path / "stderr.log")
    try:
        node.start()
        mine_with_txs(node, sender, blocks=3, txs=10)
        tip = node.call("node.info")["tip"]
        assert node.stop() == 0

        mounts.remount(where, "ro")
        proc = run_to_exit(datadir)
        line = assert_one_line_failure(proc.returncode, proc.stderr, "read_only")
        assert "writable" in line
        # The table's form, FILE: WHAT (CODE); FIX, FILE being node.log.
        assert line.startswith(f"{ERROR_LINE}{datadir / 'node.log'}: cannot write: "), line

        mounts.remount(where, "rw")
        node.start()
        assert node.call("node.info")["tip"] == tip
        assert node.stop() == 0
    finally:
        node.stop()


def test_a_data_dir_turned_read_only_under_the_node(mounts: Mounts, tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    where = mounts.ext4(tmp_path / "mnt", image, size_mib=64)
    datadir, sender = new_datadir(where, tmp_path)
    stderr = tmp_path / "stderr.log"
    node = ProcessNode(datadir, stderr_path=stderr)
    try:
        node.start()
        mine_with_txs(node, sender, blocks=4, txs=20)
        info = node.call("node.info")
        # On the disk before the fault: an ext4 that fails drops what its
        # journal had not committed, as a power cut would.
        os.sync()
        trigger_read_only(where)
        with pytest.raises((RpcError, RpcUnavailable)):
            mine_with_txs(node, sender, blocks=5, txs=20)
        wait_until(lambda: not node.is_running(), timeout=30, what="the node to stop")
        assert_one_line_failure(node.exit_code, stderr.read_text(), "read_only")

        # The operator's fix: the file system mounted read-write again. On a
        # copy of the image: a mount namespace made meanwhile (by any `ip
        # netns exec` on this machine) may hold the old mount, and mounting
        # the same image again would then get its read-only superblock back.
        mounts.umount(where)
        again = tmp_path / "disk-again.img"
        shutil.copyfile(image, again)
        mounts.mount_ext4(where, again)
        node.start()
        now = assert_continues_at(node, info["height"], info["tip"])
        node.call("dev.mine", {"blocks": 1})
        assert node.stop() == 0
        assert replay_matches(datadir) == now + 1
    finally:
        node.stop()


# --- node.log and mempool.dat -----------------------------------------------------


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_log_that_cannot_be_written_stops_the_node_with_one_line(
    stopped_node: Path, tmp_path: Path
) -> None:
    """node.log on a full disk (here /dev/full, where every write fails with
    ENOSPC): no "--- Logging error ---" report per line, one line and stop."""
    datadir = tmp_path / "node"
    shutil.copytree(stopped_node, datadir)
    (datadir / "node.log").unlink()
    (datadir / "node.log").symlink_to("/dev/full")

    proc = run_to_exit(datadir)

    line = assert_one_line_failure(proc.returncode, proc.stderr, "disk_full")
    assert f"{datadir / 'node.log'}: cannot write" in line


def test_a_truncated_mempool_file_is_set_aside_and_the_node_runs(
    made: tuple[Path, KeyPair], tmp_path: Path
) -> None:
    datadir = tmp_path / "node"
    shutil.copytree(made[0], datadir)
    sender = made[1]
    node = ProcessNode(datadir)
    try:
        node.start()
        nonce = node.call("account.get", {"address": sender.address.hex()})["next_nonce"]
        for n in range(nonce, nonce + 5):
            node.rpc.submit(
                build_transfer(sender, chain_id=TEST_CHAIN, nonce=n, to=sender.address, amount=1)
            )
        assert node.stop() == 0
        pool = datadir / "mempool.dat"
        pool.write_bytes(pool.read_bytes()[: pool.stat().st_size // 2])

        node.start()
        assert node.call("mempool.info")["size"] == 0
        log = node.log_text()
        assert f"mempool.load_failed file={pool}" in log
        assert (datadir / "mempool.dat.corrupt").exists()
        assert node.stop() == 0
        assert "Traceback" not in node.stderr_tail(10_000)
    finally:
        node.stop()
