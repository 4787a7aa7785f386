"""The URLs a node writes to ``node.json``: an IPv6 host in brackets, so
the CLI (which reads the RPC URL from there) can reach a node bound to one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from powernode.client import endpoint_from_datadir
from powernode.node.urls import host_port, http_url


@pytest.mark.parametrize(
    ("host", "want"),
    [
        ("127.0.0.1", "http://127.0.0.1:8545/rpc"),
        ("localhost", "http://localhost:8545/rpc"),
        ("::1", "http://[::1]:8545/rpc"),
        ("[::1]", "http://[::1]:8545/rpc"),
        ("::", "http://[::]:8545/rpc"),
    ],
)
def test_http_url(host: str, want: str) -> None:
    assert http_url(host, 8545, "rpc") == want


def test_the_cli_reads_an_ipv6_nodes_url(tmp_path: Path) -> None:
    (tmp_path / "node.json").write_text(
        json.dumps({"pid": 1, "rpc": http_url("::1", 21745, "rpc"), "p2p": "", "metrics": ""})
    )
    (tmp_path / ".cookie").write_text("__cookie__:secret")
    assert endpoint_from_datadir(tmp_path).url == "http://[::1]:21745/rpc"


def test_host_port_splits_back() -> None:
    assert host_port("127.0.0.1", 8646) == "127.0.0.1:8646"
    assert host_port("::1", 8646) == "[::1]:8646"
    assert host_port("[::1]", 8646).rpartition(":")[0].strip("[]") == "::1"
