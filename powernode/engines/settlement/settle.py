"""Settling trades against meter readings, in a block hook.

When a delivery slot has ended and its reading window has passed (by the
metering clock: slot + slot_seconds + reading_window < now, strictly, so no
reading for the slot can still arrive; see README "Settlement"), the hook
settles the slot's trades, per seller in address order:

1. the seller's metered production for the slot: for each of its devices
   that can generate and is active now, in device id order, for each
   metering interval of the slot in time order, the reading's produced Wh
   less what PPAs bound to the device took of it (``contracts.ppa_records.
   allocated``; PPAs take their share first, when the reading arrives). A
   missing reading counts as 0;
2. that energy goes to the seller's trades of the slot in trade sequence
   order, each taking up to its energy: ``completed`` (all of it),
   ``partial`` or ``undelivered`` (none);
3. money, per trade, in integers: paid = value if complete, else
   price x delivered // 1000; the buyer fee on ``paid`` and the seller fee on
   ``paid`` go to the settling block's miner; the seller gets paid - seller
   fee; the buyer gets back what the settlement escrow held beyond paid +
   buyer fee. Then the shortfall penalty (see ``_penalty``);
4. certificates: the delivered Wh take the (device, interval) sources of
   step 1 in that same order, and ``certificates.moves.bundle`` moves what
   the seller still holds of each source's certificate to the buyer.

Nothing here can fail for a valid state: every amount is bounded by what
the escrow holds (floor(p x d / 1000) <= floor(p x e / 1000) for d <= e, and
fees are monotone), and a penalty is capped at the seller's balance.
"""

from __future__ import annotations

from bisect import insort
from functools import partial
from typing import Any

from powernode.core.crypto import sha256
from powernode.core.execution import Event, ExecContext, StateAccess
from powernode.core.tx import Transaction
from powernode.engines.accounts import credit, debit, get_account
from powernode.engines.certificates.moves import BUNDLE, bundle
from powernode.engines.contracts.ppa_records import allocated
from powernode.engines.market.params import markets
from powernode.engines.market.records import (
    COMPLETED,
    CONFIRMED,
    PARTIAL,
    STLS_NS,
    STLT_NS,
    TRADE_NS,
    UNDELIVERED,
    Ids,
    Ints,
    Meta,
    Position,
    Trade,
    u64,
)
from powernode.engines.market.session import (
    META_KEY,
    STLQ_KEY,
    fee_on,
    pending_sellers,
    pending_slots,
    position,
    put_position,
    unsettled,
    unsettled_key,
)
from powernode.engines.metering import clock
from powernode.engines.metering import records as meter
from powernode.engines.metering.params import cert_params
from powernode.engines.settlement.records import (
    DEVS_NS,
    SLOT_NS,
    SlotSettlement,
    devices_of,
    slot_key,
)

_REF_TAG = b"powernode-trade-settle"
# Records rewritten per trade, built from tuples in C (not ``_replace``).
_trade = partial(tuple.__new__, Trade)
_pos = partial(tuple.__new__, Position)


def bundle_ref(seq: int) -> bytes:
    """The 32 bytes naming a trade's settlement in its certificates' steps
    (the txid of the bundle step; a split's child id uses it)."""
    return sha256(_REF_TAG + u64(seq))


def due_before(slot_seconds: int, reading_window: int, now: int) -> int:
    """Slots starting before this are due: slot + slot_seconds +
    reading_window < now."""
    return now - slot_seconds - reading_window


def begin_block(view: StateAccess, ctx: ExecContext) -> None:
    q = pending_slots(view)
    if not q:
        return
    now = clock.now(view, ctx)
    cp = cert_params(ctx.params)
    mkts = markets(ctx.params)
    slot_seconds = mkts["spot"].slot_seconds  # one slot grid for every product
    limit = due_before(slot_seconds, cp.reading_window, now)
    if q[0] >= limit:
        return
    n = 0
    released = fees = 0
    for slot in q:
        if slot >= limit:
            break
        n += 1
        for seller in pending_sellers(view, slot):
            r, f = _settle_seller(view, ctx, now, mkts, cp, slot_seconds, slot, seller)
            released += r
            fees += f
            view.put((STLT_NS, unsettled_key(slot, seller)), None)
        view.put((STLS_NS, u64(slot)), None)
    view.put(STLQ_KEY, Ints(q[n:]) if n < len(q) else None)
    if fees:
        credit(view, ctx.miner, fees)
    meta: Meta = view.get(META_KEY)
    view.put(META_KEY, meta._replace(settle_escrow=meta.settle_escrow - released))


def _sources(
    view: StateAccess, seller: bytes, slot: int, slot_seconds: int, interval: int
) -> tuple[list[list[Any]], int, int]:
    """Step 1: [device, interval start, Wh left for trades] per reading with
    energy left, in (device id, interval) order; and the metered and PPA
    totals."""
    out: list[list[Any]] = []
    metered = ppa = 0
    for did in devices_of(view, seller):
        d = meter.device(view, did)
        if d is None or d.status != meter.ACTIVE:
            continue
        for start in range(slot, slot + slot_seconds, interval):
            r = meter.reading(view, did, start)
            if r is None or r.produced_wh == 0:
                continue
            taken = min(allocated(view, did, start), r.produced_wh)
            metered += r.produced_wh
            ppa += taken
            if r.produced_wh > taken:
                out.append([did, start, r.produced_wh - taken])
    return out, metered, ppa


def _penalty(view: StateAccess, seller: bytes, short_value: int, bps: int) -> int:
    """The shortfall rule: a seller owes its buyer shortfall_penalty_bps of the
    value of what it sold and did not deliver (rounded down), paid from its
    balance at that point of the settlement (after this trade's payment),
    and capped at that balance: the penalty never fails a settlement nor
    drives a balance below zero."""
    due = fee_on(short_value, bps)
    if due == 0:
        return 0
    return min(due, get_account(view, seller).balance)


def _settle_seller(
    view: StateAccess,
    ctx: ExecContext,
    now: int,
    mkts: dict[str, Any],
    cp: Any,
    slot_seconds: int,
    slot: int,
    seller: bytes,
) -> tuple[int, int]:
    """Settle the seller's trades of the slot; returns (settlement escrow
    released, fees for the miner)."""
    sources, metered, ppa = _sources(view, seller, slot, slot_seconds, cp.interval_seconds)
    left = sum(s[2] for s in sources)
    cursor = 0
    released = fees = 0
    sold = delivered_total = paid_total = refunded_total = penalty_total = bundled_total = 0
    seqs = unsettled(view, slot, seller)
    height = ctx.height
    for seq in seqs:
        key = (TRADE_NS, u64(seq))
        t: Trade = view.get(key)
        assert t.status == CONFIRMED and t.seller == seller and t.slot == slot
        energy = t.energy
        delivered = energy if energy <= left else left
        left -= delivered
        # Certificates for the delivered Wh, from the sources in order.
        need = delivered
        bundled = 0
        ref = bundle_ref(seq)
        while need:
            src = sources[cursor]
            take = need if need <= src[2] else src[2]
            src[2] -= take
            need -= take
            if src[2] == 0:
                cursor += 1
            moved, _ = bundle(
                view, ctx, device=src[0], interval=src[1], frm=seller, to=t.buyer,
                wh=take, ref=ref, kind=BUNDLE,
            )  # fmt: skip
            bundled += moved
        mp = mkts[t.product]
        paid = t.value if delivered == energy else t.price * delivered // 1000
        bfee = fee_on(paid, mp.buyer_fee_bps)
        sfee = fee_on(paid, mp.seller_fee_bps)
        held = t.value + t.buyer_fee
        refund = held - paid - bfee
        if paid - sfee:
            credit(view, seller, paid - sfee)
        if refund:
            credit(view, t.buyer, refund)
        penalty = _penalty(view, seller, t.value - paid, mp.shortfall_penalty_bps)
        if penalty:
            debit(view, seller, penalty)
            credit(view, t.buyer, penalty)
        status = COMPLETED if delivered == energy else PARTIAL if delivered else UNDELIVERED
        # t._replace(buyer_fee=bfee, seller_fee=sfee, status=status,
        # delivered_wh=delivered, paid=paid, refunded=refund, penalty=penalty,
        # bundled_wh=bundled, settled_height=height)
        view.put(
            key,
            _trade(
                (*t[:12], bfee, sfee, status, delivered, paid, refund, penalty, bundled, height)
            ),
        )
        p = position(view, t.buyer)
        # received += delivered, not received += the rest, settlement escrow -= held
        put_position(
            view,
            t.buyer,
            _pos((p[0], p[1], p[2] + delivered, p[3] + energy - delivered, p[4], p[5], p[6],
                  p[7] - held)),
        )  # fmt: skip
        released += held
        fees += bfee + sfee
        sold += energy
        delivered_total += delivered
        paid_total += paid
        refunded_total += refund
        penalty_total += penalty
        bundled_total += bundled
    p = position(view, seller)
    put_position(
        view,
        seller,
        p._replace(
            delivered_wh=p.delivered_wh + delivered_total,
            undelivered_wh=p.undelivered_wh + sold - delivered_total,
        ),
    )
    view.put(
        (SLOT_NS, slot_key(slot, seller)),
        SlotSettlement(
            height, now, metered, ppa, sold, delivered_total, paid_total, refunded_total,
            penalty_total, bundled_total, len(seqs),
        ),
    )  # fmt: skip
    return released, fees


def index_device(view: StateAccess, ctx: ExecContext, tx: Transaction, payload: Any) -> list[Event]:
    """After ``device.register``: index a device that can generate under its
    owner, so a settlement finds the seller's devices without a scan."""
    if payload.kind == meter.CONSUMPTION:
        return []
    owner = tx.sender_address
    ids = list(devices_of(view, owner))
    insort(ids, tx.txid)
    view.put((DEVS_NS, owner), Ids(ids))
    return []
