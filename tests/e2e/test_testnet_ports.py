"""``testnet.py up`` when another process takes a chosen port before the node
binds it: the testnet starts again on fresh ports instead of failing."""

from __future__ import annotations

import importlib
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from powernode.devnet import testnet as devnet_testnet
from powernode.devnet.datadir import LOOPBACK
from powernode.devnet.process import pid_alive
from powernode.devnet.testnet import TestnetLayout

pytestmark = pytest.mark.e2e

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture
def testnet() -> Iterator[ModuleType]:
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    yield importlib.import_module("testnet")


# testnet.py leaves its node processes running on purpose (they outlive the
# command); run in-process here, their Popen objects are dropped while they run.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_up_retries_on_fresh_ports_when_one_was_taken(
    testnet: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    real = devnet_testnet.free_port
    handed = iter([busy])  # the first port handed out is already in use

    def free_port(host: str = LOOPBACK) -> int:
        return next(handed, None) or real(host)

    monkeypatch.setattr(devnet_testnet, "free_port", free_port)
    d = tmp_path / "tn"
    try:
        assert testnet.main(["up", "--nodes", "2", "--no-mine", "--easy", "--dir", str(d)]) == 0
        out = capsys.readouterr().out
        assert "was taken meanwhile; retrying on fresh ports" in out
        nodes = TestnetLayout.load(d).nodes
        assert all(pid_alive(n.pid) for n in nodes)
        assert busy not in {n.rpc_port for n in nodes}
    finally:
        taken.close()
        testnet.main(["down", "--dir", str(d)])
