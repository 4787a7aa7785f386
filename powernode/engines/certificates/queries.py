"""Read-only certificate queries over a state (the chain's tip), JSON-ready.

Pure functions like ``market.queries``: lookups by id are direct; listings
scan the certificate records of the state dict (fine at testnet scale; a
secondary index would go here). ``now`` is the chain's clock for metering
and certificates (``metering.clock``): the caller passes it, since whether
a certificate has expired depends on it.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise
from typing import Any

from powernode.core.execution import StateListing
from powernode.engines.certificates.records import (
    CERT_NS,
    ISSUE,
    READING,
    RET_NS,
    SPLIT,
    STATUSES,
    Certificate,
    Step,
    child_id,
    claimed,
    root_id,
    step,
    steps,
    totals,
)
from powernode.engines.metering import queries as meter_queries
from powernode.engines.metering import records as meter_records

# A state that can be read by key and list a namespace (MemoryState).
ScanState = StateListing


def _get(state: ScanState, cert_id: bytes) -> Certificate | None:
    c: Certificate | None = state.get((CERT_NS, cert_id))
    return c


def cert(state: ScanState, cert_id: bytes, now: int) -> dict[str, Any] | None:
    c = _get(state, cert_id)
    return None if c is None else c.to_json(cert_id, now)


def stats(state: ScanState) -> dict[str, int]:
    t = totals(state)
    return {"issued_wh": t.issued_wh, "retired_wh": t.retired_wh, "certificates": t.certificates}


def certs(
    state: ScanState,
    owner: bytes | None = None,
    status: str | None = None,
    device: bytes | None = None,
    source: str | None = None,
    start: int | None = None,
    end: int | None = None,
    *,
    now: int,
) -> list[dict[str, Any]]:
    """Certificates matching every filter given: generation interval start in
    [start, end); status as a reader sees it (active, retired, expired).
    Ascending by generation interval, then device, issue height and id."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status: expected one of {list(STATUSES)}")
    found: list[tuple[int, bytes, int, bytes, Certificate]] = []
    for cid, c in state.namespace(CERT_NS).items():
        if owner is not None and c.owner != owner:
            continue
        if device is not None and c.device != device:
            continue
        if source is not None and c.source != source:
            continue
        if start is not None and c.interval_start < start:
            continue
        if end is not None and c.interval_start >= end:
            continue
        if status is not None and c.status_at(now) != status:
            continue
        found.append((c.interval_start, c.device, c.issued_height, cid, c))
    found.sort(key=lambda f: f[:4])
    return [c.to_json(cid, now) for _, _, _, cid, c in found]


def _lineage(state: ScanState, cert_id: bytes) -> list[tuple[bytes, Certificate]]:
    """(id, record) from the root down to ``cert_id``."""
    out: list[tuple[bytes, Certificate]] = []
    cid: bytes = cert_id
    while True:
        c = _get(state, cid)
        if c is None:
            raise LookupError(f"certificate {cid.hex()} of a lineage is missing")
        out.append((cid, c))
        if not c.parent:
            break
        cid = c.parent
    out.reverse()
    return out


def trace(state: ScanState, cert_id: bytes) -> dict[str, Any] | None:
    """The whole lineage of a certificate in chain order: each ancestor's
    steps up to the split that made the next certificate of the path (that
    split is shown once, as the first step of the child it made), then every
    step of the certificate itself."""
    if _get(state, cert_id) is None:
        return None
    path = _lineage(state, cert_id)
    out: list[dict[str, Any]] = []
    for (cid, c), (child, _) in pairwise(path):
        for seq in range(c.steps):
            s = step(state, cid, seq)
            assert s is not None
            if s.kind == SPLIT and s.other == child:
                break
            out.append(s.to_json(cid))
    out.extend(s.to_json(cert_id) for s in steps(state, cert_id, path[-1][1]))
    return {"cert": cert_id.hex(), "root": path[0][0].hex(), "steps": out}


def _problems(state: ScanState, cert_id: bytes, c: Certificate) -> list[str]:
    """What is inconsistent in a certificate's records, judged from state
    alone: the chain keeps these true, so a node that reports a problem has
    a damaged state."""
    problems: list[str] = []
    try:
        path = _lineage(state, cert_id)
    except LookupError as exc:
        return [str(exc)]
    rid, root = path[0]
    if rid != root_id(root.device, root.interval_start):
        problems.append("the root's id is not that of its (device, interval)")
    if claimed(state, root.device, root.interval_start) != rid:
        problems.append("the (device, interval) is not claimed by this lineage's root")
    first = step(state, rid, 0)
    if first is None or first.kind not in (READING, ISSUE) or first.wh != root.wh:
        problems.append("the root does not begin with its issuance")
    reading = meter_records.reading(state, root.device, root.interval_start)
    if first is not None and first.kind == READING:
        if reading is None or reading.txid != root.issued_txid or reading.produced_wh != root.wh:
            problems.append("the root is not what its reading metered")
    elif (
        # A manual issue after the reading is bounded by it (one before the
        # reading is not: the reading then arrives on a certified interval).
        reading is not None
        and reading.height < root.issued_height
        and root.wh > reading.produced_wh
    ):
        problems.append("the root certifies more than the reading metered")
    for (pid, _), (cid, child) in pairwise(path):
        if cid != child_id(pid, child.issued_txid):
            problems.append(f"certificate {cid.hex()} is not the split of its parent")
    for _, other in path[1:]:
        origin = (other.device, other.source, other.location, other.carbon_intensity,
                  other.ctype, other.interval_start, other.interval_seconds, other.expires)  # fmt: skip
        if origin != (root.device, root.source, root.location, root.carbon_intensity,
                      root.ctype, root.interval_start, root.interval_seconds, root.expires):  # fmt: skip
            problems.append("a certificate's origin fields differ from its root's")
            break
    # What it gave to children (split steps on it that name another cert,
    # except the split that made it) plus what it holds is what it got.
    own = steps(state, cert_id, c)
    given = sum(s.wh for i, s in enumerate(own) if s.kind == SPLIT and not (i == 0 and c.parent))
    if c.remaining_wh + given != c.wh or not 0 < c.remaining_wh <= c.wh:
        problems.append("the certificate's amounts do not add up")
    return problems


def verify(state: ScanState, cert_id: bytes, now: int) -> dict[str, Any] | None:
    """The seed's verify_certificate: ``valid`` says the certificate's
    records and lineage are consistent (then ``problems`` is empty), and
    ``usable`` whether it can still be transferred or retired (active and
    not expired)."""
    c = _get(state, cert_id)
    if c is None:
        return None
    t = trace(state, cert_id)
    assert t is not None
    problems = _problems(state, cert_id, c)
    status = c.status_at(now)
    return {
        "id": cert_id.hex(),
        "valid": not problems,
        "problems": problems,
        "usable": status == "active",
        "source": c.source,
        "carbon_intensity": c.carbon_intensity,
        "type": c.ctype,
        "trace_length": len(t["steps"]),
        "interval_start": c.interval_start,
        "interval_end": c.interval_end,
        "location": c.location,
        "status": status,
        "owner": c.owner.hex(),
        "producer": c.producer.hex(),
        "device": c.device.hex(),
        "wh": c.wh,
        "remaining_wh": c.remaining_wh,
        "expires": c.expires,
        "root": t["root"],
        "claim": None if c.claim is None else c.claim.to_json(),
    }


def cfe(state: ScanState, participant: bytes, start: int, end: int) -> dict[str, Any]:
    """Hourly (per metering interval) carbon-free energy matching of a
    participant over generation intervals starting in [start, end): per
    interval, the consumption its devices metered, the certificate Wh it
    retired whose generation interval is that interval, and the matched Wh
    (the smaller of the two; a surplus in one interval never covers another).
    ``matched_bps`` = total matched x 10000 // total consumed (0 when nothing
    was consumed), rounded down."""
    consumed: dict[int, int] = defaultdict(int)
    retired: dict[int, int] = defaultdict(int)
    for dev in meter_queries.devices(state, owner=participant):
        for r in meter_queries.readings(state, bytes.fromhex(dev["id"]), start, end):
            if r["consumed_wh"]:
                consumed[r["interval"]] += r["consumed_wh"]
    for key, wh in state.namespace(RET_NS).items():
        if key[:20] != participant:
            continue
        interval = int.from_bytes(key[20:28], "big")
        if start <= interval < end:
            retired[interval] += int(wh)
    rows = []
    total_c = total_r = total_m = 0
    for interval in sorted(set(consumed) | set(retired)):
        used, got = consumed.get(interval, 0), retired.get(interval, 0)
        matched = min(used, got)
        rows.append(
            {"interval": interval, "consumed_wh": used, "retired_wh": got, "matched_wh": matched}
        )
        total_c, total_r, total_m = total_c + used, total_r + got, total_m + matched
    return {
        "participant": participant.hex(),
        "start": start,
        "end": end,
        "intervals": rows,
        "consumed_wh": total_c,
        "retired_wh": total_r,
        "matched_wh": total_m,
        "matched_bps": total_m * 10_000 // total_c if total_c else 0,
    }


# The most certificates ``tree`` returns: a root split by settlements into
# thousands of bundles must not make one answer unbounded.
TREE_MAX_NODES = 1000
# The most steps it reads in all: one certificate may hold thousands of
# steps (each split, transfer), each a state read.
TREE_MAX_STEPS = 10_000


def _children(cert_id: bytes, c: Certificate, own: list[Step]) -> list[bytes]:
    """The certificates split off ``c``, in the order they were made: its
    split steps, except the one that made ``c`` itself (its first, when it
    has a parent)."""
    return [
        s.other
        for i, s in enumerate(own)
        if s.kind == SPLIT and s.other and not (i == 0 and c.parent and s.other == c.parent)
    ]


def tree(
    state: ScanState,
    cert_id: bytes,
    now: int,
    *,
    max_nodes: int = TREE_MAX_NODES,
    max_steps: int = TREE_MAX_STEPS,
) -> dict[str, Any] | None:
    """The whole lineage tree of a certificate's root: every certificate
    split off it, and off those, root first and then depth first, children
    in the order they were made; each with its own steps (as ``trace``
    gives them). At most ``max_nodes`` certificates and ``max_steps`` steps
    in all: the certificate that reaches the step cap is the last, with its
    first steps only (``truncated`` says whether anything was left out)."""
    if _get(state, cert_id) is None:
        return None
    root = _lineage(state, cert_id)[0][0]
    nodes: list[dict[str, Any]] = []
    stack = [root]
    truncated = False
    steps_left = max_steps
    while stack:
        if len(nodes) >= max_nodes or steps_left <= 0:
            truncated = True
            break
        cid = stack.pop()
        c = _get(state, cid)
        if c is None:  # a damaged state; cert.verify names it
            continue
        own = []
        for seq in range(min(c.steps, steps_left)):
            s = step(state, cid, seq)
            assert s is not None, "a certificate's steps are stored 0..steps-1"
            own.append(s)
        steps_left -= len(own)
        nodes.append(
            {
                "id": cid.hex(),
                "parent": c.parent.hex() if c.parent else None,
                "owner": c.owner.hex(),
                "wh": c.wh,
                "remaining_wh": c.remaining_wh,
                "status": c.status_at(now),
                "steps": [s.to_json(cid) for s in own],
            }
        )
        if len(own) < c.steps:
            truncated = True
            break
        stack.extend(reversed(_children(cid, c, own)))
    return {"root": root.hex(), "cert": cert_id.hex(), "nodes": nodes, "truncated": truncated}
