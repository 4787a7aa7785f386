"""Single in-process P2P nodes and what hostile-peer tests look at: a node's
peer by its advertised listen address, and structured log events.

(Networks of honest nodes, connecting and syncing them: ``network.py``.)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import init_datadir
from powernode.node.config import load_config
from powernode.node.node import Node
from powernode.node.peer import Peer
from tests.harness.network import enable_p2p


def p2p_datadir(datadir: Path, genesis: Path, *, key: KeyPair | None = None, **p2p: int) -> Path:
    """A data dir with P2P on; ``p2p`` overrides integer ``[p2p]`` keys."""
    init_datadir(datadir, genesis, key=key)
    enable_p2p(datadir, peers=(), **p2p)
    text = (datadir / "config.toml").read_text()
    assert "[p2p]\nenabled = true" in text, "config layout changed"
    for k, v in p2p.items():
        assert f"\n{k} = {v}\n" in text, f"no [p2p] key {k!r} in the config"
    return datadir


async def start_node(datadir: Path) -> Node:
    node = Node(load_config(datadir))
    await node.start()
    assert node.p2p is not None and node.p2p.listen
    return node


def peer_by_listen(node: Node, listen: str) -> Peer | None:
    """The node's ready peer that advertised ``listen`` in its hello."""
    assert node.p2p is not None
    for p in node.p2p.peers.values():
        if p.listen == listen:
            return p
    return None


def events(caplog: pytest.LogCaptureFixture, name: str, **fields: Any) -> list[logging.LogRecord]:
    """Log records of one structured event whose fields match ``fields``."""
    out = []
    for r in caplog.records:
        if r.getMessage() != name:
            continue
        got = getattr(r, "fields", {})
        if all(got.get(k) == v for k, v in fields.items()):
            out.append(r)
    return out
