"""The ban book (node/p2p_bans.py) and the [p2p] limits' config checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from powernode.core.errors import ConfigError
from powernode.devnet.datadir import render_config
from powernode.node.config import load_config
from powernode.node.p2p_bans import Bans

A, B = b"\xaa" * 32, b"\xbb" * 32


def test_each_kind_is_banned_until_its_end() -> None:
    bans = Bans()
    bans.ban_node(A, 10.0)
    bans.ban_ip("10.0.0.1", 20.0)
    assert bans.node(A, 9.9) and not bans.node(A, 10.0)
    assert bans.ip("10.0.0.1", 19.0) and not bans.ip("10.0.0.2", 0.0)
    assert not bans.node(B, 0.0) and not bans.addr("10.0.0.1:1", 0.0)
    bans.ban_node(A, 5.0)  # a shorter ban never cuts a longer one short
    assert bans.node(A, 9.0)
    bans.expire(15.0)
    assert bans.nodes == {} and set(bans.ips) == {"10.0.0.1"}


def test_an_address_ban_takes_its_node_ids_and_gives_them_back() -> None:
    bans = Bans()
    bans.ban_addr("h:1", 100.0, {A})
    bans.ban_node(B, 100.0)
    assert bans.addr("h:1", 0.0) and bans.node(A, 0.0)
    assert bans.unban_addr("h:1")
    assert not bans.addr("h:1", 0.0) and not bans.node(A, 0.0)
    assert bans.node(B, 0.0)  # banned on its own account, not the address's
    assert not bans.unban_addr("h:1")


def test_listing_names_every_ban_in_force() -> None:
    bans = Bans()
    bans.ban_node(A, 100.0)
    bans.ban_ip("10.0.0.1", 50.0)
    bans.ban_addr("h:1", 1.0, set())
    rows = bans.listing(10.0)
    assert [(r["kind"], r["address"], r["banned_until_s"]) for r in rows] == [
        ("node", A.hex(), 90),
        ("ip", "10.0.0.1", 40),
    ]
    assert all(r["direction"] == "banned" for r in rows)


# The [p2p] limits that must be positive integers (config.RANGES gives each its range).
P2P_LIMITS = (
    "max_inbound",
    "max_pending",
    "max_pending_per_ip",
    "max_inbound_per_ip",
    "handshake_timeout",
)


@pytest.mark.parametrize("key", P2P_LIMITS)
@pytest.mark.parametrize("value", ["0", "-1", "1.5", '"8"'])
def test_p2p_limits_must_be_positive_integers(tmp_path: Path, key: str, value: str) -> None:
    text, n = re.subn(
        rf"(?m)^{key} = \d+.*$", f"{key} = {value}", render_config(rpc_port=1, p2p_port=2)
    )
    assert n == 1, f"the config init writes shows no {key}"
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=rf"config \[p2p\] {key}: expected"):
        load_config(tmp_path)
