"""The PPA tx types.

Payloads (msgpack arrays, in this order):

    ppa.propose    [buyer, device_id or b"", share_bps, total_wh, price, start,
                    duration_days, period_seconds, accept_deadline]
    ppa.accept     [ppa_id]
    ppa.reject     [ppa_id]
    ppa.fund       [ppa_id, amount]
    ppa.deliver    [ppa_id, wh, interval_start]
    ppa.confirm    [ppa_id, delivery_seq]
    ppa.terminate  [ppa_id]

The proposer is the seller. A PPA's id is the txid that proposed it. Every
consensus rule of a tx type is one ``_check_*`` function, run by ``apply``
and, as the admission check against the tip, by ``precheck``; the README
("Power purchase agreements") lists them in the order they are checked.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from powernode.core.crypto import ADDRESS_SIZE
from powernode.core.errors import (
    BadPayload,
    DeviceRetired,
    InsufficientFunds,
    NotDeviceOwner,
    PpaAboveTotal,
    PpaAlreadyTerminating,
    PpaDeadlinePassed,
    PpaDeliveryNotPending,
    PpaDeviceBound,
    PpaNotParty,
    PpaOutsideTerm,
    PpaSameParty,
    PpaUnknownDelivery,
    PpaWrongState,
    UnknownDevice,
    UnknownPpa,
    WrongDeviceKind,
)
from powernode.core.execution import Event, ExecContext, StateAccess, StateRead
from powernode.core.params import ChainParams
from powernode.core.tx import Transaction
from powernode.core.units import MAX_MONEY
from powernode.engines.accounts import debit, get_account
from powernode.engines.contracts import ppa_flow as flow
from powernode.engines.contracts.ppa_records import (
    ACTIVE,
    BY_BUYER,
    BY_SELLER,
    CONFIRMED,
    DAY,
    DEFAULTED,
    MANUAL,
    PENDING,
    PROPOSED,
    REJECTED,
    TERMINATED,
    Delivery,
    Ppa,
    bind,
    delivery,
    ppa,
    put_ppa,
    schedule,
)
from powernode.engines.metering import clock
from powernode.engines.metering.records import RETIRED, device

_MAX_U64 = 2**64 - 1
ID_SIZE = 32


def _uint(v: Any, what: str, lo: int = 0, hi: int = _MAX_U64) -> int:
    if type(v) is not int or not lo <= v <= hi:
        raise BadPayload(f"{what}: expected an integer in {lo}..{hi}")
    return v


def _id(v: Any, what: str = "ppa_id") -> bytes:
    if type(v) is not bytes or len(v) != ID_SIZE:
        raise BadPayload(f"{what}: expected {ID_SIZE} bytes")
    return v


def _args(payload: list[Any], n: int, shape: str) -> list[Any]:
    if len(payload) != n:
        raise BadPayload(f"payload is {shape}")
    return payload


def _existing(view: StateRead, ppa_id: bytes) -> Ppa:
    p = ppa(view, ppa_id)
    if p is None:
        raise UnknownPpa(f"no PPA {ppa_id.hex()}")
    return p


def _buyer(p: Ppa, sender: bytes, what: str) -> None:
    if sender != p.buyer:
        raise PpaNotParty(f"only the PPA's buyer may {what}")


def _state(p: Ppa, *allowed: str) -> None:
    if p.status not in allowed:
        raise PpaWrongState(f"the PPA is {p.status}; this needs {' or '.join(allowed)}")


def _afford(view: StateRead, who: bytes, amount: int, fee: int = 0) -> None:
    have = get_account(view, who).balance
    if have < amount + fee:
        also = f" and the fee {fee}" if fee else ""
        raise InsufficientFunds(f"the buyer has {have}, needs {amount}{also}")


class _Base:
    """What every PPA handler shares: no debit the mempool can know in
    advance beyond what ``max_debit`` says (funding names its amount)."""

    tx_type: str

    def max_debit(self, payload: Any, params: ChainParams) -> int:
        return 0


# --- ppa.propose --------------------------------------------------------------


class ProposePayload(NamedTuple):
    buyer: bytes
    device: bytes
    share_bps: int
    total_wh: int
    price: int
    start: int
    duration_days: int
    period_seconds: int
    accept_deadline: int


def _check_propose(view: StateRead, ctx: ExecContext, seller: bytes, p: ProposePayload) -> int:
    if p.buyer == seller:
        raise PpaSameParty("a PPA's buyer must be another address than its seller")
    if p.device:
        d = device(view, p.device)
        if d is None:
            raise UnknownDevice(f"no device {p.device.hex()}")
        if d.owner != seller:
            raise NotDeviceOwner("a PPA can bind only a device of its seller")
        if not d.produces:
            raise WrongDeviceKind("a PPA binds a device that generates")
        if d.status == RETIRED:
            raise DeviceRetired("the device is retired")
    now = clock.now(view, ctx)
    if p.accept_deadline <= now:
        raise PpaDeadlinePassed(f"acceptance deadline {p.accept_deadline} is not after {now}")
    return now


class ProposeHandler(_Base):
    tx_type = "ppa.propose"

    def decode(self, payload: list[Any]) -> ProposePayload:
        f = _args(
            payload, 9,
            "[buyer, device_id or b'', share_bps, total_wh, price, start, duration_days, "
            "period_seconds, accept_deadline]",
        )  # fmt: skip
        buyer, dev, share, total, price, start, days, period, deadline = f
        if type(buyer) is not bytes or len(buyer) != ADDRESS_SIZE:
            raise BadPayload(f"buyer: expected a {ADDRESS_SIZE}-byte address")
        if type(dev) is not bytes or len(dev) not in (0, ID_SIZE):
            raise BadPayload(f"device_id: expected {ID_SIZE} bytes, or b'' for none")
        if dev:
            _uint(share, "share_bps of a device-bound PPA", 1, 10_000)
        elif share != 0 or type(share) is not int:
            raise BadPayload("share_bps: must be 0 for a PPA without a device")
        _uint(total, "total_wh", 1, flow.MAX_TOTAL_WH)
        _uint(price, "price (micro-units per kWh)", 1, flow.MAX_PRICE)
        if total * price // 1000 > MAX_MONEY:
            raise BadPayload("total_wh x price is above the supply cap")
        _uint(start, "start")
        _uint(days, "duration_days", 1, flow.MAX_DURATION_DAYS)
        _uint(period, "period_seconds", flow.MIN_PERIOD_SECONDS, days * DAY)
        _uint(deadline, "accept_deadline")
        if deadline >= start + days * DAY:
            raise BadPayload("accept_deadline: must be before the end of the term")
        return ProposePayload(buyer, dev, share, total, price, start, days, period, deadline)

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: ProposePayload
    ) -> None:
        _check_propose(view, ctx, tx.sender_address, p)

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: ProposePayload
    ) -> list[Event]:
        seller = tx.sender_address
        _check_propose(view, ctx, seller, p)
        pid = tx.txid
        new = Ppa(
            seller, p.buyer, p.device, p.share_bps, p.total_wh, p.price, p.start,
            p.duration_days, p.period_seconds, p.accept_deadline, PROPOSED,
            0, 0, 0, 0, 0, 0, 0, 0, ctx.height, 0,
        )  # fmt: skip
        put_ppa(view, pid, None, new)
        schedule(view, p.accept_deadline, b"l" + pid)
        return [{"event": "ppa.proposed", "ppa": pid, "seller": seller, "buyer": p.buyer}]


# --- ppa.accept / ppa.reject --------------------------------------------------


class IdPayload(NamedTuple):
    ppa_id: bytes


def _decode_id(payload: list[Any]) -> IdPayload:
    return IdPayload(_id(_args(payload, 1, "[ppa_id]")[0]))


def _check_accept(
    view: StateRead, ctx: ExecContext, sender: bytes, pid: bytes, fee: int = 0
) -> Ppa:
    """``fee``: the tx's fee, when asked before it is charged (admission and
    the template: the mempool cannot know the first period's cost, so a
    buyer who can pay it but not the fee too would only get a failed tx)."""
    p = _existing(view, pid)
    _buyer(p, sender, "accept it")
    _state(p, PROPOSED)
    now = clock.now(view, ctx)
    if now >= p.accept_deadline:
        raise PpaDeadlinePassed(f"the PPA's acceptance deadline {p.accept_deadline} has passed")
    _afford(view, sender, flow.first_period_cost(p), fee)
    return p


class AcceptHandler(_Base):
    tx_type = "ppa.accept"

    def decode(self, payload: list[Any]) -> IdPayload:
        return _decode_id(payload)

    def precheck(self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: IdPayload) -> None:
        _check_accept(view, ctx, tx.sender_address, p.ppa_id, tx.fee)

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: IdPayload
    ) -> list[Event]:
        pid = p.ppa_id
        old = _check_accept(view, ctx, tx.sender_address, pid)
        cost = flow.first_period_cost(old)
        debit(view, old.buyer, cost)
        new = old._replace(status=ACTIVE, escrow=cost)
        put_ppa(view, pid, old, new)
        if new.device:
            bind(view, new.device, pid)
        schedule(view, flow.close_time(view, ctx, new), b"e" + pid)
        return [{"event": "ppa.accepted", "ppa": pid, "escrow": cost}]


def _check_reject(view: StateRead, sender: bytes, pid: bytes) -> Ppa:
    p = _existing(view, pid)
    _buyer(p, sender, "reject it")
    _state(p, PROPOSED)
    return p


class RejectHandler(_Base):
    tx_type = "ppa.reject"

    def decode(self, payload: list[Any]) -> IdPayload:
        return _decode_id(payload)

    def precheck(self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: IdPayload) -> None:
        _check_reject(view, tx.sender_address, p.ppa_id)

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: IdPayload
    ) -> list[Event]:
        old = _check_reject(view, tx.sender_address, p.ppa_id)
        now = clock.now(view, ctx)
        put_ppa(view, p.ppa_id, old, old._replace(status=REJECTED, closed_time=now))
        return [{"event": "ppa.rejected", "ppa": p.ppa_id}]


# --- ppa.fund -----------------------------------------------------------------


class FundPayload(NamedTuple):
    ppa_id: bytes
    amount: int


def _check_fund(view: StateRead, sender: bytes, p: FundPayload) -> Ppa:
    q = _existing(view, p.ppa_id)
    _buyer(q, sender, "fund it")
    _state(q, ACTIVE)
    _afford(view, sender, p.amount)
    return q


class FundHandler(_Base):
    tx_type = "ppa.fund"

    def decode(self, payload: list[Any]) -> FundPayload:
        pid, amount = _args(payload, 2, "[ppa_id, amount]")
        return FundPayload(_id(pid), _uint(amount, "amount", 1, MAX_MONEY))

    def max_debit(self, payload: FundPayload, params: ChainParams) -> int:
        return payload.amount

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: FundPayload
    ) -> None:
        _check_fund(view, tx.sender_address, p)

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: FundPayload
    ) -> list[Event]:
        old = _check_fund(view, tx.sender_address, p)
        now = clock.now(view, ctx)
        debit(view, old.buyer, p.amount)
        new = flow.fund(view, p.ppa_id, old, p.amount, now)
        new = flow.maybe_complete(view, p.ppa_id, old, new, now)
        return [
            {
                "event": "ppa.funded",
                "ppa": p.ppa_id,
                "amount": p.amount,
                "paid": new.paid - old.paid,
                "escrow": new.escrow,
                "status": new.status,
            }
        ]


# --- ppa.deliver / ppa.confirm ------------------------------------------------


class DeliverPayload(NamedTuple):
    ppa_id: bytes
    wh: int
    interval_start: int


def _check_deliver(
    view: StateRead, ctx: ExecContext, sender: bytes, p: DeliverPayload
) -> tuple[Ppa, int]:
    q = _existing(view, p.ppa_id)
    if sender != q.seller:
        raise PpaNotParty("only the PPA's seller may deliver")
    _state(q, ACTIVE)
    if q.device:
        raise PpaDeviceBound("this PPA's deliveries come from its device's readings")
    now = clock.now(view, ctx)
    if not q.start <= p.interval_start < q.end or p.interval_start >= now:
        raise PpaOutsideTerm(
            f"interval {p.interval_start} is not in the term [{q.start}, {q.end}) "
            f"and started (clock {now})"
        )
    left = q.total_wh - q.delivered_wh - q.pending_wh
    if p.wh > left:
        raise PpaAboveTotal(f"{p.wh} Wh is above the {left} Wh the PPA has left")
    return q, now


class DeliverHandler(_Base):
    tx_type = "ppa.deliver"

    def decode(self, payload: list[Any]) -> DeliverPayload:
        pid, wh, start = _args(payload, 3, "[ppa_id, wh, interval_start]")
        return DeliverPayload(
            _id(pid), _uint(wh, "wh", 1, flow.MAX_TOTAL_WH), _uint(start, "interval_start")
        )

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: DeliverPayload
    ) -> None:
        _check_deliver(view, ctx, tx.sender_address, p)

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: DeliverPayload
    ) -> list[Event]:
        old, now = _check_deliver(view, ctx, tx.sender_address, p)
        seq = old.deliveries
        by = now + flow.CONFIRM_WINDOW
        new = flow.add_delivery(
            view, ctx, p.ppa_id, old._replace(pending_wh=old.pending_wh + p.wh),
            Delivery(MANUAL, p.wh, p.interval_start, PENDING, 0, 0, b"", ctx.height, now, by),
        )  # fmt: skip
        put_ppa(view, p.ppa_id, old, new)
        flow.schedule_confirm(view, p.ppa_id, seq, by)
        return [
            {"event": "ppa.delivery", "ppa": p.ppa_id, "seq": seq, "wh": p.wh, "confirm_by": by}
        ]


class ConfirmPayload(NamedTuple):
    ppa_id: bytes
    seq: int


def _check_confirm(view: StateRead, sender: bytes, p: ConfirmPayload) -> Ppa:
    q = _existing(view, p.ppa_id)
    _buyer(q, sender, "confirm a delivery")
    _state(q, ACTIVE)
    d = delivery(view, p.ppa_id, p.seq)
    if d is None:
        raise PpaUnknownDelivery(f"the PPA has no delivery {p.seq}")
    if d.status != PENDING:
        raise PpaDeliveryNotPending(f"delivery {p.seq} is already {d.status}")
    return q


class ConfirmHandler(_Base):
    tx_type = "ppa.confirm"

    def decode(self, payload: list[Any]) -> ConfirmPayload:
        pid, seq = _args(payload, 2, "[ppa_id, delivery_seq]")
        return ConfirmPayload(_id(pid), _uint(seq, "delivery_seq", 0, 2**32 - 1))

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: ConfirmPayload
    ) -> None:
        _check_confirm(view, tx.sender_address, p)

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: ConfirmPayload
    ) -> list[Event]:
        old = _check_confirm(view, tx.sender_address, p)
        new = flow.confirm(view, p.ppa_id, old, p.seq, CONFIRMED, clock.now(view, ctx))
        return [
            {
                "event": "ppa.confirmed",
                "ppa": p.ppa_id,
                "seq": p.seq,
                "paid": new.paid - old.paid,
                "owed": new.owed,
                "status": new.status,
            }
        ]


# --- ppa.terminate ------------------------------------------------------------


def _check_terminate(view: StateRead, sender: bytes, pid: bytes) -> tuple[Ppa, int]:
    p = _existing(view, pid)
    if sender not in (p.seller, p.buyer):
        raise PpaNotParty("only a party to the PPA may terminate it")
    bit = BY_SELLER if sender == p.seller else BY_BUYER
    if p.status == DEFAULTED:
        if bit != BY_SELLER:
            raise PpaWrongState("the buyer defaulted; only the seller may terminate the PPA")
        return p, bit
    _state(p, ACTIVE)
    if p.terminate_by & bit:
        raise PpaAlreadyTerminating("this party already asked; the other must terminate too")
    return p, bit


class TerminateHandler(_Base):
    tx_type = "ppa.terminate"

    def decode(self, payload: list[Any]) -> IdPayload:
        return _decode_id(payload)

    def precheck(self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: IdPayload) -> None:
        _check_terminate(view, tx.sender_address, p.ppa_id)

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: IdPayload
    ) -> list[Event]:
        old, bit = _check_terminate(view, tx.sender_address, p.ppa_id)
        now = clock.now(view, ctx)
        flags = old.terminate_by | bit
        new = old._replace(terminate_by=flags)
        if old.status == DEFAULTED or flags == BY_SELLER | BY_BUYER:
            new = flow.close(view, p.ppa_id, old, new, TERMINATED, now)
        else:
            put_ppa(view, p.ppa_id, old, new)
        return [
            {
                "event": "ppa.terminate",
                "ppa": p.ppa_id,
                "by": tx.sender_address,
                "status": new.status,
            }
        ]


HANDLERS = (
    ProposeHandler(),
    AcceptHandler(),
    RejectHandler(),
    FundHandler(),
    DeliverHandler(),
    ConfirmHandler(),
    TerminateHandler(),
)
