"""Every market validation code, at mempool admission and inside a block.

At admission a rule refuses the tx with its typed code. In a block (consensus,
whatever a miner chose to include) the same rule gives a FAILED receipt: the
fee is charged, the nonce used and nothing else changes, which is checked as
state-root equality with the same block holding a no-op tx instead. Rules on
the sender's own registration, capacity and orders are judged at admission
only when no earlier tx of the sender is pending; payloads the engine cannot
decode (``bad_payload``, ``unknown_market``) are envelope failures: refused at
admission and making any block that holds them invalid.
"""

from __future__ import annotations

from typing import Any

import pytest

from powernode.core.crypto import KeyPair
from powernode.core.errors import PowernodeError
from powernode.core.tx import Transaction
from tests.unit.helpers import LedgerFactory, transfer
from tests.unit.market_helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    DAY,
    DAY_START,
    ERIN,
    ERIN_FUNDS,
    FEE,
    FWD_SLOT,
    HOUR,
    KWH,
    RES_SLOT,
    SLOT,
    T0,
    Market,
    cancel_tx,
    market_tx,
    open_market,
    place_payload,
    place_tx,
    register_tx,
)


@pytest.fixture
def m(factory: LedgerFactory) -> Market:
    return open_market(factory)


def check(m: Market, tx: Transaction, now: int) -> str | None:
    """The code admission at ``now`` refuses ``tx`` with, or None (not added)."""
    try:
        m.ledger.check_tx(tx, now=now)
    except PowernodeError as exc:
        return exc.code
    return None


# --- rules on the order alone: judged at admission always --------------------------

ORDER_RULES: list[tuple[str, dict[str, Any], str]] = [
    ("below_min", {"energy": 999}, "order_below_min"),
    ("zero_energy", {"energy": 0}, "order_below_min"),
    ("above_max", {"energy": 10_000 * KWH + 1}, "order_above_max"),
    ("off_tick", {"price": 505_000}, "price_off_tick"),
    ("off_tick_small", {"price": 1}, "price_off_tick"),
    ("zero_price", {"price": 0}, "price_out_of_range"),
    ("above_max_price", {"price": 10_010_000}, "price_out_of_range"),
    ("slot_off_grid", {"slot": SLOT + 60}, "slot_not_aligned"),
    ("slot_in_past", {"slot": T0 - 900}, "gate_closed"),
    ("slot_now", {"slot": T0}, "gate_closed"),
    ("spot_too_far", {"slot": T0 + DAY + 900}, "slot_out_of_range"),
    ("forward_too_near", {"product": "forward", "slot": SLOT}, "slot_out_of_range"),
    ("forward_too_far", {"product": "forward", "slot": T0 + 366 * DAY}, "slot_out_of_range"),
    ("reserve_too_far", {"product": "reserve", "slot": T0 + 7 * DAY + 900}, "slot_out_of_range"),
    ("ioc_in_auction", {"product": "reserve", "slot": RES_SLOT, "tif": "IOC"}, "tif_not_supported"),
    ("fok_in_auction", {"product": "reserve", "slot": RES_SLOT, "tif": "FOK"}, "tif_not_supported"),
    ("expiry_off_minute", {"expiry": T0 + 630}, "bad_expiry"),
    ("expiry_past", {"expiry": T0}, "bad_expiry"),
]


@pytest.mark.parametrize(
    ("overrides", "code"), [c[1:] for c in ORDER_RULES], ids=[c[0] for c in ORDER_RULES]
)
def test_order_rule_at_admission(m: Market, overrides: dict[str, Any], code: str) -> None:
    assert m.refused(place_tx(BOB, "buy", nonce=m.nonce(BOB), **overrides)) == code
    # judged even while an earlier tx of the sender is pending
    m.submit(transfer(BOB, CAROL, 1, nonce=m.nonce(BOB)))
    assert m.refused(place_tx(BOB, "buy", nonce=m.nonce(BOB), **overrides)) == code


@pytest.mark.parametrize(
    ("overrides", "code"), [c[1:] for c in ORDER_RULES], ids=[c[0] for c in ORDER_RULES]
)
def test_order_rule_in_block(m: Market, overrides: dict[str, Any], code: str) -> None:
    m.assert_fails_in_block(BOB, place_tx(BOB, "buy", nonce=m.nonce(BOB), **overrides), code)
    assert m.escrow_total() == 0
    assert m.trades() == []


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"tif": "IOC"},
        {"tif": "FOK"},
        {"expiry": T0 + 60},
        {"product": "forward", "slot": FWD_SLOT},
    ],
)
def test_valid_orders_pass_the_same_checks(m: Market, overrides: dict[str, Any]) -> None:
    """The cases above differ from an accepted order in one field only."""
    tx = place_tx(BOB, "buy", nonce=m.nonce(BOB), **overrides)
    assert check(m, tx, m.now) is None
    m.queue(tx)
    m.mine()
    m.ok(tx)


def test_slot_lead_bounds(m: Market) -> None:
    # market time T0 + 5: spot trades up to a day ahead, forward from a day on
    n = m.nonce(CAROL)
    assert check(m, place_tx(CAROL, "sell", nonce=n, slot=T0 + DAY), m.now) is None
    assert check(m, place_tx(CAROL, "sell", nonce=n, slot=T0 + DAY + 900), m.now) == (
        "slot_out_of_range"
    )
    fwd: dict[str, Any] = {"product": "forward"}
    assert check(m, place_tx(CAROL, "sell", nonce=n, slot=T0 + DAY, **fwd), m.now) == (
        "slot_out_of_range"
    )
    assert check(m, place_tx(CAROL, "sell", nonce=n, slot=T0 + DAY + 900, **fwd), m.now) is None
    assert check(m, place_tx(CAROL, "sell", nonce=n, slot=FWD_SLOT, **fwd), m.now) is None


def test_gate_closure_boundary(m: Market) -> None:
    """The gate of a slot closes at slot - 300 s: open one second before."""
    slot = T0 + 900  # gate T0 + 600
    n = m.nonce(ALICE)
    assert check(m, place_tx(ALICE, "sell", nonce=n, slot=slot), T0 + 599) is None
    assert check(m, place_tx(ALICE, "sell", nonce=n, slot=slot), T0 + 600) == "gate_closed"
    before = m.place(ALICE, "sell", slot=slot)
    m.mine(T0 + 599)
    m.ok(before)
    late = place_tx(ALICE, "sell", nonce=m.nonce(ALICE), slot=slot, energy=2 * KWH)
    m.now = T0 + 595  # the next block is at T0 + 600
    m.assert_fails_in_block(ALICE, late, "gate_closed")
    assert m.status(before) == "expired"


def test_expiry_must_be_a_whole_minute_after_market_time(m: Market) -> None:
    m.mine(T0 + 60)  # market time T0 + 60
    n = m.nonce(BOB)
    assert check(m, place_tx(BOB, "buy", nonce=n, expiry=T0 + 60), m.now) == "bad_expiry"
    assert check(m, place_tx(BOB, "buy", nonce=n, expiry=T0 + 119), m.now) == "bad_expiry"
    assert check(m, place_tx(BOB, "buy", nonce=n, expiry=T0 + 120), m.now) is None


def test_order_admitted_then_gate_closes_fails_in_block(m: Market) -> None:
    """Market-time rules are judged again in the block: an order admitted
    before its gate and mined after it fails there, fee charged."""
    slot = T0 + 900
    tx = place_tx(ALICE, "sell", nonce=m.nonce(ALICE), slot=slot)
    m.submit(tx)
    assert tx.txid in m.ledger.mempool.by_id
    m.now = T0 + 650 - 5
    m.assert_fails_in_block(ALICE, tx, "gate_closed")


def test_order_admitted_then_expiry_passes_fails_in_block(m: Market) -> None:
    tx = place_tx(BOB, "buy", nonce=m.nonce(BOB), expiry=T0 + 60)
    m.submit(tx)
    m.now = T0 + 60 - 5
    m.assert_fails_in_block(BOB, tx, "bad_expiry")


def test_forward_admitted_then_slot_too_near_fails_in_block(m: Market) -> None:
    slot = T0 + DAY + 900
    tx = place_tx(CAROL, "sell", nonce=m.nonce(CAROL), product="forward", slot=slot)
    m.submit(tx)
    m.now = T0 + 1_000
    m.assert_fails_in_block(CAROL, tx, "slot_out_of_range")


# --- registration and role ------------------------------------------------------------


def test_not_registered(m: Market) -> None:
    assert m.refused(place_tx(ERIN, "sell", nonce=0)) == "not_registered"
    m.assert_fails_in_block(ERIN, place_tx(ERIN, "sell", nonce=0), "not_registered")


def test_not_registered_is_judged_in_the_block_while_a_tx_is_pending(m: Market) -> None:
    first = transfer(ERIN, DAVE, 1, nonce=0)
    order = place_tx(ERIN, "sell", nonce=1)
    m.submit(first)
    m.submit(order)  # admitted: the pending tx might have been a registration
    assert order.txid in m.ledger.mempool.by_id
    m.queue(first)
    m.assert_fails_in_block(ERIN, order, "not_registered")


def test_register_then_order_while_pending(m: Market) -> None:
    reg = register_tx(ERIN, "producer", nonce=0)
    order = place_tx(ERIN, "sell", nonce=1)
    m.submit(reg)
    m.submit(order)
    block = m.mine()
    assert [tx.txid for tx in block.txs] == [reg.txid, order.txid]
    m.ok(reg, order)
    assert m.events(reg)[0]["event"] == "registered"
    assert m.status(order) == "open"


@pytest.mark.parametrize(("who", "side"), [(BOB, "sell"), (DAVE, "sell"), (ALICE, "buy")])
def test_wrong_role(m: Market, who: KeyPair, side: str) -> None:
    assert m.refused(place_tx(who, side, nonce=m.nonce(who))) == "wrong_role"
    m.assert_fails_in_block(who, place_tx(who, side, nonce=m.nonce(who)), "wrong_role")


def test_prosumer_may_buy_and_sell(m: Market) -> None:
    buy = m.place(CAROL, "buy", price=400_000)
    sell = m.place(CAROL, "sell", price=600_000)
    m.mine()
    m.ok(buy, sell)


def test_wrong_role_after_a_pending_reregistration(m: Market) -> None:
    rereg = register_tx(ALICE, "consumer", nonce=m.nonce(ALICE))
    m.submit(rereg)
    sell = place_tx(ALICE, "sell", nonce=m.nonce(ALICE))
    m.submit(sell)  # admitted: judged against the registration it will meet
    m.ledger.mempool.clear()
    m.queue(rereg)
    m.assert_fails_in_block(ALICE, sell, "wrong_role")
    assert m.events(rereg)[0]["event"] == "reregistered"


# --- capacity --------------------------------------------------------------------------


def test_capacity_exceeded(factory: LedgerFactory) -> None:
    # 400 kW for a 15-minute slot: 100 kWh
    m = open_market(factory, capacity_w=400_000)
    first = m.place(ALICE, "sell", energy=60 * KWH)
    m.mine()
    m.ok(first)
    assert m.refused(place_tx(ALICE, "sell", nonce=m.nonce(ALICE), energy=40 * KWH + 1)) == (
        "capacity_exceeded"
    )
    m.assert_fails_in_block(
        ALICE,
        place_tx(ALICE, "sell", nonce=m.nonce(ALICE), energy=40 * KWH + 1),
        "capacity_exceeded",
    )
    exact = place_tx(ALICE, "sell", nonce=m.nonce(ALICE), energy=40 * KWH)
    m.submit(exact)
    m.mine()
    m.ok(exact)


def test_capacity_with_pending_orders_is_judged_in_the_block(factory: LedgerFactory) -> None:
    m = open_market(factory, capacity_w=400_000)
    a = place_tx(ALICE, "sell", nonce=m.nonce(ALICE), energy=60 * KWH)
    m.submit(a)
    b = place_tx(ALICE, "sell", nonce=m.nonce(ALICE), energy=60 * KWH)
    m.submit(b)  # admitted: the pending order's capacity is not counted yet
    assert {a.txid, b.txid} <= set(m.ledger.mempool.by_id)
    m.ledger.mempool.clear()
    m.queue(a)
    m.assert_fails_in_block(ALICE, b, "capacity_exceeded")
    m.ok(a)


# --- funds -------------------------------------------------------------------------------


def test_insufficient_funds_for_escrow(m: Market) -> None:
    m.register(ERIN, "consumer")
    m.mine()
    balance = ERIN_FUNDS - FEE
    assert m.balance(ERIN) == balance
    # 100,099 Wh at 0.01/kWh escrows 1,000,990: with the fee, 10 more than ERIN has
    too_much = place_tx(ERIN, "buy", nonce=1, energy=100_099, price=10_000)
    assert m.refused(too_much) == "insufficient_funds"
    m.assert_fails_in_block(ERIN, too_much, "insufficient_funds")
    assert m.escrow_total() == 0
    left = m.balance(ERIN)
    assert left == balance - FEE
    # at 0.01/kWh a Wh escrows 10 micro-units: take exactly what the fee leaves
    energy = (left - FEE) // 10
    assert energy * 10 == left - FEE
    more = place_tx(ERIN, "buy", nonce=2, energy=energy + 1, price=10_000)
    assert m.refused(more) == "insufficient_funds"
    exact = place_tx(ERIN, "buy", nonce=2, energy=energy, price=10_000)
    m.submit(exact)
    m.mine()
    m.ok(exact)
    assert m.balance(ERIN) == 0
    assert m.escrow_total() == left - FEE == m.order(exact)["escrow"]


# --- cancels ------------------------------------------------------------------------------


def test_order_not_found(m: Market) -> None:
    ghost = bytes(32)
    assert m.refused(cancel_tx(BOB, ghost, nonce=m.nonce(BOB))) == "order_not_found"
    m.assert_fails_in_block(BOB, cancel_tx(BOB, ghost, nonce=m.nonce(BOB)), "order_not_found")


def test_cancel_of_a_pending_order_is_admitted(m: Market) -> None:
    order = place_tx(BOB, "buy", nonce=m.nonce(BOB))
    m.submit(order)
    cancel = cancel_tx(BOB, order.txid, nonce=m.nonce(BOB))
    m.submit(cancel)
    # and a cancel of an order that is nowhere is still judged in the block
    ghost = cancel_tx(BOB, bytes(32), nonce=m.nonce(BOB))
    m.submit(ghost)
    m.ledger.mempool.clear()
    m.queue(order)
    m.queue(cancel)
    m.assert_fails_in_block(BOB, ghost, "order_not_found")
    m.ok(order, cancel)
    assert m.status(order) == "cancelled"


def test_not_order_owner(m: Market) -> None:
    order = m.place(ALICE, "sell")
    m.mine()
    assert m.refused(cancel_tx(BOB, order.txid, nonce=m.nonce(BOB))) == "not_order_owner"
    # also while BOB has a pending tx: the order exists, it is not BOB's
    m.submit(transfer(BOB, CAROL, 1, nonce=m.nonce(BOB)))
    assert m.refused(cancel_tx(BOB, order.txid, nonce=m.nonce(BOB))) == "not_order_owner"
    m.ledger.mempool.clear()
    m.assert_fails_in_block(BOB, cancel_tx(BOB, order.txid, nonce=m.nonce(BOB)), "not_order_owner")
    assert m.status(order) == "open"


@pytest.mark.parametrize("final", ["cancelled", "filled", "expired", "killed"])
def test_order_not_open(m: Market, final: str) -> None:
    if final == "cancelled":
        order = m.place(ALICE, "sell")
        m.mine()
        m.cancel(ALICE, order.txid)
        m.mine()
    elif final == "filled":
        order = m.place(ALICE, "sell")
        m.place(BOB, "buy")
        m.mine()
    elif final == "expired":
        order = m.place(ALICE, "sell", expiry=T0 + 60)
        m.mine()
        m.mine(T0 + 60)
    else:
        order = m.place(ALICE, "sell", tif="FOK")
        m.mine()
    assert m.status(order) == final
    assert m.refused(cancel_tx(ALICE, order.txid, nonce=m.nonce(ALICE))) == "order_not_open"
    m.assert_fails_in_block(
        ALICE, cancel_tx(ALICE, order.txid, nonce=m.nonce(ALICE)), "order_not_open"
    )


def test_second_cancel_while_the_first_is_pending(m: Market) -> None:
    order = m.place(ALICE, "sell")
    m.mine()
    first = cancel_tx(ALICE, order.txid, nonce=m.nonce(ALICE))
    m.submit(first)
    second = cancel_tx(ALICE, order.txid, nonce=m.nonce(ALICE))
    m.submit(second)  # the order is open at the tip
    m.ledger.mempool.clear()
    m.queue(first)
    m.assert_fails_in_block(ALICE, second, "order_not_open")
    m.ok(first)


# --- payloads the engine cannot decode: envelope failures ------------------------


@pytest.mark.parametrize("product", ["intraday", "Spot", "", 0])
def test_unknown_market(m: Market, product: Any) -> None:
    tx = place_tx(BOB, "buy", nonce=m.nonce(BOB), product=product)
    assert m.refused(tx) == "unknown_market"
    m.assert_block_refused(tx, "unknown_market")


BAD_PAYLOADS: list[tuple[str, str, list[Any]]] = [
    ("place_short", "order.place", place_payload("buy")[:7]),
    ("place_long", "order.place", [*place_payload("buy"), 0]),
    ("side", "order.place", ["spot", "bid", SLOT, KWH, 500_000, "any", 0, "GTC"]),
    ("sell_any_source", "order.place", ["spot", "sell", SLOT, KWH, 500_000, "any", 0, "GTC"]),
    ("source", "order.place", ["spot", "buy", SLOT, KWH, 500_000, "coal", 0, "GTC"]),
    ("tif", "order.place", ["spot", "buy", SLOT, KWH, 500_000, "any", 0, "GTD"]),
    ("energy_negative", "order.place", ["spot", "buy", SLOT, -1, 500_000, "any", 0, "GTC"]),
    ("energy_str", "order.place", ["spot", "buy", SLOT, "1000", 500_000, "any", 0, "GTC"]),
    ("energy_bool", "order.place", ["spot", "buy", SLOT, True, 500_000, "any", 0, "GTC"]),
    ("price_negative", "order.place", ["spot", "buy", SLOT, KWH, -10_000, "any", 0, "GTC"]),
    ("slot_str", "order.place", ["spot", "buy", str(SLOT), KWH, 500_000, "any", 0, "GTC"]),
    ("slot_bytes", "order.place", ["spot", "buy", b"\x00", KWH, 500_000, "any", 0, "GTC"]),
    ("expiry_negative", "order.place", ["spot", "buy", SLOT, KWH, 500_000, "any", -60, "GTC"]),
    ("register_short", "participant.register", ["producer", "zone-1"]),
    ("role", "participant.register", ["trader", "zone-1", 1_000]),
    ("location_empty", "participant.register", ["producer", "", 1_000]),
    ("location_long", "participant.register", ["producer", "z" * 65, 1_000]),
    ("location_int", "participant.register", ["producer", 7, 1_000]),
    ("capacity_zero", "participant.register", ["producer", "zone-1", 0]),
    ("capacity_huge", "participant.register", ["producer", "zone-1", 10**12 + 1]),
    ("capacity_bool", "participant.register", ["producer", "zone-1", True]),
    ("cancel_short_id", "order.cancel", [bytes(31)]),
    ("cancel_str_id", "order.cancel", ["00" * 32]),
    ("cancel_two", "order.cancel", [bytes(32), bytes(32)]),
    ("cancel_empty", "order.cancel", []),
]


@pytest.mark.parametrize(
    ("tx_type", "payload"), [c[1:] for c in BAD_PAYLOADS], ids=[c[0] for c in BAD_PAYLOADS]
)
def test_bad_payload(m: Market, tx_type: str, payload: list[Any]) -> None:
    tx = market_tx(CAROL, tx_type, payload, nonce=m.nonce(CAROL))
    assert m.refused(tx) == "bad_payload"
    m.assert_block_refused(tx, "bad_payload")


def test_register_edges_accepted(m: Market) -> None:
    a = m.register(ERIN, "prosumer", location="z" * 64, capacity_w=10**12)
    m.mine()
    m.ok(a)
    b = m.register(ERIN, "consumer", location="z", capacity_w=1)
    m.mine()
    m.ok(b)
    assert m.events(b)[0] == {
        "event": "reregistered",
        "participant": ERIN.address.hex(),
        "role": "consumer",
        "location": "z",
        "capacity_w": 1,
    }


# --- trading hours ------------------------------------------------------------------------


def hms(s: str) -> int:
    h, mi, se = (int(x) for x in s.split(":"))
    return h * 3600 + mi * 60 + se


HOURS_CASES: list[tuple[dict[str, Any], str, bool]] = [
    ({}, "07:59:59", False),
    ({}, "08:00:00", True),
    ({}, "12:00:00", True),
    ({}, "21:59:59", True),
    ({}, "22:00:00", False),
    ({}, "00:00:00", False),
    # UTC+1: 08:00-22:00 local is 07:00-21:00 UTC
    ({"utc_offset_seconds": 3600}, "06:59:59", False),
    ({"utc_offset_seconds": 3600}, "07:00:00", True),
    ({"utc_offset_seconds": 3600}, "20:59:59", True),
    ({"utc_offset_seconds": 3600}, "21:00:00", False),
    # UTC-5: 13:00-03:00 UTC, across midnight UTC
    ({"utc_offset_seconds": -5 * 3600}, "12:59:59", False),
    ({"utc_offset_seconds": -5 * 3600}, "13:00:00", True),
    ({"utc_offset_seconds": -5 * 3600}, "23:30:00", True),
    ({"utc_offset_seconds": -5 * 3600}, "02:59:59", True),
    ({"utc_offset_seconds": -5 * 3600}, "03:00:00", False),
    # an overnight session: 22:00-06:00
    ({"open_hour": 22, "close_hour": 6}, "21:59:59", False),
    ({"open_hour": 22, "close_hour": 6}, "22:00:00", True),
    ({"open_hour": 22, "close_hour": 6}, "23:59:59", True),
    ({"open_hour": 22, "close_hour": 6}, "00:00:00", True),
    ({"open_hour": 22, "close_hour": 6}, "05:59:59", True),
    ({"open_hour": 22, "close_hour": 6}, "06:00:00", False),
    ({"open_hour": 22, "close_hour": 6}, "12:00:00", False),
    # overnight at UTC+2: 20:00-04:00 UTC
    ({"open_hour": 22, "close_hour": 6, "utc_offset_seconds": 7200}, "19:59:59", False),
    ({"open_hour": 22, "close_hour": 6, "utc_offset_seconds": 7200}, "20:00:00", True),
    ({"open_hour": 22, "close_hour": 6, "utc_offset_seconds": 7200}, "03:59:59", True),
    ({"open_hour": 22, "close_hour": 6, "utc_offset_seconds": 7200}, "04:00:00", False),
    # always open
    ({"open_hour": 0, "close_hour": 24}, "03:00:00", True),
    ({"open_hour": 0, "close_hour": 24}, "23:59:59", True),
]


@pytest.mark.parametrize(
    ("spot", "utc", "is_open"),
    HOURS_CASES,
    ids=[f"{sorted(c[0].items())}-{c[1]}" for c in HOURS_CASES],
)
def test_trading_hours(
    factory: LedgerFactory, spot: dict[str, Any], utc: str, is_open: bool
) -> None:
    t = DAY_START + DAY + hms(utc)  # 2026-01-02, so every time is after genesis
    m = open_market(factory, {"spot": spot}, timestamp=t - 20)
    slot = (t + HOUR) // 900 * 900 + 900
    tx = place_tx(BOB, "buy", nonce=m.nonce(BOB), slot=slot)
    code = None if is_open else "market_closed"
    assert check(m, tx, t) == code
    result, ts = m.execute([tx], t)
    assert ts == t
    r = result.receipts[0]
    assert (r.ok, r.code) == (is_open, code or "")


def test_admitted_in_hours_then_mined_after_close_fails(factory: LedgerFactory) -> None:
    t = DAY_START + hms("21:59:00")
    m = open_market(factory, timestamp=t - 20)
    tx = place_tx(BOB, "buy", nonce=m.nonce(BOB), slot=DAY_START + hms("23:00:00"))
    m.submit(tx, now=t)
    assert tx.txid in m.ledger.mempool.by_id
    m.now = DAY_START + hms("22:00:00") - 5
    m.assert_fails_in_block(BOB, tx, "market_closed")


def test_cancel_is_allowed_outside_trading_hours(factory: LedgerFactory) -> None:
    t = DAY_START + hms("21:50:00")
    m = open_market(factory, timestamp=t - 20)
    order = m.place(BOB, "buy", slot=DAY_START + hms("23:00:00"))
    m.mine(t)
    m.ok(order)
    m.cancel(BOB, order.txid)
    m.mine(DAY_START + hms("22:30:00"))
    assert m.status(order) == "cancelled"
