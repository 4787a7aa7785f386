"""A PPA's life after acceptance: deliveries, payment from escrow, default
grace, closing; the block hook that judges it by time, and the hook that
makes deliveries from a bound device's readings.

Money rule (one place): after every change the seller is owed
``delivered_wh * price // 1000`` in total (price is micro-units per kWh, so
Wh x price / 1000 is micro-units, rounded down once over the cumulative
energy, never per delivery). What escrow covers is paid at once; the rest
is ``owed`` and starts the default grace period (``GRACE_SECONDS``) unless
one is running. ``paid + owed`` always equals that total, and ``owed > 0``
only while escrow is empty, so a seller is never paid beyond delivered x
price.

"Now" is the metering clock (``metering.clock.now``: the market's clock or
the block's time, whichever is later), so block times that step back never
reopen a deadline.
"""

from __future__ import annotations

from powernode.core.execution import Event, ExecContext, StateAccess
from powernode.core.tx import Transaction
from powernode.engines.accounts import credit
from powernode.engines.certificates.moves import PPA as PPA_STEP
from powernode.engines.certificates.moves import bundle
from powernode.engines.contracts.ppa_records import (
    ACCEPTED,
    ACTIVE,
    AUTO,
    COMPLETED,
    DEFAULTED,
    DLV_NS,
    EXPIRED,
    LAPSED,
    MANUAL,
    METERED,
    PENDING,
    PROPOSED,
    Delivery,
    Ppa,
    _new_delivery,
    _new_ppa,
    allocated,
    bound,
    delivery,
    delivery_id,
    delivery_key,
    due_times,
    ppa,
    put_allocated,
    put_ppa,
    schedule,
    take_due,
    u32,
    unbind,
)
from powernode.engines.metering import clock
from powernode.engines.metering.batch import BatchPayload, produced_entries
from powernode.engines.metering.handlers import ReportPayload
from powernode.engines.metering.params import cert_params

# Constants of the chain (README, "Power purchase agreements").
CONFIRM_WINDOW = 86_400  # a manual delivery is accepted this long after it is made
GRACE_SECONDS = 3 * 86_400  # escrow may stay short this long before the PPA defaults
MAX_DURATION_DAYS = 10_000  # about 27 years
MIN_PERIOD_SECONDS = 60
MAX_TOTAL_WH = 10**15  # 1 TWh
MAX_PRICE = 10**12  # micro-units per kWh
LAST_TIME = 2**64 - 1  # the latest time a schedule key holds (a u64)


def first_period_cost(p: Ppa) -> int:
    """What accepting escrows: the first settlement period's share of the
    total energy at the contract price (floor)."""
    term = p.duration_days * 86_400
    wh = min(p.total_wh, p.total_wh * p.period_seconds // term)
    return wh * p.price // 1000


def close_time(view: StateAccess, ctx: ExecContext, p: Ppa) -> int:
    """When an active PPA closes: one second after the last reading it can
    take would be too late. Its last interval is the one holding the term's
    last second (it ends after the term when the term is not aligned to the
    metering interval), and a reading is taken while now <= interval end +
    reading_window, that second included. A term whose close would pass the
    last u64 time closes at that time (never, in practice): such a proposal
    is valid, and its accept must not fail scheduling the close."""
    cp = cert_params(ctx.params)
    size = cp.interval_seconds
    last_end = -(-p.end // size) * size  # the end rounded up to an interval
    return min(last_end + cp.reading_window + 1, LAST_TIME)


def _settled(
    view: StateAccess,
    ppa_id: bytes,
    p: Ppa,
    now: int,
    *,
    delivered: int,
    pending: int,
    escrow: int,
    deliveries: int,
) -> Ppa:
    """``p`` with these delivered/pending Wh, escrow and delivery count, after
    paying the seller what escrow covers of what is due and starting or
    clearing the default grace period (not yet written). Built as one tuple:
    a metered delivery runs this once per PPA per reading."""
    due = delivered * p.price // 1000 - p.paid
    pay = due if due <= escrow else escrow
    if pay:
        credit(view, p.seller, pay)
    owed = due - pay
    grace = p.grace_until
    if owed == 0:
        grace = 0
    elif grace == 0:
        grace = now + GRACE_SECONDS
        schedule(view, grace, b"g" + ppa_id)
    return _new_ppa(
        (*p[:11], delivered, pending, p.paid + pay, owed, escrow - pay, deliveries, grace, *p[18:])
    )


def accept_wh(
    view: StateAccess, ppa_id: bytes, p: Ppa, wh: int, now: int, *, pending: int, deliveries: int
) -> tuple[Ppa, int]:
    """Count ``wh`` as delivered and pay for it; returns the new PPA (not yet
    written) and the delivery's value (its share of the cumulative floor)."""
    delivered = p.delivered_wh + wh
    value = delivered * p.price // 1000 - p.delivered_wh * p.price // 1000
    q = _settled(
        view, ppa_id, p, now,
        delivered=delivered, pending=pending, escrow=p.escrow, deliveries=deliveries,
    )  # fmt: skip
    return q, value


def fund(view: StateAccess, ppa_id: bytes, p: Ppa, amount: int, now: int) -> Ppa:
    """Add ``amount`` to escrow (the caller debited the buyer) and pay what
    is owed from it first."""
    return _settled(
        view, ppa_id, p, now,
        delivered=p.delivered_wh, pending=p.pending_wh, escrow=p.escrow + amount,
        deliveries=p.deliveries,
    )  # fmt: skip


def _accept_pending(
    view: StateAccess, ppa_id: bytes, p: Ppa, seq: int, status: str, now: int
) -> Ppa:
    d = delivery(view, ppa_id, seq)
    assert d is not None and d.status == PENDING
    p, value = accept_wh(
        view, ppa_id, p, d.wh, now, pending=p.pending_wh - d.wh, deliveries=p.deliveries
    )
    view.put((DLV_NS, delivery_key(ppa_id, seq)), d._replace(status=status, value=value))
    return p


def confirm(view: StateAccess, ppa_id: bytes, p: Ppa, seq: int, status: str, now: int) -> Ppa:
    """Accept pending delivery ``seq`` (confirmed by the buyer, or ``auto``),
    write the PPA, and complete it if that was the last energy."""
    new = _accept_pending(view, ppa_id, p, seq, status, now)
    return maybe_complete(view, ppa_id, p, new, now)


def maybe_complete(view: StateAccess, ppa_id: bytes, old: Ppa, p: Ppa, now: int) -> Ppa:
    if p.status == ACTIVE and p.delivered_wh == p.total_wh and p.owed == 0 and not p.pending_wh:
        return close(view, ppa_id, old, p, COMPLETED, now)
    put_ppa(view, ppa_id, old, p)
    return p


def close(view: StateAccess, ppa_id: bytes, old: Ppa, p: Ppa, status: str, now: int) -> Ppa:
    """End an active PPA with ``status``: deliveries still pending are
    accepted (paid as far as escrow covers), what is left in escrow goes
    back to the buyer, the device binding ends. Writes and returns it."""
    if p.pending_wh:
        for seq in range(p.deliveries):
            d = delivery(view, ppa_id, seq)
            assert d is not None
            if d.status == PENDING:
                p = _accept_pending(view, ppa_id, p, seq, ACCEPTED, now)
    if status == COMPLETED and p.owed:
        status = DEFAULTED  # accepting the pending ones left the buyer owing
    if p.escrow:
        credit(view, p.buyer, p.escrow)
    if p.device and old.status == ACTIVE:
        unbind(view, p.device, ppa_id)
    p = p._replace(status=status, escrow=0, grace_until=0, closed_time=now)
    put_ppa(view, ppa_id, old, p)
    return p


def add_delivery(
    view: StateAccess,
    ctx: ExecContext,
    ppa_id: bytes,
    p: Ppa,
    d: Delivery,
) -> Ppa:
    """Store delivery ``d`` as the PPA's next; returns the PPA with the count."""
    view.put((DLV_NS, delivery_key(ppa_id, p.deliveries)), d)
    return p._replace(deliveries=p.deliveries + 1)


# --- deliveries from a bound device's readings -------------------------------


def deliver_from_reading(
    view: StateAccess, ctx: ExecContext, tx: Transaction, payload: ReportPayload
) -> list[Event]:
    """After ``meter.report``: each active PPA bound to the device (by PPA id)
    whose term holds the interval takes ``share_bps`` of the production, up
    to its remaining total and to what the reading has left; it is paid
    from escrow and the certificates of that energy move to the buyer."""
    device = payload.device_id
    ids = bound(view, device)
    produced = payload.produced_wh
    if not ids or not produced:
        return []
    interval = payload.interval_start
    taken = allocated(view, device, interval)
    now = clock.now(view, ctx)
    events: list[Event] = []
    for pid in ids:
        old = ppa(view, pid)
        assert old is not None and old.status == ACTIVE, "only active PPAs are bound"
        if not old.start <= interval < old.end:
            continue
        wh = min(
            old.share_bps * produced // 10_000,
            old.total_wh - old.delivered_wh - old.pending_wh,
            produced - taken,
        )
        if wh <= 0:
            continue
        seq = old.deliveries
        ref = delivery_id(pid, seq)
        moved, holder = bundle(
            view, ctx, device=device, interval=interval, frm=old.seller, to=old.buyer,
            wh=wh, ref=ref, kind=PPA_STEP,
        )  # fmt: skip
        p, value = accept_wh(view, pid, old, wh, now, pending=old.pending_wh, deliveries=seq + 1)
        view.put(
            (DLV_NS, delivery_key(pid, seq)),
            _new_delivery((METERED, wh, interval, ACCEPTED, value, moved, holder or b"",
                           ctx.height, now, 0)),
        )  # fmt: skip
        taken += wh
        p = maybe_complete(view, pid, old, p, now)
        events.append(
            {
                "event": "ppa.delivered",
                "ppa": pid,
                "seq": seq,
                "wh": wh,
                "interval": interval,
                "paid": p.paid - old.paid,
                "owed": p.owed,
                "cert_wh": moved,
                "status": p.status,
            }
        )
    if taken:
        put_allocated(view, device, interval, taken)
    return events


def deliver_from_batch(
    view: StateAccess, ctx: ExecContext, tx: Transaction, payload: BatchPayload
) -> list[Event]:
    """After ``meter.batch``: ``deliver_from_reading`` for each entry with
    production it recorded as a reading (a skipped entry delivers nothing)."""
    events: list[Event] = []
    for entry in produced_entries(view, tx, payload):
        events += deliver_from_reading(view, ctx, tx, entry)
    return events


# --- the block hook ------------------------------------------------------------


def begin_block(view: StateAccess, ctx: ExecContext) -> None:
    """Judge every PPA whose time has come, in time order, then in the order
    the work was scheduled: lapse a proposal at its acceptance deadline,
    auto-accept a manual delivery at the end of its confirmation window,
    default a PPA whose escrow stayed short past its grace period, close a
    PPA after its term."""
    times = due_times(view)
    if not times:
        return
    now = clock.now(view, ctx)
    for when in times:
        if when > now:
            break
        for entry in take_due(view, when):
            _run(view, ctx, entry, now)


def _run(view: StateAccess, ctx: ExecContext, entry: bytes, now: int) -> None:
    kind, pid = entry[:1], entry[1:33]
    p = ppa(view, pid)
    assert p is not None, "due work names a stored PPA"
    if kind == b"l":
        if p.status == PROPOSED:
            put_ppa(view, pid, p, p._replace(status=LAPSED, closed_time=now))
    elif p.status != ACTIVE:
        return  # the PPA ended before this work came due
    elif kind == b"c":
        seq = int.from_bytes(entry[33:37], "big")
        d = delivery(view, pid, seq)
        if d is not None and d.status == PENDING:
            confirm(view, pid, p, seq, AUTO, now)
    elif kind == b"g":
        if p.owed and p.grace_until and p.grace_until <= now:
            close(view, pid, p, p, DEFAULTED, now)
    elif kind == b"e":
        # The term is over and no reading of it can still arrive. Pending
        # deliveries are accepted first (``close``); a buyer who then owes
        # has defaulted; otherwise complete or expired short.
        status = COMPLETED if p.delivered_wh + p.pending_wh >= p.total_wh else EXPIRED
        q = close(view, pid, p, p, status, now)
        if q.owed and q.status != DEFAULTED:
            put_ppa(view, pid, q, q._replace(status=DEFAULTED))


def schedule_confirm(view: StateAccess, ppa_id: bytes, seq: int, when: int) -> None:
    schedule(view, when, b"c" + ppa_id + u32(seq))


__all__ = [
    "CONFIRM_WINDOW",
    "GRACE_SECONDS",
    "MANUAL",
    "begin_block",
    "close",
    "close_time",
    "confirm",
    "deliver_from_reading",
    "first_period_cost",
    "fund",
]
