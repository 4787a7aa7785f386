"""Inbound slots (node/p2p_slots.py): what fits, and giving slots back."""

from __future__ import annotations

from powernode.node.config import P2pConfig
from powernode.node.p2p_slots import InboundSlots

CFG = P2pConfig(max_inbound=5, max_pending=3, max_pending_per_ip=2, max_inbound_per_ip=3)


def test_pending_handshakes_count_against_both_limits() -> None:
    s = InboundSlots(CFG)
    taken = [s.take("10.0.0.1" if i < 2 else f"10.0.1.{i}") for i in range(3)]
    assert (s.held, s.pending) == (3, 3)
    assert s.refusal("10.0.9.9", same_host=False) == "pending_full"
    for t in taken:
        t.handshake_done()
    assert s.refusal("10.0.9.9", same_host=False) == ""
    s.take("10.0.9.9").handshake_done()
    s.take("10.0.9.8")
    assert s.held == 5 and s.peak_held == 5
    # Full: a handshake ending frees a pending slot, not an inbound one.
    assert s.refusal("10.0.9.7", same_host=True) == "inbound_full"
    taken[0].release()
    assert s.refusal("10.0.9.7", same_host=True) == ""
    assert s.held == 4 and s.peak_held == 5


def test_per_ip_limits_apply_to_other_hosts_only() -> None:
    s = InboundSlots(CFG)
    a, b = s.take("10.0.0.1"), s.take("10.0.0.1")
    assert s.refusal("10.0.0.1", same_host=False) == "ip_pending_full"
    assert s.refusal("127.0.0.1", same_host=True) == ""
    a.handshake_done()
    b.handshake_done()
    s.take("10.0.0.1").handshake_done()
    assert s.refusal("10.0.0.1", same_host=False) == "ip_inbound_full"
    assert s.refusal("10.0.0.2", same_host=False) == ""


def test_release_is_once_whatever_the_order() -> None:
    s = InboundSlots(CFG)
    slot = s.take("10.0.0.1")
    slot.release()
    slot.release()
    slot.handshake_done()
    assert (s.held, s.pending) == (0, 0)
    assert s.held_by_ip == {} and s.pending_by_ip == {}
