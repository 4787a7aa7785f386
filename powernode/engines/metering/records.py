"""The metering engine's slice of state: record types, keys, and the lookups
other engines (certificates) use.

Namespaces (key bytes after the namespace):

    met.dev   device id (32)             Device
    met.key   meter pubkey (32)          DeviceRef: the device the key belongs to
                                         (only while that device is not retired)
    met.own   owner (20) + device id     Mark (1): index of devices by owner
    met.read  device id + u64(interval)  Reading
    met.sum   device id                  DeviceTotals

A device's id is the id of the tx that registered it. Keys of ``met.read``
sort by device, then interval start (big-endian), so a device's readings
list in time order. Every record encodes as a msgpack array, except
``DeviceRef`` (the 32 id bytes) and ``Mark`` (the integer 1).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from powernode.core import encoding
from powernode.core.errors import DecodeError
from powernode.core.execution import StateRead

DEVICE_NS = "met.dev"
KEY_NS = "met.key"
OWNER_NS = "met.own"
READING_NS = "met.read"
TOTALS_NS = "met.sum"
CLOCK_NS = "met.clock"
CLOCK_KEY = (CLOCK_NS, b"")

GENERATION, CONSUMPTION, BOTH = "generation", "consumption", "both"
KINDS = (GENERATION, CONSUMPTION, BOTH)
PENDING, ACTIVE, RETIRED = "pending", "active", "retired"
STATUSES = (PENDING, ACTIVE, RETIRED)

READING_TAG = "powernode-reading"


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def reading_key(device_id: bytes, interval_start: int) -> bytes:
    return device_id + u64(interval_start)


def reading_message(
    chain_id: str, device_id: bytes, interval_start: int, produced: int, consumed: int
) -> bytes:
    """The bytes a meter signs for a reading. The chain id is inside, so a
    reading signed for one chain is worthless on another; the tag keeps it
    from ever meaning a tx or anything else a key might sign."""
    return encoding.encode([READING_TAG, chain_id, device_id, interval_start, produced, consumed])


class Device(NamedTuple):
    owner: bytes
    kind: str
    source: str  # solar | wind | hydro | thermal, or "none" (consumption only)
    capacity_w: int
    location: str
    carbon_intensity: int  # gCO2/kWh, as declared
    meter_pubkey: bytes
    status: str
    registered_height: int
    approved_height: int  # 0 until approved
    retired_height: int  # 0 until retired

    @property
    def produces(self) -> bool:
        return self.kind != CONSUMPTION

    @property
    def consumes(self) -> bool:
        return self.kind != GENERATION

    def to_obj(self) -> list[Any]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> Device:
        return cls(*encoding.as_list(obj, 11, "device"))

    def to_json(self, device_id: bytes) -> dict[str, Any]:
        out: dict[str, Any] = {"id": device_id.hex(), **self._asdict()}
        out["owner"] = self.owner.hex()
        out["meter_pubkey"] = self.meter_pubkey.hex()
        return out


class Reading(NamedTuple):
    produced_wh: int
    consumed_wh: int
    relayer: bytes  # the sender of the meter.report tx (who paid its fee)
    txid: bytes
    height: int
    time: int  # the metering clock when it was recorded

    def to_obj(self) -> list[Any]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> Reading:
        return cls(*encoding.as_list(obj, 6, "reading"))


class DeviceTotals(NamedTuple):
    readings: int = 0
    produced_wh: int = 0
    consumed_wh: int = 0
    last_interval: int = 0  # latest interval start with a reading (0: none yet)

    def to_obj(self) -> list[int]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> DeviceTotals:
        return cls(*encoding.as_list(obj, 4, "device totals"))


class DeviceRef(bytes):
    """A device id stored as a value (the owner of a meter key): its 32 bytes."""

    __slots__ = ()

    def to_obj(self) -> bytes:
        return bytes(self)

    @classmethod
    def from_obj(cls, obj: Any) -> DeviceRef:
        return cls(encoding.as_bytes(obj, "device id", size=32))


class Mark(int):
    """The value of an index entry whose key says it all: always 1."""

    __slots__ = ()

    def to_obj(self) -> int:
        return int(self)

    @classmethod
    def from_obj(cls, obj: Any) -> Mark:
        if obj != 1 or type(obj) is not int:
            raise DecodeError(f"index mark: expected 1, got {obj!r}")
        return cls(1)


MARK = Mark(1)


class Clock(int):
    """The metering clock: the highest block timestamp seen since the first
    device registered (``clock.now``)."""

    __slots__ = ()

    def to_obj(self) -> int:
        return int(self)

    @classmethod
    def from_obj(cls, obj: Any) -> Clock:
        if type(obj) is not int or obj < 0:
            raise DecodeError(f"metering clock: expected a time, got {obj!r}")
        return cls(obj)


# --- lookups (other engines use these) ----------------------------------------


def device(view: StateRead, device_id: bytes) -> Device | None:
    d: Device | None = view.get((DEVICE_NS, device_id))
    return d


def reading(view: StateRead, device_id: bytes, interval_start: int) -> Reading | None:
    r: Reading | None = view.get((READING_NS, reading_key(device_id, interval_start)))
    return r


def key_owner(view: StateRead, meter_pubkey: bytes) -> bytes | None:
    """The non-retired device whose meter key this is, if any."""
    ref: DeviceRef | None = view.get((KEY_NS, meter_pubkey))
    return None if ref is None else bytes(ref)


def totals(view: StateRead, device_id: bytes) -> DeviceTotals:
    t: DeviceTotals | None = view.get((TOTALS_NS, device_id))
    return DeviceTotals() if t is None else t


STATE_CODECS = {
    DEVICE_NS: Device.from_obj,
    KEY_NS: DeviceRef.from_obj,
    OWNER_NS: Mark.from_obj,
    READING_NS: Reading.from_obj,
    TOTALS_NS: DeviceTotals.from_obj,
    CLOCK_NS: Clock.from_obj,
}
