"""The bans a node keeps against peers, each with its end (monotonic s).

Three kinds, and never a claimed listen address (anyone can claim anyone's):
- a node id, proven by the handshake's ``auth``;
- an IP, for a peer on another host (never this host's own IP: every node
  of a local testnet shares it);
- an address an operator banned (RPC ``peer.ban``): never dialled, a peer
  claiming it as its listen address is refused, and the node ids known at
  it when it was banned are banned with it (and lifted with it).
"""

from __future__ import annotations


class Bans:
    def __init__(self) -> None:
        self.nodes: dict[bytes, float] = {}
        self.ips: dict[str, float] = {}
        self.addrs: dict[str, float] = {}
        # Address -> node ids banned with it (lifted by its unban).
        self._addr_nodes: dict[str, set[bytes]] = {}

    def node(self, node_id: bytes, now: float) -> bool:
        return self.nodes.get(node_id, 0.0) > now

    def ip(self, ip: str, now: float) -> bool:
        return self.ips.get(ip, 0.0) > now

    def addr(self, addr: str, now: float) -> bool:
        return self.addrs.get(addr, 0.0) > now

    def ban_node(self, node_id: bytes, until: float) -> None:
        self.nodes[node_id] = max(until, self.nodes.get(node_id, 0.0))

    def ban_ip(self, ip: str, until: float) -> None:
        self.ips[ip] = max(until, self.ips.get(ip, 0.0))

    def ban_addr(self, addr: str, until: float, nodes: set[bytes]) -> None:
        self.addrs[addr] = until
        self._addr_nodes.setdefault(addr, set()).update(nodes)
        for n in nodes:
            self.nodes[n] = until

    def unban_addr(self, addr: str) -> bool:
        found = self.addrs.pop(addr, None) is not None
        for n in self._addr_nodes.pop(addr, set()):
            found = self.nodes.pop(n, None) is not None or found
        return found

    def unban_node(self, node_id: bytes) -> bool:
        return self.nodes.pop(node_id, None) is not None

    def unban_ip(self, ip: str) -> bool:
        return self.ips.pop(ip, None) is not None

    def expire(self, now: float) -> None:
        for book in (self.nodes, self.ips, self.addrs):
            for key in [k for k, until in book.items() if until <= now]:
                del book[key]  # type: ignore[arg-type]
        for addr in [a for a in self._addr_nodes if a not in self.addrs]:
            del self._addr_nodes[addr]

    def in_force(self, now: float) -> int:
        """How many bans of every kind hold at ``now``."""
        return sum(
            1
            for book in (self.nodes, self.ips, self.addrs)
            for until in book.values()
            if until > now
        )

    def listing(self, now: float) -> list[dict[str, object]]:
        """For ``peer.list``: one row per ban in force. ``address`` holds the
        ban's key as text whatever its kind (older callers read only it)."""
        rows: list[dict[str, object]] = []
        for kind, book in (("node", self.nodes), ("ip", self.ips), ("address", self.addrs)):
            for key, until in sorted(book.items()):
                if until > now:
                    text = key.hex() if isinstance(key, bytes) else str(key)
                    rows.append(
                        {
                            "direction": "banned",
                            "kind": kind,
                            "address": text,
                            "banned_until_s": round(until - now),
                        }
                    )
        return rows
