"""The metering tx types: ``device.register``, ``device.approve``,
``device.retire`` and ``meter.report``.

Payloads (msgpack arrays, in this order):

    device.register  [kind, source, capacity_w, location, carbon_intensity, meter_pubkey]
    device.approve   [device_id]
    device.retire    [device_id]
    meter.report     [device_id, interval_start, produced_wh, consumed_wh, meter_pubkey, meter_sig]

kind: generation | consumption | both; source: solar | wind | hydro | thermal
for a device that generates, "none" for a consumption-only one; capacity in
W; carbon intensity in gCO2/kWh. A device's id is the txid that registered it.

A reading is signed by the device's meter key over ``reading_message``; the
handler hands that signature to the envelope's signature check as a
co-signature (``cosignatures``), so it is verified where tx signatures are
(worker processes, the signature cache), never inside block execution.

Every consensus rule of a tx type is one ``_check_*`` function, run by
``apply`` and, as the admission check against the tip, by ``precheck``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

from powernode.core.crypto import PUBKEY_SIZE, SIG_SIZE, point_ok
from powernode.core.errors import (
    BadPayload,
    DeviceNotActive,
    DeviceNotPending,
    DeviceRetired,
    DuplicateReading,
    IntervalNotAligned,
    IntervalNotEnded,
    MeterKeyInUse,
    NotAuthority,
    NotDeviceOwner,
    NotRegistered,
    ReadingAboveCapacity,
    ReadingTooLate,
    UnknownDevice,
    WrongDeviceKind,
    WrongMeterKey,
)
from powernode.core.execution import CoSig, Event, ExecContext, StateAccess, StateRead
from powernode.core.params import ChainParams
from powernode.core.tx import Transaction
from powernode.engines.market.handlers import settled
from powernode.engines.market.records import PART_NS
from powernode.engines.metering import clock
from powernode.engines.metering.params import NO_SOURCE, SOURCES, CertParams, cert_params
from powernode.engines.metering.records import (
    ACTIVE,
    CONSUMPTION,
    DEVICE_NS,
    KEY_NS,
    KINDS,
    MARK,
    OWNER_NS,
    PENDING,
    READING_NS,
    RETIRED,
    TOTALS_NS,
    Device,
    DeviceRef,
    DeviceTotals,
    Reading,
    device,
    key_owner,
    reading,
    reading_key,
    reading_message,
    totals,
)

_MAX_U64 = 2**64 - 1
MAX_CAPACITY_W = 10**12  # as the market's: 1 TW
MAX_CARBON_INTENSITY = 100_000  # gCO2/kWh; coal is about 1,000
ID_SIZE = 32


def _device_id(v: Any, tx_type: str) -> bytes:
    if type(v) is not bytes or len(v) != ID_SIZE:
        raise BadPayload(f"{tx_type} payload is [device_id ({ID_SIZE} bytes)]")
    return v


def _existing(view: StateRead, device_id: bytes) -> Device:
    d = device(view, device_id)
    if d is None:
        raise UnknownDevice(f"no device {device_id.hex()}")
    return d


# --- device.register ----------------------------------------------------------


class RegisterPayload(NamedTuple):
    kind: str
    source: str
    capacity_w: int
    location: str
    carbon_intensity: int
    meter_pubkey: bytes


def _check_register(
    view: StateRead, sender: bytes, p: RegisterPayload, *, own_records: bool = True
) -> None:
    # ``own_records=False``: an earlier tx of the sender (its participant
    # registration) is still pending, so only the block can judge that rule.
    if own_records and view.get((PART_NS, sender)) is None:
        raise NotRegistered("register as a market participant before registering a device")
    holder = key_owner(view, p.meter_pubkey)
    if holder is not None:
        raise MeterKeyInUse(f"meter key already belongs to device {holder.hex()}")


class RegisterHandler:
    tx_type = "device.register"

    def decode(self, payload: list[Any]) -> RegisterPayload:
        if len(payload) != 6:
            raise BadPayload(
                "device.register payload is "
                "[kind, source, capacity_w, location, carbon_intensity, meter_pubkey]"
            )
        kind, source, capacity, location, intensity, pubkey = payload
        if type(kind) is not str or kind not in KINDS:
            raise BadPayload(f"kind: expected one of {list(KINDS)}, got {kind!r}")
        # A consumption-only device has no source; anything that generates names one.
        allowed = (NO_SOURCE,) if kind == CONSUMPTION else SOURCES
        if type(source) is not str or source not in allowed:
            raise BadPayload(f"source of a {kind} device: expected one of {list(allowed)}")
        if type(capacity) is not int or not 1 <= capacity <= MAX_CAPACITY_W:
            raise BadPayload(f"capacity_w: expected an integer in 1..{MAX_CAPACITY_W}")
        if type(location) is not str or not 1 <= len(location) <= 64:
            raise BadPayload("location: expected 1..64 characters")
        if type(intensity) is not int or not 0 <= intensity <= MAX_CARBON_INTENSITY:
            raise BadPayload(
                f"carbon_intensity: expected an integer in 0..{MAX_CARBON_INTENSITY} gCO2/kWh"
            )
        # A key the signature rules refuse (non-canonical, small-order) could
        # never sign a reading.
        if type(pubkey) is not bytes or not point_ok(pubkey):
            raise BadPayload(
                "meter_pubkey: expected a canonical 32-byte Ed25519 public key, not of small order"
            )
        return RegisterPayload(kind, source, capacity, location, intensity, pubkey)

    def max_debit(self, payload: RegisterPayload, params: ChainParams) -> int:
        return 0

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: RegisterPayload
    ) -> None:
        _check_register(view, tx.sender_address, p, own_records=settled(view, tx))

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: RegisterPayload
    ) -> list[Event]:
        owner = tx.sender_address
        _check_register(view, owner, p)
        did = tx.txid
        view.put(
            (DEVICE_NS, did),
            Device(
                owner, p.kind, p.source, p.capacity_w, p.location, p.carbon_intensity,
                p.meter_pubkey, PENDING, ctx.height, 0, 0,
            ),
        )  # fmt: skip
        view.put((KEY_NS, p.meter_pubkey), DeviceRef(did))
        view.put((OWNER_NS, owner + did), MARK)
        clock.start(view, ctx)
        return [{"event": "device.registered", "device": did, "owner": owner}]


# --- device.approve -----------------------------------------------------------


class DevicePayload(NamedTuple):
    device_id: bytes


def _check_approve(view: StateRead, cp: CertParams, sender: bytes, device_id: bytes) -> Device:
    if not cp.is_authority(sender):
        raise NotAuthority("only a certificates authority may approve a device")
    d = _existing(view, device_id)
    if d.status != PENDING:
        raise DeviceNotPending(f"device is {d.status}")
    return d


class ApproveHandler:
    tx_type = "device.approve"

    def decode(self, payload: list[Any]) -> DevicePayload:
        if len(payload) != 1:
            raise BadPayload("device.approve payload is [device_id]")
        return DevicePayload(_device_id(payload[0], self.tx_type))

    def max_debit(self, payload: DevicePayload, params: ChainParams) -> int:
        return 0

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: DevicePayload
    ) -> None:
        _check_approve(view, cert_params(ctx.params), tx.sender_address, p.device_id)

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: DevicePayload
    ) -> list[Event]:
        d = _check_approve(view, cert_params(ctx.params), tx.sender_address, p.device_id)
        view.put((DEVICE_NS, p.device_id), d._replace(status=ACTIVE, approved_height=ctx.height))
        return [{"event": "device.approved", "device": p.device_id, "by": tx.sender_address}]


# --- device.retire ------------------------------------------------------------


def _check_retire(view: StateRead, cp: CertParams, sender: bytes, device_id: bytes) -> Device:
    d = _existing(view, device_id)
    if sender != d.owner and not cp.is_authority(sender):
        raise NotDeviceOwner("only the device's owner or an authority may retire it")
    if d.status == RETIRED:
        raise DeviceRetired("device is already retired")
    return d


class RetireHandler:
    tx_type = "device.retire"

    def decode(self, payload: list[Any]) -> DevicePayload:
        if len(payload) != 1:
            raise BadPayload("device.retire payload is [device_id]")
        return DevicePayload(_device_id(payload[0], self.tx_type))

    def max_debit(self, payload: DevicePayload, params: ChainParams) -> int:
        return 0

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: DevicePayload
    ) -> None:
        _check_retire(view, cert_params(ctx.params), tx.sender_address, p.device_id)

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: DevicePayload
    ) -> list[Event]:
        d = _check_retire(view, cert_params(ctx.params), tx.sender_address, p.device_id)
        view.put((DEVICE_NS, p.device_id), d._replace(status=RETIRED, retired_height=ctx.height))
        # The key is free for a new device; the retired one keeps it in its
        # record, so its old readings still say which key signed them.
        view.put((KEY_NS, d.meter_pubkey), None)
        return [{"event": "device.retired", "device": p.device_id, "by": tx.sender_address}]


# --- meter.report -------------------------------------------------------------


class ReportPayload(NamedTuple):
    device_id: bytes
    interval_start: int
    produced_wh: int
    consumed_wh: int
    meter_pubkey: bytes
    meter_sig: bytes


def _uint(v: Any) -> bool:
    return type(v) is int and 0 <= v <= _MAX_U64


def parse_report(payload: Any) -> ReportPayload | None:
    """The typed payload, or None if it is malformed (``cosignatures`` must not
    raise; ``decode`` turns None into BadPayload)."""
    if type(payload) is not list or len(payload) != 6:
        return None
    did, start, produced, consumed, pubkey, sig = payload
    if type(did) is not bytes or len(did) != ID_SIZE:
        return None
    if not (_uint(start) and _uint(produced) and _uint(consumed)):
        return None
    if type(pubkey) is not bytes or len(pubkey) != PUBKEY_SIZE:
        return None
    if type(sig) is not bytes or len(sig) != SIG_SIZE:
        return None
    return ReportPayload(did, start, produced, consumed, pubkey, sig)


def check_report(view: StateRead, ctx: ExecContext, p: ReportPayload) -> tuple[Device, int]:
    """Every consensus rule of a reading, in the order of the codes'
    documentation; returns the device and the metering clock."""
    now = clock.now(view, ctx)
    return check_reading(view, cert_params(ctx.params), now, p), now


def check_reading(view: StateRead, cp: CertParams, now: int, p: ReportPayload) -> Device:
    """``check_report`` with the params and the clock already looked up (a
    ``meter.batch`` looks them up once for all its entries)."""
    d = _existing(view, p.device_id)
    if p.meter_pubkey != d.meter_pubkey:
        raise WrongMeterKey("the reading is not from the device's meter key")
    if d.status != ACTIVE:
        raise DeviceNotActive(f"device is {d.status}")
    size = cp.interval_seconds
    start = p.interval_start
    if start % size:
        raise IntervalNotAligned(f"interval {start} is not aligned to {size} s")
    end = start + size
    if end > now:
        raise IntervalNotEnded(f"interval {start} ends at {end}; the clock is at {now}")
    if now > end + cp.reading_window:
        raise ReadingTooLate(
            f"interval {start} ended at {end}; readings are taken for {cp.reading_window} s"
        )
    if reading(view, p.device_id, start) is not None:
        raise DuplicateReading(f"device already has a reading for interval {start}")
    if p.produced_wh and not d.produces:
        raise WrongDeviceKind("a consumption device cannot report production")
    if p.consumed_wh and not d.consumes:
        raise WrongDeviceKind("a generation device cannot report consumption")
    cap = cp.interval_capacity_wh(d.capacity_w)
    if p.produced_wh > cap or p.consumed_wh > cap:
        raise ReadingAboveCapacity(
            f"reading of {max(p.produced_wh, p.consumed_wh)} Wh is above the device's "
            f"{d.capacity_w} W x {size} s = {cap} Wh"
        )
    return d


# Records built from tuples in C rather than through the NamedTuples' Python
# __new__: a block of batches writes thousands.
_new_reading = partial(tuple.__new__, Reading)
_new_totals = partial(tuple.__new__, DeviceTotals)


def record_reading(
    view: StateAccess, ctx: ExecContext, tx: Transaction, now: int, p: ReportPayload
) -> Event:
    """Store a checked reading (relayed by ``tx``'s sender, in ``tx``) and move
    its device's totals; returns its ``meter.reading`` event. The one writer
    of readings, whichever tx type carried it."""
    did = p.device_id
    start = p.interval_start
    view.put(
        (READING_NS, reading_key(did, start)),
        _new_reading((p.produced_wh, p.consumed_wh, tx.sender_address, tx.txid, ctx.height, now)),
    )
    t = totals(view, did)
    view.put(
        (TOTALS_NS, did),
        _new_totals(
            (
                t.readings + 1,
                t.produced_wh + p.produced_wh,
                t.consumed_wh + p.consumed_wh,
                max(t.last_interval, start),
            )
        ),
    )
    return {
        "event": "meter.reading",
        "device": did,
        "interval": start,
        "produced": p.produced_wh,
        "consumed": p.consumed_wh,
    }


class ReportHandler:
    tx_type = "meter.report"

    def decode(self, payload: list[Any]) -> ReportPayload:
        p = parse_report(payload)
        if p is None:
            raise BadPayload(
                "meter.report payload is [device_id (32 bytes), interval_start, produced_wh, "
                "consumed_wh, meter_pubkey (32 bytes), meter_sig (64 bytes)]"
            )
        return p

    def cosignatures(self, tx: Transaction) -> tuple[CoSig, ...]:
        p = parse_report(tx.payload)
        if p is None:
            return ()
        msg = reading_message(
            tx.chain_id, p.device_id, p.interval_start, p.produced_wh, p.consumed_wh
        )
        return ((p.meter_pubkey, p.meter_sig, msg),)

    def max_debit(self, payload: ReportPayload, params: ChainParams) -> int:
        return 0

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: ReportPayload
    ) -> None:
        # A reading still in the mempool is invisible here: the block refuses
        # the second of two (duplicate_reading).
        check_report(view, ctx, p)

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: ReportPayload
    ) -> list[Event]:
        _, now = check_report(view, ctx, p)
        return [record_reading(view, ctx, tx, now, p)]
