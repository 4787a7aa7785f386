"""The ``powernode`` command as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import free_port
from powernode.devnet.process import ProcessNode

pytestmark = pytest.mark.e2e


def pn(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "powernode.cli", *args], capture_output=True, text=True, timeout=60
    )
    if check and r.returncode != 0:
        raise AssertionError(f"powernode {' '.join(args)} failed: {r.stderr}")
    return r


def assert_user_error(r: subprocess.CompletedProcess[str], needle: str) -> None:
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_user_mistakes_print_one_line(tmp_path: Path) -> None:
    assert_user_error(
        pn("status", "--datadir", str(tmp_path / "none"), check=False), "no running node"
    )
    assert_user_error(pn("init", "--datadir", str(tmp_path / "a"), check=False), "--dev")
    assert_user_error(
        pn("run", "--datadir", str(tmp_path / "nowhere"), check=False), "not initialised"
    )
    d = tmp_path / "n"
    pn("init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port()))
    assert_user_error(pn("init", "--datadir", str(d), "--dev", check=False), "already initialised")
    assert_user_error(
        pn("transfer", "--datadir", str(d), "--to", "xyz", "--amount", "1", check=False), "address"
    )
    assert_user_error(
        pn("transfer", "--datadir", str(d), "--to", "00" * 20, "--amount", "1.2.3", check=False),
        "decimal",
    )
    (d / "config.toml").write_text((d / "config.toml").read_text() + "\nbogus = 1\n")
    assert_user_error(pn("run", "--datadir", str(d), check=False), "bogus")


def test_keygen_json(tmp_path: Path) -> None:
    out = json.loads(pn("keygen", "--json", "--out", str(tmp_path / "k.key")).stdout)
    assert len(bytes.fromhex(out["address"])) == 20
    assert (tmp_path / "k.key").stat().st_mode & 0o777 == 0o600
    assert_user_error(
        pn("keygen", "--out", str(tmp_path / "k.key"), check=False), "not overwriting"
    )


def test_init_run_transfer_status_stop(tmp_path: Path) -> None:
    d = tmp_path / "node"
    init = pn("init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port()))
    node_addr = init.stdout.split("node address ")[1].strip()
    node = ProcessNode(d, extra_args=("--mine", "--log-format", "json"))
    node.start()
    try:
        bob = KeyPair.generate().address.hex()
        sent = json.loads(
            pn(
                "transfer",
                "--datadir",
                str(d),
                "--to",
                bob,
                "--amount",
                "2.5",
                "--wait",
                "30",
                "--json",
            ).stdout
        )
        assert sent["status"] == "confirmed"
        bal = json.loads(pn("balance", "--datadir", str(d), bob, "--json").stdout)
        assert bal["balance"] == 2_500_000 and bal["balance_units"] == "2.500000"
        mine = json.loads(pn("balance", "--datadir", str(d), "--json").stdout)
        assert mine["address"] == node_addr and mine["nonce"] == 1
        status = json.loads(pn("status", "--datadir", str(d), "--json").stdout)
        assert status["mining"] is True and status["height"] >= sent["height"]
        assert pn("stop", "--datadir", str(d)).stdout.strip() == "stopping"
        assert node.proc is not None and node.proc.wait(30) == 0
        events = [json.loads(line) for line in node.log_text().splitlines()]
        names = {e["event"] for e in events}
        assert {"node.started", "block.connected", "block.mined", "node.stopped"} <= names
        connected = next(e for e in events if e["event"] == "block.connected")
        assert isinstance(connected["height"], int) and len(connected["hash"]) == 64
    finally:
        node.stop()
