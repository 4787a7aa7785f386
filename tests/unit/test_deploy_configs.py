"""configs/: the systemd unit, the Dockerfile, its entrypoint and the 3-node
compose file say what the README's "Running it for real" says they do.
Checked offline: no daemon, no image build."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.node.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string((CONFIGS / "powernode.service").read_text())
    return parser


def test_the_unit_runs_the_node_as_a_restarted_hardened_service() -> None:
    u = unit()
    assert set(u.sections()) == {"Unit", "Service", "Install"}
    s = u["Service"]
    assert s["Type"] == "simple"
    assert re.fullmatch(r"\S*powernode run --datadir \S+", s["ExecStart"])
    datadir = s["ExecStart"].split()[-1]
    assert s["Restart"] == "on-failure"
    assert s["User"] and s["User"] != "root"
    assert s["KillSignal"] == "SIGTERM" and int(s["TimeoutStopSec"]) > 0
    assert s["ExecReload"].endswith("kill -HUP $MAINPID")
    assert s["NoNewPrivileges"] == "true" and s["ProtectSystem"] == "strict"
    # ProtectSystem=strict makes everything read-only but this: the data dir.
    assert s["ReadWritePaths"] == datadir
    assert u["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_finds_nothing_but_the_missing_binary() -> None:
    r = subprocess.run(
        ["systemd-analyze", "verify", str(CONFIGS / "powernode.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    complaints = [
        line
        for line in (r.stdout + r.stderr).splitlines()
        # The unit names the installed command, absent on a test machine.
        if line.strip() and "/powernode is not executable" not in line
    ]
    assert complaints == []


def test_the_dockerfile_runs_the_node_unprivileged_on_a_data_volume() -> None:
    text = (CONFIGS / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert re.search(r"^FROM python:3\.1[1-9]-slim", text, re.M)
    assert "RUN pip install ." in text
    user = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert user == ["powernode"]
    assert "VOLUME /data" in lines
    exposed = next(line for line in lines if line.startswith("EXPOSE")).split()[1:]
    assert set(exposed) == {"8645", "8646", "8647"}
    assert "/health" in next(line for line in lines if line.startswith("CMD python"))
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    assert any(
        line.startswith("ENTRYPOINT ") and '"run", "--datadir", "/data"' in line for line in lines
    )
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for copied in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for name in copied.split():
            assert (ROOT / name).exists(), name
            # What the image copies is in the build context.
            assert name.split("/")[0] not in ignored, name


def compose_services(text: str) -> dict[str, str]:
    """Service name -> its block of lines (a small reader for the file's own
    layout: two-space indents, no tabs)."""
    assert "\t" not in text
    body = text[text.index("\nservices:\n") :]
    end = re.search(r"^\S", body[len("\nservices:\n") :], re.M)
    assert end is not None
    body = body[: len("\nservices:\n") + end.start()]
    parts = re.split(r"^  ([a-z0-9_-]+):\n", body, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_the_compose_file_is_a_three_node_testnet_dialling_by_service_name() -> None:
    services = compose_services((CONFIGS / "docker-compose.yml").read_text())
    nodes = sorted(n for n in services if n != "genesis")
    assert nodes == ["node1", "node2", "node3"]
    for name in nodes:
        block = services[name]
        peers = re.search(r"POWERNODE_PEERS: (\S+)", block)
        assert peers is not None
        assert {p.split(":")[0] for p in peers.group(1).split(",")} == set(nodes) - {name}
        assert "/shared/genesis.json" in block and f"{name}:/data" in block
        assert "service_completed_successfully" in block
    assert "powernode init" in services["genesis"]


def test_the_entrypoint_makes_a_data_dir_listening_everywhere_with_peers(
    tmp_path: Path,
) -> None:
    genesis = write_genesis(
        tmp_path / "genesis.json", dev_genesis({KeyPair.generate().address: 10**9})
    )
    data = tmp_path / "data"
    data.mkdir()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "POWERNODE_DATA": str(data),
        "POWERNODE_GENESIS": str(genesis),
        "POWERNODE_PEERS": "node2:8646,node3:8646",
        "POWERNODE_MINE": "1",
        "TMPDIR": str(tmp_path),
    }
    script = CONFIGS / "docker-entrypoint.sh"
    # The command it execs at the end: here one that shows its arguments.
    r = subprocess.run(
        ["sh", str(script), "echo", "run"], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "run --mine"
    cfg = load_config(data)
    assert cfg.rpc.host == cfg.p2p.host == cfg.metrics.host == "0.0.0.0"
    assert cfg.p2p.enabled and cfg.p2p.peers == ("node2:8646", "node3:8646")
    assert (data / "node.key").exists() and (data / "genesis.json").read_bytes() == (
        genesis.read_bytes()
    )
    # A second start leaves the data dir as it is.
    before = (data / "config.toml").read_text()
    again = subprocess.run(
        ["sh", str(script), "true"],
        env={**env, "POWERNODE_PEERS": "x:1"},
        capture_output=True,
        timeout=60,
    )
    assert again.returncode == 0 and (data / "config.toml").read_text() == before


def test_the_license_file_is_the_one_pyproject_names() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # setuptools ships LICEN[CS]E* in the wheel by default.
    assert project["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
