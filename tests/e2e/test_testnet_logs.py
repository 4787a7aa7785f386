"""``scripts/testnet.py logs``: earlier lines of every node merged by time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from powernode.core.crypto import KeyPair
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.testnet import TestnetLayout

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_logs_merges_earlier_lines_by_time(tmp_path: Path) -> None:
    TestnetLayout.create(tmp_path, dev_genesis({KeyPair.generate().address: 10**9}), nodes=2)
    (tmp_path / "node0" / "node.log").write_text(
        "2026-11-23T18:00:01.000Z INFO    chain block.connected height=1\n"
        "2026-11-23T18:00:03.000Z WARNING node chain.reorg undone=1\n"
        "2026-11-23T18:00:05.000Z ERROR   rpc rpc.internal_error method=x\n"
        "  a line without a time stays with the one before\n"
    )
    (tmp_path / "node1" / "node.log").write_text(
        "2026-11-23T18:00:02.000Z INFO    chain block.connected height=1\n"
        + json.dumps({"ts": "2026-11-23T18:00:04.000Z", "level": "info", "event": "json.line"})
        + "\n"
    )
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "testnet.py"), "logs", "--no-follow",
         "--dir", str(tmp_path), "-n", "5"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout.splitlines()  # fmt: skip
    assert [line[:7] for line in out] == ["[node1]", "[node0]", "[node1]", "[node0]", "[node0]"]
    assert "18:00:02" in out[0] and "chain.reorg" in out[1] and "json.line" in out[2]
    assert "rpc.internal_error" in out[3] and "without a time" in out[4]
