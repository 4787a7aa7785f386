"""Power purchase agreements: the seed's example end to end, device-bound
deliveries from readings (paid in the same tx, certificates moved to the
buyer, ``allocated`` recorded), manual deliveries with confirmation and
auto-acceptance, every state and transition judged by block time (lapse,
reject, completion, expiry, default, mutual and one-sided termination), and
every typed error of the ppa.* tx types twice: refused at admission, and as
a failed receipt when a block holds it anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from powernode.core.crypto import KeyPair
from powernode.core.tx import Transaction
from powernode.engines.contracts.ppa_flow import CONFIRM_WINDOW, GRACE_SECONDS
from tests.unit.cert_helpers import root_id
from tests.unit.helpers import LedgerFactory
from tests.unit.market_helpers import ALICE, BOB, CAROL, DAVE, DAY, FEE, KWH, T0, UNIT
from tests.unit.metering_helpers import INTERVAL, INTERVAL_END, METER, METER_B, meter_key
from tests.unit.ppa_helpers import (
    DEADLINE,
    PRICE,
    TOTAL,
    Ppas,
    delivery_id,
    open_ppas,
    ppa_tx,
    propose_payload,
)

READING_WINDOW = 172_800  # the default certificates.reading_window


@pytest.fixture
def m(factory: LedgerFactory) -> Ppas:
    return open_ppas(factory)


# --- the seed's example ---------------------------------------------------------


def test_the_seed_example_delivers_100_kwh_from_readings_and_pays_50(m: Ppas) -> None:
    dev = m.active_device(ALICE, METER)
    pid = m.active(ALICE, BOB, device=dev)
    p = m.ppa(pid)
    assert p["status"] == "active"
    assert p["escrow"] == 500 * UNIT  # one 30-day period: the whole contract
    m.mine(INTERVAL_END)
    alice, bob = m.balance(ALICE), m.balance(BOB)
    tx = m.report(ALICE, METER, dev, T0, produced=100 * KWH)
    m.mine()
    m.ok(tx)
    [ev] = m.events(tx, "ppa.delivered")
    assert (ev["wh"], ev["paid"], ev["cert_wh"]) == (100 * KWH, 50 * UNIT, 100 * KWH)
    p = m.ppa(pid)
    assert (p["total_wh"], p["delivered_wh"], p["progress_bps"]) == (TOTAL, 100 * KWH, 1_000)
    assert (p["paid"], p["escrow"], p["price"]) == (50 * UNIT, 450 * UNIT, PRICE)
    assert p["status"] == "active"
    assert p["days_remaining"] == 30  # the term started at T0; a block or two later
    assert m.balance(ALICE) == alice + 50 * UNIT - FEE
    assert m.balance(BOB) == bob  # paid from escrow, not the balance
    [d] = p["deliveries"]
    assert d["kind"] == "metered" and d["status"] == "accepted"
    assert d["id"] == delivery_id(pid, 0).hex()
    # the certificate of the reading moved whole to the buyer, by a "ppa" step
    root = root_id(dev, T0)
    assert d["cert"] == root.hex()
    c = m.cert(root)
    assert c["owner"] == BOB.address.hex() and c["remaining_wh"] == 100 * KWH
    steps = m.trace(root)["steps"]
    assert steps[-1]["kind"] == "ppa" and steps[-1]["txid"] == delivery_id(pid, 0).hex()
    assert m.allocated(dev, T0) == 100 * KWH
    assert m.ppa_escrow_total() == 450 * UNIT


def test_a_share_splits_the_certificate_and_leaves_the_rest_to_the_seller(m: Ppas) -> None:
    dev = m.active_device(ALICE, METER)
    pid = m.active(ALICE, BOB, device=dev, share_bps=2_500)
    m.mine(INTERVAL_END)
    tx = m.report(ALICE, METER, dev, T0, produced=100 * KWH)
    m.mine()
    [ev] = m.events(tx, "ppa.delivered")
    assert ev["wh"] == 25 * KWH and ev["paid"] == 25 * KWH * PRICE // 1000
    assert m.allocated(dev, T0) == 25 * KWH
    root = root_id(dev, T0)
    assert m.cert(root)["owner"] == ALICE.address.hex()
    assert m.cert(root)["remaining_wh"] == 75 * KWH
    kid = m.ppa(pid)["deliveries"][0]["cert"]
    assert m.cert(bytes.fromhex(kid))["owner"] == BOB.address.hex()


def test_two_ppas_on_one_device_take_in_id_order_and_never_more_than_produced(m: Ppas) -> None:
    dev = m.active_device(ALICE, METER)
    a = m.active(ALICE, BOB, device=dev, share_bps=7_000)
    b = m.active(ALICE, DAVE, device=dev, share_bps=7_000)
    m.mine(INTERVAL_END)
    m.report(ALICE, METER, dev, T0, produced=10 * KWH)
    m.mine()
    first, second = sorted([a, b])
    assert m.ppa(first)["delivered_wh"] == 7 * KWH
    assert m.ppa(second)["delivered_wh"] == 3 * KWH  # what the reading had left
    assert m.allocated(dev, T0) == 10 * KWH


def test_a_reading_outside_the_term_or_before_acceptance_delivers_nothing(m: Ppas) -> None:
    dev = m.active_device(ALICE, METER)
    pid = m.proposed(ALICE, BOB, device=dev, start=T0 + INTERVAL)
    m.mine(INTERVAL_END)
    m.report(ALICE, METER, dev, T0, produced=10 * KWH)  # before acceptance
    m.accept(BOB, pid)
    m.mine()
    assert m.ppa(pid)["delivered_wh"] == 0 and m.allocated(dev, T0) == 0
    m.mine(T0 + 2 * INTERVAL)
    tx = m.report(ALICE, METER, dev, T0 + INTERVAL, produced=10 * KWH)
    m.mine()
    assert m.events(tx, "ppa.delivered")[0]["wh"] == 10 * KWH


def test_the_total_caps_deliveries_and_completion_refunds_the_escrow(m: Ppas) -> None:
    dev = m.active_device(ALICE, METER)
    pid = m.active(ALICE, BOB, device=dev, total_wh=150 * KWH)
    escrow = m.ppa(pid)["escrow"]
    assert escrow == 150 * PRICE
    m.mine(T0 + 2 * INTERVAL)
    bob = m.balance(BOB)
    m.report(ALICE, METER, dev, T0, produced=100 * KWH)
    m.report(ALICE, METER, dev, T0 + INTERVAL, produced=100 * KWH)
    m.mine()
    p = m.ppa(pid)
    assert p["status"] == "completed" and p["delivered_wh"] == 150 * KWH
    assert p["paid"] == 75 * UNIT and p["escrow"] == 0 and p["days_remaining"] == 0
    assert m.allocated(dev, T0 + INTERVAL) == 50 * KWH
    assert m.balance(BOB) == bob  # the whole escrow went to the seller
    assert m.ppa_escrow_total() == 0


# --- manual deliveries ------------------------------------------------------------


def test_a_manual_delivery_is_paid_when_confirmed(m: Ppas) -> None:
    pid = m.active(ALICE, BOB)
    m.mine(INTERVAL_END)
    d = m.deliver(ALICE, pid, 100 * KWH)
    m.mine()
    m.ok(d)
    p = m.ppa(pid)
    assert (p["pending_wh"], p["delivered_wh"], p["paid"]) == (100 * KWH, 0, 0)
    alice = m.balance(ALICE)
    c = m.confirm(BOB, pid, 0)
    m.mine()
    m.ok(c)
    p = m.ppa(pid)
    assert (p["pending_wh"], p["delivered_wh"], p["paid"]) == (0, 100 * KWH, 50 * UNIT)
    assert p["progress_bps"] == 1_000
    assert p["deliveries"][0]["status"] == "confirmed"
    assert m.balance(ALICE) == alice + 50 * UNIT
    # README, ppa.confirm: event ppa.confirmed (ppa, seq, paid, owed, status).
    (e,) = m.events(c)
    assert (e["event"], e["seq"], e["paid"], e["owed"], e["status"]) == (
        "ppa.confirmed",
        0,
        50 * UNIT,
        0,
        "active",
    )


def test_an_unconfirmed_delivery_is_accepted_after_the_window_by_block_time(m: Ppas) -> None:
    pid = m.active(ALICE, BOB)
    m.mine(INTERVAL_END)
    d = m.deliver(ALICE, pid, 10 * KWH)
    b = m.mine()
    by = b.header.timestamp + CONFIRM_WINDOW
    assert m.events(d)[0]["confirm_by"] == by
    m.mine(by - 1)
    assert m.ppa(pid)["deliveries"][0]["status"] == "pending"
    m.mine(by)
    p = m.ppa(pid)
    assert p["deliveries"][0]["status"] == "auto" and p["paid"] == 5 * UNIT


# --- states judged by block time ----------------------------------------------------


def test_a_proposal_lapses_at_its_deadline(m: Ppas) -> None:
    pid = m.proposed(ALICE, BOB)
    m.mine(DEADLINE - 1)
    assert m.ppa_status(pid) == "proposed"
    m.mine(DEADLINE)
    assert m.ppa_status(pid) == "lapsed"
    assert m.ppa(pid)["days_remaining"] == 0


def test_a_rejected_proposal_holds_nothing(m: Ppas) -> None:
    pid = m.proposed(ALICE, BOB)
    bob = m.balance(BOB)
    tx = m.reject(BOB, pid)
    m.mine()
    m.ok(tx)
    assert m.ppa_status(pid) == "rejected"
    assert m.balance(BOB) == bob - FEE
    m.mine(DEADLINE + 5)
    assert m.ppa_status(pid) == "rejected"  # the lapse entry finds it closed


def test_the_term_ends_short_expired_with_the_rest_refunded(m: Ppas) -> None:
    pid = m.active(ALICE, BOB, duration_days=1, period_seconds=DAY)
    m.mine(INTERVAL_END)
    m.deliver(ALICE, pid, 100 * KWH)
    m.mine()
    bob = m.balance(BOB)
    end = T0 + DAY
    m.mine(end + READING_WINDOW)  # a reading may still come in this second
    p = m.ppa(pid)
    assert p["status"] == "active" and p["days_remaining"] == 0
    assert p["deliveries"][0]["status"] == "auto"  # its window ended earlier
    m.mine(end + READING_WINDOW + 1)
    p = m.ppa(pid)
    assert p["status"] == "expired"
    assert p["shortfall_wh"] == TOTAL - 100 * KWH
    assert p["escrow"] == 0 and p["paid"] == 50 * UNIT
    assert m.balance(BOB) == bob + 450 * UNIT
    assert m.ppas(status="expired")[0]["id"] == pid.hex()


def test_a_pending_delivery_is_accepted_when_the_ppa_closes(m: Ppas) -> None:
    pid = m.active(ALICE, BOB, duration_days=1, period_seconds=DAY)
    end = T0 + DAY
    m.mine(end + READING_WINDOW - 10)
    m.deliver(ALICE, pid, TOTAL, interval=end - INTERVAL)
    m.mine()
    m.mine(end + READING_WINDOW + 1)
    p = m.ppa(pid)
    assert p["status"] == "completed" and p["paid"] == 500 * UNIT
    assert p["deliveries"][0]["status"] == "accepted"


def test_a_reading_in_the_last_second_of_its_window_is_delivered(m: Ppas) -> None:
    dev = m.active_device(ALICE, METER)
    pid = m.active(ALICE, BOB, device=dev, duration_days=1, period_seconds=DAY)
    last = T0 + DAY - INTERVAL  # the term's last interval
    tx = m.report(ALICE, METER, dev, last, produced=10 * KWH)
    m.mine(last + INTERVAL + READING_WINDOW)  # the reading's last second
    m.ok(tx)
    [ev] = m.events(tx, "ppa.delivered")
    assert ev["wh"] == 10 * KWH and ev["interval"] == last
    m.mine(m.now + 1)
    p = m.ppa(pid)
    assert p["status"] == "expired" and p["delivered_wh"] == 10 * KWH


def test_an_unaligned_terms_last_interval_is_delivered_after_the_terms_window(
    m: Ppas,
) -> None:
    # A term starting mid-interval ends mid-interval: its last interval ends
    # INTERVAL - 300 s after the term, and its reading may come that much
    # later than the term's end + reading_window.
    dev = m.active_device(ALICE, METER)
    start = T0 + 300
    pid = m.active(ALICE, BOB, device=dev, start=start, duration_days=1, period_seconds=DAY)
    end = start + DAY
    last = end - 300  # aligned; it holds the term's last second
    m.mine(end + READING_WINDOW + 60)
    assert m.ppa_status(pid) == "active"
    tx = m.report(ALICE, METER, dev, last, produced=10 * KWH)
    m.mine(last + INTERVAL + READING_WINDOW)
    m.ok(tx)
    [ev] = m.events(tx, "ppa.delivered")
    assert ev["interval"] == last
    m.mine(last + INTERVAL + READING_WINDOW + 1)
    assert m.ppa_status(pid) == "expired"


def test_short_escrow_defaults_after_the_grace_period(m: Ppas) -> None:
    # A 1-day period of a 10-day PPA escrows a tenth: 50.00
    pid = m.active(ALICE, BOB, duration_days=10, period_seconds=DAY)
    assert m.ppa(pid)["escrow"] == 50 * UNIT
    m.mine(INTERVAL_END)
    m.deliver(ALICE, pid, 300 * KWH)
    m.confirm(BOB, pid, 0)
    b = m.mine()
    p = m.ppa(pid)
    assert (p["paid"], p["owed"], p["escrow"]) == (50 * UNIT, 100 * UNIT, 0)
    assert p["grace_until"] == b.header.timestamp + GRACE_SECONDS
    m.mine(p["grace_until"] - 1)
    assert m.ppa_status(pid) == "active"
    m.mine(p["grace_until"])
    assert m.ppa_status(pid) == "defaulted"
    # the defaulting buyer cannot end it; the seller alone can
    assert m.refused(m.terminate(BOB, pid, sign=True)) == "ppa_wrong_state"
    t = m.terminate(ALICE, pid)
    m.mine()
    m.ok(t)
    p = m.ppa(pid)
    assert p["status"] == "terminated" and p["owed"] == 100 * UNIT


def test_funding_pays_what_is_owed_first_and_clears_the_grace(m: Ppas) -> None:
    pid = m.active(ALICE, BOB, duration_days=10, period_seconds=DAY)
    m.mine(INTERVAL_END)
    m.deliver(ALICE, pid, 300 * KWH)
    m.confirm(BOB, pid, 0)
    m.mine()
    alice = m.balance(ALICE)
    f = m.fund(BOB, pid, 120 * UNIT)
    m.mine()
    m.ok(f)
    p = m.ppa(pid)
    assert (p["paid"], p["owed"], p["escrow"], p["grace_until"]) == (150 * UNIT, 0, 20 * UNIT, 0)
    assert m.balance(ALICE) == alice + 100 * UNIT
    m.mine(m.now + GRACE_SECONDS + 5)
    assert m.ppa_status(pid) == "active"


def test_owing_at_the_end_of_the_term_is_a_default(m: Ppas) -> None:
    pid = m.active(ALICE, BOB, duration_days=1, period_seconds=3_600, total_wh=240 * KWH)
    assert m.ppa(pid)["escrow"] == 5 * UNIT  # 10 kWh x 0.50
    m.mine(INTERVAL_END)
    m.deliver(ALICE, pid, 240 * KWH)
    m.mine()
    m.mine(T0 + DAY + READING_WINDOW + 1)  # past the confirm window and the grace too
    assert m.ppa_status(pid) == "defaulted"


def test_mutual_termination_refunds_the_escrow(m: Ppas) -> None:
    pid = m.active(ALICE, BOB)
    t1 = m.terminate(ALICE, pid)
    m.mine()
    m.ok(t1)
    p = m.ppa(pid)
    assert p["status"] == "active" and p["terminate_requested_by"] == [ALICE.address.hex()]
    bob = m.balance(BOB)
    t2 = m.terminate(BOB, pid)
    m.mine()
    m.ok(t2)
    assert m.ppa_status(pid) == "terminated"
    assert m.balance(BOB) == bob + 500 * UNIT - FEE
    assert m.ppa_escrow_total() == 0


def test_a_terminated_device_ppa_takes_no_more_readings(m: Ppas) -> None:
    dev = m.active_device(ALICE, METER)
    pid = m.active(ALICE, BOB, device=dev)
    m.terminate(ALICE, pid)
    m.terminate(BOB, pid)
    m.mine(INTERVAL_END)
    tx = m.report(ALICE, METER, dev, T0, produced=10 * KWH)
    m.mine()
    assert m.events(tx, "ppa.delivered") == [] and m.allocated(dev, T0) == 0
    assert m.cert(root_id(dev, T0))["owner"] == ALICE.address.hex()


def test_list_by_party_and_status(m: Ppas) -> None:
    a = m.proposed(ALICE, BOB)
    b = m.active(CAROL, DAVE)
    assert [p["id"] for p in m.ppas(party=BOB.address)] == [a.hex()]
    assert [p["id"] for p in m.ppas(party=CAROL.address)] == [b.hex()]
    assert [p["id"] for p in m.ppas(status="active")] == [b.hex()]
    assert len(m.ppas()) == 2
    with pytest.raises(ValueError):
        m.ppas(status="nope")


# --- every typed error, at admission and in a block -----------------------------------


@dataclass(frozen=True)
class Case:
    code: str
    sender: KeyPair
    build: Callable[[Ppas], Transaction]


def _setup(m: Ppas) -> dict[str, bytes]:
    """A PPA of each shape: proposed, active (manual, one pending delivery
    and one confirmed), active device-bound, defaulted-ready, terminating."""
    dev = m.active_device(ALICE, METER)
    cons = m.active_device(CAROL, METER_B, kind="consumption")
    retired = m.active_device(ALICE, meter_key(7), capacity_w=1000)
    m.retire_device(ALICE, retired)
    m.mine()
    ids = {"dev": dev, "cons": cons, "retired": retired}
    ids["proposed"] = m.proposed(ALICE, BOB)
    ids["manual"] = m.active(ALICE, BOB)
    ids["bound"] = m.active(ALICE, BOB, device=dev)
    ids["term"] = m.active(ALICE, BOB)
    m.mine(INTERVAL_END)
    m.deliver(ALICE, ids["manual"], 10 * KWH)
    m.deliver(ALICE, ids["manual"], 10 * KWH)
    m.terminate(ALICE, ids["term"])
    m.mine()
    m.confirm(BOB, ids["manual"], 1)
    m.mine()
    return ids


def _cases(ids: dict[str, bytes]) -> list[Case]:
    missing = b"\x09" * 32
    return [
        Case("unknown_ppa", BOB, lambda m: m.accept(BOB, missing, sign=True)),
        Case("ppa_same_party", ALICE, lambda m: m.propose(ALICE, ALICE, sign=True)),
        Case("unknown_device", ALICE, lambda m: m.propose(ALICE, BOB, device=missing, sign=True)),
        Case(
            "not_device_owner",
            CAROL,
            lambda m: m.propose(CAROL, BOB, device=ids["dev"], sign=True),
        ),
        Case(
            "wrong_device_kind",
            CAROL,
            lambda m: m.propose(CAROL, BOB, device=ids["cons"], sign=True),
        ),
        Case(
            "device_retired",
            ALICE,
            lambda m: m.propose(ALICE, BOB, device=ids["retired"], sign=True),
        ),
        Case(
            "ppa_deadline_passed",
            ALICE,
            lambda m: m.propose(ALICE, BOB, accept_deadline=m.now, sign=True),
        ),
        Case("ppa_not_party", CAROL, lambda m: m.accept(CAROL, ids["proposed"], sign=True)),
        Case("ppa_not_party", BOB, lambda m: m.deliver(BOB, ids["manual"], 1, sign=True)),
        Case("ppa_not_party", CAROL, lambda m: m.terminate(CAROL, ids["manual"], sign=True)),
        Case("ppa_wrong_state", BOB, lambda m: m.accept(BOB, ids["manual"], sign=True)),
        Case("ppa_wrong_state", BOB, lambda m: m.fund(BOB, ids["proposed"], 1, sign=True)),
        Case("ppa_wrong_state", BOB, lambda m: m.terminate(BOB, ids["proposed"], sign=True)),
        Case("ppa_device_bound", ALICE, lambda m: m.deliver(ALICE, ids["bound"], 1, sign=True)),
        Case(
            "ppa_outside_term",
            ALICE,
            lambda m: m.deliver(ALICE, ids["manual"], 1, interval=T0 - INTERVAL, sign=True),
        ),
        Case(
            "ppa_outside_term",
            ALICE,
            lambda m: m.deliver(ALICE, ids["manual"], 1, interval=m.now + 60, sign=True),
        ),
        Case(
            "ppa_above_total",
            ALICE,
            lambda m: m.deliver(ALICE, ids["manual"], TOTAL - 10 * KWH, sign=True),
        ),
        Case("ppa_unknown_delivery", BOB, lambda m: m.confirm(BOB, ids["manual"], 5, sign=True)),
        Case(
            "ppa_delivery_not_pending",
            BOB,
            lambda m: m.confirm(BOB, ids["manual"], 1, sign=True),
        ),
        Case(
            "ppa_already_terminating",
            ALICE,
            lambda m: m.terminate(ALICE, ids["term"], sign=True),
        ),
        Case(
            "insufficient_funds",
            BOB,
            lambda m: m.fund(BOB, ids["manual"], m.balance(BOB), sign=True),
        ),
        Case(
            "insufficient_funds",
            DAVE,
            lambda m: m.accept(DAVE, ids["dave"], sign=True),
        ),
    ]


CODES = sorted(
    {
        "unknown_ppa", "ppa_same_party", "ppa_not_party", "ppa_wrong_state",
        "ppa_deadline_passed", "ppa_device_bound", "ppa_outside_term", "ppa_above_total",
        "ppa_unknown_delivery", "ppa_delivery_not_pending", "ppa_already_terminating",
    }
)  # fmt: skip


def test_the_cases_cover_every_ppa_code() -> None:
    from powernode.core import errors

    tree = {
        c.code for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.PpaError) and c is not errors.PpaError
    }  # fmt: skip
    assert tree == set(CODES)
    assert set(CODES) <= {c.code for c in _cases(_ANY)}


_ANY: dict[str, bytes] = {
    k: b"" for k in ("dev", "cons", "retired", "proposed", "manual", "bound", "term", "dave")
}


@pytest.mark.parametrize("i", range(len(_cases(_ANY))))
def test_every_error_at_admission_and_as_a_failed_receipt(factory: LedgerFactory, i: int) -> None:
    m = open_ppas(factory)
    ids = _setup(m)
    # a proposal to DAVE whose first period costs more than he has
    ids["dave"] = m.proposed(ALICE, DAVE, total_wh=10**9, price=10 * UNIT)
    case = _cases(ids)[i]
    tx = case.build(m)
    assert m.refused(tx) == case.code
    m.assert_fails_in_block(case.sender, tx, case.code)


def test_accept_needs_the_first_period_and_its_fee_at_admission(m: Ppas) -> None:
    """The mempool cannot know a PPA's first period's cost (``max_debit`` is
    0), so admission asks for it and the fee together: a buyer who has the
    cost but not the fee too is refused, not mined as a failed tx."""
    have = m.balance(DAVE)
    # One 30-day period is the whole term, at 1 micro-unit per Wh: cost = total.
    short = m.proposed(ALICE, DAVE, total_wh=have, price=1000)
    assert m.refused(m.accept(DAVE, short, sign=True)) == "insufficient_funds"
    exact = m.proposed(ALICE, DAVE, total_wh=have - FEE, price=1000)
    tx = m.accept(DAVE, exact)
    m.mine()
    m.ok(tx)
    assert m.ppa(exact)["escrow"] == have - FEE and m.balance(DAVE) == 0


@pytest.mark.parametrize(
    "tx_type,payload",
    [
        ("ppa.propose", [b"\x01" * 20]),
        ("ppa.propose", propose_payload(BOB, share_bps=5)),  # a share without a device
        ("ppa.propose", propose_payload(BOB, device=b"\x01" * 32, share_bps=0)),
        ("ppa.propose", propose_payload(BOB, device=b"\x01" * 32, share_bps=10_001)),
        ("ppa.propose", propose_payload(BOB, total_wh=0)),
        ("ppa.propose", propose_payload(BOB, price=0)),
        ("ppa.propose", propose_payload(BOB, duration_days=0)),
        ("ppa.propose", propose_payload(BOB, period_seconds=31 * DAY)),
        ("ppa.propose", propose_payload(BOB, accept_deadline=T0 + 30 * DAY)),
        ("ppa.propose", propose_payload(BOB, device=b"\x01" * 5)),
        ("ppa.accept", [b"\x01" * 31]),
        ("ppa.fund", [b"\x01" * 32, 0]),
        ("ppa.deliver", [b"\x01" * 32, 0, T0]),
        ("ppa.confirm", [b"\x01" * 32, -1]),
        ("ppa.terminate", []),
    ],
)
def test_a_malformed_payload_cannot_be_in_a_block(
    m: Ppas, tx_type: str, payload: list[Any]
) -> None:
    m.assert_block_refused(m.ppa_tx(ALICE, tx_type, payload), "bad_payload")


def test_a_delivery_whose_certificate_the_seller_moved_away_is_paid_without_one(
    m: Ppas,
) -> None:
    dev = m.active_device(ALICE, METER)
    pid = m.active(ALICE, BOB, device=dev)
    m.mine(INTERVAL_END)
    issue = m.issue(dev, T0, 10 * KWH)  # the authority certifies the interval first
    m.mine()
    m.ok(issue)
    t = m.transfer_cert(ALICE, root_id(dev, T0), CAROL, 10 * KWH)
    m.mine()
    m.ok(t)
    tx = m.report(ALICE, METER, dev, T0, produced=10 * KWH)
    m.mine()
    [ev] = m.events(tx, "ppa.delivered")
    assert (ev["wh"], ev["paid"], ev["cert_wh"]) == (10 * KWH, 5 * UNIT, 0)
    d = m.ppa(pid)["deliveries"][0]
    assert d["cert_wh"] == 0 and d["cert"] is None
    assert m.cert(root_id(dev, T0))["owner"] == CAROL.address.hex()


def test_funding_the_last_debt_completes_a_fully_delivered_ppa(m: Ppas) -> None:
    pid = m.active(ALICE, BOB, duration_days=10, period_seconds=DAY, total_wh=200 * KWH)
    assert m.ppa(pid)["escrow"] == 10 * UNIT  # 20 kWh x 0.50
    m.mine(INTERVAL_END)
    m.deliver(ALICE, pid, 200 * KWH)
    m.confirm(BOB, pid, 0)
    m.mine()
    p = m.ppa(pid)
    assert (p["status"], p["delivered_wh"], p["owed"]) == ("active", 200 * KWH, 90 * UNIT)
    bob = m.balance(BOB)
    f = m.fund(BOB, pid, 100 * UNIT)
    m.mine()
    m.ok(f)
    p = m.ppa(pid)
    assert (p["status"], p["paid"], p["owed"], p["escrow"]) == ("completed", 100 * UNIT, 0, 0)
    assert m.balance(BOB) == bob - FEE - 90 * UNIT  # the 10 left over came back


def test_the_miner_leaves_out_a_second_terminate_ask_admitted_while_the_first_was_pending(
    m: Ppas,
) -> None:
    """README, Consensus in brief: the miner leaves out a tx that fails its
    admission checks at its place in the block (dropped, no fee), e.g. the
    second of two ppa.terminate asks by one party."""
    pid = m.active(ALICE, BOB)
    n = m.nonce(ALICE)
    first = ppa_tx(ALICE, "ppa.terminate", [pid], nonce=n)
    second = ppa_tx(ALICE, "ppa.terminate", [pid], nonce=n + 1)
    m.submit(first)
    m.submit(second)  # admission sees the tip, where ALICE has not asked yet
    before = m.balance(ALICE)
    block = m.mine()
    assert [tx.txid for tx in block.txs] == [first.txid]
    status = m.ledger.tx_status(second.txid)
    assert status["status"] == "dropped"
    assert status["error"]["code"] == "ppa_already_terminating"
    assert m.balance(ALICE) == before - first.fee


def test_a_term_ending_past_the_last_u64_time_can_be_accepted(factory: LedgerFactory) -> None:
    """A proposal whose close (end + reading window) would pass 2^64 - 1 is
    valid; its accept schedules the close at 2^64 - 1 instead of failing
    (it raised an OverflowError, so no block could hold the accept)."""
    m = open_ppas(factory)
    pid = m.active(ALICE, BOB, start=2**64 - 1 - 43_200, duration_days=1, period_seconds=DAY)
    got = m.ppa(pid)
    assert got["status"] == "active" and got["escrow"] > 0
