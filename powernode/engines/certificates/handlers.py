"""The certificates' tx types, and issuance from meter readings.

Payloads (msgpack arrays, in this order):

    cert.issue     [device_id, interval_start, wh]
    cert.transfer  [cert_id, to_address, wh]
    cert.retire    [cert_id, wh, beneficiary, purpose, period_start, period_end]

A reading (``meter.report``, engines/metering) issues its certificate through
``issue_from_reading``, the engine's ``after_tx`` hook, in the same tx; each
reading a ``meter.batch`` recorded does the same (``issue_from_batch``).
Every rule a handler applies runs in one check function that both admission
(``precheck``, against the tip) and ``apply`` call, so the two cannot drift.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from powernode.core.errors import (
    AlreadyCertified,
    BadPayload,
    CertAboveMetered,
    CertAmountTooLarge,
    CertExpired,
    CertRetired,
    DeviceNotActive,
    IntervalNotAligned,
    IntervalNotEnded,
    NotAuthority,
    NotCertOwner,
    ReadingAboveCapacity,
    SourceNotCertified,
    UnknownCert,
    UnknownDevice,
)
from powernode.core.execution import Event, ExecContext, StateAccess
from powernode.core.params import ChainParams
from powernode.core.tx import Transaction
from powernode.engines.certificates.records import (
    ACTIVE,
    CLAIMED_NS,
    GREEN,
    ISSUE,
    READING,
    RENEWABLE,
    RET_NS,
    RETIRE,
    RETIRED,
    TRANSFER,
    CertId,
    Certificate,
    Claim,
    Step,
    Wh,
    add_step,
    cert,
    claimed,
    claimed_key,
    new_cert,
    put_totals,
    ret_key,
    root_id,
    split_off,
    totals,
)
from powernode.engines.market.handlers import settled
from powernode.engines.metering import clock
from powernode.engines.metering import records as meter_records
from powernode.engines.metering.batch import BatchPayload, produced_entries
from powernode.engines.metering.params import CertParams, cert_params

_MAX_U64 = 2**64 - 1


def _uint(v: Any, what: str) -> int:
    if type(v) is not int or not 0 <= v <= _MAX_U64:
        raise BadPayload(f"{what}: expected an unsigned integer")
    return v


def _wh(v: Any) -> int:
    # 0 Wh moves or certifies nothing: malformed, like a zero transfer.
    if _uint(v, "wh") == 0:
        raise BadPayload("wh: expected at least 1")
    return v


def _id(v: Any, what: str, size: int = 32) -> bytes:
    if type(v) is not bytes or len(v) != size:
        raise BadPayload(f"{what}: expected {size} bytes")
    return v


def cert_type(carbon_intensity: int, cp: CertParams) -> str:
    """green below the genesis threshold (gCO2/kWh), else renewable (the seed's rule)."""
    return GREEN if carbon_intensity < cp.green_threshold else RENEWABLE


def _issue_root(
    view: StateAccess,
    ctx: ExecContext,
    tx: Transaction,
    cp: CertParams,
    device_id: bytes,
    device: Any,
    interval_start: int,
    wh: int,
    kind: str,
    now: int,
) -> bytes:
    """Write the root certificate of (device, interval), its first step, the
    claim on the interval and the totals. The caller has checked that the
    interval is not claimed."""
    cid = root_id(device_id, interval_start)
    owner = device.owner
    # Certificate(owner, producer, device, source, location, carbon_intensity,
    # ctype, interval_start, interval_seconds, wh, remaining_wh, status,
    # parent, issued_txid, issued_height, issued_time, expires, claim, steps),
    # built in C: a block of batches issues thousands.
    c = new_cert(
        (
            owner, owner, device_id, device.source, device.location, device.carbon_intensity,
            cert_type(device.carbon_intensity, cp), interval_start, cp.interval_seconds, wh, wh,
            ACTIVE, b"", tx.txid, ctx.height, now,
            interval_start + cp.interval_seconds + cp.validity, None, 0,
        )
    )  # fmt: skip
    # A reading's step names no sender (the meter signed it, anyone relayed
    # it); a manual issue names the authority that issued it.
    frm = tx.sender_address if kind == ISSUE else b""
    add_step(
        view, cid, c, Step(kind, tx.txid, ctx.height, now, frm, device.owner, wh, device_id, "")
    )
    view.put((CLAIMED_NS, claimed_key(device_id, interval_start)), CertId(cid))
    t = totals(view)
    # Chain-wide statistics saturate at the encoding's 64-bit limit (as the
    # market's totals do) rather than make every later block unencodable.
    put_totals(
        view,
        t._replace(
            issued_wh=min(t.issued_wh + wh, _MAX_U64),
            certificates=min(t.certificates + 1, _MAX_U64),
        ),
    )
    return cid


# --- issuance from a reading (after_tx on meter.report and meter.batch) ----------------------


def issue_from_reading(
    view: StateAccess, ctx: ExecContext, tx: Transaction, payload: Any
) -> list[Event]:
    """Runs after a ``meter.report`` was applied: the reading is stored and
    its device is active."""
    if payload.produced_wh <= 0:
        return []
    return issue_for_reading(view, ctx, tx, cert_params(ctx.params), clock.now(view, ctx), payload)


def issue_for_reading(
    view: StateAccess, ctx: ExecContext, tx: Transaction, cp: CertParams, now: int, p: Any
) -> list[Event]:
    """A stored reading ``p`` (a ``meter.report``'s payload or a batch's
    entry) of an active device: a production reading of a device whose
    source earns certificates certifies its Wh to the device owner, unless
    the interval was already certified manually. The one issuance rule of
    both tx types; ``cp`` and ``now`` are looked up once per tx."""
    produced = p.produced_wh
    if produced <= 0:
        return []
    device_id = p.device_id
    device = meter_records.device(view, device_id)
    assert device is not None, "a reading was stored for a device that does not exist"
    if device.source not in cp.sources:
        return []
    interval = p.interval_start
    if claimed(view, device_id, interval) is not None:
        return [
            {"event": "cert.skipped", "device": device_id, "interval": interval,
             "reason": "already_certified"}
        ]  # fmt: skip
    cid = _issue_root(view, ctx, tx, cp, device_id, device, interval, produced, READING, now)
    return [{"event": "cert.issued", "cert": cid, "wh": produced}]


def issue_from_batch(
    view: StateAccess, ctx: ExecContext, tx: Transaction, payload: BatchPayload
) -> list[Event]:
    """Runs after a ``meter.batch`` was applied: ``issue_for_reading`` for
    each entry with production it recorded as a reading (a skipped entry
    issues nothing)."""
    cp = cert_params(ctx.params)
    now = clock.now(view, ctx)
    events: list[Event] = []
    for entry in produced_entries(view, tx, payload):
        events += issue_for_reading(view, ctx, tx, cp, now, entry)
    return events


# --- cert.issue ---------------------------------------------------------------


class IssuePayload(NamedTuple):
    device_id: bytes
    interval_start: int
    wh: int


def _check_issue(
    view: StateAccess,
    ctx: ExecContext,
    sender: bytes,
    p: IssuePayload,
    *,
    own_records: bool = True,
) -> tuple[CertParams, Any, int] | None:
    """Every rule of a manual issue, in the order the README lists them.
    Returns (params, device, now), or None when the device is unknown and
    ``own_records`` is off (an earlier tx of the sender, still pending, may
    register it)."""
    cp = cert_params(ctx.params)
    if sender not in cp.authorities:
        raise NotAuthority("only a certificate authority may issue certificates")
    device = meter_records.device(view, p.device_id)
    if device is None:
        if not own_records:
            return None
        raise UnknownDevice(f"no device {p.device_id.hex()}")
    if not device.approved_height:  # pending, or retired before any approval
        raise DeviceNotActive("the device was never approved")
    if device.source not in cp.sources:
        raise SourceNotCertified(f"{device.source} does not earn certificates on this chain")
    interval = p.interval_start
    size = cp.interval_seconds
    if interval % size:
        raise IntervalNotAligned(f"interval {interval} is not aligned to {size} s")
    now = clock.now(view, ctx)
    if interval + size > now:
        raise IntervalNotEnded(f"interval {interval} ends at {interval + size}, now is {now}")
    cap = device.capacity_w * size // 3600
    if p.wh > cap:
        raise ReadingAboveCapacity(
            f"{p.wh} Wh is above capacity {device.capacity_w} W x {size} s = {cap} Wh"
        )
    reading = meter_records.reading(view, p.device_id, interval)
    if reading is not None and p.wh > reading.produced_wh:
        raise CertAboveMetered(f"{p.wh} Wh is above the {reading.produced_wh} Wh metered")
    if claimed(view, p.device_id, interval) is not None:
        raise AlreadyCertified(f"device {p.device_id.hex()} interval {interval} is certified")
    return cp, device, now


class IssueHandler:
    tx_type = "cert.issue"

    def decode(self, payload: list[Any]) -> IssuePayload:
        if len(payload) != 3:
            raise BadPayload("cert.issue payload is [device_id, interval_start, wh]")
        device_id, interval, wh = payload
        return IssuePayload(_id(device_id, "device_id"), _uint(interval, "interval_start"), _wh(wh))

    def max_debit(self, payload: IssuePayload, params: ChainParams) -> int:
        return 0

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: IssuePayload
    ) -> None:
        _check_issue(view, ctx, tx.sender_address, payload, own_records=settled(view, tx))

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: IssuePayload
    ) -> list[Event]:
        checked = _check_issue(view, ctx, tx.sender_address, p)
        assert checked is not None
        cp, device, now = checked
        cid = _issue_root(
            view, ctx, tx, cp, p.device_id, device, p.interval_start, p.wh, ISSUE, now
        )
        return [{"event": "cert.issued", "cert": cid, "wh": p.wh}]


# --- moving a certificate: the checks transfer and retire share ------------------------------


def _check_move(
    view: StateAccess,
    ctx: ExecContext,
    sender: bytes,
    cert_id: bytes,
    wh: int,
    *,
    own_records: bool = True,
) -> tuple[Certificate, int] | None:
    """The rules a certificate must meet to be transferred or retired by
    ``sender``: it exists, the sender owns it, it is active and not expired,
    and holds ``wh``. Returns (certificate, now), or None when it does not
    exist and ``own_records`` is off (an earlier pending tx of the sender
    may issue it)."""
    c = cert(view, cert_id)
    if c is None:
        if not own_records:
            return None
        raise UnknownCert(f"no certificate {cert_id.hex()}")
    if c.owner != sender:
        raise NotCertOwner("only the certificate's owner may move it")
    if c.status != ACTIVE:
        raise CertRetired("the certificate is retired")
    now = clock.now(view, ctx)
    if now >= c.expires:
        raise CertExpired(f"the certificate expired at {c.expires} (now {now})")
    if wh > c.remaining_wh:
        raise CertAmountTooLarge(f"{wh} Wh is more than the {c.remaining_wh} Wh it holds")
    return c, now


# --- cert.transfer --------------------------------------------------------------


class TransferPayload(NamedTuple):
    cert_id: bytes
    to: bytes
    wh: int


def _check_transfer(
    view: StateAccess, ctx: ExecContext, tx: Transaction, p: TransferPayload, own: bool = True
) -> tuple[Certificate, int] | None:
    checked = _check_move(view, ctx, tx.sender_address, p.cert_id, p.wh, own_records=own)
    if p.to == tx.sender_address and checked is not None:
        raise BadPayload("a certificate cannot be transferred to its owner")
    return checked


class TransferHandler:
    tx_type = "cert.transfer"

    def decode(self, payload: list[Any]) -> TransferPayload:
        if len(payload) != 3:
            raise BadPayload("cert.transfer payload is [cert_id, to_address, wh]")
        cert_id, to, wh = payload
        return TransferPayload(_id(cert_id, "cert_id"), _id(to, "to_address", 20), _wh(wh))

    def max_debit(self, payload: TransferPayload, params: ChainParams) -> int:
        return 0

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: TransferPayload
    ) -> None:
        _check_transfer(view, ctx, tx, payload, settled(view, tx))

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: TransferPayload
    ) -> list[Event]:
        checked = _check_transfer(view, ctx, tx, p)
        assert checked is not None
        c, now = checked
        frm = c.owner
        if p.wh == c.remaining_wh:
            # The whole of what it holds: the certificate itself changes hands.
            c = c._replace(owner=p.to)
            add_step(
                view,
                p.cert_id,
                c,
                Step(TRANSFER, tx.txid, ctx.height, now, frm, p.to, p.wh, b"", ""),
            )
            return [{"event": "cert.transferred", "cert": p.cert_id, "to": p.to, "wh": p.wh}]
        cid, child = split_off(
            view, p.cert_id, c, p.to, p.wh, ref=tx.txid, height=ctx.height, now=now
        )
        add_step(
            view, cid, child, Step(TRANSFER, tx.txid, ctx.height, now, frm, p.to, p.wh, b"", "")
        )
        return [
            {"event": "cert.split", "parent": p.cert_id, "cert": cid, "wh": p.wh},
            {"event": "cert.transferred", "cert": cid, "to": p.to, "wh": p.wh},
        ]


# --- cert.retire ----------------------------------------------------------------


class RetirePayload(NamedTuple):
    cert_id: bytes
    wh: int
    beneficiary: str
    purpose: str
    period_start: int
    period_end: int


class RetireHandler:
    tx_type = "cert.retire"

    def decode(self, payload: list[Any]) -> RetirePayload:
        if len(payload) != 6:
            raise BadPayload(
                "cert.retire payload is [cert_id, wh, beneficiary, purpose, period_start, period_end]"
            )
        cert_id, wh, beneficiary, purpose, start, end = payload
        if type(beneficiary) is not str or not 1 <= len(beneficiary) <= 128:
            raise BadPayload("beneficiary: expected 1..128 characters")
        if type(purpose) is not str or len(purpose) > 256:
            raise BadPayload("purpose: expected 0..256 characters")
        _uint(start, "period_start")
        _uint(end, "period_end")
        if start >= end:
            raise BadPayload("period_start must be before period_end")
        return RetirePayload(_id(cert_id, "cert_id"), _wh(wh), beneficiary, purpose, start, end)

    def max_debit(self, payload: RetirePayload, params: ChainParams) -> int:
        return 0

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: RetirePayload
    ) -> None:
        _check_move(
            view, ctx, tx.sender_address, payload.cert_id, payload.wh, own_records=settled(view, tx)
        )

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: RetirePayload
    ) -> list[Event]:
        sender = tx.sender_address
        checked = _check_move(view, ctx, sender, p.cert_id, p.wh)
        assert checked is not None
        c, now = checked
        events: list[Event] = []
        cid = p.cert_id
        if p.wh < c.remaining_wh:
            # A part: split it off to the owner, and retire the child.
            cid, c = split_off(
                view, p.cert_id, c, sender, p.wh, ref=tx.txid, height=ctx.height, now=now
            )
            events.append({"event": "cert.split", "parent": p.cert_id, "cert": cid, "wh": p.wh})
        claim = Claim(p.beneficiary, p.purpose, p.period_start, p.period_end, sender)
        c = c._replace(status=RETIRED, claim=claim)
        add_step(
            view,
            cid,
            c,
            Step(RETIRE, tx.txid, ctx.height, now, sender, b"", p.wh, b"", p.beneficiary),
        )
        view.put((RET_NS, ret_key(sender, c.interval_start, cid)), Wh(p.wh))
        t = totals(view)
        put_totals(view, t._replace(retired_wh=min(t.retired_wh + p.wh, _MAX_U64)))
        events.append(
            {"event": "cert.retired", "cert": cid, "wh": p.wh, "beneficiary": p.beneficiary}
        )
        return events
