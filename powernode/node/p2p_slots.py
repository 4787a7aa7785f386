"""Inbound connection slots, taken when a connection is accepted.

A connection holds a slot from the moment it is accepted (before the
WebSocket upgrade, before any byte of its handshake) until it closes, and
a pending slot until its handshake ends. So handshakes under way count
against ``max_inbound`` as well as ``max_pending``: a burst of connections
cannot all pass the check before any is counted, which is how 300 hellos
sent at once used to leave 301 inbound peers against a limit of 32.
Per remote IP, the same two counts are held to ``max_pending_per_ip`` and
``max_inbound_per_ip``, unless the peer is on this host (its IP is the
socket's local IP: every node of a local testnet shares 127.0.0.1).

The caller decides and takes a slot with no ``await`` in between, so the
check and the count are one step on the event loop.
"""

from __future__ import annotations

from collections import Counter

from powernode.node.config import P2pConfig


class InboundSlots:
    def __init__(self, cfg: P2pConfig) -> None:
        self.cfg = cfg
        self.held = 0  # inbound connections, handshakes under way included
        self.pending = 0  # of those, still in their handshake
        self.peak_held = 0  # the most held at once
        self.held_by_ip: Counter[str] = Counter()
        self.pending_by_ip: Counter[str] = Counter()

    def refusal(self, ip: str, *, same_host: bool) -> str:
        """Why one more connection from ``ip`` does not fit, or ''."""
        cfg = self.cfg
        if self.held >= cfg.max_inbound:
            return "inbound_full"
        if self.pending >= cfg.max_pending:
            return "pending_full"
        if not same_host:
            if self.pending_by_ip[ip] >= cfg.max_pending_per_ip:
                return "ip_pending_full"
            if self.held_by_ip[ip] >= cfg.max_inbound_per_ip:
                return "ip_inbound_full"
        return ""

    def take(self, ip: str) -> Slot:
        """A slot for one accepted connection (``refusal`` said it fits)."""
        self.held += 1
        self.pending += 1
        self.held_by_ip[ip] += 1
        self.pending_by_ip[ip] += 1
        self.peak_held = max(self.peak_held, self.held)
        return Slot(self, ip)


class Slot:
    """One connection's hold: the pending part ends at ``handshake_done``,
    the rest at ``release`` (each once, whatever the order of the calls)."""

    def __init__(self, slots: InboundSlots, ip: str) -> None:
        self.slots = slots
        self.ip = ip
        self.pending = True
        self.held = True

    def handshake_done(self) -> None:
        if self.pending:
            self.pending = False
            self.slots.pending -= 1
            _drop(self.slots.pending_by_ip, self.ip)

    def release(self) -> None:
        self.handshake_done()
        if self.held:
            self.held = False
            self.slots.held -= 1
            _drop(self.slots.held_by_ip, self.ip)


def _drop(counts: Counter[str], ip: str) -> None:
    counts[ip] -= 1
    if counts[ip] <= 0:
        del counts[ip]  # an IP with nothing held is not kept
