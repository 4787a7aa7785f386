"""The README's "The market" section, pinned rule by rule (issue 17).

An independent model of the market is written from the README alone, so
each rule the section states exactly has a test here named after its words
and quoting them: change the engine or the sentence and the two must move
together. Numbers are chosen so that a different reading of a rule (another
rounding, another order of the work) gives a different answer.
"""

from __future__ import annotations

from typing import Any

import pytest

from powernode.core.tx import Transaction
from powernode.engines.market import queries
from tests.unit.helpers import LedgerFactory
from tests.unit.market_helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    FEE,
    FUNDS,
    KWH,
    RES_SLOT,
    SLOT,
    T0,
    Market,
    cancel_tx,
    open_market,
    place_tx,
)

GATE = SLOT - 300  # the gate of SLOT and RES_SLOT (gate_closure_seconds 300)
RES: dict[str, Any] = {"product": "reserve", "slot": RES_SLOT}  # uniform: auction at the gate


def fid(tx: Transaction) -> str:
    return tx.txid.hex()


@pytest.fixture
def m(factory: LedgerFactory) -> Market:
    return open_market(factory)


# --- 1. Time: expiry and gate closure in one block ------------------------------------------


def test_an_expiry_after_the_gate_is_never_reached_the_order_is_live_at_the_gate_and_trades(
    m: Market,
) -> None:
    """README, Time: "An order's expiry is due only if it is at or before its
    book's gate (a later one is never reached: the order is live at the
    gate). At its gate a book runs its auction (`uniform` ...) and expires
    what is left" ... "So when one block's clock passes both a `uniform`
    book's gate and an order's expiry, the order takes part in the auction,
    and may trade, if its expiry is after the gate"."""
    buy = m.place(BOB, "buy", energy=50 * KWH, price=600_000, expiry=GATE + 60, **RES)
    ask = m.place(ALICE, "sell", energy=30 * KWH, price=500_000, **RES)
    m.mine()
    m.ok(buy, ask)
    assert m.market_time() < GATE
    m.mine(GATE + 120)  # one block whose clock passes the gate and then the expiry
    # 30 kWh clear at the midpoint of the tied prices 0.50 and 0.60
    assert m.fills() == [(fid(buy), fid(ask), 30 * KWH, 550_000)]
    o = m.order(buy)
    assert (o["status"], o["filled"], o["escrow"]) == ("expired", 30 * KWH, 0)
    assert m.status(ask) == "filled"
    assert m.balance(BOB) == FUNDS - 2 * FEE - 550_000 * 30
    assert m.escrow_total() == 0


@pytest.mark.parametrize("before_gate", [60, 0], ids=["expiry_before_gate", "expiry_at_gate"])
def test_due_work_runs_in_time_order_at_each_time_expiries_before_gates(
    m: Market, before_gate: int
) -> None:
    """README, Time: "At the start of each block, before its txs, the work
    that has come due by the clock runs in time order, at each time expiries
    before gates" ... "So when one block's clock passes both a `uniform`
    book's gate and an order's expiry, the order takes part in the auction
    ... and not if it is at or before it"."""
    late = m.place(BOB, "buy", energy=50 * KWH, price=600_000, expiry=GATE - before_gate, **RES)
    other = m.place(DAVE, "buy", energy=50 * KWH, price=520_000, **RES)
    ask = m.place(ALICE, "sell", energy=50 * KWH, price=500_000, **RES)
    m.mine()
    m.ok(late, other, ask)
    m.mine(GATE + 120)  # one block whose clock passes the expiry and the gate
    # the best bid expired first: the ask meets DAVE at (0.52 + 0.50) / 2
    assert m.fills() == [(fid(other), fid(ask), 50 * KWH, 510_000)]
    o = m.order(late)
    assert (o["status"], o["filled"], o["escrow"]) == ("expired", 0, 0)
    assert m.balance(BOB) == FUNDS - 2 * FEE
    assert m.escrow_total() == 0


@pytest.mark.parametrize("first", ["reserve", "spot"])
def test_books_whose_gates_are_at_the_same_time_go_in_the_order_of_their_first_orders(
    factory: LedgerFactory, first: str
) -> None:
    """README, Time: "At its gate a book runs its auction (`uniform`; books
    whose gates are at the same time go in the order of their first
    orders)": trade numbers follow it, not the products' order."""
    m = open_market(factory, {"spot": {"price_rule": "uniform"}})  # both auction at GATE
    second = "spot" if first == "reserve" else "reserve"
    for product, (buyer, seller) in ((first, (BOB, ALICE)), (second, (DAVE, CAROL))):
        m.place(buyer, "buy", product=product, slot=SLOT, energy=10 * KWH, price=600_000)
        m.place(seller, "sell", product=product, slot=SLOT, energy=10 * KWH, price=500_000)
    m.mine()
    m.mine(GATE)
    assert [(t["seq"], t["product"]) for t in m.trades()] == [(0, first), (1, second)]


# --- 2. Order status: an IOC remainder is cancelled, killed only a FOK -----------------------


def test_an_ioc_remainder_is_cancelled_killed_is_only_a_fok_that_could_not_fill_in_full(
    m: Market,
) -> None:
    """README, Order status: "`cancelled` (by `order.cancel`, or an `IOC`
    that did not fill in full: its remainder is cancelled)" ... "`killed`:
    only a `FOK` that could not fill in full when placed"; RPC
    `market.orders`: "an `IOC` remainder is `cancelled`, `killed` is only a
    `FOK` that could not fill in full"."""
    a1 = m.place(ALICE, "sell", energy=30 * KWH, price=500_000)
    m.mine()
    ioc_part = m.place(BOB, "buy", energy=50 * KWH, price=600_000, tif="IOC")
    a2 = m.place(CAROL, "sell", energy=40 * KWH, price=500_000)
    ioc_full = m.place(DAVE, "buy", energy=10 * KWH, price=500_000, tif="IOC")
    ioc_none = m.place(BOB, "buy", energy=10 * KWH, price=400_000, tif="IOC")
    fok_short = m.place(DAVE, "buy", energy=31 * KWH, price=600_000, tif="FOK")
    fok_full = m.place(BOB, "buy", energy=30 * KWH, price=600_000, tif="FOK")
    m.mine()
    m.ok(ioc_part, a2, ioc_full, ioc_none, fok_short, fok_full)
    assert m.fills() == [
        (fid(ioc_part), fid(a1), 30 * KWH, 550_000),
        (fid(ioc_full), fid(a2), 10 * KWH, 500_000),
        (fid(fok_full), fid(a2), 30 * KWH, 550_000),
    ]

    def seen(tx: Transaction) -> tuple[str, int, int]:
        o = m.order(tx)
        return o["status"], o["filled"], o["remaining"]

    assert seen(ioc_part) == ("cancelled", 30 * KWH, 20 * KWH)  # the remainder
    assert seen(ioc_none) == ("cancelled", 0, 10 * KWH)  # all of it is the remainder
    assert seen(ioc_full) == ("filled", 10 * KWH, 0)
    assert seen(fok_short) == ("killed", 0, 31 * KWH)  # 30 kWh to meet, not 31
    assert seen(fok_full) == ("filled", 30 * KWH, 0)
    killed = queries.orders(m.state, BOB.address, "killed") + queries.orders(
        m.state, DAVE.address, "killed"
    )
    assert [o["id"] for o in killed] == [fid(fok_short)]
    assert [o["id"] for o in queries.orders(m.state, BOB.address, "cancelled")] == [
        fid(ioc_part),
        fid(ioc_none),
    ]
    assert m.depth() == ([], [])
    assert m.escrow_total() == 0


# --- 3. Money: the escrow of a buy ------------------------------------------------------------


def test_escrow_is_price_times_energy_over_1000_rounded_down_plus_buyer_fee_rounded_down(
    factory: LedgerFactory,
) -> None:
    """README, Money: "a buy escrows, when placed, its cost at its limit
    price rounded down plus the buyer fee on that cost, rounded down:
    escrow = c + c x buyer_fee_bps // 10000, where c = price x energy // 1000
    (a sell escrows nothing ...)" and "what a closed order did not use comes
    back"."""
    m = open_market(factory, {"spot": {"price_tick": 1, "min_price": 1, "buyer_fee_bps": 999}})
    buy = m.place(BOB, "buy", energy=1_333, price=10_078)
    m.mine()
    m.ok(buy)
    # c = 10,078 x 1,333 / 1000 = 13,433.974 -> 13,433
    # fee = 13,433 x 999 / 10000 = 1,341.96 -> 1,341 (on the exact cost: 1,342)
    # escrow 14,774 (rounded once: 14,776; fee on the exact cost: 14,775)
    assert m.events(buy, "order_placed")[0]["escrow"] == 14_774
    assert m.order(buy)["escrow"] == 14_774
    assert m.escrow_total() == 14_774
    assert m.balance(BOB) == FUNDS - 2 * FEE - 14_774

    sell = m.place(ALICE, "sell", energy=1_333, price=10_000)
    m.mine()
    assert m.events(sell, "order_placed")[0]["escrow"] == 0
    # the fill at the midpoint 10,039: value 13,381 (13,381.987), fee 1,336 (1,336.76)
    (t,) = m.trades()
    assert (t["price"], t["value"], t["buyer_fee"]) == (10_039, 13_381, 1_336)
    assert m.events(sell, "order_filled") == [
        {"event": "order_filled", "order": buy.txid.hex(), "refund": 14_774 - 13_381 - 1_336}
    ]
    assert m.balance(BOB) == FUNDS - 2 * FEE - 13_381 - 1_336
    # the seller is paid when the slot settles; until then the settlement
    # escrow holds value and buyer fee
    assert m.balance(ALICE) == FUNDS - 2 * FEE
    assert m.escrow_total() == 0
    assert m.settlement_escrow_total() == 13_381 + 1_336


# --- 4. Capacity per slot ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slot_seconds", "capacity_w", "slot_wh"),
    [(900, 40_003, 10_000), (600, 30_005, 5_000)],  # 10,000.75 and 5,000.83 Wh, rounded down
)
def test_capacity_is_capacity_w_times_slot_seconds_over_3600_exactly_the_left_is_accepted(
    factory: LedgerFactory, slot_seconds: int, capacity_w: int, slot_wh: int
) -> None:
    """README, Capacity: "a participant's orders on one side of a slot may
    total at most capacity_w x slot_seconds // 3600 Wh (rounded down),
    across products ...: an order of exactly the capacity left is accepted,
    one Wh more is refused (`capacity_exceeded`)"."""
    markets = {p: {"slot_seconds": slot_seconds} for p in ("spot", "forward", "reserve")}
    m = open_market(factory, markets, capacity_w=capacity_w)
    spot = m.place(ALICE, "sell", energy=2_001, price=500_000)
    reserve = m.place(ALICE, "sell", energy=1_000, price=500_000, **RES)  # the same slot
    m.mine()
    m.ok(spot, reserve)
    left = slot_wh - 3_001
    over = place_tx(ALICE, "sell", nonce=m.nonce(ALICE), energy=left + 1, price=500_000)
    assert m.refused(over) == "capacity_exceeded"  # by admission
    m.assert_fails_in_block(ALICE, over, "capacity_exceeded")  # and in a block
    exact = m.place(ALICE, "sell", energy=left, price=500_000)
    m.mine()
    m.ok(exact)
    assert m.order(exact)["status"] == "open"
    # the slot is full: even the smallest order is refused now
    assert m.refused(place_tx(ALICE, "sell", nonce=m.nonce(ALICE), energy=1_000)) == (
        "capacity_exceeded"
    )


# --- 5. Dropped cancels; a killed FOK takes nothing -----------------------------------------------


def test_a_cancel_whose_order_was_filled_earlier_in_the_same_block_is_dropped_order_not_open(
    m: Market,
) -> None:
    """README, Admission: "the miner then leaves out, and drops, an order or
    cancel that no longer passes at its place in the block (no fee is
    charged): an order whose gate closed while it waited (`gate_closed`), or
    a cancel whose order was filled earlier in the same block
    (`order_not_open` ...); `tx.get` then says `dropped` with that error"."""
    ask = m.place(ALICE, "sell", energy=10 * KWH, price=500_000)
    m.mine()
    m.ok(ask)
    soon = T0 + 900  # a slot whose gate closes at T0 + 600
    late = place_tx(CAROL, "sell", nonce=m.nonce(CAROL), slot=soon, price=500_000)
    cancel = cancel_tx(ALICE, ask.txid, nonce=m.nonce(ALICE))
    # the best-paying tx goes first in the template: it fills the ask
    buy = place_tx(BOB, "buy", nonce=m.nonce(BOB), energy=10 * KWH, price=500_000, fee=10_000)
    for tx in (late, cancel, buy):
        m.submit(tx)  # each passes admission at the tip
    alice = m.ledger.account(ALICE.address)

    block = m.mine(soon - 300)  # the miner's template, from the mempool

    assert [tx.txid for tx in block.txs] == [buy.txid]
    assert m.fills() == [(fid(buy), fid(ask), 10 * KWH, 500_000)]
    assert m.status(ask) == "filled"
    for tx, code in ((cancel, "order_not_open"), (late, "gate_closed")):
        status = m.ledger.tx_status(tx.txid)
        assert status["status"] == "dropped" and status["error"]["code"] == code
        assert tx.txid not in m.ledger.mempool.by_id
    # the cancel cost ALICE no fee and no nonce (the fill is paid at settlement)
    after = m.ledger.account(ALICE.address)
    assert (after.nonce, after.balance) == (alice.nonce, alice.balance)
    assert m.ledger.next_nonce(ALICE.address) == cancel.nonce
    assert m.refused(cancel) == "order_not_open"


def test_the_mempool_judges_time_by_the_next_blocks_time_not_the_tips_clock(m: Market) -> None:
    """README, Time: "The mempool judges them by the time the next block
    would carry, the later of the market clock, the node's wall clock and
    the earliest timestamp the next block may have: on an idle chain whose
    tip lags the wall clock, an order whose gate has passed by the wall
    clock is refused (`gate_closed`) though the tip's clock has not reached
    it"."""
    soon = T0 + 900  # its gate closes at T0 + 600
    clock = m.market_time()
    assert clock < soon - 300
    early = place_tx(ALICE, "sell", nonce=m.nonce(ALICE), slot=soon, price=500_000)
    assert m.refused(early, now=soon - 300) == "gate_closed"
    assert m.market_time() == clock  # the tip's clock is where it was
    m.submit(early, now=soon - 301)  # a second before the gate: admitted
    assert early.txid in m.ledger.mempool.by_id


def test_a_cancel_behind_a_pending_tx_skips_only_an_order_not_at_the_tip_yet(m: Market) -> None:
    """README, Admission: "except the ones on the sender's own records while
    an earlier tx of the sender is still pending: registration, capacity,
    and a cancel's order that is not at the tip yet (a cancel of an order
    the tip holds is still checked for `not_order_owner` and
    `order_not_open`)"."""
    theirs = m.place(BOB, "buy", energy=10 * KWH, price=400_000)
    m.mine()
    m.ok(theirs)
    pending = m.place_signed(ALICE, "sell", energy=10 * KWH, price=500_000)
    m.submit(pending)  # ALICE now has a tx pending
    # an order the tip does not hold yet: perhaps placed by a pending tx
    unknown = cancel_tx(ALICE, bytes(32), nonce=m.nonce(ALICE))
    # the tip holds BOB's order: the owner rule still applies
    foreign = cancel_tx(ALICE, theirs.txid, nonce=m.nonce(ALICE))
    assert m.refused(foreign) == "not_order_owner"
    m.submit(unknown)
    assert unknown.txid in m.ledger.mempool.by_id


def test_a_killed_fok_takes_no_escrow_or_capacity(factory: LedgerFactory) -> None:
    """README, Order status: "`killed`: only a `FOK` that could not fill in
    full when placed (it trades nothing and takes no escrow or capacity)";
    Money: "(a sell escrows nothing, nor does a killed `FOK`)"; Capacity:
    "a killed `FOK` takes nothing"."""
    m = open_market(factory, capacity_w=400_000)  # 100 kWh a slot
    m.place(ALICE, "sell", energy=50 * KWH, price=500_000)
    m.mine()
    fok = m.place(BOB, "buy", energy=100 * KWH, price=600_000, tif="FOK")
    # in the same block, after it: the whole slot's capacity
    gtc = m.place(BOB, "buy", energy=100 * KWH, price=400_000)
    m.mine()
    m.ok(fok, gtc)
    # its order_placed shows the escrow it would have taken; it took none
    (placed,) = m.events(fok, "order_placed")
    assert placed["escrow"] == 60_000_000 == 100 * KWH * 600_000 // 1000
    assert m.events(fok, "order_killed") == [
        {"event": "order_killed", "order": fok.txid.hex(), "refund": 0}
    ]
    o = m.order(fok)
    assert (o["status"], o["filled"], o["escrow"]) == ("killed", 0, 0)
    assert m.trades() == []
    assert m.order(gtc)["status"] == "open"
    assert m.escrow_total() == m.order(gtc)["escrow"] == 40_000_000
    assert m.balance(BOB) == FUNDS - 3 * FEE - 40_000_000
    # the GTC took the whole 100 kWh; the killed FOK took none of it
    assert m.refused(place_tx(BOB, "buy", nonce=m.nonce(BOB), energy=1_000)) == (
        "capacity_exceeded"
    )


# --- Receipt events -----------------------------------------------------------------------------


def test_receipt_events_of_the_market_txs(m: Market) -> None:
    """README, Receipt events: "`registered`, or `reregistered` for a
    participant already registered"; "`order_placed` ..., then per trade it
    made, in order, `trade`"; "`order_cancelled` (by `order.cancel`, or an
    `IOC` remainder)"; "`order_filled` only for a filled buy that gets
    escrow back"."""
    again = m.register(ALICE, "producer")
    m.mine()
    assert [e["event"] for e in m.events(again)] == ["reregistered"]
    # A sell filled at its own price gets no order_filled (no escrow back),
    # nor does a buy filled at its limit.
    sell = m.place(ALICE, "sell", energy=10 * KWH, price=500_000)
    m.mine()
    buy = m.place(BOB, "buy", energy=10 * KWH, price=500_000)
    m.mine()
    assert [e["event"] for e in m.events(buy)] == ["order_placed", "trade"]
    (t,) = m.events(buy, "trade")
    assert (t["buy"], t["sell"], t["energy"], t["price"]) == (
        fid(buy),
        fid(sell),
        10 * KWH,
        500_000,
    )
    ioc = m.place(DAVE, "buy", energy=5 * KWH, price=500_000, tif="IOC")
    rest = m.place(CAROL, "buy", energy=5 * KWH, price=400_000)
    m.mine()
    assert [e["event"] for e in m.events(ioc)] == ["order_placed", "order_cancelled"]
    assert (
        m.events(ioc, "order_cancelled")[0]["refund"] == m.events(ioc, "order_placed")[0]["escrow"]
    )
    gone = m.cancel(CAROL, rest.txid)
    m.mine()
    assert m.events(gone) == [
        {"event": "order_cancelled", "order": fid(rest), "refund": 2_000_000},
    ]
