"""The data dir's lock (``node.lock``): a node that is still loading its
chain has written no ``node.json`` yet, and a second ``run`` or a
``restore --force`` must still see it rather than write the same store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from powernode.cli.datadir_lock import DatadirLocked, lock_datadir
from powernode.devnet.datadir import free_port
from powernode.devnet.process import ProcessNode
from tests.e2e.test_cli import pn

pytestmark = pytest.mark.e2e

HOLD = (
    "import sys; from pathlib import Path;"
    "from powernode.cli.datadir_lock import lock_datadir;"
    "fd = lock_datadir(Path(sys.argv[1])); print('locked' if fd else 'none', flush=True);"
    "sys.stdin.read()"
)


def one_line(r: subprocess.CompletedProcess[str], needle: str) -> None:
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_a_locked_data_dir_refuses_a_second_run_and_a_restore(tmp_path: Path) -> None:
    d = tmp_path / "node"
    pn("init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port()))
    # What a node loading its chain looks like from outside: the lock is
    # held, and there is no node.json to name it.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(d)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert not (d / "node.json").exists()
        run = pn("run", "--datadir", str(d), check=False)
        one_line(run, f"a node (pid {holder.pid}) already runs in {d}")
        backup = tmp_path / "any.db"
        backup.write_bytes(b"")
        restore = pn("restore", "--from", str(backup), "--datadir", str(d), "--force", check=False)
        one_line(restore, f"a node (pid {holder.pid}) runs in {d}; stop it first")
        assert not (d / "chain.db.restore").exists()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()
    # The kernel let go of it with the process: the data dir is free again.
    fd = lock_datadir(d)
    assert fd is not None
    os.close(fd)


def test_a_running_node_holds_the_lock_until_it_stops(tmp_path: Path) -> None:
    d = tmp_path / "node"
    pn("init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port()))
    node = ProcessNode(d)
    node.start()
    try:
        with pytest.raises(DatadirLocked) as held:
            lock_datadir(d)
        assert held.value.pid == node.pid and held.value.node == f"a node (pid {node.pid})"
        assert (d / "node.lock").stat().st_mode & 0o777 == 0o600
        # `stop` returns once the node has let the data dir go: a restore
        # (or a run) right after it finds the data dir free.
        assert pn("stop", "--datadir", str(d)).stdout.strip() == "stopping"
        fd = lock_datadir(d)
        assert fd is not None
        os.close(fd)
    finally:
        node.stop()
    assert node.exit_code == 0


def test_a_node_that_took_no_lock_is_still_seen_by_its_node_json(tmp_path: Path) -> None:
    """A node of an earlier version (no node.lock) still running in the data
    dir: its node.json names a live `powernode run`, so run and restore
    refuse, with the lock free."""
    d = tmp_path / "node"
    pn("init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port()))
    with subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", "powernode.cli", "run"],
        stdin=subprocess.PIPE,
    ) as old:
        try:
            (d / "node.json").write_text(json.dumps({"pid": old.pid}))
            one_line(pn("run", "--datadir", str(d), check=False), f"a node (pid {old.pid})")
            restore = pn("restore", "--from", str(d / "x.db"), "--datadir", str(d), check=False)
            one_line(restore, f"a node (pid {old.pid}) runs in {d}")
        finally:
            assert old.stdin is not None
            old.stdin.close()
            old.wait(30)


def test_a_stale_node_json_naming_a_live_process_does_not_block_a_start(tmp_path: Path) -> None:
    """After a kill -9 and a reboot, node.json may name a pid some other
    process now has; with node.lock free, that file is stale."""
    d = tmp_path / "node"
    pn("init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port()))
    (d / "node.json").write_text(json.dumps({"pid": os.getpid(), "rpc": "http://127.0.0.1:1/rpc"}))
    node = ProcessNode(d)
    node.start()
    try:
        assert json.loads((d / "node.json").read_text())["pid"] == node.pid
        assert node.call("node.info")["height"] == 0
    finally:
        node.stop()
