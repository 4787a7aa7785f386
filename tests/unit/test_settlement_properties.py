"""Properties of settlement over random workloads of orders, readings and
certificate moves, mined into blocks across two slots' settlements.

Each example: the cast registers, ALICE gets two solar devices and CAROL a
wind device (block 1-4); then random orders on two spot slots, readings of
random size (or none) for the slots' intervals once they end, certificates
the sellers move away before settlement, at random block times, until both
slots have settled. After every block:

- money plus all escrows is conserved: every balance plus the order escrow
  plus the settlement escrow equals the allocations plus the block rewards,
  and the settlement escrow is the value and buyer fee of every confirmed trade;
- a seller is never paid for more energy than was metered to it in a slot:
  per (seller, slot), the trades' delivered Wh total at most what its active
  generation devices metered, and each trade's payment is
  price x delivered // 1000;
- a buyer never pays for undelivered energy: what left the buyer for a
  settled trade (escrowed value and fee, less the refund) is the payment
  for the delivered part plus the fee on that payment;
- a certificate's energy is never bundled to two buyers: each certificate
  has at most one bundle step, to the buyer of the trade its ref names, a
  trade's bundled Wh are at most its delivered Wh, and every certificate
  still verifies;
- the state equals that of a second ledger that connects the same blocks,
  and, at the end, of a fresh replay.

And a reorg from before the settlement onto a heavier branch (other
readings, other times) leaves balances, escrows, trade statuses and
certificates exactly as a fresh replay of the winning branch.
"""

from __future__ import annotations

from collections import defaultdict
from random import Random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powernode.chain.ledger import Ledger
from powernode.core.block import Block
from powernode.core.crypto import KeyPair
from powernode.engines.certificates import queries as cert_queries
from powernode.engines.contracts import ppa_queries
from powernode.engines.contracts.ppa_records import allocated
from powernode.engines.market import queries
from powernode.engines.metering import queries as meter_queries
from powernode.engines.settlement import queries as stl_queries
from tests.unit.cert_helpers import root_id
from tests.unit.helpers import MONO, active_blocks, ledger_factory, replay, total_supply
from tests.unit.market_helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    FUNDS,
    REWARD,
    T0,
    UNIT,
    genesis_money,
    market_params,
)
from tests.unit.metering_helpers import AUTHORITY, METER, METER_B, METER_C
from tests.unit.ppa_helpers import Ppas
from tests.unit.settle_helpers import Settle, bundle_ref

WINDOW = 600
SLOTS = (T0 + 3600, T0 + 4500)  # gates at T0 + 3300 and T0 + 4200
LAST_SETTLE = SLOTS[1] + 900 + WINDOW + 1
ROLE = {ALICE: "producer", BOB: "consumer", CAROL: "prosumer", DAVE: "consumer"}
MARKETS = {
    "spot": {
        "price_tick": 1,
        "min_price": 1,
        "buyer_fee_bps": 25,
        "seller_fee_bps": 15,
        "shortfall_penalty_bps": 1_500,
    }
}
PARAMS = market_params(
    MARKETS,
    certificates={"authorities": [AUTHORITY.address.hex()], "reading_window": WINDOW},
    allocations={
        ALICE.address.hex(): 5 * UNIT,  # little: the penalty cap bites now and then
        BOB.address.hex(): FUNDS,
        CAROL.address.hex(): FUNDS,
        DAVE.address.hex(): FUNDS,
        AUTHORITY.address.hex(): FUNDS,
    },
)
DEVICES = ((ALICE, METER, "solar"), (ALICE, METER_C, "solar"), (CAROL, METER_B, "wind"))
PRICES = (450_000, 480_000, 500_001, 510_000, 533_333, 550_000)
ENERGIES = (1_000, 5_000, 12_345, 20_000, 50_000)
READINGS = (None, None, 0, 3_000, 10_000, 25_000, 60_000, 200_000)


class World(Ppas, Settle):
    """The settlement driver with PPA steps."""


def open_world(factory: Any, ppa_share: int = 0) -> tuple[World, list[bytes]]:
    """The cast, the devices and, with ``ppa_share``, an active PPA from
    ALICE to DAVE bound to ALICE's first device taking that share (bps) of
    its readings before the trades do."""
    m = World(factory.open(PARAMS))
    for k, role in ROLE.items():
        m.register(k, role)
    m.mine()
    devs = [m.active_device(owner, meter, source=src) for owner, meter, src in DEVICES]
    if ppa_share:
        m.active(ALICE, DAVE, device=devs[0], share_bps=ppa_share, total_wh=1_000 * 1_000)
    return m, devs


def random_plan(seed: int) -> dict[str, Any]:
    """Orders before the gates, then readings, certificate moves and block
    times up to past the last settlement."""
    rng = Random(seed)
    orders = []
    for _ in range(rng.randint(2, 12)):
        side = rng.choice(("buy", "sell"))
        who = rng.choice((ALICE, CAROL) if side == "sell" else (BOB, CAROL, DAVE))
        orders.append(
            (who, side, rng.choice(SLOTS), rng.choice(ENERGIES), rng.choice(PRICES), "any")
        )
    readings = {(d, s): rng.choice(READINGS) for d in range(len(DEVICES)) for s in SLOTS}
    moves = [(rng.randrange(len(DEVICES)), rng.choice(SLOTS), rng.choice((1_000, 7_000, 30_000)))]
    # block times: a few around each slot's end and the end of its window
    points = [
        end + dt
        for end in (SLOTS[0] + 900, SLOTS[1] + 900)
        for dt in (0, 5, 300, 599, 600, 601, 900)
    ]
    steps = sorted(rng.sample(points, rng.randint(3, 8)))
    return {
        "orders": orders,
        "readings": readings,
        "moves": moves[: rng.randint(0, 1)],
        "steps": steps,
        "ppa_share": rng.choice((0, 0, 3_000, 10_000)),
    }


plans = st.integers(min_value=0, max_value=2**64 - 1).map(random_plan)


def blocks_of(m: Settle, devs: list[bytes], plan: dict[str, Any]) -> list[Block]:
    """Mine the plan; return the blocks mined."""
    out: list[Block] = []
    half = len(plan["orders"]) // 2
    for batch in (plan["orders"][:half], plan["orders"][half:]):
        for who, side, slot, energy, price, _src in batch:
            m.place(who, side, slot=slot, energy=energy, price=price,
                    source="any" if side == "buy" else DEVICES_SOURCE[who])  # fmt: skip
        out.append(m.mine())
    sent: set[tuple[int, int]] = set()
    moved = False
    for when in [*plan["steps"], LAST_SETTLE]:
        at = max(when, m.now + 1)
        for (d, slot), wh in sorted(plan["readings"].items(), key=lambda kv: (kv[0][1], kv[0][0])):
            if wh is None or (d, slot) in sent or not slot + 900 <= at <= slot + 900 + WINDOW:
                continue
            # relayed by the authority: a penalty may have emptied the owner
            m.report(AUTHORITY, DEVICES[d][1], devs[d], slot, produced=wh)
            sent.add((d, slot))
        for d, slot, wh in plan["moves"]:
            root = root_id(devs[d], slot)
            c = cert_queries.cert(m.state, root, m.now)
            owner = DEVICES[d][0]
            if not moved and c is not None and c["remaining_wh"] > wh and m.balance(owner) > 100:
                m.transfer_cert(owner, root, DAVE, wh)
                moved = True
        out.append(m.mine(at))
        if m.now >= LAST_SETTLE:
            break
    return out


DEVICES_SOURCE: dict[KeyPair, str] = {ALICE: "solar", CAROL: "wind"}


# --- invariants ---------------------------------------------------------------------------


def check(m: Settle) -> None:
    state = m.state
    ledger = m.ledger
    held = queries.held_total(state) + ppa_queries.stats(state)["escrow"]
    assert total_supply(ledger) + held == genesis_money(PARAMS) + ledger.chain.height * REWARD
    trades = queries.trades(state)
    assert queries.settlement_escrow_total(state) == sum(t["escrow"] for t in trades)
    bps_b, bps_s = MARKETS["spot"]["buyer_fee_bps"], MARKETS["spot"]["seller_fee_bps"]
    delivered: dict[tuple[str, int], int] = defaultdict(int)
    by_ref = {bundle_ref(t["seq"]).hex(): t for t in trades}
    for t in trades:
        escrowed_fee = t["value"] * bps_b // 10_000
        if t["status"] == "confirmed":
            assert t["delivered_wh"] == t["paid"] == t["refunded"] == t["bundled_wh"] == 0
            assert t["escrow"] == t["value"] + escrowed_fee
            continue
        d = t["delivered_wh"]
        assert 0 <= d <= t["energy"]
        want = "completed" if d == t["energy"] else "partial" if d else "undelivered"
        assert t["status"] == want
        assert t["paid"] == t["price"] * d // 1000
        assert t["buyer_fee"] == t["paid"] * bps_b // 10_000
        assert t["seller_fee"] == t["paid"] * bps_s // 10_000
        # the buyer paid for the delivered part and its fee, nothing else
        assert t["value"] + escrowed_fee - t["refunded"] == t["paid"] + t["buyer_fee"]
        assert 0 <= t["bundled_wh"] <= d
        assert t["penalty"] <= (t["value"] - t["paid"]) * 1_500 // 10_000
        delivered[(t["seller"], t["slot"])] += d
    for (seller, slot), d in delivered.items():
        metered = ppa = 0
        for dev in meter_queries.devices(state, owner=bytes.fromhex(seller)):
            if dev["status"] != "active" or dev["kind"] == "consumption":
                continue
            did = bytes.fromhex(dev["id"])
            for r in meter_queries.readings(state, did, slot, slot + 900):
                metered += r["produced_wh"]
                ppa += allocated(state, did, r["interval"])
        # never paid for more than was metered, less what PPAs took first
        assert d <= metered - ppa
        (rec,) = stl_queries.settlements(state, slot=slot, seller=bytes.fromhex(seller))
        assert (rec["delivered_wh"], rec["metered_wh"], rec["ppa_wh"]) == (d, metered, ppa)
    now = max(queries.market_time(state), m.ledger.chain.tip.header.timestamp)
    bundles: dict[str, int] = defaultdict(int)
    for c in cert_queries.certs(state, now=now):
        v = cert_queries.verify(state, bytes.fromhex(c["id"]), now)
        assert v is not None and v["valid"], v
        trace = cert_queries.trace(state, bytes.fromhex(c["id"]))
        assert trace is not None
        own = [s for s in trace["steps"] if s["cert"] == c["id"] and s["kind"] == "bundle"]
        assert len(own) <= 1
        for s in own:
            t = by_ref[s["txid"]]
            assert (s["from"], s["to"]) == (t["seller"], t["buyer"])
            bundles[s["txid"]] += s["wh"]
    for ref, wh in bundles.items():
        assert by_ref[ref]["bundled_wh"] == wh


def same_state(a: Ledger, b: Ledger) -> None:
    assert a.chain.tip.hash == b.chain.tip.hash
    assert a.chain.state.snapshot() == b.chain.state.snapshot()


PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(plan=plans)
def test_settlement_invariants_hold_after_every_block(plan: dict[str, Any]) -> None:
    """The checks after every block ``blocks_of`` mines; a follower connects
    each as it comes, and a fresh ledger replays the chain at the end."""
    with ledger_factory() as f:
        m, devs = open_world(f, plan["ppa_share"])
        follower = replay(f, PARAMS, active_blocks(m.ledger), m.now + 3_600)
        orig_mine = m.mine

        def mine_and_check(at: int | None = None, **kw: Any) -> Block:
            blk = orig_mine(at, **kw)
            check(m)
            outcome, _ = follower.submit_block(blk, now=blk.header.timestamp + 3_600, mono=MONO)
            assert outcome == "connected"
            same_state(m.ledger, follower)
            return blk

        m.mine = mine_and_check  # type: ignore[method-assign]
        blocks_of(m, devs, plan)
        # every trade has settled by the end
        assert all(t["status"] != "confirmed" for t in queries.trades(m.state))
        assert queries.settlement_escrow_total(m.state) == 0
        fresh = replay(f, PARAMS, active_blocks(m.ledger), m.now + 3_600)
        same_state(m.ledger, fresh)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(main=plans, branch=plans)
def test_a_reorg_across_a_settlement_restores_everything(
    main: dict[str, Any], branch: dict[str, Any]
) -> None:
    with ledger_factory() as f:
        a, devs = open_world(f, main["ppa_share"])
        setup = a.ledger.chain.height
        blocks_of(a, devs, main)
        assert any(t["status"] != "confirmed" for t in queries.trades(a.state)) or not (
            queries.trades(a.state)
        )
        chain = active_blocks(a.ledger)
        # fork right after the orders: the readings and settlements differ
        keep = setup + 2
        b = World(replay(f, PARAMS, chain[:keep], a.now + 3_600))
        branch = {**branch, "orders": []}
        blocks_of(b, devs, branch)
        sent = 0
        for _ in range(len(chain) + 5):
            mine_b = active_blocks(b.ledger)
            for blk in mine_b[keep + sent :]:
                a.ledger.submit_block(blk, now=max(a.now, b.now) + 3_600, mono=MONO)
            sent = len(mine_b) - keep
            if a.ledger.chain.tip.hash == b.ledger.chain.tip.hash:
                break
            b.mine()
        assert a.ledger.chain.tip.hash == b.ledger.chain.tip.hash
        winners = active_blocks(b.ledger)
        fresh = replay(f, PARAMS, winners, max(a.now, b.now) + 3_600)
        same_state(a.ledger, fresh)
        check(World(a.ledger))
