"""Replay of a certificate's lineage txs: what they make, with no other state.

The lineage is, in chain order: the ``device.register`` that made the
device (its id is that tx's id), the ``device.approve`` by an authority,
the root issuance (a ``meter.report``, or a ``meter.batch`` with an entry
of the device, whose reading issued the root certificate, or a manual
``cert.issue``), then every ``cert.transfer`` and
``cert.retire`` that touched the certificate or one of its ancestors (each
ancestor up to the split that made the next one, the certificate itself to
the tip). Each tx is checked against the certificates rules that need only
the lineage and the genesis params, with the engines' own payload decoders
and id rules; what the rules need beyond that (other state, receipts) is
named in ``Replayed.unchecked``.

Times: a handler's ``now`` is ``max(market clock, block time)``; the market
clock is the highest block time the market has seen, so at block h ``now``
lies between that block's time and the highest time of blocks 1..h. A rule
that holds at both ends holds; one that fails at both fails (the proof is
refused); one that differs is listed as unchecked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from powernode.core.block import BlockHeader
from powernode.core.errors import PowernodeError, ProofBadLineage
from powernode.core.params import ChainParams
from powernode.core.tx import Transaction
from powernode.engines.certificates.handlers import cert_type
from powernode.engines.certificates.records import (
    ACTIVE,
    ISSUE,
    READING,
    RETIRE,
    RETIRED,
    SPLIT,
    TRANSFER,
    child_id,
    root_id,
)
from powernode.engines.metering.handlers import ReportPayload
from powernode.engines.metering.params import CertParams, cert_params
from powernode.engines.metering.records import CONSUMPTION, GENERATION
from powernode.state.registry import handler_for

TX_REGISTER, TX_APPROVE, TX_REPORT = "device.register", "device.approve", "meter.report"
TX_BATCH = "meter.batch"
TX_ISSUE, TX_TRANSFER, TX_RETIRE = "cert.issue", "cert.transfer", "cert.retire"
_MAX_CLAIM_TEXT = {"beneficiary": 128, "purpose": 256}


@dataclass(frozen=True, slots=True)
class Claim:
    beneficiary: str
    purpose: str
    period_start: int
    period_end: int
    retired_by: bytes


@dataclass(frozen=True, slots=True)
class Cert:
    """A certificate as the replay makes it (the engine's record, less what
    the replay cannot know: the issue time is the block's time here)."""

    id: bytes
    owner: bytes
    producer: bytes
    device: bytes
    source: str
    location: str
    carbon_intensity: int
    ctype: str
    interval_start: int
    interval_seconds: int
    wh: int
    remaining_wh: int
    status: str
    parent: bytes
    issued_txid: bytes
    issued_height: int
    expires: int
    claim: Claim | None = None


@dataclass(frozen=True, slots=True)
class Step:
    cert: bytes
    kind: str  # reading | issue | split | transfer | retire
    txid: bytes
    height: int
    frm: bytes = b""
    to: bytes = b""
    wh: int = 0
    other: bytes = b""  # split: the other side's id; reading: the device
    note: str = ""  # retire: the beneficiary


@dataclass(frozen=True, slots=True)
class Device:
    id: bytes
    owner: bytes
    kind: str
    source: str
    capacity_w: int
    location: str
    carbon_intensity: int
    meter_pubkey: bytes
    registered_height: int
    approved_by: bytes = b""
    approved_height: int = 0


@dataclass(frozen=True, slots=True)
class Placed:
    """A lineage tx with where the proof puts it."""

    tx: Transaction
    height: int
    index: int


@dataclass(slots=True)
class Replayed:
    device: Device
    certs: dict[bytes, Cert]
    steps: list[Step]
    root: bytes
    # Rules the replay could not decide from the lineage, one sentence each.
    unchecked: list[str] = field(default_factory=list)

    def ancestry(self, cert_id: bytes) -> list[bytes]:
        """``cert_id`` and its ancestors, root last."""
        out = []
        c: Cert | None = self.certs.get(cert_id)
        while c is not None:
            out.append(c.id)
            c = self.certs.get(c.parent) if c.parent else None
        return out


def _bad(p: Placed, msg: str) -> ProofBadLineage:
    return ProofBadLineage(f"tx {p.tx.txid.hex()[:16]} at height {p.height}: {msg}")


def _decoded(p: Placed) -> Any:
    """The payload as the engine decodes it: a payload its engine refuses
    would have failed the tx."""
    try:
        return handler_for(p.tx.type).decode(p.tx.payload)
    except PowernodeError as exc:
        raise _bad(p, f"{p.tx.type} payload refused: {exc.code}: {exc.message}") from exc


def _reading_of(p: Placed, device_id: bytes) -> ReportPayload:
    """The reading of ``device_id`` that the root issuance ``p`` carries: a
    ``meter.report``'s payload, or the entry of a ``meter.batch`` for the
    device (at most one: ids are strictly ascending)."""
    decoded = _decoded(p)
    if p.tx.type == TX_REPORT:
        if decoded.device_id != device_id:
            raise _bad(p, "reports for another device")
        out: ReportPayload = decoded
        return out
    for entry in decoded.readings:
        if entry.device_id == device_id:
            found: ReportPayload = entry
            return found
    raise _bad(p, "the batch has no reading of the device")


class _Clock:
    """The bounds of a handler's ``now`` at a block (see the module doc)."""

    def __init__(self, headers: Sequence[BlockHeader], max_times: Sequence[int]) -> None:
        self.headers = headers
        self.max_times = max_times

    def bounds(self, height: int) -> tuple[int, int]:
        lo = self.headers[height - 1].timestamp
        return lo, max(lo, self.max_times[height])


class _Replay:
    def __init__(self, params: ChainParams, clock: _Clock) -> None:
        self.params = params
        self.cp: CertParams = cert_params(params)
        self.clock = clock
        self.unchecked: list[str] = []

    def when(self, p: Placed, rule: str, holds: Callable[[int], bool]) -> None:
        """Require ``holds(now)``, ``now`` unknown within the block's bounds."""
        lo, hi = self.clock.bounds(p.height)
        at_lo, at_hi = holds(lo), holds(hi)
        if not at_lo and not at_hi:
            raise _bad(p, f"{rule} does not hold at the block's time")
        if at_lo != at_hi:
            self.unchecked.append(
                f"{rule} for tx {p.tx.txid.hex()} (height {p.height}) depends on the market"
                f" clock, which lies between {lo} and {hi}"
            )

    def device(self, reg: Placed, appr: Placed) -> Device:
        if reg.tx.type != TX_REGISTER:
            raise _bad(reg, f"the lineage starts with {reg.tx.type}, not {TX_REGISTER}")
        _decoded(reg)
        kind, source, capacity, location, carbon, meter_pubkey = reg.tx.payload
        dev = Device(
            id=reg.tx.txid,
            owner=reg.tx.sender_address,
            kind=kind,
            source=source,
            capacity_w=capacity,
            location=location,
            carbon_intensity=carbon,
            meter_pubkey=meter_pubkey,
            registered_height=reg.height,
        )
        if appr.tx.type != TX_APPROVE:
            raise _bad(appr, f"expected {TX_APPROVE} after the registration, got {appr.tx.type}")
        _decoded(appr)
        if appr.tx.payload[0] != dev.id:
            raise _bad(appr, "approves another device")
        if appr.tx.sender_address not in self.cp.authorities:
            raise _bad(appr, "approved by an address that is not a genesis authority")
        return replace(dev, approved_by=appr.tx.sender_address, approved_height=appr.height)

    def _interval(self, p: Placed, dev: Device, start: int, wh: int, what: str) -> None:
        interval = self.cp.interval_seconds
        if dev.source not in self.cp.sources:
            raise _bad(p, f"source {dev.source!r} does not earn certificates")
        if start % interval:
            raise _bad(p, f"interval {start} is not aligned to {interval}s")
        end = start + interval
        self.when(p, f"interval {start} has ended", lambda now: end <= now)
        if not 1 <= wh <= dev.capacity_w * interval // 3600:
            raise _bad(p, f"{what} {wh} Wh is not within 1..capacity x interval")

    def root(self, p: Placed, dev: Device) -> Cert:
        tx = p.tx
        if tx.type in (TX_REPORT, TX_BATCH):
            reading = _reading_of(p, dev.id)
            start, produced, consumed = (
                reading.interval_start,
                reading.produced_wh,
                reading.consumed_wh,
            )
            meter_pubkey = reading.meter_pubkey
            if meter_pubkey != dev.meter_pubkey:
                raise _bad(p, "signed by another meter key than the device's")
            if dev.kind == CONSUMPTION and produced > 0:
                raise _bad(p, "a consumption device reports production")
            if dev.kind == GENERATION and consumed > 0:
                raise _bad(p, "a generation device reports consumption")
            cap = dev.capacity_w * self.cp.interval_seconds // 3600
            if consumed > cap:
                raise _bad(p, "consumption above capacity x interval")
            self._interval(p, dev, start, produced, "production")
            window_end = start + self.cp.interval_seconds + self.cp.reading_window
            self.when(p, "the reading window", lambda now: now <= window_end)
            wh = produced
        elif tx.type == TX_ISSUE:
            _decoded(p)
            device_id, start, wh = tx.payload
            if device_id != dev.id:
                raise _bad(p, "issues for another device")
            if tx.sender_address not in self.cp.authorities:
                raise _bad(p, "cert.issue by an address that is not a genesis authority")
            self._interval(p, dev, start, wh, "amount")
        else:
            raise _bad(
                p,
                f"expected {TX_REPORT}, {TX_BATCH} or {TX_ISSUE} after the approval, got {tx.type}",
            )
        interval = self.cp.interval_seconds
        return Cert(
            id=root_id(dev.id, start),
            owner=dev.owner,
            producer=dev.owner,
            device=dev.id,
            source=dev.source,
            location=dev.location,
            carbon_intensity=dev.carbon_intensity,
            ctype=cert_type(dev.carbon_intensity, self.cp),
            interval_start=start,
            interval_seconds=interval,
            wh=wh,
            remaining_wh=wh,
            status=ACTIVE,
            parent=b"",
            issued_txid=tx.txid,
            issued_height=p.height,
            expires=start + interval + self.cp.validity,
        )

    def move(self, p: Placed, certs: dict[bytes, Cert], steps: list[Step]) -> None:
        """Apply one cert.transfer or cert.retire to the replayed certificates."""
        tx = p.tx
        if tx.type not in (TX_TRANSFER, TX_RETIRE):
            raise _bad(p, f"{tx.type} is not a certificate transfer or retirement")
        _decoded(p)
        cid = tx.payload[0]
        cert = certs.get(cid)
        if cert is None:
            raise _bad(
                p,
                "moves a certificate that is not in this lineage (if a settlement or PPA"
                " delivery split it off, the lineage includes a settlement step, which a proof"
                " cannot replay)",
            )
        sender = tx.sender_address
        if sender != cert.owner:
            raise _bad(
                p,
                "sent by an address that does not own the certificate (if a settlement or PPA"
                " delivery moved it, the lineage includes a settlement step, which a proof"
                " cannot replay)",
            )
        if cert.status != ACTIVE:
            raise _bad(p, "moves a retired certificate")
        self.when(p, f"certificate {cid.hex()[:16]} not expired", lambda now: now < cert.expires)
        wh = tx.payload[2] if tx.type == TX_TRANSFER else tx.payload[1]
        if not 1 <= wh <= cert.remaining_wh:
            raise _bad(p, f"moves {wh} Wh of a certificate with {cert.remaining_wh} Wh")
        whole = wh == cert.remaining_wh
        if tx.type == TX_TRANSFER:
            to = tx.payload[1]
            if to == cert.owner:
                raise _bad(p, "transfers to its own owner")
            if whole:
                certs[cid] = replace(cert, owner=to)
                steps.append(Step(cid, TRANSFER, tx.txid, p.height, sender, to, wh))
                return
            kid = child_id(cid, tx.txid)
            certs[cid] = replace(cert, remaining_wh=cert.remaining_wh - wh)
            certs[kid] = replace(
                cert,
                id=kid,
                owner=to,
                wh=wh,
                remaining_wh=wh,
                parent=cid,
                issued_txid=tx.txid,
                issued_height=p.height,
            )
            steps.append(Step(cid, SPLIT, tx.txid, p.height, sender, to, wh, other=kid))
            steps.append(Step(kid, SPLIT, tx.txid, p.height, sender, to, wh, other=cid))
            steps.append(Step(kid, TRANSFER, tx.txid, p.height, sender, to, wh))
            return
        _, _, beneficiary, purpose, period_start, period_end = tx.payload
        for name, text in (("beneficiary", beneficiary), ("purpose", purpose)):
            if len(text) > _MAX_CLAIM_TEXT[name]:
                raise _bad(p, f"{name} longer than {_MAX_CLAIM_TEXT[name]} characters")
        if not beneficiary:
            raise _bad(p, "no beneficiary")
        if not period_start < period_end:
            raise _bad(p, "consumption period does not end after it starts")
        claim = Claim(beneficiary, purpose, period_start, period_end, sender)
        if whole:
            certs[cid] = replace(cert, status=RETIRED, claim=claim)
            steps.append(Step(cid, RETIRE, tx.txid, p.height, sender, b"", wh, note=beneficiary))
            return
        kid = child_id(cid, tx.txid)
        certs[cid] = replace(cert, remaining_wh=cert.remaining_wh - wh)
        certs[kid] = replace(
            cert,
            id=kid,
            wh=wh,
            remaining_wh=wh,
            parent=cid,
            issued_txid=tx.txid,
            issued_height=p.height,
            status=RETIRED,
            claim=claim,
        )
        steps.append(Step(cid, SPLIT, tx.txid, p.height, sender, sender, wh, other=kid))
        steps.append(Step(kid, SPLIT, tx.txid, p.height, sender, sender, wh, other=cid))
        steps.append(Step(kid, RETIRE, tx.txid, p.height, sender, b"", wh, note=beneficiary))


def replay(
    params: ChainParams,
    lineage: Sequence[Placed],
    cert_id: bytes,
    headers: Sequence[BlockHeader],
    max_times: Sequence[int],
) -> Replayed:
    """Replay ``lineage`` (chain order, each tx's position already proven) and
    return the certificates it makes; ProofBadLineage if a tx breaks a rule,
    touches none of ``cert_id``'s ancestry, or ``cert_id`` is never made."""
    if len(lineage) < 3:
        raise ProofBadLineage(
            "a lineage holds at least a registration, an approval and an issuance"
        )
    r = _Replay(params, _Clock(headers, max_times))
    dev = r.device(lineage[0], lineage[1])
    root = r.root(lineage[2], dev)
    certs = {root.id: root}
    # As the engine records it: a reading's step names no sender (the meter
    # signed it, anyone relayed it), a manual issue names its authority.
    if lineage[2].tx.type in (TX_REPORT, TX_BATCH):
        first, frm = READING, b""
    else:
        first, frm = ISSUE, lineage[2].tx.sender_address
    steps = [
        Step(root.id, first, root.issued_txid, root.issued_height, frm, dev.owner, root.wh, dev.id)
    ]
    for p in lineage[3:]:
        r.move(p, certs, steps)
    out = Replayed(device=dev, certs=certs, steps=steps, root=root.id, unchecked=r.unchecked)
    if cert_id not in certs:
        raise ProofBadLineage(
            f"the lineage never makes certificate {cert_id.hex()} (if a settlement or PPA"
            " delivery split it off, the lineage includes a settlement step, which a proof"
            " cannot replay)"
        )
    # Every move must touch the certificate or an ancestor: a tx of a
    # sibling's own history proves nothing about this certificate.
    line = set(out.ancestry(cert_id))
    for p in lineage[3:]:
        if p.tx.payload[0] not in line:
            raise _bad(p, "touches a certificate outside this certificate's ancestry")
    return out
