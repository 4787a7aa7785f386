"""The PPAs' slice of state: record types, the keys they live under, ids,
and the ``allocated`` lookup the settlement reads.

Namespaces (key bytes after the namespace):

    ppa.ppa     ppa id (32)                           Ppa
    ppa.dlv     ppa id + u32(seq)                     Delivery
    ppa.dev     device id (32)                        Ids: the active PPAs bound to
                                                      the device, ascending
    ppa.alloc   device id (32) + u64(interval start)  AllocWh: energy of that reading
                                                      taken by PPAs bound to the device
    ppa.dueidx  b""                                   Ints: times with work due, ascending
    ppa.due     u64(time)                             Ids: the work due then (see below)
    ppa.meta    b""                                   PpaTotals

A PPA's id is the txid that proposed it. A delivery's id (the ``ref`` of the
certificate steps it makes) is ``sha256(b"powernode-ppa-delivery" + ppa id +
u32(seq))``. Due work entries: ``b"l" + id`` (lapse at the acceptance
deadline), ``b"e" + id`` (close after the term), ``b"g" + id`` (end of a
default grace period), ``b"c" + id + u32(seq)`` (auto-accept a delivery).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

from powernode.core import encoding
from powernode.core.crypto import sha256
from powernode.core.execution import StateAccess, StateRead
from powernode.engines.market.records import Ids, Ints

PPA_NS = "ppa.ppa"
DLV_NS = "ppa.dlv"
DEV_NS = "ppa.dev"
ALLOC_NS = "ppa.alloc"
DUEIDX_NS = "ppa.dueidx"
DUE_NS = "ppa.due"
META_NS = "ppa.meta"

DAY = 86_400

# PPA states. proposed and active are open; the others are final, except
# that a defaulted PPA can still be terminated by its seller.
PROPOSED, LAPSED, REJECTED, ACTIVE = "proposed", "lapsed", "rejected", "active"
COMPLETED, EXPIRED, DEFAULTED, TERMINATED = "completed", "expired", "defaulted", "terminated"
STATUSES = (PROPOSED, LAPSED, REJECTED, ACTIVE, COMPLETED, EXPIRED, DEFAULTED, TERMINATED)
CLOSED_STATUSES = (LAPSED, REJECTED, COMPLETED, EXPIRED, DEFAULTED, TERMINATED)

# Delivery kinds and statuses. A metered delivery (from a device reading) is
# accepted when it is made; a manual one is pending until the buyer confirms
# it, the confirmation window passes, or the PPA closes.
METERED, MANUAL = "metered", "manual"
PENDING, CONFIRMED, AUTO, ACCEPTED = "pending", "confirmed", "auto", "accepted"

# ``Ppa.terminate_by`` bits: who has asked for a mutual termination.
BY_SELLER, BY_BUYER = 1, 2

_DELIVERY_TAG = b"powernode-ppa-delivery"
_META_KEY = (META_NS, b"")
_DUEIDX_KEY = (DUEIDX_NS, b"")


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def delivery_key(ppa_id: bytes, seq: int) -> bytes:
    return ppa_id + u32(seq)


def delivery_id(ppa_id: bytes, seq: int) -> bytes:
    return sha256(_DELIVERY_TAG + ppa_id + u32(seq))


def alloc_key(device: bytes, interval: int) -> bytes:
    return device + u64(interval)


class AllocWh(int):
    """Wh of a reading taken by PPAs, as a state value: stored as the integer."""

    __slots__ = ()

    def to_obj(self) -> int:
        return int(self)

    @classmethod
    def from_obj(cls, obj: Any) -> AllocWh:
        return cls(encoding.as_uint(obj, "allocated wh"))


class Ppa(NamedTuple):
    seller: bytes  # the proposer
    buyer: bytes
    device: bytes  # the seller's generation device, or b"" (manual deliveries)
    share_bps: int  # of each reading's production; 0 without a device
    total_wh: int
    price: int  # micro-units per kWh
    start: int  # unix seconds: the term is [start, end)
    duration_days: int
    period_seconds: int  # the settlement period: sizes the first escrow
    accept_deadline: int
    status: str
    delivered_wh: int  # accepted deliveries
    pending_wh: int  # manual deliveries awaiting acceptance
    paid: int  # paid to the seller so far
    owed: int  # due to the seller and not paid: escrow ran short
    escrow: int  # held for the buyer
    deliveries: int  # how many Delivery records: the next one's seq
    grace_until: int  # 0, or when an unpaid ``owed`` turns into a default
    terminate_by: int  # BY_SELLER | BY_BUYER bits of mutual-termination requests
    proposed_height: int
    closed_time: int  # 0 while proposed or active

    @property
    def end(self) -> int:
        return self.start + self.duration_days * DAY

    @property
    def open(self) -> bool:
        return self.status in (PROPOSED, ACTIVE)

    def to_obj(self) -> list[Any]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> Ppa:
        return cls(*encoding.as_list(obj, 21, "ppa"))


class Delivery(NamedTuple):
    kind: str  # metered | manual
    wh: int
    interval_start: int
    status: str  # pending | confirmed | auto | accepted (metered, or when the PPA closed)
    value: int  # what it is worth at the contract price (its share of the floor rule)
    cert_wh: int  # certificate energy moved to the buyer with it
    cert: bytes  # the certificate holding it, or b""
    height: int
    time: int
    confirm_by: int  # a pending delivery is accepted at this time; 0 for metered

    def to_obj(self) -> list[Any]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> Delivery:
        return cls(*encoding.as_list(obj, 10, "ppa delivery"))


class PpaTotals(NamedTuple):
    escrow: int = 0  # sum of every PPA's escrow
    ppas: int = 0
    delivered_wh: int = 0
    paid: int = 0

    def to_obj(self) -> list[int]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> PpaTotals:
        f = encoding.as_list(obj, 4, "ppa totals")
        return cls(*(encoding.as_uint(x, "ppa total") for x in f))


# Built without the NamedTuples' Python __new__ (as accounts.new_account):
# a metered delivery writes one of each per PPA per reading.
_new_ppa = partial(tuple.__new__, Ppa)
_new_delivery = partial(tuple.__new__, Delivery)


# --- access -------------------------------------------------------------------


def ppa(view: StateRead, ppa_id: bytes) -> Ppa | None:
    p: Ppa | None = view.get((PPA_NS, ppa_id))
    return p


def delivery(view: StateRead, ppa_id: bytes, seq: int) -> Delivery | None:
    d: Delivery | None = view.get((DLV_NS, delivery_key(ppa_id, seq)))
    return d


def totals(view: StateRead) -> PpaTotals:
    t: PpaTotals | None = view.get(_META_KEY)
    return PpaTotals() if t is None else t


def put_ppa(view: StateAccess, ppa_id: bytes, old: Ppa | None, new: Ppa) -> None:
    """Write ``new`` and keep the totals in step with what changed."""
    t = totals(view)
    o_escrow, o_dlv, o_paid = (0, 0, 0) if old is None else (old.escrow, old.delivered_wh, old.paid)
    view.put(
        _META_KEY,
        PpaTotals(
            t.escrow + new.escrow - o_escrow,
            t.ppas + (old is None),
            t.delivered_wh + new.delivered_wh - o_dlv,
            t.paid + new.paid - o_paid,
        ),
    )
    view.put((PPA_NS, ppa_id), new)


def bound(view: StateRead, device: bytes) -> Ids:
    ids: Ids | None = view.get((DEV_NS, device))
    return Ids() if ids is None else ids


def bind(view: StateAccess, device: bytes, ppa_id: bytes) -> None:
    view.put((DEV_NS, device), Ids(sorted((*bound(view, device), ppa_id))))


def unbind(view: StateAccess, device: bytes, ppa_id: bytes) -> None:
    rest = tuple(i for i in bound(view, device) if i != ppa_id)
    view.put((DEV_NS, device), Ids(rest) if rest else None)


def allocated(view: StateRead, device: bytes, interval: int) -> int:
    """Wh of the reading of ``device`` for the interval starting at ``interval``
    that PPAs bound to the device took (0 when none did). The settlement
    allocates trades only from what is left."""
    v = view.get((ALLOC_NS, alloc_key(device, interval)))
    return 0 if v is None else int(v)


def put_allocated(view: StateAccess, device: bytes, interval: int, wh: int) -> None:
    view.put((ALLOC_NS, alloc_key(device, interval)), AllocWh(wh))


# --- the schedule of due work -------------------------------------------------


def schedule(view: StateAccess, when: int, entry: bytes) -> None:
    key = (DUE_NS, u64(when))
    due: Ids | None = view.get(key)
    if due is None:
        idx: Ints | None = view.get(_DUEIDX_KEY)
        times = sorted((*(idx or ()), when))
        view.put(_DUEIDX_KEY, Ints(times))
        due = Ids()
    view.put(key, Ids((*due, entry)))


def due_times(view: StateRead) -> Ints:
    idx: Ints | None = view.get(_DUEIDX_KEY)
    return Ints() if idx is None else idx


def take_due(view: StateAccess, when: int) -> Ids:
    """The work due at ``when``, removed from the schedule."""
    key = (DUE_NS, u64(when))
    due: Ids | None = view.get(key)
    view.put(key, None)
    times = [t for t in due_times(view) if t != when]
    view.put(_DUEIDX_KEY, Ints(times) if times else None)
    return Ids() if due is None else due


STATE_CODECS = {
    PPA_NS: Ppa.from_obj,
    DLV_NS: Delivery.from_obj,
    DEV_NS: Ids.from_obj,
    ALLOC_NS: AllocWh.from_obj,
    DUEIDX_NS: Ints.from_obj,
    DUE_NS: Ids.from_obj,
    META_NS: PpaTotals.from_obj,
}
