"""powernode.devnet's ProcessNode with real ``powernode run`` processes: it
waits for this process's RPC, fails at once (not at the timeout) when the
node dies, and starts over a data dir that a killed node left behind."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from powernode.devnet.datadir import init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.process import NodeExited, ProcessNode

pytestmark = pytest.mark.e2e


def test_a_node_that_dies_fails_the_wait_at_once(tmp_path: Path) -> None:
    node = ProcessNode(tmp_path / "empty")  # not initialised: powernode run exits 1
    (tmp_path / "empty").mkdir()
    t0 = time.monotonic()
    with pytest.raises(NodeExited) as info:
        node.start(timeout=60)
    assert time.monotonic() - t0 < 30
    msg = str(info.value)
    assert "exited with 1" in msg and "stderr.log" in msg and "not initialised" in msg
    assert node.exit_code == 1


def test_start_stop_and_restart_over_a_killed_nodes_files(tmp_path: Path) -> None:
    genesis = write_genesis(tmp_path / "genesis.json", dev_genesis({}))
    init_datadir(tmp_path / "n", genesis)
    with ProcessNode(tmp_path / "n") as node:
        ep = node.start()
        assert node.call("node.info")["rpc"] == ep.url
        first = node.pid
        node.kill()  # no cleanup: node.json still names the dead process
        assert json.loads((tmp_path / "n" / "node.json").read_text())["pid"] == first
        node.start()
        assert node.call("node.info")["height"] == 0
        assert json.loads((tmp_path / "n" / "node.json").read_text())["pid"] == node.pid
        assert node.stop() == 0  # the clean stop
        assert not (tmp_path / "n" / "node.json").exists()
