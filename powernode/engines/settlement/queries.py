"""Read-only settlement queries over a state (the chain's tip), JSON-ready."""

from __future__ import annotations

from typing import Any

from powernode.engines.market.queries import ScanState
from powernode.engines.market.session import pending_slots
from powernode.engines.settlement.records import SLOT_NS, SlotSettlement


def settlements(
    state: ScanState, *, slot: int | None = None, seller: bytes | None = None
) -> list[dict[str, Any]]:
    """The (seller, slot) settlements done, by slot then seller."""
    found: list[tuple[bytes, SlotSettlement]] = []
    for k, v in state.namespace(SLOT_NS).items():
        if slot is not None and int.from_bytes(k[:8], "big") != slot:
            continue
        if seller is not None and k[8:] != seller:
            continue
        found.append((k, v))
    found.sort()
    return [v.to_json(int.from_bytes(k[:8], "big"), k[8:]) for k, v in found]


def pending(state: ScanState) -> list[int]:
    """Slots with trades still to settle, ascending."""
    return list(pending_slots(state))
