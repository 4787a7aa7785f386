"""scripts/testnet.py writing to a reader that has gone away (``status |
head -1``): it ends quietly, as other CLIs do, never with a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_testnet_status_exits_quietly_when_its_reader_is_gone(tmp_path: Path) -> None:
    # A testnet whose nodes have all exited: `status` needs no node to answer
    # to print its table (a line per node, "down").
    dead = subprocess.Popen(["true"])
    dead.wait()
    nodes = [
        {
            "name": f"node{i}",
            "pid": dead.pid,
            "address": "00" * 20,
            "rpc_port": 1,
            "p2p_port": 2,
            "host": "127.0.0.1",
            "netns": "",
        }
        for i in range(3)
    ]
    (tmp_path / "testnet.json").write_text(
        json.dumps(
            {
                "dir": str(tmp_path),
                "chain_id": "t",
                "nodes": nodes,
                "demo_keys": [],
                "netns": None,
                "partition": [],
            }
        )
    )
    with subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "testnet.py"), "status", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        # The reader goes away before the script has written (it is still
        # importing), as `head -1` does once it has its line.
        proc.stdout.close()
        err = proc.stderr.read()
        rc = proc.wait(timeout=60)
    assert err == ""  # no traceback, no "Exception ignored" line either
    assert rc == 128 + 13  # as if killed by SIGPIPE, as other CLIs end there


def test_powernode_command_exits_quietly_when_its_reader_is_gone(tmp_path: Path) -> None:
    """README, "Exit status": `powernode ... | head -1` ends with 141 and
    nothing on stderr, as scripts/testnet.py does (it was one "Broken pipe"
    error line and exit 1)."""
    with subprocess.Popen(
        [sys.executable, "-m", "powernode.cli", "keygen"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # gone before the command writes its lines
        err = proc.stderr.read()
        rc = proc.wait(timeout=60)
    assert err == ""
    assert rc == 128 + 13
