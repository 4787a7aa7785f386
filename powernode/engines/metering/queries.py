"""Read-only metering queries over a state (the chain's tip), JSON-ready.

Pure functions, as ``market.queries``: lookups by key are direct; listings
scan the metering namespace they list, never the whole state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from powernode.core.execution import StateListing
from powernode.engines.metering.records import (
    DEVICE_NS,
    OWNER_NS,
    READING_NS,
    Device,
    Reading,
    totals,
)

# A state that can be read by key and list a namespace (MemoryState).
ScanState = StateListing


def _records(state: ScanState, ns: str) -> Iterator[tuple[bytes, Any]]:
    yield from state.namespace(ns).items()


def _device_json(state: ScanState, device_id: bytes, d: Device) -> dict[str, Any]:
    t = totals(state, device_id)
    out = d.to_json(device_id)
    out["readings"] = t.readings
    out["produced_wh"] = t.produced_wh
    out["consumed_wh"] = t.consumed_wh
    out["last_interval"] = t.last_interval if t.readings else None
    return out


def device(state: ScanState, device_id: bytes) -> dict[str, Any] | None:
    """A device's record with its reading totals, or None."""
    d: Device | None = state.get((DEVICE_NS, device_id))
    return None if d is None else _device_json(state, device_id, d)


def devices(
    state: ScanState, owner: bytes | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """Devices (of ``owner``, in ``status``) in the order they were
    registered (height, then id)."""
    if owner is None:
        found = list(_records(state, DEVICE_NS))
    else:
        found = []
        for k, _ in _records(state, OWNER_NS):
            if k[:20] == owner:
                d = state.get((DEVICE_NS, k[20:]))
                if d is not None:
                    found.append((k[20:], d))
    rows = sorted(
        (d.registered_height, did, d) for did, d in found if status is None or d.status == status
    )
    return [_device_json(state, did, d) for _, did, d in rows]


def _reading_json(device_id: bytes, interval: int, r: Reading) -> dict[str, Any]:
    return {
        "device": device_id.hex(),
        "interval": interval,
        "produced_wh": r.produced_wh,
        "consumed_wh": r.consumed_wh,
        "relayer": r.relayer.hex(),
        "txid": r.txid.hex(),
        "height": r.height,
        "time": r.time,
    }


def readings(
    state: ScanState, device_id: bytes, start: int | None = None, end: int | None = None
) -> list[dict[str, Any]]:
    """A device's readings with ``start <= interval < end``, ascending."""
    found = []
    for k, r in _records(state, READING_NS):
        if k[:32] != device_id:
            continue
        interval = int.from_bytes(k[32:40], "big")
        if (start is None or interval >= start) and (end is None or interval < end):
            found.append((interval, r))
    found.sort()
    return [_reading_json(device_id, interval, r) for interval, r in found]
