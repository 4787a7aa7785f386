"""Matching, money and time in the market, through its public surfaces.

Price rules (midpoint, maker, uniform call auction), price-time priority,
partial fills, IOC/FOK, cancels and refunds, expiry (by the order's own time
and at gate closure), capacity per slot, fees, source matching, self-trade
prevention and the market clock. Every number below is worked out by hand
from the rules in the module docs, so a change of rule shows here.
"""

from __future__ import annotations

from typing import Any

import pytest

from powernode.core.tx import Transaction
from powernode.engines.market import queries
from tests.unit.helpers import MINER, MINER_B, LedgerFactory
from tests.unit.market_helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    FEE,
    FUNDS,
    FWD_SLOT,
    HOUR,
    KWH,
    RES_SLOT,
    REWARD,
    SLOT,
    SLOT2,
    T0,
    Market,
    cost,
    open_market,
    place_tx,
)

GATE = SLOT - 300  # T0 + 3300, the gate of SLOT and RES_SLOT


def fid(tx: Transaction) -> str:
    return tx.txid.hex()


@pytest.fixture
def m(factory: LedgerFactory) -> Market:
    return open_market(factory)


def spent(m: Market, who: Any, txs: int) -> int:
    """What ``who`` has paid, or is owed as the seller of its confirmed
    trades (a seller is paid when the slot settles against its meter
    readings, not at the match: test_settlement.py), beyond the fees of its
    ``txs`` txs (including its registration): positive = received."""
    return m.balance(who) - (FUNDS - FEE * (txs + 1)) + m.owed(who)


# --- the seed scenario, midpoint ---------------------------------------------------------


def test_seed_scenario(m: Market) -> None:
    sell = m.place(ALICE, "sell", energy=100 * KWH, price=500_000)
    buy = m.place(BOB, "buy", energy=50 * KWH, price=600_000)
    m.mine()
    m.ok(sell, buy)
    assert m.fills() == [(fid(buy), fid(sell), 50 * KWH, 550_000)]
    (t,) = m.trades()
    assert t["value"] == 27_500_000 and t["buyer_fee"] == t["seller_fee"] == 0
    assert (t["buyer"], t["seller"]) == (BOB.address.hex(), ALICE.address.hex())
    assert (t["product"], t["slot"], t["height"]) == ("spot", SLOT, 2)
    assert spent(m, ALICE, 1) == 27_500_000
    assert spent(m, BOB, 1) == -27_500_000
    # the trade is confirmed: its value waits in the settlement escrow
    assert t["status"] == "confirmed" and t["escrow"] == 27_500_000
    assert m.balance(ALICE) == FUNDS - 2 * FEE
    assert m.settlement_escrow_total() == 27_500_000
    assert [e["event"] for e in m.events(buy)] == ["order_placed", "trade", "order_filled"]
    assert m.events(buy, "order_placed")[0]["escrow"] == 30_000_000
    assert m.events(buy, "order_filled")[0]["refund"] == 2_500_000
    s = m.order(sell)
    assert (s["status"], s["filled"], s["remaining"]) == ("open", 50 * KWH, 50 * KWH)
    b = m.order(buy)
    assert (b["status"], b["filled"], b["remaining"], b["escrow"]) == ("filled", 50 * KWH, 0, 0)
    assert m.depth() == ([], [(500_000, 50 * KWH, 1)])
    assert m.escrow_total() == 0
    st = queries.stats(m.state)
    assert (st["trades"], st["volume_wh"], st["value"], st["avg_price"]) == (
        1,
        50 * KWH,
        27_500_000,
        550_000,
    )
    assert (st["min_price"], st["max_price"], st["open_orders"]) == (550_000, 550_000, 1)


def test_resting_buy_meets_incoming_sell_at_the_midpoint(m: Market) -> None:
    buy = m.place(BOB, "buy", energy=10 * KWH, price=600_000)
    m.mine()
    sell = m.place(ALICE, "sell", energy=10 * KWH, price=420_000)
    m.mine()
    assert m.fills() == [(fid(buy), fid(sell), 10 * KWH, 510_000)]
    assert spent(m, BOB, 1) == -5_100_000
    assert spent(m, ALICE, 1) == 5_100_000


ODD_TICK = {"spot": {"price_tick": 1, "min_price": 1}}


@pytest.mark.parametrize("resting", ["sell", "buy"])
def test_midpoint_of_an_odd_sum_rounds_down(factory: LedgerFactory, resting: str) -> None:
    m = open_market(factory, ODD_TICK)
    orders = {
        "sell": lambda: m.place(ALICE, "sell", energy=1_001, price=500_001),
        "buy": lambda: m.place(BOB, "buy", energy=1_001, price=600_000),
    }
    first = orders[resting]()
    m.mine()
    second = orders["buy" if resting == "sell" else "sell"]()
    m.mine()
    m.ok(first, second)
    ((_, _, energy, price),) = m.fills()
    assert (energy, price) == (1_001, 550_000)  # (500,001 + 600,000) // 2
    # the value rounds down too: 550,000 x 1,001 / 1000 = 550,550
    assert m.trades()[0]["value"] == 550_550
    assert spent(m, BOB, 1) == -550_550
    assert spent(m, ALICE, 1) == 550_550


def test_trade_value_rounds_down_and_creates_no_money(factory: LedgerFactory) -> None:
    m = open_market(factory, {"spot": {"price_rule": "maker", "price_tick": 1, "min_price": 1}})
    sell = m.place(ALICE, "sell", energy=1_001, price=333_333)
    buy = m.place(BOB, "buy", energy=1_001, price=333_333)
    m.mine()
    # 333,333 x 1,001 / 1000 = 333,666.333: the 0.333 is charged to no one
    assert m.trades()[0]["value"] == 333_666
    assert m.events(buy, "order_placed")[0]["escrow"] == 333_666
    assert m.status(buy) == "filled" and m.status(sell) == "filled"
    assert spent(m, BOB, 1) == -333_666
    assert spent(m, ALICE, 1) == 333_666


# --- maker ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("product", "slot", "markets"),
    [("forward", FWD_SLOT, {}), ("spot", SLOT, {"spot": {"price_rule": "maker"}})],
)
def test_maker_price_is_the_resting_orders(
    factory: LedgerFactory, product: str, slot: int, markets: dict[str, Any]
) -> None:
    m = open_market(factory, markets)
    o = {"product": product, "slot": slot}
    ask = m.place(ALICE, "sell", energy=20 * KWH, price=500_000, **o)
    m.mine()
    buy = m.place(BOB, "buy", energy=10 * KWH, price=600_000, **o)
    m.mine()
    bid = m.place(DAVE, "buy", energy=10 * KWH, price=450_000, **o)
    m.mine()
    sell = m.place(CAROL, "sell", energy=10 * KWH, price=400_000, **o)
    m.mine()
    assert m.fills(product=product) == [
        (fid(buy), fid(ask), 10 * KWH, 500_000),  # the resting ask's price
        (fid(bid), fid(sell), 10 * KWH, 450_000),  # the resting bid's price
    ]
    assert m.events(buy, "order_filled")[0]["refund"] == 1_000_000
    assert spent(m, BOB, 1) == -5_000_000
    assert spent(m, DAVE, 1) == -4_500_000
    assert spent(m, CAROL, 1) == 4_500_000
    assert m.depth(product, slot) == ([], [(500_000, 10 * KWH, 1)])


# --- uniform-price call auction ---------------------------------------------------------------

RES: dict[str, Any] = {"product": "reserve", "slot": RES_SLOT}


def test_auction_waits_for_the_gate_and_clears_at_one_price(m: Market) -> None:
    b1 = m.place(BOB, "buy", energy=100 * KWH, price=600_000, **RES)
    b2 = m.place(DAVE, "buy", energy=50 * KWH, price=550_000, **RES)
    b3 = m.place(CAROL, "buy", energy=30 * KWH, price=400_000, **RES)
    a1 = m.place(ALICE, "sell", energy=80 * KWH, price=450_000, **RES)
    a2 = m.place(CAROL, "sell", energy=60 * KWH, price=500_000, **RES)
    a3 = m.place(ALICE, "sell", energy=50 * KWH, price=580_000, **RES)
    m.mine()
    m.ok(b1, b2, b3, a1, a2, a3)
    m.mine(GATE - 1)
    # a crossed book, but nothing trades before the call
    assert m.trades() == []
    assert m.depth("reserve", RES_SLOT) == (
        [(600_000, 100 * KWH, 1), (550_000, 50 * KWH, 1), (400_000, 30 * KWH, 1)],
        [(450_000, 80 * KWH, 1), (500_000, 60 * KWH, 1), (580_000, 50 * KWH, 1)],
    )
    assert m.escrow_total() == 60_000_000 + 27_500_000 + 12_000_000
    gate_block = m.mine(GATE)
    # 140 kWh clear at 0.50 and at 0.55 with the same imbalance: the midpoint
    assert m.fills() == [
        (fid(b1), fid(a1), 80 * KWH, 525_000),
        (fid(b1), fid(a2), 20 * KWH, 525_000),
        (fid(b2), fid(a2), 40 * KWH, 525_000),
    ]
    assert {t["height"] for t in m.trades()} == {gate_block.header.height}
    status = {k: m.status(o) for k, o in (("b1", b1), ("b2", b2), ("b3", b3))}
    status |= {k: m.status(o) for k, o in (("a1", a1), ("a2", a2), ("a3", a3))}
    assert status == {
        "b1": "filled",
        "b2": "expired",
        "b3": "expired",
        "a1": "filled",
        "a2": "filled",
        "a3": "expired",
    }
    assert m.order(b2)["filled"] == 40 * KWH
    # pay-as-clear: everyone at 0.525, whatever their limit
    assert spent(m, BOB, 1) == -cost(525_000, 100 * KWH)
    assert spent(m, DAVE, 1) == -cost(525_000, 40 * KWH)
    assert spent(m, CAROL, 2) == cost(525_000, 60 * KWH)
    assert spent(m, ALICE, 2) == cost(525_000, 80 * KWH)
    assert m.escrow_total() == 0
    book = m.book("reserve", RES_SLOT)
    assert book["closed"] and book["bids"] == [] and book["asks"] == []
    late = place_tx(BOB, "buy", nonce=m.nonce(BOB), **RES)
    assert m.refused(late) == "gate_closed"


def test_auction_tie_goes_to_the_smallest_imbalance(m: Market) -> None:
    # 100 kWh execute at every price; the imbalance is 40 at 0.50 and 0.52,
    # 50 at 0.55 and 0.60: the price is the midpoint of 0.50 and 0.52
    b1 = m.place(BOB, "buy", energy=100 * KWH, price=600_000, **RES)
    b2 = m.place(DAVE, "buy", energy=40 * KWH, price=520_000, **RES)
    a1 = m.place(ALICE, "sell", energy=100 * KWH, price=500_000, **RES)
    a2 = m.place(CAROL, "sell", energy=50 * KWH, price=550_000, **RES)
    m.mine()
    m.mine(GATE)
    assert m.fills() == [(fid(b1), fid(a1), 100 * KWH, 510_000)]
    # DAVE bid above the price but no ask at or below it was left
    assert (m.status(b2), m.order(b2)["filled"]) == ("expired", 0)
    assert (m.status(a2), m.order(a2)["filled"]) == ("expired", 0)
    assert spent(m, DAVE, 1) == 0


def test_auction_unique_best_price_pays_every_seller_the_same(m: Market) -> None:
    b = m.place(BOB, "buy", energy=100 * KWH, price=600_000, **RES)
    a1 = m.place(ALICE, "sell", energy=50 * KWH, price=500_000, **RES)
    a2 = m.place(CAROL, "sell", energy=50 * KWH, price=600_000, **RES)
    m.mine()
    m.mine(GATE)
    assert m.fills() == [
        (fid(b), fid(a1), 50 * KWH, 600_000),
        (fid(b), fid(a2), 50 * KWH, 600_000),
    ]
    assert spent(m, ALICE, 1) == 30_000_000  # asked 0.50, paid the clearing 0.60
    assert spent(m, BOB, 1) == -60_000_000


def test_auction_midpoint_rounds_down(factory: LedgerFactory) -> None:
    m = open_market(factory, {"reserve": {"price_tick": 1, "min_price": 1}})
    b = m.place(BOB, "buy", energy=100 * KWH, price=550_000, **RES)
    a = m.place(ALICE, "sell", energy=100 * KWH, price=500_001, **RES)
    m.mine()
    m.mine(GATE)
    assert m.fills() == [(fid(b), fid(a), 100 * KWH, 525_000)]  # 1,050,001 // 2


def test_auction_without_a_cross_trades_nothing(m: Market) -> None:
    b = m.place(BOB, "buy", energy=10 * KWH, price=400_000, **RES)
    a = m.place(ALICE, "sell", energy=10 * KWH, price=450_000, **RES)
    m.mine()
    m.mine(GATE)
    assert m.trades() == []
    assert m.status(b) == m.status(a) == "expired"
    assert spent(m, BOB, 1) == 0 and m.escrow_total() == 0


def test_auction_time_priority_and_self_trade_and_source(m: Market) -> None:
    own = m.place(CAROL, "sell", energy=50 * KWH, price=500_000, source="wind", **RES)
    solar = m.place(ALICE, "sell", energy=50 * KWH, price=500_000, source="solar", **RES)
    m.mine()
    wind = m.place(ALICE, "sell", energy=50 * KWH, price=500_000, source="wind", **RES)
    m.mine()
    first = m.place(DAVE, "buy", energy=20 * KWH, price=600_000, **RES)
    m.mine()
    carol = m.place(CAROL, "buy", energy=30 * KWH, price=600_000, source="wind", **RES)
    m.mine()
    # demand 50, supply 150 everywhere: the price is the midpoint 0.55
    m.mine(GATE)
    assert m.fills() == [
        # DAVE (earlier) first, from the earliest ask
        (fid(first), fid(own), 20 * KWH, 550_000),
        # CAROL skips her own ask and the solar one, and takes the wind
        (fid(carol), fid(wind), 30 * KWH, 550_000),
    ]
    assert m.order(solar)["filled"] == 0


def test_order_expiring_at_the_gate_is_not_in_the_auction(m: Market) -> None:
    """Expiries run before the gate in the same block: an order whose expiry
    is the gate time expires and does not trade in the call."""
    b = m.place(BOB, "buy", energy=50 * KWH, price=600_000, expiry=GATE, **RES)
    a = m.place(ALICE, "sell", energy=50 * KWH, price=500_000, **RES)
    m.mine()
    m.mine(GATE)
    assert m.trades() == []
    assert m.status(b) == m.status(a) == "expired"
    assert spent(m, BOB, 1) == 0


def test_order_expiring_before_the_gate_is_not_in_the_auction(m: Market) -> None:
    b = m.place(BOB, "buy", energy=50 * KWH, price=600_000, expiry=GATE - 60, **RES)
    d = m.place(DAVE, "buy", energy=50 * KWH, price=520_000, **RES)
    a = m.place(ALICE, "sell", energy=50 * KWH, price=500_000, **RES)
    m.mine()
    m.mine(GATE - 60)
    assert m.status(b) == "expired"
    m.mine(GATE)
    assert m.fills() == [(fid(d), fid(a), 50 * KWH, 510_000)]


# --- priority and partial fills -----------------------------------------------------------


def test_partial_fills_across_price_levels(m: Market) -> None:
    a1 = m.place(ALICE, "sell", energy=30 * KWH, price=500_000)
    a2 = m.place(CAROL, "sell", energy=30 * KWH, price=520_000)
    a3 = m.place(ALICE, "sell", energy=30 * KWH, price=550_000)
    a4 = m.place(CAROL, "sell", energy=30 * KWH, price=600_000)
    m.mine()
    buy = m.place(BOB, "buy", energy=80 * KWH, price=550_000)
    m.mine()
    assert m.fills() == [
        (fid(buy), fid(a1), 30 * KWH, 525_000),
        (fid(buy), fid(a2), 30 * KWH, 535_000),
        (fid(buy), fid(a3), 20 * KWH, 550_000),
    ]
    paid = 15_750_000 + 16_050_000 + 11_000_000
    assert m.events(buy, "order_filled")[0]["refund"] == 44_000_000 - paid
    assert spent(m, BOB, 1) == -paid
    assert [m.status(o) for o in (a1, a2, a3, a4)] == ["filled", "filled", "open", "open"]
    assert m.order(a3)["remaining"] == 10 * KWH
    assert m.depth() == ([], [(550_000, 10 * KWH, 1), (600_000, 30 * KWH, 1)])


def test_incoming_sell_sweeps_bids_and_rests_the_rest(m: Market) -> None:
    b1 = m.place(BOB, "buy", energy=20 * KWH, price=600_000)
    b2 = m.place(DAVE, "buy", energy=20 * KWH, price=580_000)
    b3 = m.place(BOB, "buy", energy=20 * KWH, price=500_000)
    m.mine()
    sell = m.place(CAROL, "sell", energy=50 * KWH, price=550_000)
    m.mine()
    assert m.fills() == [
        (fid(b1), fid(sell), 20 * KWH, 575_000),
        (fid(b2), fid(sell), 20 * KWH, 565_000),
    ]
    assert m.status(b3) == "open" and m.order(sell)["remaining"] == 10 * KWH
    assert m.depth() == ([(500_000, 20 * KWH, 1)], [(550_000, 10 * KWH, 1)])


@pytest.mark.parametrize("carol_first", [True, False])
def test_time_priority_within_a_level_is_chain_position(m: Market, carol_first: bool) -> None:
    order = (CAROL, ALICE) if carol_first else (ALICE, CAROL)
    first = m.place(order[0], "sell", energy=20 * KWH, price=500_000)
    second = m.place(order[1], "sell", energy=20 * KWH, price=500_000)
    m.mine()
    buy = m.place(BOB, "buy", energy=30 * KWH, price=500_000)
    m.mine()
    assert m.fills() == [
        (fid(buy), fid(first), 20 * KWH, 500_000),
        (fid(buy), fid(second), 10 * KWH, 500_000),
    ]
    assert m.depth() == ([], [(500_000, 10 * KWH, 1)])


def test_time_priority_across_blocks(m: Market) -> None:
    early = m.place(DAVE, "buy", energy=10 * KWH, price=500_000)
    m.mine()
    late = m.place(BOB, "buy", energy=10 * KWH, price=500_000)
    m.mine()
    sell = m.place(ALICE, "sell", energy=15 * KWH, price=500_000)
    m.mine()
    assert m.fills() == [
        (fid(early), fid(sell), 10 * KWH, 500_000),
        (fid(late), fid(sell), 5 * KWH, 500_000),
    ]


def test_price_priority_beats_time(m: Market) -> None:
    m.place(ALICE, "sell", energy=20 * KWH, price=510_000)
    better = m.place(CAROL, "sell", energy=20 * KWH, price=500_000)
    m.mine()
    buy = m.place(BOB, "buy", energy=20 * KWH, price=600_000)
    m.mine()
    assert m.fills() == [(fid(buy), fid(better), 20 * KWH, 550_000)]


# --- IOC and FOK -----------------------------------------------------------------------------


def test_ioc_remainder_is_cancelled(m: Market) -> None:
    ask = m.place(ALICE, "sell", energy=50 * KWH, price=500_000)
    m.mine()
    ioc = m.place(BOB, "buy", energy=80 * KWH, price=600_000, tif="IOC")
    m.mine()
    assert m.fills() == [(fid(ioc), fid(ask), 50 * KWH, 550_000)]
    o = m.order(ioc)
    assert (o["status"], o["filled"], o["remaining"], o["escrow"]) == (
        "cancelled",
        50 * KWH,
        30 * KWH,
        0,
    )
    assert m.events(ioc, "order_cancelled")[0]["refund"] == 48_000_000 - 27_500_000
    assert spent(m, BOB, 1) == -27_500_000
    assert m.depth() == ([], [])
    assert m.escrow_total() == 0


def test_ioc_with_nothing_to_meet_is_cancelled_whole(m: Market) -> None:
    ioc = m.place(ALICE, "sell", energy=10 * KWH, price=500_000, tif="IOC")
    buy = m.place(BOB, "buy", energy=10 * KWH, price=400_000, tif="IOC")
    m.mine()
    m.ok(ioc, buy)
    assert m.status(ioc) == m.status(buy) == "cancelled"
    assert spent(m, BOB, 1) == 0 and m.trades() == [] and m.depth() == ([], [])


def test_fok_that_cannot_fill_is_killed(m: Market) -> None:
    ask = m.place(ALICE, "sell", energy=50 * KWH, price=500_000)
    far = m.place(CAROL, "sell", energy=40 * KWH, price=650_000)  # above the limit
    m.mine()
    fok = m.place(BOB, "buy", energy=80 * KWH, price=600_000, tif="FOK")
    m.mine()
    m.ok(fok)
    assert m.trades() == []
    o = m.order(fok)
    assert (o["status"], o["filled"], o["escrow"]) == ("killed", 0, 0)
    assert m.events(fok, "order_killed")[0]["refund"] == 0
    assert spent(m, BOB, 1) == 0
    assert m.order(ask)["remaining"] == 50 * KWH and m.order(far)["remaining"] == 40 * KWH
    assert m.depth() == ([], [(500_000, 50 * KWH, 1), (650_000, 40 * KWH, 1)])


def test_fok_counts_only_orders_it_may_meet(m: Market) -> None:
    m.place(CAROL, "sell", energy=50 * KWH, price=500_000, source="hydro")  # her own
    m.place(ALICE, "sell", energy=50 * KWH, price=500_000, source="wind")
    m.place(ALICE, "sell", energy=20 * KWH, price=500_000, source="solar")
    m.mine()
    own = m.place(CAROL, "buy", energy=80 * KWH, price=600_000, tif="FOK")
    m.mine()
    assert m.status(own) == "killed"  # 70 kWh of others' energy is not 80
    solar = m.place(BOB, "buy", energy=30 * KWH, price=600_000, source="solar", tif="FOK")
    m.mine()
    assert m.status(solar) == "killed"  # 20 kWh of solar
    assert m.trades() == []
    assert m.depth() == ([], [(500_000, 120 * KWH, 3)])


@pytest.mark.parametrize("exact", [True, False])
def test_fok_that_can_fill_fills(m: Market, exact: bool) -> None:
    a1 = m.place(ALICE, "sell", energy=50 * KWH, price=500_000)
    a2 = m.place(CAROL, "sell", energy=30 * KWH if exact else 40 * KWH, price=520_000)
    m.mine()
    fok = m.place(BOB, "buy", energy=80 * KWH, price=600_000, tif="FOK")
    m.mine()
    assert m.fills() == [
        (fid(fok), fid(a1), 50 * KWH, 550_000),
        (fid(fok), fid(a2), 30 * KWH, 560_000),
    ]
    assert m.status(fok) == "filled"
    assert m.status(a2) == ("filled" if exact else "open")


def test_fok_sell(m: Market) -> None:
    bid = m.place(BOB, "buy", energy=30 * KWH, price=600_000)
    m.mine()
    killed = m.place(ALICE, "sell", energy=31 * KWH, price=500_000, tif="FOK")
    m.mine()
    assert m.status(killed) == "killed" and m.trades() == []
    filled = m.place(ALICE, "sell", energy=30 * KWH, price=500_000, tif="FOK")
    m.mine()
    assert m.fills() == [(fid(bid), fid(filled), 30 * KWH, 550_000)]


# --- cancel and refunds ----------------------------------------------------------------------------


def test_cancel_of_a_partly_filled_buy_refunds_exactly_the_unfilled_escrow(m: Market) -> None:
    buy = m.place(BOB, "buy", energy=100 * KWH, price=600_000)
    m.mine()
    assert m.order(buy)["escrow"] == 60_000_000 == m.escrow_total()
    m.place(ALICE, "sell", energy=40 * KWH, price=500_000)
    m.mine()
    o = m.order(buy)
    assert (o["status"], o["filled"], o["escrow"]) == ("open", 40 * KWH, 60_000_000 - 22_000_000)
    assert m.escrow_total() == 38_000_000
    cancel = m.cancel(BOB, buy.txid)
    m.mine()
    m.ok(cancel)
    assert m.events(cancel) == [
        {"event": "order_cancelled", "order": buy.txid.hex(), "refund": 38_000_000}
    ]
    o = m.order(buy)
    assert (o["status"], o["filled"], o["remaining"], o["escrow"]) == (
        "cancelled",
        40 * KWH,
        60 * KWH,
        0,
    )
    assert spent(m, BOB, 2) == -22_000_000
    assert m.escrow_total() == 0
    assert m.depth() == ([], [])


def test_cancel_of_a_sell_takes_it_off_the_book(m: Market) -> None:
    keep = m.place(ALICE, "sell", energy=10 * KWH, price=500_000)
    gone = m.place(CAROL, "sell", energy=10 * KWH, price=500_000)
    m.mine()
    m.cancel(CAROL, gone.txid)
    m.mine()
    assert m.depth() == ([], [(500_000, 10 * KWH, 1)])
    buy = m.place(BOB, "buy", energy=20 * KWH, price=500_000)
    m.mine()
    assert m.fills() == [(fid(buy), fid(keep), 10 * KWH, 500_000)]


# --- expiry ----------------------------------------------------------------------------------------


def test_expiry_at_gate_closure(m: Market) -> None:
    buy = m.place(BOB, "buy", energy=10 * KWH, price=500_000)
    part = m.place(DAVE, "buy", energy=10 * KWH, price=600_000)
    sell = m.place(ALICE, "sell", energy=10 * KWH, price=650_000)
    m.mine()
    m.place(CAROL, "sell", energy=4 * KWH, price=600_000)
    m.mine()
    assert m.order(part)["filled"] == 4 * KWH
    m.mine(GATE - 1)
    assert [m.status(o) for o in (buy, part, sell)] == ["open"] * 3
    assert m.escrow_total() == 5_000_000 + 3_600_000
    m.mine(GATE)
    assert [m.status(o) for o in (buy, part, sell)] == ["expired"] * 3
    assert [m.order(o)["escrow"] for o in (buy, part)] == [0, 0]
    assert m.order(part)["filled"] == 4 * KWH
    assert spent(m, BOB, 1) == 0
    assert spent(m, DAVE, 1) == -2_400_000
    assert m.escrow_total() == 0
    book = m.book()
    assert book["closed"] and book["bids"] == book["asks"] == []
    # the next slot's book is untouched
    assert not m.book(slot=SLOT2)["closed"]


def test_expiry_by_the_orders_expiry_time(factory: LedgerFactory) -> None:
    m = open_market(factory, capacity_w=400_000)  # 100 kWh a slot
    buy = m.place(BOB, "buy", energy=10 * KWH, price=500_000, expiry=T0 + 600)
    sell = m.place(ALICE, "sell", energy=100 * KWH, price=550_000, expiry=T0 + 600)
    m.mine()
    m.mine(T0 + 599)
    assert m.status(buy) == m.status(sell) == "open"
    # the capacity is taken while it rests
    assert m.refused(place_tx(ALICE, "sell", nonce=m.nonce(ALICE), energy=KWH)) == (
        "capacity_exceeded"
    )
    # expiry runs at the start of the block: the incoming sell meets nothing
    late = m.place(CAROL, "sell", energy=10 * KWH, price=400_000)
    m.mine(T0 + 600)
    assert m.status(buy) == m.status(sell) == "expired"
    assert m.trades() == [] and m.status(late) == "open"
    assert spent(m, BOB, 1) == 0 and m.escrow_total() == 0
    # and the capacity is back
    again = m.place(ALICE, "sell", energy=100 * KWH, price=550_000)
    m.mine()
    m.ok(again)


def test_expiry_waits_for_market_time_not_block_count(m: Market) -> None:
    buy = m.place(BOB, "buy", energy=10 * KWH, price=500_000, expiry=T0 + 120)
    for _ in range(10):
        m.mine()  # 5 s apart: T0 + 60 at the end
    assert m.status(buy) == "open"
    m.mine(T0 + 300)  # one block well past it
    assert m.status(buy) == "expired"


# --- capacity ---------------------------------------------------------------------------------------


def test_capacity_per_participant_side_and_slot(factory: LedgerFactory) -> None:
    m = open_market(factory, capacity_w=400_000)  # 100 kWh per 15-minute slot
    full = m.place(ALICE, "sell", energy=100 * KWH, price=500_000)
    other_slot = m.place(ALICE, "sell", energy=100 * KWH, price=500_000, slot=SLOT2)
    buys = m.place(CAROL, "buy", energy=100 * KWH, price=400_000)
    sells = m.place(CAROL, "sell", energy=100 * KWH, price=600_000)
    m.mine()
    m.ok(full, other_slot, buys, sells)
    for who, side in ((ALICE, "sell"), (CAROL, "buy"), (CAROL, "sell")):
        tx = place_tx(
            who, side, nonce=m.nonce(who), energy=KWH, price=500_000 if side == "sell" else 400_000
        )
        assert m.refused(tx) == "capacity_exceeded"


def test_capacity_released_by_cancel_but_not_by_fills(factory: LedgerFactory) -> None:
    m = open_market(factory, capacity_w=400_000)
    ask = m.place(ALICE, "sell", energy=100 * KWH, price=500_000)
    m.mine()
    m.place(BOB, "buy", energy=40 * KWH, price=500_000)
    m.mine()
    assert m.order(ask)["filled"] == 40 * KWH
    # the filled 40 kWh stay committed; the open 60 too
    assert (
        m.refused(place_tx(ALICE, "sell", nonce=m.nonce(ALICE), energy=KWH)) == "capacity_exceeded"
    )
    m.cancel(ALICE, ask.txid)
    m.mine()
    # the cancel released the unfilled 60 kWh, exactly
    too_much = place_tx(ALICE, "sell", nonce=m.nonce(ALICE), energy=60 * KWH + 1)
    assert m.refused(too_much) == "capacity_exceeded"
    again = m.place(ALICE, "sell", energy=60 * KWH, price=500_000)
    m.mine()
    m.ok(again)


def test_capacity_released_by_ioc_remainder_and_not_taken_by_fok(factory: LedgerFactory) -> None:
    m = open_market(factory, capacity_w=400_000)
    ioc = m.place(BOB, "buy", energy=100 * KWH, price=500_000, tif="IOC")
    fok = m.place(DAVE, "buy", energy=100 * KWH, price=500_000, tif="FOK")
    m.mine()
    assert (m.status(ioc), m.status(fok)) == ("cancelled", "killed")
    b = m.place(BOB, "buy", energy=100 * KWH, price=500_000)
    d = m.place(DAVE, "buy", energy=100 * KWH, price=500_000)
    m.mine()
    m.ok(b, d)


def test_reregistration_changes_capacity_for_new_orders(factory: LedgerFactory) -> None:
    m = open_market(factory, capacity_w=400_000)
    m.place(ALICE, "sell", energy=100 * KWH, price=500_000)
    m.mine()
    m.register(ALICE, "producer", capacity_w=800_000)  # 200 kWh a slot
    m.mine()
    more = m.place(ALICE, "sell", energy=100 * KWH, price=500_000)
    m.mine()
    m.ok(more)
    assert (
        m.refused(place_tx(ALICE, "sell", nonce=m.nonce(ALICE), energy=KWH)) == "capacity_exceeded"
    )


# --- fees -------------------------------------------------------------------------------------------


def test_fees_go_to_the_blocks_miner_rounded_down(factory: LedgerFactory) -> None:
    m = open_market(
        factory,
        {
            "spot": {
                "price_rule": "maker",
                "price_tick": 1,
                "min_price": 1,
                "buyer_fee_bps": 100,
                "seller_fee_bps": 50,
            }
        },
    )
    sell = m.place(ALICE, "sell", energy=1_235, price=999_999)
    m.mine()
    before_b = m.balance(MINER_B)
    buy = m.place(BOB, "buy", energy=1_235, price=999_999)
    m.mine(miner=MINER_B)
    # value 999,999 x 1,235 / 1000 = 1,234,998.765 -> 1,234,998
    # buyer fee 1% -> 12,349.98 -> 12,349; seller fee 0.5% -> 6,174.99 -> 6,174
    (t,) = m.trades()
    assert (t["value"], t["buyer_fee"], t["seller_fee"]) == (1_234_998, 12_349, 6_174)
    assert m.events(buy, "order_placed")[0]["escrow"] == 1_234_998 + 12_349
    assert spent(m, BOB, 1) == -(1_234_998 + 12_349)
    assert spent(m, ALICE, 1) == 1_234_998 - 6_174
    # the fees are charged when the trade settles (to that block's miner)
    assert m.balance(MINER_B) - before_b == REWARD + FEE
    assert m.settlement_escrow_total() == 1_234_998 + 12_349
    assert m.status(sell) == m.status(buy) == "filled"
    assert m.escrow_total() == 0


def test_buy_escrow_includes_the_fee_and_refunds_the_unused_part(factory: LedgerFactory) -> None:
    m = open_market(factory, {"spot": {"buyer_fee_bps": 100, "seller_fee_bps": 50}})
    m.place(ALICE, "sell", energy=10 * KWH, price=500_000)
    m.mine()
    buy = m.place(BOB, "buy", energy=10 * KWH, price=600_000)
    m.mine()
    # escrow 6,000,000 + 60,000; paid 5,500,000 + 55,000 at the midpoint 0.55
    assert m.events(buy, "order_placed")[0]["escrow"] == 6_060_000
    assert m.events(buy, "order_filled")[0]["refund"] == 6_060_000 - 5_555_000
    assert spent(m, BOB, 1) == -5_555_000
    assert spent(m, ALICE, 1) == 5_500_000 - 27_500


def test_auction_fees_wait_for_the_settlement(factory: LedgerFactory) -> None:
    m = open_market(factory, {"reserve": {"buyer_fee_bps": 20, "seller_fee_bps": 10}})
    m.place(BOB, "buy", energy=10 * KWH, price=600_000, **RES)
    m.place(ALICE, "sell", energy=10 * KWH, price=500_000, **RES)
    m.mine()
    before = m.balance(MINER_B)
    m.mine(GATE, miner=MINER_B)
    # 10 kWh at 0.55 = 5,500,000; fees 11,000 + 5,500
    (t,) = m.trades()
    assert (t["value"], t["buyer_fee"], t["seller_fee"]) == (5_500_000, 11_000, 5_500)
    assert m.balance(MINER_B) - before == REWARD
    assert m.settlement_escrow_total() == 5_500_000 + 11_000
    assert m.balance(MINER) == 2 * REWARD + 4 * FEE + 2 * FEE  # its blocks: regs and orders


# --- sources and self-trades ------------------------------------------------------------------------


def test_named_source_meets_only_that_source(m: Market) -> None:
    solar = m.place(ALICE, "sell", energy=10 * KWH, price=500_000, source="solar")
    wind = m.place(CAROL, "sell", energy=10 * KWH, price=550_000, source="wind")
    m.mine()
    bw = m.place(BOB, "buy", energy=10 * KWH, price=600_000, source="wind")
    m.mine()
    # the cheaper solar is passed over
    assert m.fills() == [(fid(bw), fid(wind), 10 * KWH, 575_000)]
    hydro = m.place(BOB, "buy", energy=10 * KWH, price=600_000, source="hydro")
    m.mine()
    assert m.status(hydro) == "open" and len(m.trades()) == 1
    # an incoming sell of another source passes a named bid by too
    thermal = m.place(ALICE, "sell", energy=10 * KWH, price=500_000, source="thermal")
    m.mine()
    assert m.status(thermal) == "open" and len(m.trades()) == 1
    anyb = m.place(DAVE, "buy", energy=20 * KWH, price=600_000)
    m.mine()
    assert m.fills()[1:] == [
        (fid(anyb), fid(solar), 10 * KWH, 550_000),
        (fid(anyb), fid(thermal), 10 * KWH, 550_000),
    ]


def test_self_trade_is_skipped(m: Market) -> None:
    own = m.place(CAROL, "sell", energy=50 * KWH, price=500_000)
    m.mine()
    crossing = m.place(CAROL, "buy", energy=50 * KWH, price=600_000)
    m.mine()
    m.ok(crossing)
    assert m.trades() == []
    # a crossed book of one owner's orders
    assert m.depth() == ([(600_000, 50 * KWH, 1)], [(500_000, 50 * KWH, 1)])
    other = m.place(ALICE, "sell", energy=50 * KWH, price=500_000)
    m.mine()
    # ALICE's sell meets CAROL's bid
    assert m.fills() == [(fid(crossing), fid(other), 50 * KWH, 550_000)]
    # and a later buy of CAROL skips her own ask, which keeps its place
    again = m.place(CAROL, "buy", energy=10 * KWH, price=600_000)
    m.mine()
    assert m.status(again) == "open" and m.order(own)["remaining"] == 50 * KWH
    bob = m.place(BOB, "buy", energy=10 * KWH, price=500_000)
    m.mine()
    assert m.fills()[-1] == (fid(bob), fid(own), 10 * KWH, 500_000)


def test_self_trade_skip_keeps_the_queue_behind_it(m: Market) -> None:
    own = m.place(CAROL, "sell", energy=30 * KWH, price=500_000)
    other = m.place(ALICE, "sell", energy=30 * KWH, price=500_000)
    m.mine()
    buy = m.place(CAROL, "buy", energy=20 * KWH, price=500_000)
    m.mine()
    assert m.fills() == [(fid(buy), fid(other), 20 * KWH, 500_000)]
    assert m.depth() == ([], [(500_000, 40 * KWH, 2)])
    bob = m.place(BOB, "buy", energy=35 * KWH, price=500_000)
    m.mine()
    assert m.fills()[1:] == [
        (fid(bob), fid(own), 30 * KWH, 500_000),
        (fid(bob), fid(other), 5 * KWH, 500_000),
    ]


# --- the market clock ----------------------------------------------------------------------------


def test_market_time_is_the_latest_block_time(m: Market) -> None:
    m.place(ALICE, "sell")
    b = m.mine(T0 + 100)
    assert m.market_time() == b.header.timestamp
    b = m.mine(T0 + 200)
    assert m.market_time() == b.header.timestamp


@pytest.mark.parametrize("first_order_block_jumps", [False, True])
def test_market_clock_never_goes_back(m: Market, first_order_block_jumps: bool) -> None:
    """Block times may step back (above the median of the last 11); the
    market's clock does not: gates and expiries reached stay reached."""
    if not first_order_block_jumps:
        m.place(ALICE, "sell", slot=SLOT2)
        m.mine()  # T0 + 10
    m.place(ALICE, "sell", slot=SLOT2, energy=2 * KWH)
    high = m.mine(T0 + 600).header.timestamp
    low = m.make_block([], T0)  # the earliest time allowed after it
    assert low.header.timestamp < high
    # an order for the slot whose gate is T0 + 600
    late = place_tx(ALICE, "sell", nonce=m.nonce(ALICE), slot=T0 + 900)
    assert m.refused(late, now=low.header.timestamp) == "gate_closed"
    m.now = low.header.timestamp - 5
    block = m.assert_fails_in_block(ALICE, late, "gate_closed")
    assert block.header.timestamp < high
    assert m.market_time() == high


def test_trading_hours_follow_the_market_clock(factory: LedgerFactory) -> None:
    t = T0 + 10 * HOUR - 20  # 21:59:40
    m = open_market(factory, timestamp=t - 600)
    m.place(BOB, "buy", slot=T0 + 11 * HOUR)
    m.mine()
    m.mine(T0 + 10 * HOUR)  # 22:00:00: closed from now on
    late = place_tx(BOB, "buy", nonce=m.nonce(BOB), slot=T0 + 11 * HOUR)
    m.now = t - 5
    block = m.assert_fails_in_block(BOB, late, "market_closed")
    assert block.header.timestamp < T0 + 10 * HOUR


# --- queries ---------------------------------------------------------------------------------------


def test_trade_and_order_queries_filter(m: Market) -> None:
    s1 = m.place(ALICE, "sell", energy=10 * KWH, price=500_000)
    b1 = m.place(BOB, "buy", energy=10 * KWH, price=500_000)
    m.mine()
    h1 = m.ledger.chain.height
    s2 = m.place(CAROL, "sell", energy=10 * KWH, price=500_000, slot=SLOT2)
    b2 = m.place(DAVE, "buy", energy=10 * KWH, price=500_000, slot=SLOT2)
    s3 = m.place(ALICE, "sell", energy=10 * KWH, price=500_000, product="forward", slot=FWD_SLOT)
    m.mine()
    assert len(m.trades()) == 2
    assert [t["sell_id"] for t in m.trades(slot=SLOT2)] == [fid(s2)]
    assert [t["buy_id"] for t in m.trades(participant=BOB.address)] == [fid(b1)]
    assert [t["buy_id"] for t in m.trades(from_height=h1 + 1)] == [fid(b2)]
    assert [t["buy_id"] for t in m.trades(to_height=h1)] == [fid(b1)]
    assert [t["buy_id"] for t in m.trades(limit=1)] == [fid(b2)]
    assert m.trades(product="forward") == []
    assert [t["seq"] for t in m.trades()] == [0, 1]
    mine = queries.orders(m.state, owner=ALICE.address)
    assert [o["id"] for o in mine] == [fid(s1), fid(s3)]
    assert [o["id"] for o in queries.orders(m.state, status="open")] == [fid(s3)]
    alice = queries.participant(m.state, ALICE.address)
    assert alice is not None and alice["role"] == "producer"
    assert queries.participant(m.state, bytes(20)) is None
    assert queries.order(m.state, bytes(32)) is None
    assert queries.stats(m.state, product="spot", slot=SLOT2)["trades"] == 1
    assert queries.stats(m.state, product="forward")["open_orders"] == 1
    book = queries.book(m.state, "spot", SLOT, params=m.params)
    assert book["gate"] == GATE and not book["closed"]
