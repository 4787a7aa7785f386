"""Hostile peers from another host: three node processes, each in a network
namespace of its own (``scripts/testnet.py up --netns``), and a hostile
client process in a namespace with an IP of its own
(``tests.harness.hostile_peer``). What it proves misbehaviour with gets its
IP banned (the ban names that IP, whatever else it is keyed on), what only
belongs elsewhere (another chain) is dropped without a ban, and the honest
nodes on their own IPs stay connected and keep syncing throughout.

Only behaviour that holds whether the node's handshake proves node ids or
not is asserted here; ``test_netns_identity.py`` has the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest

from powernode.devnet.wait import wait_until
from tests.harness.netnsnet import NetnsTestnet, Tip, host_of, meshed_testnet

pytestmark = pytest.mark.e2e

TARGET = 0  # the node under attack


@pytest.fixture(scope="module")
def net3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsTestnet]:
    with meshed_testnet(tmp_path_factory.mktemp("netns-hostile") / "tn") as net:
        yield net


def bans_naming(net: NetnsTestnet, i: int, ip: str) -> list[str]:
    return [b for b in net.banned(i) if host_of(b) == ip]


def assert_honest_nodes_unharmed(net: NetnsTestnet) -> None:
    """No honest IP banned anywhere, everyone still connected to everyone,
    and a new block still reaches every node."""
    honest = {net.ip(i) for i in range(net.n)}
    for i in range(net.n):
        assert not [b for b in net.banned(i) if host_of(b) in honest], net.banned(i)
    assert net.meshed()
    height = net.tips([0])[0][2]
    net.rpc(1).call("dev.mine", {"blocks": 1})
    tip = cast(Tip, wait_until(net.converged, timeout=60, what="the new block on every node"))
    assert tip[2] == height + 1


def test_junk_before_hello_gets_that_ip_banned(net3: NetnsTestnet) -> None:
    net = net3
    g = net.guest()
    out = net.hostile(g, "junk-first", TARGET)
    assert out["closed"], out
    wait_until(lambda: bans_naming(net, TARGET, g.ip), timeout=30, what=f"a ban naming {g.ip}")
    banned_lines = [ln for ln in net.log(TARGET).splitlines() if "peer.banned" in ln]
    assert any(g.ip in ln for ln in banned_lines), banned_lines
    assert_honest_nodes_unharmed(net)


def test_junk_after_hello_gets_that_ip_banned(net3: NetnsTestnet) -> None:
    net = net3
    g = net.guest()
    out = net.hostile(g, "junk-after-hello", TARGET)
    assert out["hello"] and out["closed"], out  # the node spoke first, then hung up
    wait_until(lambda: bans_naming(net, TARGET, g.ip), timeout=30, what=f"a ban naming {g.ip}")
    # The other nodes never heard of it: nothing of theirs is touched.
    assert bans_naming(net, 1, g.ip) == [] and bans_naming(net, 2, g.ip) == []
    assert_honest_nodes_unharmed(net)


def test_other_chain_is_dropped_not_banned(net3: NetnsTestnet) -> None:
    net = net3
    g = net.guest()
    out = net.hostile(g, "wrong-chain", TARGET)
    assert out["closed"], out
    dropped = wait_until(
        lambda: [ln for ln in net.log(TARGET).splitlines() if g.ip in ln and "wrong_network" in ln],
        timeout=30,
        what="the drop in the log",
    )
    assert not any("peer.banned" in ln for ln in dropped)
    assert bans_naming(net, TARGET, g.ip) == []
    assert_honest_nodes_unharmed(net)


def test_newcomer_from_another_host_finds_every_node_by_address_exchange(
    net3: NetnsTestnet,
) -> None:
    """Between the attacks, an honest node on a host of its own that knows
    only node0 learns the others' addresses from it, dials them on their
    IPs, and takes the chain."""
    net = net3
    h = net.guest()
    newcomer = net.start_node_in(h, peers=[TARGET])
    try:
        newcomer.wait_ready(60)
        wait_until(
            lambda: {net.ip(i) for i in range(net.n)} <= net.linked_ips_of(newcomer),
            timeout=60,
            what="the newcomer linked to every node's IP",
        )
        assert all(h.ip in net.linked_ips(i) for i in range(net.n))
        tip = net.converged()
        assert tip is not None
        wait_until(lambda: newcomer.call("node.info")["tip"] == tip[0], timeout=60, what="its sync")
    finally:
        newcomer.stop()
