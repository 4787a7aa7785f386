"""Stops from outside a command's work: ``powernode run`` stopped by Ctrl-C
or SIGTERM before its node is up (while the CLI loads, or the config is
read) stops cleanly, status 0 and no traceback, as once the node runs; a
tx command's ``--wait`` stopped by Ctrl-C names the tx it sent."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from powernode.devnet.datadir import free_port
from powernode.devnet.process import ProcessNode
from powernode.devnet.wait import wait_until
from tests.e2e.test_cli import pn

pytestmark = pytest.mark.e2e


def caught(pid: int) -> int:
    """The process's mask of caught signals (``SigCgt``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no SigCgt for pid {pid}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_while_the_config_is_read_is_a_clean_stop(tmp_path: Path, sig: int) -> None:
    d = tmp_path / "node"
    pn("init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port()))
    # config.toml as a FIFO holds `run` inside its config read, on a point
    # the test can see: the writer's open succeeds once the reader has
    # opened it, and the reader then waits for data that never comes.
    config = d / "config.toml"
    config.unlink()
    os.mkfifo(config)
    proc = subprocess.Popen(
        [sys.executable, "-m", "powernode.cli", "run", "--datadir", str(d)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    writer = None
    try:
        deadline = time.monotonic() + 60
        while writer is None:
            try:
                writer = os.open(config, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader yet
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "run never read its config"
                time.sleep(0.01)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if writer is not None:
            os.close(writer)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (proc.returncode, stderr)
    assert "Traceback" not in stderr, stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_console_script_stops_cleanly_while_it_loads(tmp_path: Path, sig: int) -> None:
    script = shutil.which("powernode", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("no powernode console script beside this Python (not pip-installed)")
    d = tmp_path / "node"
    pn("init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port()))
    proc = subprocess.Popen(
        [script, "run", "--datadir", str(d)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Signalled once it takes SIGTERM: from the entry point on, before
        # the CLI's imports.
        deadline = time.monotonic() + 60
        while not caught(proc.pid) & (1 << (signal.SIGTERM - 1)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "run never took SIGTERM"
            time.sleep(0.005)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (proc.returncode, stderr)
    assert "Traceback" not in stderr, stderr


def test_ctrl_c_in_a_wait_names_the_tx_it_sent(tmp_path: Path) -> None:
    """The tx is out before the wait: a Ctrl-C ends the wait (130) and says
    which tx may still confirm."""
    d = tmp_path / "node"
    pn("init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port()))
    node = ProcessNode(d)  # not mining: the tx stays pending
    node.start()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "powernode.cli", "transfer", "--datadir", str(d),
             "--to", "ab" * 20, "--amount", "1", "--wait", "120"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_until(lambda: node.call("mempool.info")["size"] == 1, timeout=60)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        txid = node.call("mempool.txs")["txs"][0]["id"]
    finally:
        node.stop()
    assert proc.returncode == 130, (proc.returncode, err)
    assert f"interrupted: tx {txid} may still confirm (powernode rpc tx.get id={txid})" in err, err
    assert "Traceback" not in err
