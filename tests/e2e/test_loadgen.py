"""scripts/loadgen.py against a real 2-node testnet, run the way a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from powernode.core.crypto import KeyPair
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.testnet import TestnetLayout
from tests.harness import TEST_CHAIN

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def net2(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "tn"
    # Mining at the target `up` sets for --block-time (not --easy, which
    # `up` takes only without miners: a trivial target makes deep reorgs).
    r = _script("testnet.py", "up", "--nodes", "2", "--block-time", "1", "--dir", str(d))
    assert r.returncode == 0, r.stderr + r.stdout
    try:
        yield d
    finally:
        _script("testnet.py", "down", "--dir", str(d), timeout=120)


def test_loadgen_spreads_senders_over_connections_and_confirms_every_tx(net2: Path) -> None:
    r = _script(
        "loadgen.py",
        "--dir", str(net2), "--max", "--count", "240", "--senders", "8", "--conns", "2",
        "--batch", "20", "--sign-procs", "1", "--settle", "60", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["config"]["conns_per_node"] == 2
    why = (out["rejected_by_reason"], out["nodes"], r.stderr[-3000:])
    assert out["submitted"] == out["accepted"] == out["confirmed"] == 240, why
    assert out["rejected"] == 0
    # Each node's senders are split over two connections, each with its own
    # senders (so nonces still arrive in order: nothing was refused above).
    per_conn = out["nodes"]
    assert sorted(per_conn) == ["node0/0", "node0/1", "node1/0", "node1/1"]
    assert all(v["accepted"] == 60 and v["error"] is None for v in per_conn.values())
    assert out["latency_s"]["p50"] is not None and out["confirmed_tx_per_s"] > 0


def test_loadgen_without_a_testnet_is_an_error_in_one_line(tmp_path: Path) -> None:
    """Exit 2, as any error, with the reason in the JSON's ``error``; no
    traceback."""
    r = _script(
        "loadgen.py", "--dir", str(tmp_path / "none"), "--rate", "1", "--count", "1", "--json"
    )
    assert r.returncode == 2, r.stderr
    assert "no testnet in" in json.loads(r.stdout)["error"]
    assert "Traceback" not in r.stderr


def test_loadgen_with_every_node_down_is_one_line(tmp_path: Path) -> None:
    """A testnet that is down: the one refusal, not a line per node too."""
    d = tmp_path / "tn"
    keys = [KeyPair.generate()]
    TestnetLayout.create(
        d, dev_genesis({k.address: 10**12 for k in keys}, chain_id=TEST_CHAIN), nodes=3, demo=keys
    )
    r = _script("loadgen.py", "--dir", str(d), "--rate", "1", "--count", "1", "--json")
    assert r.returncode == 2, r.stderr
    assert "no running node in" in json.loads(r.stdout)["error"]
    assert r.stderr.strip().count("\n") == 0 and "no running node in" in r.stderr, r.stderr
