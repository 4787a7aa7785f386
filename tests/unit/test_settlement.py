"""Trades settle against meter readings (engines/settlement): a trade is
``confirmed`` at the match with its value in the settlement escrow, and once
its slot has ended and the reading window has passed, the block hook pays
the seller for what its devices metered, refunds the buyer the rest, applies
the shortfall penalty and bundles the delivered energy's certificates.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from powernode.chain.certproof import build_proof
from powernode.core.crypto import KeyPair
from powernode.core.errors import ProofBadLineage
from powernode.engines.contracts.ppa_records import ALLOC_NS, AllocWh, alloc_key
from powernode.engines.settlement.settle import _sources
from powernode.state.certproof import verify_proof
from powernode.state.view import StateView
from tests.unit.cert_helpers import child_id, root_id
from tests.unit.helpers import MINER_B, LedgerFactory, total_supply
from tests.unit.market_helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    ERIN,
    ERIN_FUNDS,
    FEE,
    KWH,
    REWARD,
    ROLES,
    SLOT,
    genesis_money,
)
from tests.unit.metering_helpers import AUTHORITY, METER, METER_B, metering_params
from tests.unit.ppa_helpers import Ppas
from tests.unit.settle_helpers import (
    SETTLE_AFTER,
    SLOT_END,
    WINDOW,
    Settle,
    bundle_ref,
    open_settle,
)


@pytest.fixture
def m(factory: LedgerFactory) -> Settle:
    return open_settle(factory)


def solar(m: Settle, owner: KeyPair = ALICE, meter: KeyPair = METER) -> bytes:
    return m.active_device(owner, meter)


def read(
    m: Settle,
    dev: bytes,
    wh: int,
    owner: KeyPair = ALICE,
    meter: KeyPair = METER,
    interval: int = SLOT,
) -> None:
    if m.now < SLOT_END:
        m.mine(SLOT_END)
    tx = m.report(owner, meter, dev, interval, produced=wh)
    m.mine()
    m.ok(tx)


def conserved(m: Settle) -> None:
    chain = m.ledger.chain
    assert total_supply(m.ledger) + m.held() == genesis_money(m.params) + chain.height * REWARD


# --- the three outcomes ---------------------------------------------------------------------


def test_a_trade_delivered_in_full_completes_pays_the_seller_and_bundles(m: Settle) -> None:
    dev = solar(m)
    s, b = m.trade_(ALICE, BOB, 50 * KWH, 550_000)
    m.mine()
    m.ok(s, b)
    t = m.trade(0)
    assert (t["status"], t["escrow"], t["settled_height"]) == ("confirmed", 27_500_000, 0)
    alice0, bob0 = m.balance(ALICE), m.balance(BOB)
    assert m.position(BOB)["settlement_escrow"] == 27_500_000
    assert m.position(BOB)["pending_bought_wh"] == 50 * KWH
    read(m, dev, 100 * KWH)
    # the window has not passed: still confirmed, even with the reading in
    m.mine(SETTLE_AFTER)
    assert m.trade(0)["status"] == "confirmed"
    m.settle()
    height = m.ledger.chain.height
    t = m.trade(0)
    assert (t["status"], t["delivered_wh"], t["paid"], t["refunded"], t["penalty"]) == (
        "completed", 50 * KWH, 27_500_000, 0, 0
    )  # fmt: skip
    assert (t["bundled_wh"], t["settled_height"], t["escrow"]) == (50 * KWH, height, 0)
    assert m.balance(ALICE) - alice0 == 27_500_000 - FEE  # less the fee of its reading
    assert m.balance(BOB) == bob0
    assert m.settlement_escrow_total() == 0
    conserved(m)
    # the certificate: 50 kWh split off the reading's to BOB, by the trade's ref
    root = root_id(dev, SLOT)
    kid = child_id(root, bundle_ref(0))
    c = m.cert(kid)
    assert (c["owner"], c["wh"], c["parent"]) == (BOB.address.hex(), 50 * KWH, root.hex())
    assert m.cert(root)["remaining_wh"] == 50 * KWH
    kinds = [st["kind"] for st in m.trace(kid)["steps"]]
    assert kinds[0] == "reading" and kinds[-2:] == ["split", "bundle"]
    (bundle_step,) = [st for st in m.trace(kid)["steps"] if st["kind"] == "bundle"]
    assert bundle_step["txid"] == bundle_ref(0).hex() and bundle_step["height"] == height
    (rec,) = m.settlements(slot=SLOT)
    assert rec == {
        "slot": SLOT, "seller": ALICE.address.hex(), "height": height, "time": rec["time"],
        "metered_wh": 100 * KWH, "ppa_wh": 0, "sold_wh": 50 * KWH, "delivered_wh": 50 * KWH,
        "paid": 27_500_000, "refunded": 0, "penalty": 0, "bundled_wh": 50 * KWH, "trades": 1,
    }  # fmt: skip
    pa, pb = m.position(ALICE), m.position(BOB)
    assert (pa["sold_wh"], pa["delivered_wh"], pa["undelivered_wh"]) == (50 * KWH, 50 * KWH, 0)
    assert (pb["bought_wh"], pb["received_wh"], pb["not_received_wh"]) == (50 * KWH, 50 * KWH, 0)
    assert pb["settlement_escrow"] == 0 and pb["pending_bought_wh"] == 0
    assert pb["balance"] == m.balance(BOB)


def test_a_short_reading_makes_the_trade_partial(m: Settle) -> None:
    dev = solar(m)
    m.trade_(ALICE, BOB, 50 * KWH, 550_000)
    m.mine()
    alice0, bob0 = m.balance(ALICE), m.balance(BOB)
    read(m, dev, 20 * KWH)
    m.settle()
    t = m.trade(0)
    # paid 0.55 x 20 kWh; the rest of the escrow back to BOB
    assert (t["status"], t["delivered_wh"], t["paid"], t["refunded"]) == (
        "partial", 20 * KWH, 11_000_000, 16_500_000
    )  # fmt: skip
    assert t["bundled_wh"] == 20 * KWH
    assert m.balance(ALICE) - alice0 == 11_000_000 - FEE
    assert m.balance(BOB) - bob0 == 16_500_000
    pa, pb = m.position(ALICE), m.position(BOB)
    assert (pa["delivered_wh"], pa["undelivered_wh"]) == (20 * KWH, 30 * KWH)
    assert (pb["received_wh"], pb["not_received_wh"]) == (20 * KWH, 30 * KWH)
    conserved(m)


def test_no_reading_means_nothing_was_delivered(m: Settle) -> None:
    solar(m)  # a device, but its meter never reports the slot
    m.trade_(ALICE, BOB, 50 * KWH, 550_000)
    m.mine()
    alice0, bob0 = m.balance(ALICE), m.balance(BOB)
    m.settle()
    t = m.trade(0)
    assert (t["status"], t["delivered_wh"], t["paid"], t["refunded"], t["bundled_wh"]) == (
        "undelivered", 0, 0, 27_500_000, 0
    )  # fmt: skip
    assert m.balance(ALICE) == alice0 and m.balance(BOB) - bob0 == 27_500_000
    conserved(m)


def test_a_reading_at_the_last_second_of_the_window_counts(m: Settle) -> None:
    dev = solar(m)
    m.trade_(ALICE, BOB, 50 * KWH, 550_000)
    m.mine()
    tx = m.report(ALICE, METER, dev, SLOT, produced=50 * KWH)
    m.mine(SLOT_END + WINDOW)  # now = end + window: the reading is taken ...
    m.ok(tx)
    assert m.trade(0)["status"] == "confirmed"  # ... and the slot is not settled yet
    late = m.report(ALICE, METER_B, dev, SLOT, produced=1)
    m.settle()  # the next block settles it; no reading can come after
    assert m.failed(late) in ("wrong_meter_key", "reading_too_late")
    assert m.trade(0)["status"] == "completed"


# --- allocation order -----------------------------------------------------------------------


def test_trades_take_the_metered_energy_in_trade_sequence(m: Settle) -> None:
    dev = solar(m)
    m.trade_(ALICE, BOB, 30 * KWH)
    m.mine()
    m.trade_(ALICE, DAVE, 30 * KWH)
    m.mine()
    m.trade_(ALICE, CAROL, 30 * KWH)
    m.mine()
    read(m, dev, 40 * KWH)
    m.settle()
    got = [(m.trade(i)["status"], m.trade(i)["delivered_wh"]) for i in range(3)]
    assert got == [("completed", 30 * KWH), ("partial", 10 * KWH), ("undelivered", 0)]
    assert [m.trade(i)["bundled_wh"] for i in range(3)] == [30 * KWH, 10 * KWH, 0]
    conserved(m)


def test_every_active_generation_device_of_the_seller_counts(m: Settle) -> None:
    a = solar(m)
    b = m.active_device(ALICE, METER_B, source="wind", carbon_intensity=150)
    m.trade_(ALICE, BOB, 100 * KWH)
    m.mine()
    read(m, a, 30 * KWH)
    read(m, b, 50 * KWH, meter=METER_B)
    m.settle()
    t = m.trade(0)
    assert (t["status"], t["delivered_wh"], t["bundled_wh"]) == ("partial", 80 * KWH, 80 * KWH)
    first, second = sorted([a, b])
    # both roots moved whole to BOB (each gave all it had)
    assert m.cert(root_id(first, SLOT))["owner"] == BOB.address.hex()
    assert m.cert(root_id(second, SLOT))["owner"] == BOB.address.hex()


def test_a_retired_device_does_not_count(m: Settle) -> None:
    dev = solar(m)
    m.trade_(ALICE, BOB, 50 * KWH)
    m.mine()
    read(m, dev, 50 * KWH)
    ret = m.retire_device(ALICE, dev)
    m.mine()
    m.ok(ret)
    m.settle()
    assert m.trade(0)["status"] == "undelivered"


def test_ppa_allocations_come_first(m: Settle) -> None:
    """What PPAs took of a reading (contracts.ppa_records.allocated) is not
    there for trades: the sources the settlement allocates from."""
    dev = solar(m)
    read(m, dev, 100 * KWH)
    view = StateView(m.state)
    view.put((ALLOC_NS, alloc_key(dev, SLOT)), AllocWh(70 * KWH))
    sources, metered, ppa = _sources(view, ALICE.address, SLOT, 900, 900)
    assert (sources, metered, ppa) == ([[dev, SLOT, 30 * KWH]], 100 * KWH, 70 * KWH)
    view.put((ALLOC_NS, alloc_key(dev, SLOT)), AllocWh(100 * KWH))
    assert _sources(view, ALICE.address, SLOT, 900, 900) == ([], 100 * KWH, 100 * KWH)


# --- certificates -----------------------------------------------------------------------------


def test_only_the_certificates_the_seller_still_holds_are_bundled(m: Settle) -> None:
    dev = solar(m)
    m.trade_(ALICE, BOB, 50 * KWH)
    m.mine()
    read(m, dev, 100 * KWH)
    root = root_id(dev, SLOT)
    moved = m.transfer_cert(ALICE, root, CAROL, 80 * KWH)
    m.mine()
    m.ok(moved)
    m.settle()
    t = m.trade(0)
    # delivered in full (the meter says so), but only 20 kWh of certificate left
    assert (t["status"], t["delivered_wh"], t["bundled_wh"]) == ("completed", 50 * KWH, 20 * KWH)
    assert m.cert(root)["owner"] == BOB.address.hex()
    (rec,) = m.settlements()
    assert rec["bundled_wh"] == 20 * KWH


# --- fees and the penalty ---------------------------------------------------------------------


def test_fees_are_charged_on_the_delivered_part_to_the_settling_blocks_miner(
    factory: LedgerFactory,
) -> None:
    m = open_settle(factory, {"spot": {"buyer_fee_bps": 100, "seller_fee_bps": 50}})
    dev = solar(m)
    m.trade_(ALICE, BOB, 50 * KWH, 500_000)
    m.mine()
    t = m.trade(0)
    assert (t["value"], t["buyer_fee"], t["seller_fee"]) == (25_000_000, 250_000, 125_000)
    assert m.position(BOB)["settlement_escrow"] == 25_250_000
    read(m, dev, 10 * KWH)
    alice0, bob0, miner0 = m.balance(ALICE), m.balance(BOB), m.balance(MINER_B)
    m.mine(SETTLE_AFTER + 1, miner=MINER_B)
    t = m.trade(0)
    # paid 5,000,000 for 10 kWh; fees 1% and 0.5% of that
    assert (t["paid"], t["buyer_fee"], t["seller_fee"]) == (5_000_000, 50_000, 25_000)
    assert t["refunded"] == 25_250_000 - 5_000_000 - 50_000
    assert m.balance(ALICE) - alice0 == 5_000_000 - 25_000
    assert m.balance(BOB) - bob0 == t["refunded"]
    assert m.balance(MINER_B) - miner0 == REWARD + 75_000
    conserved(m)


def test_the_shortfall_penalty_moves_from_seller_to_buyer(factory: LedgerFactory) -> None:
    m = open_settle(factory, {"spot": {"shortfall_penalty_bps": 2_000}})
    dev = solar(m)
    m.trade_(ALICE, BOB, 50 * KWH, 500_000)
    m.mine()
    read(m, dev, 10 * KWH)
    alice0, bob0 = m.balance(ALICE), m.balance(BOB)
    m.settle()
    t = m.trade(0)
    # 40 kWh short, worth 20,000,000: 20% of it
    assert (t["paid"], t["refunded"], t["penalty"]) == (5_000_000, 20_000_000, 4_000_000)
    assert m.balance(ALICE) - alice0 == 5_000_000 - 4_000_000
    assert m.balance(BOB) - bob0 == 20_000_000 + 4_000_000
    conserved(m)


def test_the_penalty_is_capped_at_what_the_seller_has(factory: LedgerFactory) -> None:
    roles = {ALICE: "producer", BOB: "consumer", ERIN: "producer"}
    m = open_settle(factory, {"spot": {"shortfall_penalty_bps": 10_000}}, roles=roles)
    s, b = m.trade_(ERIN, BOB, 50 * KWH, 500_000)
    m.mine()
    m.ok(s, b)
    erin = m.balance(ERIN)
    assert erin == ERIN_FUNDS - 2 * FEE
    bob0 = m.balance(BOB)
    m.settle()
    t = m.trade(0)
    assert (t["status"], t["penalty"]) == ("undelivered", erin)
    assert m.balance(ERIN) == 0
    assert m.balance(BOB) - bob0 == 25_000_000 + erin
    conserved(m)


# --- the market around it ---------------------------------------------------------------------


def test_slots_settle_in_order_and_each_once(m: Settle) -> None:
    dev = solar(m)
    m.trade_(ALICE, BOB, 10 * KWH)
    m.trade_(ALICE, BOB, 10 * KWH, slot=SLOT + 900)
    m.mine()
    read(m, dev, 10 * KWH)
    m.settle()
    assert [m.trade(i)["status"] for i in range(2)] == ["completed", "confirmed"]
    h = m.trade(0)["settled_height"]
    m.mine(SETTLE_AFTER + 900 + 1)
    assert [m.trade(i)["status"] for i in range(2)] == ["completed", "undelivered"]
    assert m.trade(0)["settled_height"] == h
    assert [r["slot"] for r in m.settlements()] == [SLOT, SLOT + 900]
    assert m.settlement_escrow_total() == 0


# --- certificate proofs ---------------------------------------------------------------------


def test_a_proof_refuses_a_lineage_with_a_settlement_step(m: Settle) -> None:
    """README, Certificate proofs: a bundle step is made by a block hook, not
    a tx, so no proof can carry it: cert.proof refuses the lineage, and a
    file that leaves the step out does not verify either."""
    dev = solar(m)
    m.trade_(ALICE, BOB, 50 * KWH)
    m.mine()
    read(m, dev, 100 * KWH)
    root = root_id(dev, SLOT)
    before = build_proof(m.ledger.chain, root)  # the root alone proves fine
    verify_proof(before.encode(), m.params)
    m.settle()
    kid = child_id(root, bundle_ref(0))
    for cid in (kid, root):  # the child it made, and the root it split
        with pytest.raises(ProofBadLineage) as info:
            build_proof(m.ledger.chain, cid)
        assert "lineage includes a settlement step, which a proof cannot replay" in str(
            info.value.message
        )
    # the root's file from before, asked about the child: refused, and why
    with pytest.raises(ProofBadLineage) as info:
        verify_proof(replace(before, cert_id=kid).encode(), m.params)
    assert "settlement step, which a proof cannot replay" in info.value.message


class SettlePpas(Ppas, Settle):
    """The settlement driver with PPA steps."""


def test_a_ppa_bound_to_the_device_takes_its_share_first(factory: LedgerFactory) -> None:
    section = {"authorities": [AUTHORITY.address.hex()], "reading_window": WINDOW}
    m = SettlePpas(factory.open(metering_params(section)))
    for k, role in ROLES.items():
        m.register(k, role)
    m.mine()
    dev = solar(m)
    pid = m.active(ALICE, DAVE, device=dev, share_bps=4_000)
    m.trade_(ALICE, BOB, 80 * KWH)
    m.mine()
    read(m, dev, 100 * KWH)
    assert m.allocated(dev, SLOT) == 40 * KWH  # the PPA's 40%, when the reading came
    assert m.ppa(pid)["delivered_wh"] == 40 * KWH
    m.settle()
    t = m.trade(0)
    assert (t["status"], t["delivered_wh"], t["bundled_wh"]) == ("partial", 60 * KWH, 60 * KWH)
    (rec,) = m.settlements(slot=SLOT)
    assert (rec["metered_wh"], rec["ppa_wh"], rec["delivered_wh"]) == (
        100 * KWH,
        40 * KWH,
        60 * KWH,
    )
    # the certificate: 40 kWh to DAVE by the PPA, the 60 kWh left to BOB
    root = root_id(dev, SLOT)
    assert m.cert(root)["owner"] == BOB.address.hex()
    assert sum(c["remaining_wh"] for c in m.certs(owner=DAVE.address)) == 40 * KWH
