"""The metering engine: the genesis ``certificates`` section, devices, and
signed meter readings. Every typed error of the engine's tx types is shown
twice: refused at admission (the mempool, against the tip) and as a failed
receipt in a block (fee charged, nothing else changed)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from powernode.cli.node import cmd_init
from powernode.core import encoding
from powernode.core.crypto import KeyPair
from powernode.core.errors import (
    BadMeterSignature,
    GenesisError,
    PowernodeError,
    proves_misbehaviour,
)
from powernode.core.execution import ExecContext
from powernode.core.tx import Transaction
from powernode.devnet.devchain import DEV_FUNDS, dev_genesis
from powernode.engines.market.records import META_NS, Meta
from powernode.engines.metering import clock, queries, records
from powernode.engines.metering.params import CertParams, cert_params, default_interval
from powernode.node.sigworker import check_request, decode_reply
from powernode.node.verify import encode_request
from powernode.state.genesis import parse_genesis, parse_genesis_json
from powernode.state.registry import verify_tx
from powernode.state.view import MemoryState
from tests.unit.helpers import MONO, LedgerFactory, active_blocks, genesis_doc, replay, transfer
from tests.unit.market_helpers import ALICE, BOB, CAROL, DAVE, ERIN, FEE, KWH, market_tx
from tests.unit.metering_helpers import (
    AUTHORITY,
    DEVICE_CAP_WH,
    DEVICE_CAPACITY_W,
    INTERVAL,
    INTERVAL_END,
    METER,
    METER_B,
    METER_C,
    T0,
    Metering,
    approve_tx,
    certificates_section,
    meter_key,
    metering_params,
    open_metering,
    register_device_tx,
    report_payload,
    report_tx,
    retire_device_tx,
)

# --- the genesis section ------------------------------------------------------


def cert(section: dict[str, Any] | None = None, **doc: Any) -> CertParams:
    """The typed params of a genesis with ``section`` as ``certificates``
    (left out when None)."""
    if section is not None:
        doc["certificates"] = section
    return cert_params(parse_genesis(genesis_doc(**doc)))


def refused(section: Any, match: str, **doc: Any) -> None:
    with pytest.raises(GenesisError, match=match):
        cert(section, **doc)


def same_slot(slot: int) -> dict[str, Any]:
    return {p: {"slot_seconds": slot} for p in ("spot", "forward", "reserve")}


def test_defaults_when_the_section_is_absent_or_empty() -> None:
    assert cert() == cert({}) == cert({"_comment": "x"})
    p = cert()
    assert p.authorities == ()
    assert p.interval_seconds == 900  # the spot slot
    assert (p.reading_window, p.validity, p.green_threshold) == (172_800, 31_536_000, 100)
    assert p.sources == ("solar", "wind", "hydro")


@pytest.mark.parametrize(
    ("slot", "interval"),
    [(900, 900), (600, 600), (3600, 3600), (7200, 3600), (5400, 2700), (86_400, 3600)],
)
def test_default_interval_follows_the_market_slot(slot: int, interval: int) -> None:
    assert default_interval(slot) == interval
    assert cert(markets=same_slot(slot)).interval_seconds == interval


def test_every_key_parses() -> None:
    a, b = ALICE.address, BOB.address
    p = cert(
        {
            "authorities": [a.hex(), "0x" + b.hex()],
            "interval_seconds": 300,
            "reading_window": 60,
            "validity": 3600,
            "green_threshold": 0,
            "sources": ["thermal", "solar"],
        }
    )
    assert p == CertParams((a, b), 300, 60, 3600, 0, ("solar", "thermal"))
    assert p.is_authority(b) and not p.is_authority(CAROL.address)
    hi = cert({"reading_window": 31_536_000, "validity": 3_153_600_000, "green_threshold": 100_000})
    assert (hi.reading_window, hi.validity, hi.green_threshold) == (
        31_536_000,
        3_153_600_000,
        100_000,
    )


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"authorities": "ab" * 20}, "certificates.authorities"),
        ({"authorities": ["zz" * 20]}, "certificates.authorities"),
        ({"authorities": ["ab" * 19]}, "certificates.authorities"),
        # 40 hex characters, not 20 bytes somehow written (bytes.fromhex skips spaces).
        ({"authorities": ["ab " * 20]}, "certificates.authorities"),
        ({"authorities": [" " + "ab" * 20]}, "certificates.authorities"),
        ({"authorities": [7]}, "certificates.authorities"),
        ({"authorities": ["ab" * 20, "0x" + "ab" * 20]}, "listed twice"),
        ({"interval_seconds": 0}, "certificates.interval_seconds"),
        ({"interval_seconds": 30}, "certificates.interval_seconds"),
        ({"interval_seconds": 90}, "certificates.interval_seconds"),
        ({"interval_seconds": 600}, "divide the market's slot_seconds 900"),
        ({"interval_seconds": 7200}, "certificates.interval_seconds"),
        ({"interval_seconds": "900"}, "certificates.interval_seconds"),
        ({"interval_seconds": True}, "certificates.interval_seconds"),
        ({"reading_window": 59}, "certificates.reading_window"),
        ({"reading_window": 31_536_001}, "certificates.reading_window"),
        ({"validity": 3599}, "certificates.validity"),
        ({"validity": 3_153_600_001}, "certificates.validity"),
        ({"green_threshold": -1}, "certificates.green_threshold"),
        ({"green_threshold": 100_001}, "certificates.green_threshold"),
        ({"sources": []}, "certificates.sources"),
        ({"sources": "solar"}, "certificates.sources"),
        ({"sources": ["solar", "coal"]}, "certificates.sources"),
        ({"sources": ["none"]}, "certificates.sources"),
        ({"sources": ["wind", "wind"]}, "certificates.sources"),
        ({"validity": 1.5}, "certificates.validity"),
        ({"green_threshold": {"x": 1}}, "certificates.green_threshold"),
        ({"authorites": []}, r"certificates: unknown keys \['authorites'\]"),
        (["solar"], "certificates"),
    ],
)
def test_bad_sections_are_refused_naming_the_key(section: Any, match: str) -> None:
    refused(section, match)


def test_a_float_in_the_file_is_refused() -> None:
    doc = genesis_doc(certificates={"validity": 3600})
    text = json.dumps(doc).replace('"validity": 3600', '"validity": 3600.0')
    with pytest.raises(GenesisError, match="float"):
        parse_genesis_json(text)


def test_the_genesis_commits_to_the_section() -> None:
    base = parse_genesis(genesis_doc())
    same = parse_genesis(genesis_doc(certificates={"_note": "comments do not count"}))
    assert base.commitment() == same.commitment()
    for section in ({"authorities": [ALICE.address.hex()]}, {"validity": 3600}):
        assert parse_genesis(genesis_doc(certificates=section)).commitment() != base.commitment()


# --- driving the engine -------------------------------------------------------


@pytest.fixture
def factory(tmp_path: Path) -> Any:
    f = LedgerFactory(tmp_path)
    yield f
    f.close_all()


@pytest.fixture
def m(factory: LedgerFactory) -> Metering:
    return open_metering(factory)


def both(m: Metering, sender: KeyPair, tx: Transaction, code: str) -> None:
    """``tx`` is refused at admission with ``code``, and gives a failed
    receipt with ``code`` when a block holds it."""
    assert m.refused(tx) == code
    m.assert_fails_in_block(sender, tx, code)


def at_end(m: Metering, end: int = INTERVAL_END) -> None:
    """Mine an empty block at ``end`` (interval T0 has then ended)."""
    m.mine(end)


# --- device.register ----------------------------------------------------------


def test_register_makes_a_pending_device_whose_id_is_the_txid(m: Metering) -> None:
    reg = m.register_device(ALICE, METER)
    m.mine()
    m.ok(reg)
    assert m.events(reg) == [
        {"event": "device.registered", "device": reg.txid.hex(), "owner": ALICE.address.hex()}
    ]
    d = queries.device(m.state, reg.txid)
    assert d is not None
    assert d == {
        "id": reg.txid.hex(),
        "owner": ALICE.address.hex(),
        "kind": "generation",
        "source": "solar",
        "capacity_w": DEVICE_CAPACITY_W,
        "location": "Beijing",
        "carbon_intensity": 50,
        "meter_pubkey": METER.pubkey.hex(),
        "status": "pending",
        "registered_height": m.ledger.chain.tip.height,
        "approved_height": 0,
        "retired_height": 0,
        "readings": 0,
        "produced_wh": 0,
        "consumed_wh": 0,
        "last_interval": None,
    }
    assert records.device(m.state, reg.txid) is not None
    assert records.key_owner(m.state, METER.pubkey) == reg.txid


def test_ids_are_deterministic_across_ledgers(factory: LedgerFactory) -> None:
    a, b = open_metering(factory), open_metering(factory)
    ids = []
    for drv in (a, b):
        dev = drv.active_device(ALICE, METER)
        drv.mine(INTERVAL_END)
        rep = drv.report(BOB, METER, dev, T0, produced=KWH)
        drv.mine()
        drv.ok(rep)
        ids.append((dev, rep.txid, drv.ledger.chain.tip.header.state_root))
    assert ids[0] == ids[1]


def test_register_needs_a_market_participant(m: Metering) -> None:
    both(m, ERIN, register_device_tx(ERIN, METER, nonce=m.nonce(ERIN)), "not_registered")
    both(
        m,
        AUTHORITY,
        register_device_tx(AUTHORITY, METER, nonce=m.nonce(AUTHORITY)),
        "not_registered",
    )


def test_register_while_the_participant_registration_is_pending(m: Metering) -> None:
    # Admission cannot judge the sender's own registration while an earlier
    # tx of the sender is pending; the block does, in order.
    part = m.register(AUTHORITY, "producer")
    m.queued.clear()
    m.submit(part)
    dev = register_device_tx(AUTHORITY, METER, nonce=m.nonce(AUTHORITY))
    m.submit(dev)
    m.mine()
    m.ok(part, dev)


def test_meter_key_in_use_until_its_device_is_retired(m: Metering) -> None:
    first = m.active_device(ALICE, METER)
    both(m, CAROL, register_device_tx(CAROL, METER, nonce=m.nonce(CAROL)), "meter_key_in_use")
    # a pending device holds its key too
    m.register_device(DAVE, METER_B, kind="consumption")
    m.mine()
    both(m, CAROL, register_device_tx(CAROL, METER_B, nonce=m.nonce(CAROL)), "meter_key_in_use")
    # retired: the key is free again, and the retired device keeps it on record
    ret = m.retire_device(ALICE, first)
    m.mine()
    m.ok(ret)
    assert records.key_owner(m.state, METER.pubkey) is None
    again = m.register_device(CAROL, METER)
    m.mine()
    m.ok(again)
    assert records.key_owner(m.state, METER.pubkey) == again.txid
    old = queries.device(m.state, first)
    assert old is not None and old["meter_pubkey"] == METER.pubkey.hex()


def test_two_registrations_of_one_key_in_a_block(m: Metering) -> None:
    # Admission does not see the pending one: both are admitted; in a block
    # the second fails.
    a = register_device_tx(ALICE, METER_C, nonce=m.nonce(ALICE))
    b = register_device_tx(CAROL, METER_C, nonce=m.nonce(CAROL))
    m.submit(a)
    m.submit(b)
    m.queue(a)
    m.queue(b)
    m.mine()
    m.ok(a)
    assert m.failed(b) == "meter_key_in_use"


NONCANONICAL = b"\xff" * 32  # y >= p
SMALL_ORDER = (1).to_bytes(32, "little")  # the identity: no signature by it verifies


@pytest.mark.parametrize(
    "payload",
    [
        ["generation", "solar", 1000, "x", 50],
        ["storage", "solar", 1000, "x", 50, METER.pubkey],
        ["generation", "none", 1000, "x", 50, METER.pubkey],
        ["both", "none", 1000, "x", 50, METER.pubkey],
        ["consumption", "solar", 1000, "x", 50, METER.pubkey],
        ["generation", "coal", 1000, "x", 50, METER.pubkey],
        ["generation", "solar", 0, "x", 50, METER.pubkey],
        ["generation", "solar", 10**12 + 1, "x", 50, METER.pubkey],
        ["generation", "solar", 1000, "", 50, METER.pubkey],
        ["generation", "solar", 1000, "x" * 65, 50, METER.pubkey],
        ["generation", "solar", 1000, "x", -1, METER.pubkey],
        ["generation", "solar", 1000, "x", 100_001, METER.pubkey],
        ["generation", "solar", 1000, "x", 50, METER.pubkey[:31]],
        ["generation", "solar", 1000, "x", 50, NONCANONICAL],
        ["generation", "solar", 1000, "x", 50, SMALL_ORDER],
        ["generation", "solar", 1000, "x", 50, METER.pubkey.hex()],
    ],
)
def test_register_payloads_refused(m: Metering, payload: list[Any]) -> None:
    tx = market_tx(ALICE, "device.register", payload, nonce=m.nonce(ALICE))
    assert m.refused(tx) == "bad_payload"
    m.assert_block_refused(tx, "bad_payload")


def test_register_payload_bounds_accepted(m: Metering) -> None:
    txs = [
        m.register_device(ALICE, meter_key(10), capacity_w=10**12, location="x" * 64),
        m.register_device(BOB, meter_key(11), kind="consumption", carbon_intensity=0),
        m.register_device(
            CAROL, meter_key(12), kind="both", source="thermal", carbon_intensity=100_000
        ),
    ]
    m.mine()
    m.ok(*txs)


# --- device.approve -----------------------------------------------------------


def test_approve_makes_a_device_active(m: Metering) -> None:
    reg = m.register_device(ALICE, METER)
    m.mine()
    app = m.approve(reg.txid)
    m.mine()
    m.ok(app)
    assert m.events(app) == [
        {"event": "device.approved", "device": reg.txid.hex(), "by": AUTHORITY.address.hex()}
    ]
    d = queries.device(m.state, reg.txid)
    assert d is not None and (d["status"], d["approved_height"]) == (
        "active",
        m.ledger.chain.tip.height,
    )


def test_approve_errors(m: Metering) -> None:
    reg = m.register_device(ALICE, METER)
    m.mine()
    dev = reg.txid
    both(m, ALICE, approve_tx(ALICE, dev, nonce=m.nonce(ALICE)), "not_authority")
    both(
        m,
        AUTHORITY,
        approve_tx(AUTHORITY, b"\x01" * 32, nonce=m.nonce(AUTHORITY)),
        "unknown_device",
    )
    m.approve(dev)
    m.mine()
    both(m, AUTHORITY, approve_tx(AUTHORITY, dev, nonce=m.nonce(AUTHORITY)), "device_not_pending")
    m.retire_device(ALICE, dev)
    m.mine()
    both(m, AUTHORITY, approve_tx(AUTHORITY, dev, nonce=m.nonce(AUTHORITY)), "device_not_pending")


def test_an_approve_waits_for_its_registration(m: Metering) -> None:
    # Admission judges the device at the tip: a registration still in the
    # mempool makes the approval wait (refused until it confirms).
    reg = register_device_tx(ALICE, METER, nonce=m.nonce(ALICE))
    m.submit(reg)
    early = approve_tx(AUTHORITY, reg.txid, nonce=m.nonce(AUTHORITY))
    assert m.refused(early) == "unknown_device"
    m.mine()
    m.ok(reg)
    m.submit(early)
    m.mine()
    m.ok(early)


@pytest.mark.parametrize("payload", [[], [b"\x01" * 31], [b"\x01" * 32, 1], ["ab" * 32]])
def test_device_id_payloads_refused(m: Metering, payload: list[Any]) -> None:
    for tx in (
        approve_tx(AUTHORITY, b"", nonce=m.nonce(AUTHORITY)),
        retire_device_tx(ALICE, b"", nonce=m.nonce(ALICE)),
    ):
        bad = market_tx(
            AUTHORITY if tx.type == "device.approve" else ALICE, tx.type, payload, nonce=tx.nonce
        )
        assert m.refused(bad) == "bad_payload"
        m.assert_block_refused(bad, "bad_payload")


# --- device.retire ------------------------------------------------------------


def test_retire_by_owner_or_authority(m: Metering) -> None:
    a = m.active_device(ALICE, METER)
    b = m.active_device(CAROL, METER_B)
    by_owner = m.retire_device(ALICE, a)
    by_authority = m.retire_device(AUTHORITY, b)
    m.mine()
    m.ok(by_owner, by_authority)
    assert m.events(by_owner) == [
        {"event": "device.retired", "device": a.hex(), "by": ALICE.address.hex()}
    ]
    for dev in (a, b):
        d = queries.device(m.state, dev)
        assert d is not None
        assert (d["status"], d["retired_height"]) == ("retired", m.ledger.chain.tip.height)


def test_retire_a_pending_device(m: Metering) -> None:
    reg = m.register_device(ALICE, METER)
    m.mine()
    ret = m.retire_device(ALICE, reg.txid)
    m.mine()
    m.ok(ret)


def test_retire_errors(m: Metering) -> None:
    dev = m.active_device(ALICE, METER)
    both(m, ALICE, retire_device_tx(ALICE, b"\x02" * 32, nonce=m.nonce(ALICE)), "unknown_device")
    both(m, BOB, retire_device_tx(BOB, dev, nonce=m.nonce(BOB)), "not_device_owner")
    m.retire_device(ALICE, dev)
    m.mine()
    both(m, ALICE, retire_device_tx(ALICE, dev, nonce=m.nonce(ALICE)), "device_retired")
    both(m, AUTHORITY, retire_device_tx(AUTHORITY, dev, nonce=m.nonce(AUTHORITY)), "device_retired")


# --- meter.report -------------------------------------------------------------


@pytest.fixture
def dev(m: Metering) -> bytes:
    """ALICE's active solar device with METER, and interval T0 ended."""
    d = m.active_device(ALICE, METER)
    at_end(m)
    return d


def rep(m: Metering, relayer: KeyPair, dev: bytes, start: int = T0, **kw: Any) -> Transaction:
    meter = kw.pop("meter", METER)
    return report_tx(relayer, meter, dev, start, nonce=m.nonce(relayer), **kw)


def test_a_reading_is_recorded_once(m: Metering, dev: bytes) -> None:
    tx = m.report(BOB, METER, dev, T0, produced=DEVICE_CAP_WH)  # anyone may relay it
    before = m.balance(BOB)
    m.mine()
    m.ok(tx)
    assert m.balance(BOB) == before - FEE
    assert m.events(tx, "meter.reading") == [
        {"event": "meter.reading", "device": dev.hex(), "interval": T0,
         "produced": DEVICE_CAP_WH, "consumed": 0}
    ]  # fmt: skip
    r = records.reading(m.state, dev, T0)
    assert r is not None
    assert (r.produced_wh, r.consumed_wh, r.relayer, r.txid) == (
        DEVICE_CAP_WH, 0, BOB.address, tx.txid,
    )  # fmt: skip
    assert r.time == m.ledger.chain.tip.header.timestamp
    assert records.reading(m.state, dev, T0 + INTERVAL) is None
    d = queries.device(m.state, dev)
    assert d is not None
    assert (d["readings"], d["produced_wh"], d["last_interval"]) == (1, DEVICE_CAP_WH, T0)


def test_report_unknown_device(m: Metering, dev: bytes) -> None:
    both(m, ALICE, rep(m, ALICE, b"\x03" * 32), "unknown_device")


def test_report_wrong_meter_key(m: Metering, dev: bytes) -> None:
    # METER_B signs its own reading correctly, but it is not the device's key
    both(m, ALICE, rep(m, ALICE, dev, meter=METER_B, produced=KWH), "wrong_meter_key")


def test_report_device_not_active(m: Metering, dev: bytes) -> None:
    pending = m.register_device(CAROL, METER_B)
    m.mine()
    both(m, CAROL, rep(m, CAROL, pending.txid, meter=METER_B, produced=KWH), "device_not_active")
    m.retire_device(ALICE, dev)
    m.mine()
    both(m, ALICE, rep(m, ALICE, dev, produced=KWH), "device_not_active")


def test_a_reading_waits_for_its_approval(m: Metering) -> None:
    reg = m.register_device(ALICE, METER)
    m.mine()
    app = approve_tx(AUTHORITY, reg.txid, nonce=m.nonce(AUTHORITY))
    m.submit(app)
    m.mine(INTERVAL_END - 5)
    m.ok(app)
    m.mine(INTERVAL_END)
    m.submit(rep(m, ALICE, reg.txid, produced=KWH))


def test_a_pending_approval_makes_a_reading_wait(m: Metering) -> None:
    reg = m.register_device(ALICE, METER)
    m.mine()
    app = approve_tx(AUTHORITY, reg.txid, nonce=m.nonce(AUTHORITY))
    at_end(m)
    m.submit(app)
    reading = rep(m, ALICE, reg.txid, produced=KWH)
    assert m.refused(reading) == "device_not_active"
    m.mine()
    m.ok(app)
    m.submit(reading)
    m.mine()
    m.ok(reading)


def test_report_interval_not_aligned(m: Metering, dev: bytes) -> None:
    both(m, ALICE, rep(m, ALICE, dev, T0 - 60, produced=KWH), "interval_not_aligned")


def test_report_interval_not_ended(m: Metering) -> None:
    dev = m.active_device(ALICE, METER)
    both(m, ALICE, rep(m, ALICE, dev, T0, produced=KWH), "interval_not_ended")
    # ends exactly at the clock: accepted
    m.mine(INTERVAL_END)
    ok = m.report(ALICE, METER, dev, T0, produced=KWH)
    m.mine(INTERVAL_END + 1)
    m.ok(ok)
    both(m, ALICE, rep(m, ALICE, dev, T0 + INTERVAL, produced=KWH), "interval_not_ended")


def test_report_too_late(factory: LedgerFactory) -> None:
    m = open_metering(factory, certificates_section(reading_window=60))
    dev = m.active_device(ALICE, METER)
    m.mine(INTERVAL_END + 60)
    last = m.report(ALICE, METER, dev, T0, produced=KWH)  # end + window: still taken
    m.mine(INTERVAL_END + 60)
    m.ok(last)
    both(m, ALICE, rep(m, ALICE, dev, T0 - INTERVAL, produced=KWH), "reading_too_late")
    m.mine(INTERVAL_END + 61)
    # the window is judged before duplicates (the codes' order)
    both(m, ALICE, rep(m, ALICE, dev, T0, produced=KWH), "reading_too_late")


def test_report_too_late_after_the_window(factory: LedgerFactory) -> None:
    m = open_metering(factory, certificates_section(reading_window=60))
    dev = m.active_device(ALICE, METER)
    m.mine(INTERVAL_END + 61)
    both(m, ALICE, rep(m, ALICE, dev, T0, produced=KWH), "reading_too_late")


def test_a_block_stepping_back_in_time_does_not_reopen_a_window(factory: LedgerFactory) -> None:
    # No market order exists, so only metering's own clock remembers the
    # highest block time: a later block may carry an earlier timestamp
    # (median-time-past), and the window stays closed.
    m = open_metering(factory, certificates_section(reading_window=60))
    dev = m.active_device(ALICE, METER)
    m.mine(INTERVAL_END + 2000)
    late = m.report(ALICE, METER, dev, T0, produced=KWH)
    block = m.mine(INTERVAL_END + 30)
    assert block.header.timestamp == INTERVAL_END + 30
    assert m.receipt(late)["status"] == "failed"
    assert m.receipt(late)["error"]["code"] == "reading_too_late"


def test_report_duplicate(m: Metering, dev: bytes) -> None:
    first = m.report(ALICE, METER, dev, T0, produced=KWH)
    m.mine()
    m.ok(first)
    # the same reading relayed again, or another one for the interval
    both(m, BOB, rep(m, BOB, dev, T0, produced=KWH), "duplicate_reading")
    both(m, ALICE, rep(m, ALICE, dev, T0, produced=2 * KWH), "duplicate_reading")


def test_two_readings_of_one_interval_in_the_mempool(m: Metering, dev: bytes) -> None:
    # Admission cannot know a reading still in the mempool: both enter; the
    # block takes the first, and refuses the second.
    a = rep(m, ALICE, dev, produced=KWH)
    b = rep(m, BOB, dev, produced=2 * KWH)
    m.submit(a)
    m.submit(b)
    m.queue(a)
    m.queue(b)
    m.mine()
    m.ok(a)
    assert m.failed(b) == "duplicate_reading"


def test_report_wrong_device_kind(m: Metering, dev: bytes) -> None:
    both(m, ALICE, rep(m, ALICE, dev, consumed=1), "wrong_device_kind")
    load = m.active_device(BOB, METER_B, kind="consumption")
    both(m, BOB, rep(m, BOB, load, meter=METER_B, produced=1), "wrong_device_kind")
    zero = m.report(BOB, METER_B, load, T0, consumed=0)  # nothing is not the wrong kind
    mixed = m.active_device(CAROL, METER_C, kind="both")
    m.mine()
    m.ok(zero)
    ok = m.report(CAROL, METER_C, mixed, T0, produced=KWH, consumed=2 * KWH)
    m.mine()
    m.ok(ok)


def test_report_above_capacity(m: Metering, dev: bytes) -> None:
    both(m, ALICE, rep(m, ALICE, dev, produced=DEVICE_CAP_WH + 1), "reading_above_capacity")
    mixed = m.active_device(CAROL, METER_C, kind="both")
    both(m, CAROL, rep(m, CAROL, mixed, meter=METER_C, consumed=DEVICE_CAP_WH + 1),
         "reading_above_capacity")  # fmt: skip
    ok = m.report(CAROL, METER_C, mixed, T0, produced=DEVICE_CAP_WH, consumed=DEVICE_CAP_WH)
    m.mine()
    m.ok(ok)


@pytest.mark.parametrize(
    "payload",
    [
        [b"\x01" * 32, T0, 0, 0, METER.pubkey],
        [b"\x01" * 31, T0, 0, 0, METER.pubkey, b"\x00" * 64],
        [b"\x01" * 32, -1, 0, 0, METER.pubkey, b"\x00" * 64],
        [b"\x01" * 32, T0, -1, 0, METER.pubkey, b"\x00" * 64],
        [b"\x01" * 32, T0, 0, "1", METER.pubkey, b"\x00" * 64],
        [b"\x01" * 32, T0, 0, 0, METER.pubkey[:31], b"\x00" * 64],
        [b"\x01" * 32, T0, 0, 0, METER.pubkey, b"\x00" * 63],
    ],
)
def test_report_payloads_refused(m: Metering, payload: list[Any]) -> None:
    tx = report_tx(ALICE, METER, b"", 0, nonce=m.nonce(ALICE), payload=payload)
    verify_tx(tx)  # no co-signature to check in a payload it cannot read
    assert m.refused(tx) == "bad_payload"
    m.assert_block_refused(tx, "bad_payload")


# --- the meter's signature ----------------------------------------------------


def bad_readings(dev: bytes, nonce: int) -> list[Transaction]:
    """Readings whose meter signature does not verify."""
    good = report_payload(METER, dev, T0, KWH)
    altered = [*good[:2], 2 * KWH, *good[3:]]  # produced changed after signing
    flipped = [*good[:5], bytes([good[5][0] ^ 1]) + good[5][1:]]
    other_interval = [*good[:5], report_payload(METER, dev, T0 + INTERVAL, KWH)[5]]
    payloads = (
        report_payload(METER, dev, T0, KWH, signer=METER_B),  # the wrong key signed
        altered,
        flipped,
        report_payload(METER, dev, T0, KWH, chain_id="another-chain"),
        other_interval,
    )
    return [report_tx(BOB, METER, dev, T0, payload=p, nonce=nonce) for p in payloads]


def test_a_bad_meter_signature_is_refused_everywhere(m: Metering, dev: bytes) -> None:
    verify_tx(rep(m, BOB, dev, produced=KWH))
    for tx in bad_readings(dev, m.nonce(BOB)):
        with pytest.raises(BadMeterSignature) as info:
            verify_tx(tx)
        assert info.value.code == "bad_meter_signature"
        assert proves_misbehaviour(info.value)
        assert m.refused(tx) == "bad_meter_signature"
        # a block holding it is invalid
        block = m.make_block([tx], m.now + 5)
        with pytest.raises(PowernodeError) as blk:
            m.ledger.submit_block(block, now=m.now + 5, mono=MONO)
        assert blk.value.code == "bad_meter_signature"
        assert m.ledger.chain.tip.hash != block.hash


def test_the_signature_workers_flag_a_bad_meter_signature(m: Metering, dev: bytes) -> None:
    # the worker's framing carries the meter's co-signature with the sender's
    good = rep(m, BOB, dev, produced=KWH)
    bad = bad_readings(dev, m.nonce(BOB))
    txs = [good, *bad, transfer(ALICE, BOB, 1, nonce=m.nonce(ALICE))]
    assert decode_reply(check_request(encode_request(txs))) == list(range(1, len(bad) + 1))


def test_the_reading_message_is_pinned() -> None:
    msg = records.reading_message("c", b"\x01" * 32, 900, 5, 0)
    assert msg.hex() == (
        "96b1706f7765726e6f64652d72656164696e67a163c420" + "01" * 32 + "cd03840500"
    )


# --- clock and queries --------------------------------------------------------


def test_clock_is_the_later_of_the_market_clock_and_the_block_time() -> None:
    params = metering_params()
    state = MemoryState()
    ctx = ExecContext(height=1, timestamp=T0, miner=bytes(20), params=params)
    assert clock.now(state, ctx) == T0
    state.apply_values({(META_NS, b""): Meta(clock=T0 + 100)})
    assert clock.now(state, ctx) == T0 + 100
    later = ExecContext(height=1, timestamp=T0 + 200, miner=bytes(20), params=params)
    assert clock.now(state, later) == T0 + 200


def test_queries(m: Metering) -> None:
    a = m.active_device(ALICE, METER)
    b = m.active_device(ALICE, METER_B, kind="consumption")
    c = m.register_device(CAROL, METER_C, kind="both")
    m.mine(T0 + 3 * INTERVAL)
    for i in range(3):
        m.report(ALICE, METER, a, T0 + i * INTERVAL, produced=(i + 1) * KWH)
    m.report(ALICE, METER_B, b, T0, consumed=7 * KWH)
    m.mine()
    assert [d["id"] for d in queries.devices(m.state)] == [a.hex(), b.hex(), c.txid.hex()]
    assert [d["id"] for d in queries.devices(m.state, owner=ALICE.address)] == [a.hex(), b.hex()]
    assert [d["id"] for d in queries.devices(m.state, status="pending")] == [c.txid.hex()]
    assert queries.devices(m.state, owner=ALICE.address, status="pending") == []
    assert queries.devices(m.state, owner=ERIN.address) == []
    assert queries.device(m.state, b"\x09" * 32) is None
    rs = queries.readings(m.state, a)
    assert [(r["interval"], r["produced_wh"]) for r in rs] == [
        (T0, KWH), (T0 + INTERVAL, 2 * KWH), (T0 + 2 * INTERVAL, 3 * KWH),
    ]  # fmt: skip
    assert rs[0]["relayer"] == ALICE.address.hex() and rs[0]["device"] == a.hex()
    assert set(rs[0]) == {"device", "interval", "produced_wh", "consumed_wh", "relayer", "txid",
                          "height", "time"}  # fmt: skip
    window = queries.readings(m.state, a, start=T0 + INTERVAL, end=T0 + 2 * INTERVAL)
    assert [r["interval"] for r in window] == [T0 + INTERVAL]  # end is exclusive
    assert [r["consumed_wh"] for r in queries.readings(m.state, b)] == [7 * KWH]
    assert queries.readings(m.state, c.txid) == []
    d = queries.device(m.state, a)
    assert d is not None
    assert (d["readings"], d["produced_wh"], d["last_interval"]) == (3, 6 * KWH, T0 + 2 * INTERVAL)


def test_records_round_trip_through_their_codecs(m: Metering, dev: bytes) -> None:
    m.report(ALICE, METER, dev, T0, produced=KWH)
    m.mine()
    seen = set()
    for (ns, _key), v in m.state.snapshot().items():
        if ns in records.STATE_CODECS:
            seen.add(ns)
            assert records.STATE_CODECS[ns](encoding.decode(encoding.encode(v.to_obj()))) == v
    assert seen == set(records.STATE_CODECS)


# --- dev chains ---------------------------------------------------------------


def test_dev_genesis_makes_every_funded_key_an_authority() -> None:
    keys = [meter_key(50 + i) for i in range(3)]
    doc = dev_genesis({k.address: DEV_FUNDS for k in keys})
    p = cert_params(parse_genesis_json(json.dumps(doc)))
    assert set(p.authorities) == {k.address for k in keys}
    assert (p.interval_seconds, p.reading_window, p.validity) == (900, 1800, 604_800)
    assert p.sources == ("solar", "wind", "hydro") and p.green_threshold == 100
    assert doc["chain_id"] == "powernode-dev-7"
    # a caller may give its own section
    own = dev_genesis({keys[0].address: 1}, certificates={"validity": 7200})
    assert cert_params(parse_genesis_json(json.dumps(own))) == CertParams(validity=7200)


def test_the_dev_genesis_file_has_the_dev_section() -> None:
    path = Path(__file__).resolve().parents[2] / "configs" / "genesis-dev.json"
    params = parse_genesis_json(path.read_bytes())
    assert params.chain_id == "powernode-dev-7"
    p = cert_params(params)
    assert p.authorities == tuple(a for a, _ in params.allocations)
    assert (p.interval_seconds, p.reading_window, p.validity) == (900, 1800, 604_800)


def test_init_dev_makes_the_node_key_an_authority(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "node"
    args = argparse.Namespace(datadir=d, genesis=None, dev=True, rpc_port=0, p2p_port=0, mine=False)
    assert cmd_init(args) == 0
    address = capsys.readouterr().out.split("node address ")[1].split()[0]
    params = parse_genesis_json((d / "genesis.json").read_bytes())
    assert params.chain_id == "powernode-dev-7"
    assert cert_params(params).authorities == (bytes.fromhex(address),)


def test_the_testnet_script_uses_the_new_chain_id() -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "testnet.py"
    assert 'default="powernode-testnet-7"' in script.read_text()


def test_the_miner_leaves_out_a_second_reading_of_an_interval(m: Metering, dev: bytes) -> None:
    a = rep(m, ALICE, dev, produced=KWH)
    b = rep(m, BOB, dev, produced=2 * KWH)
    m.submit(a)
    m.submit(b)
    block = m.mine()  # the ledger's own template
    assert [tx.txid for tx in block.txs] == [a.txid]
    m.ok(a)
    status = m.ledger.tx_status(b.txid)
    assert status["status"] == "dropped"
    assert status["error"]["code"] == "duplicate_reading"


# --- replay and reorgs --------------------------------------------------------


def test_replay_and_reorg_restore_devices_and_readings_exactly(factory: LedgerFactory) -> None:
    a = open_metering(factory)
    dev = a.active_device(ALICE, METER)
    other = a.active_device(CAROL, METER_B, kind="both")
    a.mine(INTERVAL_END)
    a.report(BOB, METER, dev, T0, produced=KWH)
    a.report(CAROL, METER_B, other, T0, produced=KWH, consumed=KWH)
    a.retire_device(CAROL, other)
    a.mine()
    chain = active_blocks(a.ledger)
    fresh = replay(factory, a.params, chain, a.now)
    assert fresh.chain.state.snapshot() == a.state.snapshot()
    # a competing branch from block 1 (the participants): METER belongs to
    # another device there, and interval T0 has another reading
    b = Metering(replay(factory, a.params, chain[:1], a.now))
    theirs = b.active_device(DAVE, METER, kind="consumption")
    b.mine(INTERVAL_END)
    b.report(DAVE, METER, theirs, T0, consumed=3 * KWH)
    b.mine()
    while len(b.ledger.chain.active) <= len(a.ledger.chain.active):
        b.mine()
    for blk in active_blocks(b.ledger)[1:]:
        a.ledger.submit_block(blk, now=b.now, mono=MONO)
    assert a.ledger.chain.tip.hash == b.ledger.chain.tip.hash
    assert a.state.snapshot() == b.state.snapshot()
    assert records.key_owner(a.state, METER.pubkey) == theirs
    assert queries.device(a.state, dev) is None
    assert [r["consumed_wh"] for r in queries.readings(a.state, theirs)] == [3 * KWH]
