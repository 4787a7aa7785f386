"""Peer identity and per-IP limits, from other hosts (network namespaces, as
in ``test_netns_hostile.py``), against the handshake that proves node ids
(README, "Peer protocol"): a node id is a key the peer proves possession of,
so a stranger that copies an honest node's id and listen address can neither
replace that node's connection nor get it banned; misbehaviour bans the
connecting IP (peers on other hosts), so the same IP is refused afterwards
whatever id it claims; each IP holds a bounded number of pending handshakes
(``max_pending_per_ip``, 2 by default) and of inbound connections
(``max_inbound_per_ip``, 4).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from powernode.devnet.wait import wait_until
from tests.harness.netnsnet import NetnsTestnet, host_of, meshed_testnet

pytestmark = pytest.mark.e2e

MAX_PENDING_PER_IP = 2  # the config defaults (README, "Config keys")
MAX_INBOUND_PER_IP = 4
HANDSHAKE_TIMEOUT = 10  # s, [p2p] handshake_timeout's default


@pytest.fixture(scope="module")
def net3_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsTestnet]:
    with meshed_testnet(tmp_path_factory.mktemp("netns-identity") / "tn") as net:
        yield net


@pytest.fixture
def net3(net3_module: NetnsTestnet) -> Iterator[NetnsTestnet]:
    """One testnet for the module; each test uses hosts (IPs) of its own,
    and its node processes on them are stopped when it ends."""
    try:
        yield net3_module
    finally:
        net3_module.stop_guest_nodes()


def bans_naming(net: NetnsTestnet, i: int, ip: str) -> list[str]:
    return [b for b in net.banned(i) if host_of(b) == ip]


def test_impostor_neither_replaces_nor_gets_banned_the_honest_node(net3: NetnsTestnet) -> None:
    net = net3
    # Both ways round: one of each pair's two nodes dialled the connection
    # the pair kept, so one of these is the impostor against an outbound one.
    # A new IP each time: the first one's junk gets it banned.
    for target, honest in ((0, 1), (1, 0)):
        g = net.guest()
        assert net.ip(honest) in net.linked_ips(target)
        out = net.hostile(g, "impostor", target, "--copy", net.p2p(honest))
        assert out.get("copied_listen") == net.p2p(honest), out
        # It claimed the id, sent junk, and the node hung up on it.
        assert out["closed"], out

        # The honest node keeps its place (the node may check the claimed
        # address by dialling it, and keep either of two proven links): the
        # link to the honest IP stands, none to the impostor's.
        def honest_kept(t: int = target, h: int = honest, stranger: str = g.ip) -> bool:
            return net.ip(h) in (linked := net.linked_ips(t)) and stranger not in linked

        wait_until(
            honest_kept,
            timeout=30,
            what=f"node{target} linked to node{honest}'s IP and not to the impostor's",
        )
        # Unproven, it never held a peer's place, the honest one's or any.
        held = [ln for ln in net.log(target).splitlines() if "peer.connected" in ln and g.ip in ln]
        assert held == []
        for i in range(net.n):
            assert bans_naming(net, i, net.ip(honest)) == [], net.banned(i)
    assert net.meshed()


def test_a_banned_ip_is_refused_under_any_node_id(net3: NetnsTestnet) -> None:
    net = net3
    g, control = net.guest(), net.guest()
    out = net.hostile(g, "junk-first", 0)
    assert out["closed"], out
    wait_until(lambda: bans_naming(net, 0, g.ip), timeout=30, what=f"a ban naming {g.ip}")
    # An honest node process on the banned IP (a fresh id, proven), started
    # before one on a clean IP: by the time the clean one is connected, the
    # banned one has dialled node0 too.
    banned_node = net.start_node_in(g, peers=[0])
    banned_node.wait_ready(60)
    net.start_node_in(control, peers=[0]).wait_ready(60)
    wait_until(
        lambda: control.ip in net.linked_ips(0), timeout=60, what="the clean IP's node connected"
    )
    assert g.ip not in net.linked_ips(0)


def test_silent_connections_from_one_ip_hold_at_most_the_pending_limit(
    net3: NetnsTestnet,
) -> None:
    net = net3
    g = net.guest()
    count = MAX_PENDING_PER_IP + 4
    out = net.hostile(
        g,
        "silent",
        0,
        "--count",
        str(count),
        "--keep",
        str(MAX_PENDING_PER_IP),
        # Well before the handshake timeout would close them all anyway.
        "--hold",
        str(HANDSHAKE_TIMEOUT / 2),
    )
    assert out["refused"] + out["closed"] >= count - MAX_PENDING_PER_IP, out
    assert net.meshed()  # honest nodes on other IPs are not affected


def test_one_ip_holds_at_most_the_inbound_limit(net3: NetnsTestnet) -> None:
    net = net3
    crowd, control = net.guest(), net.guest()
    # Honest node processes (each proves its own id) sharing one IP, then one
    # on another IP: once that one is connected, the crowd has dialled too.
    for node in [net.start_node_in(crowd, peers=[0]) for _ in range(MAX_INBOUND_PER_IP + 1)]:
        node.wait_ready(60)
    net.start_node_in(control, peers=[0]).wait_ready(60)
    wait_until(
        lambda: control.ip in net.linked_ips(0), timeout=60, what="the other IP's node connected"
    )
    assert 1 <= net.inbound_from(0, crowd.ip) <= MAX_INBOUND_PER_IP
    assert net.meshed()
