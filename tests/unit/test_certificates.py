"""The certificates engine: issuance from readings and by an authority, the
one-issuance-per-(device, interval) rule both ways, transfers that split,
retirements with their claim, expiry, and the read side (trace, verify,
hourly CFE matching). Every typed error of cert.issue, cert.transfer and
cert.retire is shown twice: refused at admission, and as a failed receipt
(fee charged, nothing else changed) when a block holds it anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from powernode.core.crypto import KeyPair
from powernode.core.tx import Transaction
from powernode.engines.certificates import queries
from tests.unit.cert_helpers import (
    PERIOD,
    Certs,
    cert_retire_tx,
    cert_transfer_tx,
    child_id,
    issue_tx,
    open_certs,
    root_id,
)
from tests.unit.helpers import LedgerFactory
from tests.unit.market_helpers import ALICE, BOB, CAROL, DAVE, KWH, T0, market_tx
from tests.unit.metering_helpers import (
    AUTHORITY,
    DEVICE_CAP_WH,
    INTERVAL,
    INTERVAL_END,
    METER,
    METER_B,
    METER_C,
    meter_key,
    report_tx,
)


@dataclass
class World:
    """ALICE's solar device (50 g/kWh: green) with a 100 kWh reading for
    interval T0 and its certificate ``c1``; CAROL's wind device (150 g/kWh:
    renewable); ALICE's thermal device; DAVE's pending device; ``retired``:
    a 10 kWh part of ``c1`` ALICE retired."""

    m: Certs
    solar: bytes
    wind: bytes
    thermal: bytes
    pending: bytes
    c1: bytes
    retired: bytes


def make_world(factory: LedgerFactory, **certificates: Any) -> World:
    m = open_certs(factory, {"authorities": [AUTHORITY.address.hex()], **certificates})
    solar = m.active_device(ALICE, METER)
    wind = m.active_device(CAROL, METER_B, source="wind", carbon_intensity=150)
    thermal = m.active_device(ALICE, METER_C, source="thermal", carbon_intensity=700)
    reg = m.register_device(DAVE, meter_key(3))
    m.mine()
    m.ok(reg)
    m.mine(INTERVAL_END)
    rep = m.report(ALICE, METER, solar, T0, produced=100 * KWH)
    m.mine()
    m.ok(rep)
    c1 = root_id(solar, T0)
    ret = m.retire_cert(ALICE, c1, 10 * KWH)
    m.mine()
    m.ok(ret)
    return World(m, solar, wind, thermal, reg.txid, c1, child_id(c1, ret.txid))


@pytest.fixture
def w(factory: LedgerFactory) -> World:
    return make_world(factory)


# --- every typed error, at admission and in a block -----------------------------------------

# Each case: (sender, a builder of the tx given the world and the sender's
# next nonce, the code). ``T0 - INTERVAL`` is an interval that has ended and
# has no reading.
Case = tuple[KeyPair, Callable[[World, int], Transaction], str]
PAST = T0 - INTERVAL

CASES: dict[str, Case] = {
    # cert.issue
    "issue_not_authority": (
        ALICE, lambda w, n: issue_tx(ALICE, w.solar, PAST, KWH, nonce=n), "not_authority"),
    "issue_unknown_device": (
        AUTHORITY, lambda w, n: issue_tx(AUTHORITY, bytes(32), PAST, KWH, nonce=n),
        "unknown_device"),
    "issue_pending_device": (
        AUTHORITY, lambda w, n: issue_tx(AUTHORITY, w.pending, PAST, KWH, nonce=n),
        "device_not_active"),
    "issue_thermal": (
        AUTHORITY, lambda w, n: issue_tx(AUTHORITY, w.thermal, PAST, KWH, nonce=n),
        "source_not_certified"),
    "issue_not_aligned": (
        AUTHORITY, lambda w, n: issue_tx(AUTHORITY, w.solar, PAST + 60, KWH, nonce=n),
        "interval_not_aligned"),
    "issue_not_ended": (
        AUTHORITY, lambda w, n: issue_tx(AUTHORITY, w.solar, T0 + INTERVAL, KWH, nonce=n),
        "interval_not_ended"),
    "issue_above_capacity": (
        AUTHORITY, lambda w, n: issue_tx(AUTHORITY, w.solar, PAST, DEVICE_CAP_WH + 1, nonce=n),
        "reading_above_capacity"),
    "issue_above_metered": (
        AUTHORITY, lambda w, n: issue_tx(AUTHORITY, w.solar, T0, 100 * KWH + 1, nonce=n),
        "cert_above_metered"),
    "issue_already_certified": (
        AUTHORITY, lambda w, n: issue_tx(AUTHORITY, w.solar, T0, 100 * KWH, nonce=n),
        "already_certified"),
    # cert.transfer
    "transfer_unknown": (
        ALICE, lambda w, n: cert_transfer_tx(ALICE, bytes(32), BOB, KWH, nonce=n), "unknown_cert"),
    "transfer_not_owner": (
        BOB, lambda w, n: cert_transfer_tx(BOB, w.c1, CAROL, KWH, nonce=n), "not_cert_owner"),
    "transfer_retired": (
        ALICE, lambda w, n: cert_transfer_tx(ALICE, w.retired, BOB, KWH, nonce=n),
        "cert_retired"),
    "transfer_too_much": (
        ALICE, lambda w, n: cert_transfer_tx(ALICE, w.c1, BOB, 90 * KWH + 1, nonce=n),
        "cert_amount_too_large"),
    "transfer_to_owner": (
        ALICE, lambda w, n: cert_transfer_tx(ALICE, w.c1, ALICE, KWH, nonce=n), "bad_payload"),
    # cert.retire
    "retire_unknown": (
        ALICE, lambda w, n: cert_retire_tx(ALICE, bytes(32), KWH, nonce=n), "unknown_cert"),
    "retire_not_owner": (
        BOB, lambda w, n: cert_retire_tx(BOB, w.c1, KWH, nonce=n), "not_cert_owner"),
    "retire_retired": (
        ALICE, lambda w, n: cert_retire_tx(ALICE, w.retired, 10 * KWH, nonce=n),
        "cert_retired"),
    "retire_too_much": (
        ALICE, lambda w, n: cert_retire_tx(ALICE, w.c1, 90 * KWH + 1, nonce=n),
        "cert_amount_too_large"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_at_admission_and_failed_in_a_block(w: World, case: str) -> None:
    sender, build, code = CASES[case]
    m = w.m
    tx = build(w, m.nonce(sender))
    assert m.refused(tx) == code
    m.assert_fails_in_block(sender, tx, code)


def test_a_device_retired_before_approval_is_never_certified(w: World) -> None:
    m = w.m
    retire = m.retire_device(DAVE, w.pending)
    m.mine()
    m.ok(retire)
    tx = issue_tx(AUTHORITY, w.pending, PAST, KWH, nonce=m.nonce(AUTHORITY))
    assert m.refused(tx) == "device_not_active"
    m.assert_fails_in_block(AUTHORITY, tx, "device_not_active")


def expired_world(factory: LedgerFactory) -> World:
    """The world with a validity of an hour: ``c1`` (interval T0) expires at
    T0 + 900 + 3600."""
    w = make_world(factory, validity=3600)
    w.m.mine(T0 + INTERVAL + 3600)
    return w


@pytest.mark.parametrize("kind", ["transfer", "retire"])
def test_expired_refused_at_admission_and_failed_in_a_block(
    factory: LedgerFactory, kind: str
) -> None:
    w = expired_world(factory)
    m = w.m
    assert m.cert(w.c1)["status"] == "expired"
    assert m.cert(w.retired)["status"] == "retired"  # retired stays retired
    if kind == "transfer":
        tx = m.signed(cert_transfer_tx, ALICE, w.c1, BOB, KWH)
    else:
        tx = m.signed(cert_retire_tx, ALICE, w.c1, KWH)
    assert m.refused(tx) == "cert_expired"
    m.assert_fails_in_block(ALICE, tx, "cert_expired")
    assert [c["id"] for c in m.certs(status="expired")] == [w.c1.hex()]


def test_expiry_is_the_validity_after_the_interval_ends(factory: LedgerFactory) -> None:
    w = make_world(factory, validity=3600)
    m = w.m
    expires = T0 + INTERVAL + 3600
    assert m.cert(w.c1)["expires"] == expires
    m.mine(expires - 1)
    assert m.cert(w.c1)["status"] == "active"
    ok = m.transfer_cert(ALICE, w.c1, BOB, KWH)  # one second before: still usable
    m.mine(expires - 1)
    m.ok(ok)
    child = child_id(w.c1, ok.txid)
    assert m.cert(child)["expires"] == expires  # a child expires with its origin
    m.mine(expires)
    assert m.cert(w.c1)["status"] == m.cert(child)["status"] == "expired"


MALFORMED = {
    "issue_zero": ("cert.issue", lambda w: [w.solar, PAST, 0]),
    "issue_short_id": ("cert.issue", lambda w: [w.solar[:31], PAST, 1]),
    "issue_two_fields": ("cert.issue", lambda w: [w.solar, PAST]),
    "transfer_zero": ("cert.transfer", lambda w: [w.c1, BOB.address, 0]),
    "transfer_bad_to": ("cert.transfer", lambda w: [w.c1, BOB.address[:19], 1]),
    "transfer_str_wh": ("cert.transfer", lambda w: [w.c1, BOB.address, "1"]),
    "retire_zero": ("cert.retire", lambda w: [w.c1, 0, "x", "", *PERIOD]),
    "retire_no_beneficiary": ("cert.retire", lambda w: [w.c1, 1, "", "", *PERIOD]),
    "retire_long_beneficiary": ("cert.retire", lambda w: [w.c1, 1, "x" * 129, "", *PERIOD]),
    "retire_long_purpose": ("cert.retire", lambda w: [w.c1, 1, "x", "p" * 257, *PERIOD]),
    "retire_empty_period": ("cert.retire", lambda w: [w.c1, 1, "x", "", PERIOD[0], PERIOD[0]]),
    "retire_backwards_period": ("cert.retire", lambda w: [w.c1, 1, "x", "", PERIOD[1], PERIOD[0]]),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_payloads_are_refused_everywhere(w: World, case: str) -> None:
    tx_type, payload = MALFORMED[case]
    m = w.m
    tx = market_tx(ALICE, tx_type, payload(w), nonce=m.nonce(ALICE))
    assert m.refused(tx) == "bad_payload"
    m.assert_block_refused(tx, "bad_payload")


# --- issuance ---------------------------------------------------------------------------------


def test_a_reading_issues_a_green_certificate(w: World) -> None:
    m = w.m
    c = m.cert(w.c1)
    assert c["owner"] == c["producer"] == ALICE.address.hex()
    assert c["device"] == w.solar.hex()
    assert (c["source"], c["location"], c["carbon_intensity"], c["type"]) == (
        "solar", "Beijing", 50, "green",
    )  # fmt: skip
    assert (c["interval_start"], c["interval_end"], c["wh"]) == (T0, T0 + INTERVAL, 100 * KWH)
    assert c["remaining_wh"] == 90 * KWH and c["status"] == "active" and c["parent"] is None
    assert c["expires"] == T0 + INTERVAL + m.cert_params.validity


def test_issuance_event_type_and_threshold(factory: LedgerFactory) -> None:
    m = open_certs(factory, {"authorities": [AUTHORITY.address.hex()], "green_threshold": 150})
    at = m.active_device(ALICE, METER, carbon_intensity=149)
    above = m.active_device(CAROL, METER_B, source="wind", carbon_intensity=150)
    m.mine(INTERVAL_END)
    r1 = m.report(ALICE, METER, at, T0, produced=5 * KWH)
    r2 = m.report(CAROL, METER_B, above, T0, produced=7 * KWH)
    m.mine()
    m.ok(r1, r2)
    assert m.events(r1, "cert.issued") == [
        {"event": "cert.issued", "cert": root_id(at, T0).hex(), "wh": 5 * KWH}
    ]
    assert m.cert(root_id(at, T0))["type"] == "green"  # 149 < 150
    assert m.cert(root_id(above, T0))["type"] == "renewable"  # 150 is not below 150
    assert m.cert(root_id(above, T0))["owner"] == CAROL.address.hex()


def test_thermal_and_zero_and_consumption_readings_earn_nothing(w: World) -> None:
    m = w.m
    cons = m.active_device(BOB, meter_key(4), kind="consumption")
    both = m.active_device(CAROL, meter_key(5), kind="both")
    m.mine(T0 + 2 * INTERVAL)
    t = m.report(ALICE, METER_C, w.thermal, T0, produced=50 * KWH)
    z = m.report(CAROL, METER_B, w.wind, T0, produced=0)
    c = m.report(BOB, meter_key(4), cons, T0, consumed=30 * KWH)
    b = m.report(CAROL, meter_key(5), both, T0, produced=0, consumed=5 * KWH)
    m.mine()
    m.ok(t, z, c, b)
    for tx in (t, z, c, b):
        assert [e for e in m.events(tx) if e["event"].startswith("cert.")] == []
    for dev in (w.thermal, w.wind, cons, both):
        assert m.certs(device=dev) == []


def test_manual_issue_then_the_reading_is_stored_without_a_certificate(w: World) -> None:
    m = w.m
    iss = m.issue(w.wind, PAST, 20 * KWH)
    m.mine()
    m.ok(iss)
    cid = root_id(w.wind, PAST)
    assert m.events(iss) == [{"event": "cert.issued", "cert": cid.hex(), "wh": 20 * KWH}]
    c = m.cert(cid)
    assert (c["owner"], c["producer"], c["wh"], c["type"]) == (
        CAROL.address.hex(), CAROL.address.hex(), 20 * KWH, "renewable",
    )  # fmt: skip
    rep = m.report(CAROL, METER_B, w.wind, PAST, produced=30 * KWH)
    m.mine()
    m.ok(rep)
    assert m.events(rep, "cert.skipped") == [
        {"event": "cert.skipped", "device": w.wind.hex(), "interval": PAST,
         "reason": "already_certified"}
    ]  # fmt: skip
    assert m.cert(cid)["wh"] == 20 * KWH  # the reading changed nothing
    assert [x["id"] for x in m.certs(device=w.wind)] == [cid.hex()]


def test_reading_then_manual_issue_is_refused(w: World) -> None:
    m = w.m
    rep = m.report(CAROL, METER_B, w.wind, T0, produced=30 * KWH)
    m.mine()
    m.ok(rep)
    assert m.refused(m.signed(issue_tx, AUTHORITY, w.wind, T0, 30 * KWH)) == "already_certified"
    assert m.refused(m.signed(issue_tx, AUTHORITY, w.wind, T0, 1)) == "already_certified"
    assert m.refused(m.signed(issue_tx, AUTHORITY, w.wind, T0, 30 * KWH + 1)) == (
        "cert_above_metered"
    )


def test_manual_issue_is_bounded_by_a_reading_without_a_certificate(w: World) -> None:
    """A thermal reading earns nothing; sources change only with a new chain,
    so cert_above_metered is shown with a zero-production reading."""
    m = w.m
    rep = m.report(CAROL, METER_B, w.wind, T0, produced=0)
    m.mine()
    m.ok(rep)
    assert m.refused(m.signed(issue_tx, AUTHORITY, w.wind, T0, 1)) == "cert_above_metered"


def test_manual_issue_by_capacity_and_on_a_retired_device(w: World) -> None:
    m = w.m
    full = m.issue(w.solar, PAST, DEVICE_CAP_WH)  # exactly capacity x interval
    m.mine()
    m.ok(full)
    ret = m.retire_device(CAROL, w.wind)
    m.mine()
    m.ok(ret)
    # a retired device's past intervals may still be certified (not pending)
    late = m.issue(w.wind, PAST, KWH)
    m.mine()
    m.ok(late)


def test_one_issuance_per_device_and_interval_within_a_block(w: World) -> None:
    m = w.m
    first = m.issue(w.wind, PAST, 5 * KWH)
    second = m.issue(w.wind, PAST, 5 * KWH)
    m.mine()
    m.ok(first)
    assert m.failed(second) == "already_certified"


# --- transfer, split, retire -------------------------------------------------------------------


def test_split_ids_are_deterministic_and_children_sum_to_the_parent(w: World) -> None:
    m = w.m
    t1 = m.transfer_cert(ALICE, w.c1, BOB, 40 * KWH)
    t2 = m.transfer_cert(ALICE, w.c1, CAROL, 15 * KWH)
    m.mine()
    m.ok(t1, t2)
    k1, k2 = child_id(w.c1, t1.txid), child_id(w.c1, t2.txid)
    assert m.events(t1) == [
        {"event": "cert.split", "parent": w.c1.hex(), "cert": k1.hex(), "wh": 40 * KWH},
        {"event": "cert.transferred", "cert": k1.hex(), "to": BOB.address.hex(), "wh": 40 * KWH},
    ]
    parent = m.cert(w.c1)
    kids = [m.cert(k) for k in (k1, k2, w.retired)]
    assert parent["remaining_wh"] + sum(k["wh"] for k in kids) == parent["wh"] == 100 * KWH
    for k, owner in zip(kids, (BOB, CAROL, ALICE), strict=True):
        assert k["parent"] == w.c1.hex() and k["owner"] == owner.address.hex()
        assert k["wh"] == k["remaining_wh"]
        for f in ("producer", "device", "source", "location", "carbon_intensity", "type",
                  "interval_start", "interval_end", "expires"):  # fmt: skip
            assert k[f] == parent[f], f
    # BOB splits his again: a grandchild, and his child keeps the rest
    t3 = m.transfer_cert(BOB, k1, DAVE, 10 * KWH)
    m.mine()
    m.ok(t3)
    g = child_id(k1, t3.txid)
    assert m.cert(k1)["remaining_wh"] == 30 * KWH and m.cert(g)["wh"] == 10 * KWH
    assert m.cert(g)["parent"] == k1.hex()


def test_a_whole_transfer_keeps_the_id(w: World) -> None:
    m = w.m
    t = m.transfer_cert(ALICE, w.c1, BOB, 90 * KWH)
    m.mine()
    m.ok(t)
    assert m.events(t) == [
        {"event": "cert.transferred", "cert": w.c1.hex(), "to": BOB.address.hex(), "wh": 90 * KWH}
    ]
    c = m.cert(w.c1)
    assert c["owner"] == BOB.address.hex() and c["remaining_wh"] == 90 * KWH
    assert c["producer"] == ALICE.address.hex()
    assert m.refused(m.signed(cert_transfer_tx, ALICE, w.c1, CAROL, KWH)) == "not_cert_owner"


def test_retire_stores_the_claim_and_a_retired_cert_never_moves(w: World) -> None:
    m = w.m
    r = m.cert(w.retired)
    assert r["status"] == "retired" and r["owner"] == ALICE.address.hex()
    assert r["wh"] == r["remaining_wh"] == 10 * KWH
    assert r["claim"] == {
        "beneficiary": "consumer_001, Shanghai", "purpose": "scope 2",
        "period_start": PERIOD[0], "period_end": PERIOD[1], "retired_by": ALICE.address.hex(),
    }  # fmt: skip
    whole = m.retire_cert(ALICE, w.c1, 90 * KWH, beneficiary="ALICE", purpose="")
    m.mine()
    m.ok(whole)
    assert m.events(whole) == [
        {"event": "cert.retired", "cert": w.c1.hex(), "wh": 90 * KWH, "beneficiary": "ALICE"}
    ]
    before = {k: m.cert(k) for k in (w.c1, w.retired)}
    for k in (w.c1, w.retired):
        for build, args in ((cert_transfer_tx, (k, BOB, KWH)), (cert_retire_tx, (k, KWH))):
            tx = m.signed(build, ALICE, *args)
            assert m.refused(tx) == "cert_retired"
            m.assert_fails_in_block(ALICE, tx, "cert_retired")
    assert {k: m.cert(k) for k in (w.c1, w.retired)} == before
    assert queries.stats(m.state) == {
        "issued_wh": 100 * KWH, "retired_wh": 100 * KWH, "certificates": 2,
    }  # fmt: skip


def test_a_transfer_after_a_retire_in_the_same_block_fails(w: World) -> None:
    m = w.m
    ret = m.retire_cert(ALICE, w.c1, 90 * KWH)
    again = m.transfer_cert(ALICE, w.c1, BOB, KWH)
    m.mine()
    m.ok(ret)
    assert m.failed(again) == "cert_retired"


def test_admission_lets_through_a_cert_an_earlier_pending_tx_may_issue(w: World) -> None:
    """A reading pending in the mempool issues its certificate only in a
    block: the owner's transfer of it, queued behind the reading, is let in."""
    m = w.m
    rep = m.signed(report_tx, CAROL, METER_B, w.wind, T0, 30 * KWH)
    m.submit(rep)
    cid = root_id(w.wind, T0)
    t = m.signed(cert_transfer_tx, CAROL, cid, BOB, 5 * KWH)
    m.submit(t)  # CAROL's own reading is pending before it
    m.mine()
    m.ok(rep, t)
    assert m.cert(child_id(cid, t.txid))["owner"] == BOB.address.hex()


# --- trace, verify, cfe ------------------------------------------------------------------------


def test_trace_follows_the_lineage_in_chain_order(w: World) -> None:
    m = w.m
    t = m.transfer_cert(ALICE, w.c1, BOB, 40 * KWH)
    m.mine()
    k = child_id(w.c1, t.txid)
    r = m.retire_cert(BOB, k, 40 * KWH, beneficiary="consumer_001")
    m.mine()
    m.ok(t, r)
    tr = m.trace(k)
    assert tr["cert"] == k.hex() and tr["root"] == w.c1.hex()
    steps = tr["steps"]
    assert [(s["kind"], s["cert"]) for s in steps] == [
        ("reading", w.c1.hex()),
        ("split", w.c1.hex()),  # the part ALICE retired in the world
        ("split", k.hex()),
        ("transfer", k.hex()),
        ("retire", k.hex()),
    ]
    reading, _, split, transfer, retire = steps
    assert reading["other"] == w.solar.hex() and reading["to"] == ALICE.address.hex()
    assert reading["wh"] == 100 * KWH and reading["from"] is None
    assert split["other"] == w.c1.hex() and split["wh"] == 40 * KWH
    assert (transfer["from"], transfer["to"]) == (ALICE.address.hex(), BOB.address.hex())
    assert split["txid"] == transfer["txid"] == t.txid.hex()
    assert retire["note"] == "consumer_001" and retire["txid"] == r.txid.hex()
    assert retire["from"] == BOB.address.hex() and retire["wh"] == 40 * KWH
    heights = [(s["height"], s["time"]) for s in steps]
    assert heights == sorted(heights)
    # the root's own trace: its steps, the split to k included
    root = m.trace(w.c1)["steps"]
    assert [s["kind"] for s in root] == ["reading", "split", "split"]
    assert root[2]["other"] == k.hex() and root[2]["to"] == BOB.address.hex()
    assert queries.trace(m.state, bytes(32)) is None


def test_trace_of_a_manual_issue_names_the_authority(w: World) -> None:
    m = w.m
    iss = m.issue(w.wind, PAST, 20 * KWH)
    m.mine()
    first = m.trace(root_id(w.wind, PAST))["steps"][0]
    assert first["kind"] == "issue" and first["txid"] == iss.txid.hex()
    assert first["from"] == AUTHORITY.address.hex() and first["to"] == CAROL.address.hex()


def test_verify(w: World) -> None:
    m = w.m
    v = m.verify(w.c1)
    assert v["valid"] is True and v["problems"] == [] and v["usable"] is True
    assert (v["source"], v["carbon_intensity"], v["type"], v["location"]) == (
        "solar", 50, "green", "Beijing",
    )  # fmt: skip
    assert (v["interval_start"], v["interval_end"]) == (T0, T0 + INTERVAL)
    assert (v["status"], v["remaining_wh"], v["trace_length"]) == ("active", 90 * KWH, 2)
    r = m.verify(w.retired)
    assert r["valid"] is True and r["usable"] is False and r["status"] == "retired"
    assert r["claim"]["beneficiary"] == "consumer_001, Shanghai"
    assert r["root"] == w.c1.hex() and r["trace_length"] == 3
    assert queries.verify(m.state, bytes(32), 0) is None


def test_verify_finds_a_damaged_state(w: World) -> None:
    m = w.m
    key = ("crt.cert", w.retired)
    good = m.state.get(key)
    m.state.apply_values({key: good._replace(remaining_wh=good.remaining_wh - 1)})
    try:
        v = m.verify(w.retired)
        assert v["valid"] is False and v["problems"] == ["the certificate's amounts do not add up"]
    finally:
        m.state.apply_values({key: good})


def test_cfe_matches_hour_by_hour(w: World) -> None:
    """BOB consumes 30 kWh in interval T0 and 20 kWh in T0 + 900; he retires
    40 kWh generated in T0. Hourly matching: 30 of T0 (the surplus 10 does
    not cover the next interval), so 30 of 50 = 60.00%."""
    m = w.m
    cons = m.active_device(BOB, meter_key(4), kind="consumption")
    m.mine(T0 + 2 * INTERVAL)
    c1 = m.report(BOB, meter_key(4), cons, T0, consumed=30 * KWH)
    c2 = m.report(BOB, meter_key(4), cons, T0 + INTERVAL, consumed=20 * KWH)
    t = m.transfer_cert(ALICE, w.c1, BOB, 40 * KWH)
    m.mine()
    r = m.retire_cert(BOB, child_id(w.c1, t.txid), 40 * KWH)
    m.mine()
    m.ok(c1, c2, t, r)
    out = queries.cfe(m.state, BOB.address, T0, T0 + 2 * INTERVAL)
    assert out["intervals"] == [
        {"interval": T0, "consumed_wh": 30 * KWH, "retired_wh": 40 * KWH, "matched_wh": 30 * KWH},
        {"interval": T0 + INTERVAL, "consumed_wh": 20 * KWH, "retired_wh": 0, "matched_wh": 0},
    ]
    assert (out["consumed_wh"], out["retired_wh"], out["matched_wh"], out["matched_bps"]) == (
        50 * KWH, 40 * KWH, 30 * KWH, 6000,
    )  # fmt: skip
    # the range is on generation intervals: [T0 + 900, ...) leaves T0 out
    later = queries.cfe(m.state, BOB.address, T0 + INTERVAL, T0 + 2 * INTERVAL)
    assert (later["consumed_wh"], later["retired_wh"], later["matched_bps"]) == (20 * KWH, 0, 0)
    # ALICE retired 10 kWh and consumed nothing: no match, no division by zero
    alice = queries.cfe(m.state, ALICE.address, T0, T0 + INTERVAL)
    assert (alice["retired_wh"], alice["matched_wh"], alice["matched_bps"]) == (10 * KWH, 0, 0)


def test_certs_filters(w: World) -> None:
    m = w.m
    iss = m.issue(w.wind, PAST, 20 * KWH)
    m.mine()
    m.ok(iss)
    wind = root_id(w.wind, PAST).hex()
    ids = [c["id"] for c in m.certs()]
    assert ids == [wind, w.c1.hex(), w.retired.hex()]  # by interval, then device...
    assert [c["id"] for c in m.certs(owner=CAROL.address)] == [wind]
    assert [c["id"] for c in m.certs(source="wind")] == [wind]
    assert [c["id"] for c in m.certs(device=w.solar)] == [w.c1.hex(), w.retired.hex()]
    assert [c["id"] for c in m.certs(status="retired")] == [w.retired.hex()]
    assert [c["id"] for c in m.certs(start=T0)] == [w.c1.hex(), w.retired.hex()]
    assert [c["id"] for c in m.certs(end=T0)] == [wind]
    with pytest.raises(ValueError):
        m.certs(status="lost")


def test_the_miner_drops_a_move_of_a_cert_retired_earlier_in_its_block(w: World) -> None:
    """Both are admitted (the retire is pending when the transfer arrives,
    and the certificate is active at the tip); the template applies the
    retire, then its admission checks refuse the transfer: it is left out
    and dropped, not mined as a failed tx."""
    m = w.m
    ret = m.signed(cert_retire_tx, ALICE, w.c1, 90 * KWH)
    m.submit(ret)
    move = m.signed(cert_transfer_tx, ALICE, w.c1, BOB, KWH)
    m.submit(move)
    block = m.mine()
    assert [tx.txid for tx in block.txs] == [ret.txid]
    m.ok(ret)
    status = m.ledger.tx_status(move.txid)
    assert status["status"] == "dropped" and status["error"]["code"] == "cert_retired"


def test_a_pending_issue_meets_a_reading_in_the_same_block(w: World) -> None:
    """Admission cannot see a reading still in the mempool: an issue for its
    interval is admitted; the block that mines the reading first (it pays
    more) refuses it."""
    m = w.m
    rep = m.signed(report_tx, CAROL, METER_B, w.wind, T0, 30 * KWH, fee=1_000)
    m.submit(rep)
    iss = m.signed(issue_tx, AUTHORITY, w.wind, T0, 30 * KWH)
    m.submit(iss)
    block = m.mine()
    assert [tx.txid for tx in block.txs] == [rep.txid]  # the template left it out
    assert m.ledger.tx_status(iss.txid)["error"]["code"] == "already_certified"
    assert m.cert(root_id(w.wind, T0))["wh"] == 30 * KWH
