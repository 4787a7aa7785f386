"""Read-only declarative contract queries over a state (the chain's tip),
JSON-ready. Lookups by id are direct; ``contracts`` scans the contract
records (fine at testnet scale, as the certificate listings). ``now`` is the
metering clock (the caller passes it): whether an open contract shows as
expired depends on it.
"""

from __future__ import annotations

from typing import Any

from powernode.core.execution import StateListing
from powernode.engines.contracts import contract_vocab as vocab
from powernode.engines.contracts.contract_records import (
    CONTRACT_NS,
    STATUSES,
    Contract,
    approved,
    contract_address,
    totals,
)

# A state that can be read by key and list a namespace (MemoryState).
ScanState = StateListing


def _term_json(t: vocab.Term) -> list[Any]:
    return [x.hex() if isinstance(x, bytes) else x for x in t]


def _to_json(state: ScanState, cid: bytes, c: Contract, now: int) -> dict[str, Any]:
    return {
        "id": cid.hex(),
        "address": contract_address(cid).hex(),
        "creator": c.creator.hex(),
        "parties": [p.hex() for p in c.parties],
        "funded": c.funded,
        "escrow": c.escrow,
        "expiry": c.expiry,
        "conditions": [_term_json(t) for t in c.conditions],
        "actions": [_term_json(t) for t in c.actions],
        "status": c.status_at(now),
        "approvals": {p.hex(): h for p in c.parties if (h := approved(state, cid, p)) is not None},
        "created_height": c.created_height,
        "created_time": c.created_time,
        "closed_height": c.closed_height or None,
        "closed_txid": c.closed_txid.hex() or None,
        "min_fee": vocab.min_fee(len(c.conditions), len(c.actions)),
    }


def get(state: ScanState, contract_id: bytes, now: int) -> dict[str, Any] | None:
    """``contract.get``: the contract, or None."""
    c: Contract | None = state.get((CONTRACT_NS, contract_id))
    return None if c is None else _to_json(state, contract_id, c, now)


def contracts(
    state: ScanState, party: bytes | None = None, status: str | None = None, *, now: int
) -> list[dict[str, Any]]:
    """``contract.list``: contracts whose creator or one of whose parties is
    ``party``, with ``status`` as a reader sees it (open, executed,
    cancelled, expired); by creation height, then id."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status: expected one of {list(STATUSES)}")
    found: list[tuple[int, bytes, Contract]] = []
    for cid, c in state.namespace(CONTRACT_NS).items():
        if party is not None and party != c.creator and party not in c.parties:
            continue
        if status is not None and c.status_at(now) != status:
            continue
        found.append((c.created_height, cid, c))
    found.sort(key=lambda f: (f[0], f[1]))
    return [_to_json(state, cid, c, now) for _, cid, c in found]


def stats(state: ScanState) -> dict[str, int]:
    """Money held by contracts (the sum of their escrows) and how many exist."""
    t = totals(state)
    return {"escrow": t.escrow, "contracts": t.contracts}
