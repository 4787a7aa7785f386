"""``run --no-log-stderr``, as a testnet starts its nodes: log lines go to
node.log only, so a testnet folder's stderr.log is not node.log's copy but
holds what is not a log line (the one-line failure)."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import LOOPBACK, init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.process import NodeExited, ProcessNode
from powernode.devnet.testnet import TestnetLayout
from powernode.devnet.wait import wait_until

pytestmark = pytest.mark.e2e

EVENT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [A-Z]+ ")


def _datadir(tmp_path: Path) -> Path:
    genesis = write_genesis(tmp_path / "genesis.json", dev_genesis({}))
    init_datadir(tmp_path / "n", genesis)
    return tmp_path / "n"


def test_a_running_node_logs_to_node_log_only(tmp_path: Path) -> None:
    datadir = _datadir(tmp_path)
    with ProcessNode(datadir, extra_args=("--no-log-stderr",)) as node:
        node.start()
        node.call("dev.mine", {"blocks": 2})
        assert node.stop() == 0
        log = (datadir / "node.log").read_text()
        assert "block.connected" in log and "node.stopped" in log
        assert node.stderr_path.read_text() == ""


def test_without_the_flag_stderr_has_the_log_lines_too(tmp_path: Path) -> None:
    # The default stays as it was: journald and docker read the log on stderr.
    datadir = _datadir(tmp_path)
    with ProcessNode(datadir) as node:
        node.start()
        assert node.stop() == 0
        lines = node.stderr_path.read_text().splitlines()
        assert any("node.stopped" in line for line in lines)
        assert all(EVENT.match(line) for line in lines)


def test_a_start_up_failure_is_the_one_line_on_stderr(tmp_path: Path) -> None:
    datadir = _datadir(tmp_path)
    with socket.socket() as held:
        held.bind((LOOPBACK, 0))
        held.listen()
        port = held.getsockname()[1]
        cfg = datadir / "config.toml"
        cfg.write_text(re.sub(r"(?m)^port = \d+", f"port = {port}", cfg.read_text(), count=1))
        node = ProcessNode(datadir, extra_args=("--no-log-stderr",))
        with pytest.raises(NodeExited):
            node.start(timeout=60)
    assert node.exit_code == 1
    (line,) = node.stderr_path.read_text().splitlines()
    assert line.startswith("powernode run: error: ") and "Address already in use" in line
    last = (datadir / "node.log").read_text().splitlines()[-1]
    assert "node.failed" in last and "Address already in use" in last


def test_a_testnet_runs_its_nodes_with_the_flag(tmp_path: Path) -> None:
    tn = TestnetLayout.create(tmp_path, dev_genesis({KeyPair.generate().address: 10**9}), nodes=1)
    assert "--no-log-stderr" in tn.process("node0").extra_args


def test_a_malformed_http_request_is_one_event_not_a_traceback(tmp_path: Path) -> None:
    # aiohttp reports a request that is not HTTP as an error with a
    # traceback, on Python's own stderr handler; the node logs it as the
    # client's fault, one line, and only at debug.
    datadir = _datadir(tmp_path)
    with ProcessNode(datadir, extra_args=("--debug", "rpc")) as node:
        node.start()
        url = urlsplit(node.endpoint.url)
        with socket.create_connection((url.hostname, url.port), timeout=10) as s:
            s.sendall(b"GET /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
            assert s.recv(4096).split(b"\r\n")[0].endswith(b" 400 Bad Request")
        wait_until(
            lambda: "http.bad_request" in (datadir / "node.log").read_text(),
            timeout=10,
            what="the bad request's log line",
        )
        assert node.stop() == 0
    lines = node.stderr_path.read_text().splitlines()
    assert all(EVENT.match(line) for line in lines), [x for x in lines if not EVENT.match(x)]
    (bad,) = [x for x in (datadir / "node.log").read_text().splitlines() if "http.bad_request" in x]
    assert " DEBUG   rpc http.bad_request peer=127.0.0.1 status=400 reason=" in bad
