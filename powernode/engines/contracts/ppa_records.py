"""The PPAs' slice of state (record types and keys; filled in by the PPA part).

Namespaces (key bytes after the namespace):

    ppa.alloc   device id (32) + u64(interval start)   Wh: energy of that reading
                                                       taken by PPAs bound to the device
"""

from __future__ import annotations

from typing import Any

from powernode.core import encoding
from powernode.core.execution import StateRead

ALLOC_NS = "ppa.alloc"


class AllocWh(int):
    """Wh of a reading taken by PPAs, as a state value: stored as the integer."""

    __slots__ = ()

    def to_obj(self) -> int:
        return int(self)

    @classmethod
    def from_obj(cls, obj: Any) -> AllocWh:
        return cls(encoding.as_uint(obj, "allocated wh"))


def alloc_key(device: bytes, interval: int) -> bytes:
    return device + interval.to_bytes(8, "big")


def allocated(view: StateRead, device: bytes, interval: int) -> int:
    """Wh of the reading of ``device`` for the interval starting at ``interval``
    that PPAs bound to the device took (0 when none did). The settlement
    allocates trades only from what is left."""
    v = view.get((ALLOC_NS, alloc_key(device, interval)))
    return 0 if v is None else int(v)
