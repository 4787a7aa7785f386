"""``--wait`` as a user runs it: the CLI waits on the node's tx
subscription (no polling), returns on confirmation, and exits 3 with one
line when the time runs out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import free_port
from powernode.devnet.process import ProcessNode
from powernode.devnet.wait import wait_until

pytestmark = pytest.mark.e2e


def pn_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "powernode.cli", *args]


def rpc_calls(node: ProcessNode, method: str) -> int:
    """How many times the node ran ``method`` (its rpc.call debug lines)."""
    n = 0
    for line in node.log_text().splitlines():
        e = json.loads(line)
        if e["event"] == "rpc.call" and e.get("method") == method:
            n += 1
    return n


def test_wait_returns_on_confirmation_and_exits_3_on_timeout(tmp_path: Path) -> None:
    d = tmp_path / "node"
    subprocess.run(
        pn_args("init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port())),
        check=True,
        capture_output=True,
        timeout=60,
    )
    # No miner: the test decides when a block comes. rpc at debug: each
    # method run is a line, so polling would show.
    node = ProcessNode(d, extra_args=("--log-format", "json", "--debug", "rpc"))
    node.start()
    try:
        bob = KeyPair.generate().address.hex()
        transfer = ("transfer", "--datadir", str(d), "--to", bob, "--amount", "1")

        late = subprocess.run(
            pn_args(*transfer, "--wait", "1.5"), capture_output=True, text=True, timeout=60
        )
        assert late.returncode == 3, late.stderr
        assert "Traceback" not in late.stderr
        lines = late.stderr.strip().splitlines()
        assert len(lines) == 1 and "not confirmed within --wait 1.5 s: still pending" in lines[0]
        assert " pending" in late.stdout
        # Waited on the subscription: no tx.get polls.
        assert rpc_calls(node, "subscribe") == 1 and rpc_calls(node, "tx.get") == 0

        waiting = subprocess.Popen(
            pn_args(*transfer, "--wait", "60", "--json"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: rpc_calls(node, "subscribe") == 2, what="the CLI to subscribe")
            assert node.call("mempool.info")["size"] == 2
            mined = node.call("dev.mine", {"blocks": 1})
            out, err = waiting.communicate(timeout=60)
        finally:
            waiting.kill()
        assert waiting.returncode == 0, err
        sent = json.loads(out)
        assert sent["status"] == "confirmed" and sent["height"] == mined["height"]
        assert sent["tx"]["nonce"] == 1 and err == ""
        # One tx.get, for the final answer (as polling printed it), not a poll.
        assert rpc_calls(node, "tx.get") == 1
    finally:
        node.stop()


def test_a_bad_wait_is_still_one_line_and_exit_1(tmp_path: Path) -> None:
    r = subprocess.run(
        pn_args(
            "transfer",
            "--datadir",
            str(tmp_path),
            "--to",
            "00" * 20,
            "--amount",
            "1",
            "--wait",
            "abc",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "--wait" in r.stderr
