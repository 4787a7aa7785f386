"""Read-only PPA queries over a state (the chain's tip), JSON-ready.

``ppa.get`` is the seed's ``get_contract_status`` made deterministic: the
days remaining come from ``now``, the chain's clock (``metering.clock``:
the caller passes it), never the wall clock. ``ppa.list`` scans the PPA
records of the state dict (fine at testnet scale; an index by party would
go here).
"""

from __future__ import annotations

from typing import Any

from powernode.core.execution import StateListing
from powernode.engines.contracts.ppa_records import (
    ACTIVE,
    DAY,
    EXPIRED,
    PPA_NS,
    PROPOSED,
    STATUSES,
    Delivery,
    Ppa,
    delivery,
    delivery_id,
    totals,
)

# A state that can be read by key and list a namespace (MemoryState).
ScanState = StateListing


def days_remaining(p: Ppa, now: int) -> int:
    """Whole days (rounded up) until the end of the term, by the chain's
    clock; 0 once it ended or the PPA closed."""
    if p.status not in (PROPOSED, ACTIVE) or now >= p.end:
        return 0
    # Before the term starts, the whole term remains.
    return -(-(p.end - max(now, p.start)) // DAY)


def _delivery_json(ppa_id: bytes, seq: int, d: Delivery) -> dict[str, Any]:
    return {
        "seq": seq,
        "id": delivery_id(ppa_id, seq).hex(),
        "kind": d.kind,
        "wh": d.wh,
        "interval_start": d.interval_start,
        "status": d.status,
        "value": d.value,
        "cert_wh": d.cert_wh,
        "cert": d.cert.hex() if d.cert else None,
        "height": d.height,
        "time": d.time,
        "confirm_by": d.confirm_by,
    }


def summary(ppa_id: bytes, p: Ppa, now: int) -> dict[str, Any]:
    return {
        "id": ppa_id.hex(),
        "seller": p.seller.hex(),
        "buyer": p.buyer.hex(),
        "device": p.device.hex() if p.device else None,
        "share_bps": p.share_bps,
        "total_wh": p.total_wh,
        "delivered_wh": p.delivered_wh,
        "pending_wh": p.pending_wh,
        "progress_bps": p.delivered_wh * 10_000 // p.total_wh,
        "price": p.price,
        "paid": p.paid,
        "owed": p.owed,
        "escrow": p.escrow,
        "start": p.start,
        "end": p.end,
        "duration_days": p.duration_days,
        "period_seconds": p.period_seconds,
        "accept_deadline": p.accept_deadline,
        "days_remaining": days_remaining(p, now),
        "status": p.status,
        "shortfall_wh": p.total_wh - p.delivered_wh if p.status == EXPIRED else 0,
        "grace_until": p.grace_until,
        "terminate_requested_by": [
            who for bit, who in ((1, p.seller.hex()), (2, p.buyer.hex())) if p.terminate_by & bit
        ],
        "proposed_height": p.proposed_height,
        "closed_time": p.closed_time,
        "deliveries_count": p.deliveries,
    }


def get(state: ScanState, ppa_id: bytes, now: int, *, limit: int = 1000) -> dict[str, Any] | None:
    """The PPA with its latest ``limit`` deliveries (oldest first)."""
    p: Ppa | None = state.get((PPA_NS, ppa_id))
    if p is None:
        return None
    out = summary(ppa_id, p, now)
    first = max(0, p.deliveries - limit)
    dl = []
    for seq in range(first, p.deliveries):
        d = delivery(state, ppa_id, seq)
        assert d is not None
        dl.append(_delivery_json(ppa_id, seq, d))
    out["deliveries"] = dl
    return out


def list_ppas(
    state: ScanState,
    party: bytes | None = None,
    status: str | None = None,
    *,
    now: int,
) -> list[dict[str, Any]]:
    """Summaries of the PPAs where ``party`` is seller or buyer and whose
    status is ``status`` (each filter when given), by proposal height, then id."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status: expected one of {list(STATUSES)}")
    found: list[tuple[int, bytes, Ppa]] = []
    for pid, p in state.namespace(PPA_NS).items():
        if party is not None and party not in (p.seller, p.buyer):
            continue
        if status is not None and p.status != status:
            continue
        found.append((p.proposed_height, pid, p))
    found.sort(key=lambda t: (t[0], t[1]))
    return [summary(pid, p, now) for _, pid, p in found]


def stats(state: ScanState) -> dict[str, int]:
    t = totals(state)
    return {"escrow": t.escrow, "ppas": t.ppas, "delivered_wh": t.delivered_wh, "paid": t.paid}
