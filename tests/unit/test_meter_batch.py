"""``meter.batch``: many meters' signed readings of one interval in one tx.

Each entry is a reading as if a ``meter.report`` had carried it (same
records, events, certificates, PPA deliveries); a malformed payload or any
bad co-signature makes the tx invalid; admission refuses the whole tx for
the first entry that breaks a rule, naming it; in a block such an entry is
skipped with ``meter.skipped`` and the rest count.
"""

from __future__ import annotations

from typing import Any

import pytest

from powernode.core.crypto import KeyPair
from powernode.core.errors import BadMeterSignature, PowernodeError, proves_misbehaviour
from powernode.core.tx import MAX_TX_BYTES
from powernode.engines.accounts import ACCOUNT_NS
from powernode.engines.metering import records
from powernode.engines.metering.batch import MAX_BATCH_READINGS
from powernode.node.sigworker import check_request, decode_reply
from powernode.node.verify import encode_request
from powernode.state.registry import HANDLERS, verify_tx
from tests.unit.cert_helpers import issue_tx, root_id
from tests.unit.helpers import MONO, LedgerFactory, transfer
from tests.unit.market_helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    FEE,
    KWH,
    UNIT,
    market_tx,
    register_tx,
)
from tests.unit.metering_helpers import (
    AUTHORITY,
    DEVICE_CAP_WH,
    INTERVAL,
    INTERVAL_END,
    T0,
    batch_entry,
    batch_tx,
    meter_key,
    report_payload,
    report_tx,
)
from tests.unit.ppa_helpers import Ppas, open_ppas

METERS = [meter_key(10 + i) for i in range(6)]


@pytest.fixture
def m(factory: LedgerFactory) -> Ppas:
    return open_ppas(factory)


def fleet(m: Ppas, n: int, owner: KeyPair = ALICE, **kw: Any) -> list[tuple[bytes, KeyPair]]:
    """``n`` active devices of ``owner`` (registered in one block, approved in
    the next), as (device id, meter key), in ascending id order."""
    regs = [(m.register_device(owner, METERS[i], **kw), METERS[i]) for i in range(n)]
    m.mine()
    m.ok(*(r for r, _ in regs))
    apps = [m.approve(r.txid) for r, _ in regs]
    m.mine()
    m.ok(*apps)
    return sorted((r.txid, k) for r, k in regs)


def entries(devs: list[tuple[bytes, KeyPair]], produced: int = KWH) -> list[list[Any]]:
    return [batch_entry(k, d, T0, produced * (i + 1)) for i, (d, k) in enumerate(devs)]


def refusal(m: Ppas, tx: Any) -> PowernodeError:
    with pytest.raises(PowernodeError) as info:
        m.submit(tx)
    assert tx.txid not in m.ledger.mempool.by_id
    return info.value


# --- recorded as readings -----------------------------------------------------


def test_each_entry_is_a_reading_relayed_by_the_sender(m: Ppas) -> None:
    devs = fleet(m, 3)
    m.mine(INTERVAL_END)
    before = m.balance(BOB)
    tx = m.batch(BOB, T0, entries(devs))
    m.mine()
    m.ok(tx)
    assert m.balance(BOB) == before - FEE  # one fee for the batch
    assert m.events(tx, "meter.reading") == [
        {"event": "meter.reading", "device": d.hex(), "interval": T0,
         "produced": (i + 1) * KWH, "consumed": 0}
        for i, (d, _) in enumerate(devs)
    ]  # fmt: skip
    for i, (d, _) in enumerate(devs):
        r = records.reading(m.state, d, T0)
        assert r is not None
        assert (r.produced_wh, r.relayer, r.txid, r.height) == (
            (i + 1) * KWH, BOB.address, tx.txid, m.ledger.chain.tip.height,
        )  # fmt: skip
        t = records.totals(m.state, d)
        assert (t.readings, t.produced_wh, t.last_interval) == (1, (i + 1) * KWH, T0)


def test_a_meter_signs_the_same_bytes_for_a_report_and_a_batch(m: Ppas) -> None:
    [(d, k)] = fleet(m, 1)
    m.mine(INTERVAL_END)
    report = report_payload(k, d, T0, KWH)
    tx = m.batch(CAROL, T0, [[d, KWH, 0, k.pubkey, report[5]]])
    verify_tx(tx)
    m.mine()
    m.ok(tx)
    assert records.reading(m.state, d, T0) is not None


# --- the payload --------------------------------------------------------------

ID = b"\x01" * 32
SIG = b"\x00" * 64
GOOD = [ID, 0, 0, METERS[0].pubkey, SIG]


@pytest.mark.parametrize(
    "payload",
    [
        [T0],
        [T0, [GOOD], 1],
        [-1, [GOOD]],
        [True, [GOOD]],
        ["1", [GOOD]],
        [T0, []],  # no entry
        [T0, GOOD],  # not a list of entries
        [T0, [[*GOOD[:4]]]],
        [T0, [[*GOOD, 1]]],
        [T0, [[ID[:31], *GOOD[1:]]]],
        [T0, [[ID, -1, *GOOD[2:]]]],
        [T0, [[ID, 0, "1", *GOOD[3:]]]],
        [T0, [[*GOOD[:3], METERS[0].pubkey[:31], SIG]]],
        [T0, [[*GOOD[:4], SIG[:63]]]],
        [T0, [GOOD, GOOD]],  # a device twice
        [T0, [[b"\x02" * 32, *GOOD[1:]], GOOD]],  # descending ids
        [T0, [[i.to_bytes(32, "big"), *GOOD[1:]] for i in range(MAX_BATCH_READINGS + 1)]],
    ],
)
def test_payloads_refused(m: Ppas, payload: list[Any]) -> None:
    tx = market_tx(ALICE, "meter.batch", payload, nonce=m.nonce(ALICE))
    verify_tx(tx)  # no co-signature to check in a payload it cannot read
    assert m.refused(tx) == "bad_payload"
    m.assert_block_refused(tx, "bad_payload")


def full_batch(relayer: KeyPair, n: int = MAX_BATCH_READINGS) -> Any:
    """``n`` entries, each validly signed by its own meter, with the largest
    values the payload allows (for the size limit)."""
    top = 2**64 - 1
    out = []
    for i in range(n):
        meter = KeyPair.from_seed(b"batch-meter" + i.to_bytes(21, "big"))
        out.append(batch_entry(meter, bytes([i]) * 32, top, top, top))
    return batch_tx(relayer, top, out, nonce=0)


def test_a_full_batch_fits_a_tx_and_the_signature_workers() -> None:
    tx = full_batch(BOB)
    assert len(tx.raw) <= MAX_TX_BYTES
    verify_tx(tx)
    # the worker framing counts the sender's signature and 100 co-signatures
    # in one byte
    assert decode_reply(check_request(encode_request([tx]))) == []


# --- co-signatures ------------------------------------------------------------


def test_one_bad_co_signature_makes_the_batch_invalid(m: Ppas) -> None:
    devs = fleet(m, 3)
    m.mine(INTERVAL_END)
    good = entries(devs)
    wrong_key = [*good[:1], batch_entry(devs[1][1], devs[1][0], T0, KWH, signer=METERS[5]),
                 *good[2:]]  # fmt: skip
    altered = [*good[:2], [good[2][0], good[2][1] + 1, *good[2][2:]]]  # produced changed
    other_chain = [batch_entry(k, d, T0, KWH, chain_id="another") for d, k in devs]
    other_interval = [[*e[:4], batch_entry(k, d, T0 + INTERVAL, KWH)[4]]
                      for e, (d, k) in zip(entries(devs, 1), devs, strict=True)]  # fmt: skip
    bad = [
        batch_tx(BOB, T0, es, nonce=m.nonce(BOB))
        for es in (wrong_key, altered, other_chain, other_interval)
    ]
    for tx in bad:
        with pytest.raises(BadMeterSignature) as info:
            verify_tx(tx)
        assert proves_misbehaviour(info.value)
        assert m.refused(tx) == "bad_meter_signature"
        block = m.make_block([tx], m.now + 5)
        with pytest.raises(PowernodeError) as blk:
            m.ledger.submit_block(block, now=m.now + 5, mono=MONO)
        assert blk.value.code == "bad_meter_signature"
        assert m.ledger.chain.tip.hash != block.hash
    ok = batch_tx(BOB, T0, good, nonce=m.nonce(BOB))
    txs = [ok, *bad, transfer(ALICE, BOB, 1, nonce=m.nonce(ALICE))]
    assert decode_reply(check_request(encode_request(txs))) == [1, 2, 3, 4]


# --- admission: the whole tx, naming the entry --------------------------------


def test_admission_refuses_the_batch_for_its_first_bad_entry(m: Ppas) -> None:
    devs = fleet(m, 3)
    m.mine(INTERVAL_END)
    good = entries(devs)
    unknown = batch_entry(METERS[5], b"\xff" * 32, T0, KWH)
    exc = refusal(m, batch_tx(BOB, T0, [*good, unknown], nonce=m.nonce(BOB)))
    assert exc.code == "unknown_device"
    assert exc.message.startswith(f"entry 3 (device {'ff' * 32}): no device")
    # the first failing entry decides: entry 1 breaks a rule, so does entry 3
    consumes = batch_entry(devs[1][1], devs[1][0], T0, 0, 1)
    exc = refusal(m, batch_tx(BOB, T0, [good[0], consumes, good[2], unknown], nonce=m.nonce(BOB)))
    assert exc.code == "wrong_device_kind"
    assert f"entry 1 (device {devs[1][0].hex()})" in exc.message
    late = batch_tx(BOB, T0 + INTERVAL, [batch_entry(k, d, T0 + INTERVAL) for d, k in devs],
                    nonce=m.nonce(BOB))  # fmt: skip
    assert refusal(m, late).code == "interval_not_ended"
    m.submit(batch_tx(BOB, T0, good, nonce=m.nonce(BOB)))


def test_the_sender_must_be_a_participant(m: Ppas) -> None:
    devs = fleet(m, 2)
    m.mine(INTERVAL_END)
    tx = batch_tx(AUTHORITY, T0, entries(devs), nonce=m.nonce(AUTHORITY))
    assert m.refused(tx) == "not_registered"
    m.assert_fails_in_block(AUTHORITY, tx, "not_registered")


def test_a_pending_registration_of_the_sender_lets_its_batch_wait_for_the_block(
    m: Ppas,
) -> None:
    devs = fleet(m, 2)
    m.mine(INTERVAL_END)
    reg = register_tx(AUTHORITY, "consumer", nonce=m.nonce(AUTHORITY))
    m.submit(reg)
    tx = batch_tx(AUTHORITY, T0, entries(devs), nonce=m.nonce(AUTHORITY))
    m.submit(tx)  # its registration may confirm first: only the block can tell
    m.queue(reg)
    m.queue(tx)
    m.mine()
    m.ok(reg, tx)
    assert len(m.events(tx, "meter.reading")) == 2


# --- in a block: a bad entry is skipped ---------------------------------------


def test_a_bad_entry_is_skipped_and_the_rest_count(m: Ppas) -> None:
    devs = fleet(m, 4)
    m.mine(INTERVAL_END)
    first = m.report(ALICE, devs[1][1], devs[1][0], T0, produced=KWH)
    m.mine()
    m.ok(first)
    es = [
        batch_entry(devs[0][1], devs[0][0], T0, 2 * KWH),
        batch_entry(devs[1][1], devs[1][0], T0, 3 * KWH),  # duplicate_reading
        batch_entry(devs[2][1], devs[2][0], T0, DEVICE_CAP_WH + 1),  # above capacity
        batch_entry(devs[3][1], devs[3][0], T0, 4 * KWH),
        batch_entry(METERS[5], b"\xff" * 32, T0, KWH),  # unknown device
    ]
    tx = batch_tx(CAROL, T0, es, nonce=m.nonce(CAROL))
    assert refusal(m, tx).code == "duplicate_reading"  # admission refuses it whole
    before = m.balance(CAROL)
    m.queue(tx)
    m.mine()
    m.ok(tx)
    assert m.balance(CAROL) == before - FEE
    ev = m.events(tx)
    assert [(e["event"], e["device"]) for e in ev if e["event"].startswith("meter.")] == [
        ("meter.reading", devs[0][0].hex()),
        ("meter.skipped", devs[1][0].hex()),
        ("meter.skipped", devs[2][0].hex()),
        ("meter.reading", devs[3][0].hex()),
        ("meter.skipped", "ff" * 32),
    ]
    assert [e["code"] for e in m.events(tx, "meter.skipped")] == [
        "duplicate_reading", "reading_above_capacity", "unknown_device",
    ]  # fmt: skip
    assert all(e["interval"] == T0 for e in m.events(tx, "meter.skipped"))
    # nothing of a skipped entry is written: the earlier reading stays, the
    # capacity-breaking device has no reading, totals or certificate
    kept = records.reading(m.state, devs[1][0], T0)
    assert kept is not None and (kept.txid, kept.produced_wh) == (first.txid, KWH)
    assert records.reading(m.state, devs[2][0], T0) is None
    assert records.totals(m.state, devs[2][0]).readings == 0
    assert records.totals(m.state, devs[1][0]).readings == 1
    issued = {e["cert"] for e in m.events(tx, "cert.issued")}
    assert issued == {root_id(devs[0][0], T0).hex(), root_id(devs[3][0], T0).hex()}


def test_a_batch_whose_every_entry_is_skipped_is_still_ok(m: Ppas) -> None:
    devs = fleet(m, 2)
    m.mine(INTERVAL_END)
    tx = m.batch(BOB, T0, [batch_entry(k, d, T0, DEVICE_CAP_WH + 1) for d, k in devs])
    m.mine()
    m.ok(tx)
    assert [e["event"] for e in m.events(tx)] == ["meter.skipped", "meter.skipped"]


def test_two_batches_of_one_interval_in_the_mempool(m: Ppas) -> None:
    devs = fleet(m, 2)
    m.mine(INTERVAL_END)
    a = batch_tx(BOB, T0, entries(devs), nonce=m.nonce(BOB))
    b = batch_tx(CAROL, T0, entries(devs[1:], 5 * KWH), nonce=m.nonce(CAROL))
    m.submit(a)
    m.submit(b)  # admission cannot see a reading still in the mempool
    m.queue(a)
    m.queue(b)
    m.mine()
    m.ok(a, b)
    assert [e["code"] for e in m.events(b, "meter.skipped")] == ["duplicate_reading"]
    r = records.reading(m.state, devs[1][0], T0)
    assert r is not None and r.txid == a.txid


# --- certificates and PPAs, per entry -----------------------------------------


def test_each_production_entry_issues_its_certificate(m: Ppas) -> None:
    gen = fleet(m, 2)
    load_meter = METERS[4]
    load = m.active_device(BOB, load_meter, kind="consumption")
    m.mine(INTERVAL_END)
    es = [*entries(gen), batch_entry(load_meter, load, T0, 0, 7 * KWH)]
    tx = m.batch(DAVE, T0, es)
    m.mine()
    m.ok(tx)
    events = m.events(tx, "cert.issued")
    assert [e["cert"] for e in events] == [root_id(d, T0).hex() for d, _ in gen]
    for i, (d, _) in enumerate(gen):
        c = m.cert(root_id(d, T0))
        assert (c["owner"], c["wh"], c["device"]) == (ALICE.address.hex(), (i + 1) * KWH, d.hex())
        assert m.trace(root_id(d, T0))["steps"][0]["txid"] == tx.txid.hex()
        assert m.verify(root_id(d, T0))["valid"]
    assert m.certs(device=load.hex()) == []


def test_no_double_certification_between_a_report_and_a_batch(m: Ppas) -> None:
    devs = fleet(m, 3)
    m.mine(INTERVAL_END)
    (a, ka), (b, _), (c, kc) = devs
    # a: reported first, then in a batch; b: certified by hand first
    rep = m.report(ALICE, ka, a, T0, produced=KWH)
    manual = m.issue(b, T0, KWH)
    m.mine()
    m.ok(rep, manual)
    tx = m.batch(BOB, T0, entries(devs))
    m.mine()
    m.ok(tx)
    assert [e["device"] for e in m.events(tx, "meter.skipped")] == [a.hex()]
    assert m.events(tx, "cert.skipped") == [
        {"event": "cert.skipped", "device": b.hex(), "interval": T0, "reason": "already_certified"}
    ]
    assert [e["cert"] for e in m.events(tx, "cert.issued")] == [root_id(c, T0).hex()]
    assert m.cert(root_id(a, T0))["wh"] == KWH  # the report's, untouched
    # and the other way round: after the batch, a report of c is a duplicate
    # and a manual issue of c is already certified
    again = report_tx(DAVE, kc, c, T0, KWH, nonce=m.nonce(DAVE))
    assert m.refused(again) == "duplicate_reading"
    assert m.refused(issue_tx(AUTHORITY, c, T0, KWH, nonce=m.nonce(AUTHORITY))) == (
        "already_certified"
    )


def test_each_entry_delivers_to_its_devices_ppa(m: Ppas) -> None:
    devs = fleet(m, 3)
    (a, _), (b, _), (c, _) = devs
    pa = m.active(ALICE, BOB, device=a)
    pb = m.active(ALICE, DAVE, device=b, share_bps=5_000)
    m.mine(INTERVAL_END)
    tx = m.batch(CAROL, T0, entries(devs, 10 * KWH))
    m.mine()
    m.ok(tx)
    delivered = m.events(tx, "ppa.delivered")
    assert [(e["ppa"], e["wh"]) for e in delivered] == [
        (pa.hex(), 10 * KWH), (pb.hex(), 10 * KWH),  # b produced 20 kWh, half to DAVE
    ]  # fmt: skip
    assert m.ppa(pa)["delivered_wh"] == 10 * KWH and m.ppa(pa)["paid"] == 5 * UNIT
    assert m.allocated(a, T0) == 10 * KWH and m.allocated(b, T0) == 10 * KWH
    assert m.allocated(c, T0) == 0
    assert m.cert(root_id(a, T0))["owner"] == BOB.address.hex()
    assert m.cert(root_id(b, T0))["remaining_wh"] == 10 * KWH  # the seller's half
    assert m.cert(root_id(c, T0))["owner"] == ALICE.address.hex()


def test_a_skipped_entry_delivers_nothing(m: Ppas) -> None:
    devs = fleet(m, 2)
    (a, ka), _ = devs
    pa = m.active(ALICE, BOB, device=a)
    m.mine(INTERVAL_END)
    tx = m.batch(CAROL, T0, [batch_entry(ka, a, T0, DEVICE_CAP_WH + 1), entries(devs)[1]])
    m.mine()
    m.ok(tx)
    assert m.events(tx, "ppa.delivered") == []
    assert m.ppa(pa)["delivered_wh"] == 0 and m.allocated(a, T0) == 0


def test_a_report_arriving_after_the_batch_does_not_get_it_dropped(m: Ppas) -> None:
    devs = fleet(m, 2)
    m.mine(INTERVAL_END)
    (a, ka), (b, _) = devs
    batch = batch_tx(BOB, T0, entries(devs), nonce=m.nonce(BOB))
    report = report_tx(ALICE, ka, a, T0, KWH, nonce=m.nonce(ALICE))
    m.submit(batch)
    m.submit(report)  # admission cannot see the batch still in the mempool
    before = m.balance(BOB)
    block = m.mine()  # the template: the report first (the same fee on fewer bytes)
    assert [tx.txid for tx in block.txs] == [report.txid, batch.txid]
    m.ok(report, batch)
    assert m.balance(BOB) == before - FEE
    assert m.events(batch, "meter.skipped") == [
        {"event": "meter.skipped", "device": a.hex(), "interval": T0, "code": "duplicate_reading"}
    ]
    assert [e["device"] for e in m.events(batch, "meter.reading")] == [b.hex()]
    ra, rb = records.reading(m.state, a, T0), records.reading(m.state, b, T0)
    assert ra is not None and ra.txid == report.txid
    assert rb is not None and rb.txid == batch.txid


def test_a_device_retired_after_admission_costs_the_batch_its_entry_only(m: Ppas) -> None:
    devs = fleet(m, 2)
    m.mine(INTERVAL_END)
    (a, _), (b, _) = devs
    batch = batch_tx(BOB, T0, entries(devs), nonce=m.nonce(BOB))
    m.submit(batch)
    retire = m.retire_device(ALICE, a)
    m.mine()  # exactly the retirement
    m.ok(retire)
    block = m.mine()  # the template, on a tip where entry 0 now fails
    assert [tx.txid for tx in block.txs] == [batch.txid]
    m.ok(batch)
    assert [(e["device"], e["code"]) for e in m.events(batch, "meter.skipped")] == [
        (a.hex(), "device_not_active")
    ]
    assert [e["device"] for e in m.events(batch, "meter.reading")] == [b.hex()]


def test_the_miner_leaves_out_a_batch_every_entry_of_which_fails(m: Ppas) -> None:
    devs = fleet(m, 2)
    m.mine(INTERVAL_END)
    (a, ka), (b, kb) = devs
    batch = batch_tx(BOB, T0, entries(devs), nonce=m.nonce(BOB))
    m.submit(batch)
    reports = [report_tx(ALICE, ka, a, T0, KWH, nonce=m.nonce(ALICE))]
    m.submit(reports[0])
    reports.append(report_tx(ALICE, kb, b, T0, KWH, nonce=m.nonce(ALICE)))
    m.submit(reports[1])
    block = m.mine()
    assert [tx.txid for tx in block.txs] == [r.txid for r in reports]
    status = m.ledger.tx_status(batch.txid)
    assert status["status"] == "dropped"
    # the code and entry of its first entry
    assert status["error"]["code"] == "duplicate_reading"
    assert status["error"]["message"].startswith(f"entry 0 (device {a.hex()}): ")


# --- block weight: a batch counts its entries toward max_block_txs ------------


def test_a_block_over_the_weight_limit_is_invalid(factory: LedgerFactory) -> None:
    m = open_ppas(factory, max_block_txs=5)
    devs = fleet(m, 3)
    m.mine(INTERVAL_END)
    batch = batch_tx(BOB, T0, entries(devs), nonce=m.nonce(BOB))  # weighs 3
    pays = [transfer(ALICE, DAVE, 1, nonce=m.nonce(ALICE) + i, fee=FEE) for i in range(3)]
    heavy = m.make_block([batch, *pays], m.now + 5)  # 4 txs weighing 6
    with pytest.raises(PowernodeError) as info:
        m.ledger.submit_block(heavy, now=m.now + 5, mono=MONO)
    assert info.value.code == "oversize_block"
    assert "weighs 6 txs" in info.value.message
    assert m.ledger.chain.tip.hash != heavy.hash
    m.connect(m.make_block([batch, *pays[:2]], m.now + 5))  # weighing 5: the limit
    m.ok(batch, *pays[:2])


def test_the_template_stops_at_a_batch_over_the_weight_limit(factory: LedgerFactory) -> None:
    m = open_ppas(factory, max_block_txs=5)
    devs = fleet(m, 3)
    m.mine(INTERVAL_END)
    batch = batch_tx(BOB, T0, entries(devs), nonce=m.nonce(BOB))
    pays = [transfer(ALICE, DAVE, 1, nonce=m.nonce(ALICE) + i, fee=FEE) for i in range(3)]
    for tx in (batch, *pays):
        m.submit(tx)
    block = m.mine()  # the transfers first (higher fee rate), then no room for 3 more
    assert [tx.txid for tx in block.txs] == [tx.txid for tx in pays]
    assert batch.txid in m.ledger.mempool.by_id  # kept for the next block, not dropped
    block = m.mine()
    assert [tx.txid for tx in block.txs] == [batch.txid]
    m.ok(batch)


# --- a meter key the signature rules refuse -----------------------------------

# y = 1 (the identity, order 1), and y = 2**255 - 1 (>= p: not canonical).
SMALL_ORDER_KEY = bytes([1]) + bytes(31)
NON_CANONICAL_KEY = b"\xff" * 31 + b"\x7f"
# R = the identity, S = 0: the equation holds for any message under a
# small-order key, which is why the rules refuse such keys.
IDENTITY_SIG = SMALL_ORDER_KEY + bytes(32)


@pytest.mark.parametrize("bad_key", [SMALL_ORDER_KEY, NON_CANONICAL_KEY])
def test_an_entry_under_a_key_the_signature_rules_refuse(m: Ppas, bad_key: bytes) -> None:
    devs = fleet(m, 2)
    m.mine(INTERVAL_END)
    (a, _), (b, kb) = devs
    forged = [a, KWH, 0, bad_key, IDENTITY_SIG]
    batch = batch_tx(BOB, T0, [forged, batch_entry(kb, b, T0, KWH)], nonce=m.nonce(BOB))
    report = report_tx(
        BOB, kb, a, T0, nonce=m.nonce(BOB), payload=[a, T0, KWH, 0, bad_key, IDENTITY_SIG]
    )
    # decode takes the key (32 bytes, as meter.report's); no device holds it
    # (device.register refuses it), so admission, which runs the reading
    # rules before signatures, refuses with wrong_meter_key, naming the entry
    exc = refusal(m, batch)
    assert exc.code == "wrong_meter_key"
    assert exc.message.startswith(f"entry 0 (device {a.hex()}): ")
    assert refusal(m, report).code == "wrong_meter_key"
    # in a block the co-signature never verifies: the block is invalid, as
    # for any bad co-signature, not the entry skipped
    for tx in (batch, report):
        with pytest.raises(BadMeterSignature):
            verify_tx(tx)
        block = m.make_block([tx], m.now + 5)
        with pytest.raises(PowernodeError) as info:
            m.ledger.submit_block(block, now=m.now + 5, mono=MONO)
        assert info.value.code == "bad_meter_signature"
        assert m.ledger.chain.tip.hash != block.hash


# --- the u64 bound of an entry's amounts --------------------------------------


@pytest.mark.parametrize("field", [1, 2])  # produced_wh, consumed_wh
def test_an_entry_amount_is_an_unsigned_64_bit_integer(field: int) -> None:
    handler = HANDLERS["meter.batch"]
    top = [*GOOD]
    top[field] = 2**64 - 1
    p = handler.decode([T0, [top]])  # the largest u64: taken at decode
    assert (p.readings[0].produced_wh, p.readings[0].consumed_wh)[field - 1] == 2**64 - 1
    over = [*GOOD]
    over[field] = 2**64
    with pytest.raises(PowernodeError) as info:
        handler.decode([T0, [over]])
    assert info.value.code == "bad_payload"


# --- a batch is its readings as reports ---------------------------------------


def _same_but_txids(value: Any, txids: set[bytes]) -> Any:
    """``value`` with every tx id in it (a reading's, a certificate's tx)
    replaced by one marker, nested tuples and lists included."""
    if isinstance(value, bytes):
        return b"<tx>" if value in txids else value
    if isinstance(value, tuple | list):
        return tuple(_same_but_txids(v, txids) for v in value)
    return value


def test_readings_as_one_batch_or_as_reports_make_the_same_state(m: Ppas) -> None:
    gen = fleet(m, 3)
    load_meter = METERS[4]
    load = m.active_device(BOB, load_meter, kind="consumption")
    (a, _), (b, _), _ = gen
    m.active(ALICE, BOB, device=a)
    m.active(ALICE, DAVE, device=b, share_bps=5_000)
    m.mine(INTERVAL_END)
    readings = [(d, k, (i + 1) * 10 * KWH, 0) for i, (d, k) in enumerate(gen)]
    readings.append((load, load_meter, 0, 7 * KWH))
    n = m.nonce(CAROL)
    batch = batch_tx(CAROL, T0, [batch_entry(k, d, T0, p, c) for d, k, p, c in readings], nonce=n)
    reports = [
        report_tx(CAROL, k, d, T0, p, c, nonce=n + i) for i, (d, k, p, c) in enumerate(readings)
    ]
    at = m.now + 5
    as_batch, _ = m.execute([batch], at)
    as_reports, _ = m.execute(reports, at)
    assert all(r.ok for r in (*as_batch.receipts, *as_reports.receipts))
    txids = {batch.txid, *(r.txid for r in reports)}

    def engines_state(changed: dict[Any, Any]) -> dict[Any, Any]:
        # accounts differ by design: one fee and one nonce against four
        return {
            _same_but_txids(k, txids): _same_but_txids(v, txids)
            for k, v in changed.items()
            if k[0] != ACCOUNT_NS
        }

    got = engines_state(as_batch.changed)
    assert got == engines_state(as_reports.changed)
    namespaces = {k[0] for k in got}
    assert {records.READING_NS, records.TOTALS_NS} <= namespaces
    assert len(namespaces) >= 4  # certificates and the PPAs' deliveries too

    def events(receipts: Any) -> list[Any]:
        return sorted(repr(_same_but_txids(tuple(sorted(e.items())), txids))
                      for r in receipts for e in r.events)  # fmt: skip

    evs = events(as_batch.receipts)
    assert evs == events(as_reports.receipts)
    assert sum("ppa.delivered" in e for e in evs) == 2
    assert sum("cert.issued" in e for e in evs) == 3
    # the one difference the relayer sees: one fee instead of four
    acct = as_batch.changed[(ACCOUNT_NS, CAROL.address)]
    acct_reports = as_reports.changed[(ACCOUNT_NS, CAROL.address)]
    assert acct.balance - acct_reports.balance == 3 * FEE
    assert acct_reports.nonce - acct.nonce == 3


def test_a_full_batch_of_100_entries_in_a_block(m: Ppas) -> None:
    meters = [
        KeyPair.from_seed(b"full-batch-meter" + i.to_bytes(16, "big"))
        for i in range(MAX_BATCH_READINGS)
    ]
    regs = [m.register_device(ALICE, k) for k in meters]
    m.mine()
    m.ok(*regs)
    apps = [m.approve(r.txid) for r in regs]
    m.mine()
    m.ok(*apps)
    devs = sorted((r.txid, k) for r, k in zip(regs, meters, strict=True))
    m.mine(INTERVAL_END)
    batch = batch_tx(BOB, T0, entries(devs, 1), nonce=m.nonce(BOB))
    assert len(batch.payload[1]) == MAX_BATCH_READINGS
    m.submit(batch)
    before = m.balance(BOB)
    block = m.mine()  # the miner's template: 100 entries weigh 100 of max_block_txs
    assert [tx.txid for tx in block.txs] == [batch.txid]
    m.ok(batch)
    assert m.balance(BOB) == before - FEE
    assert len(m.events(batch, "meter.reading")) == MAX_BATCH_READINGS
    assert len(m.events(batch, "cert.issued")) == MAX_BATCH_READINGS
    assert m.events(batch, "meter.skipped") == []
    for i, (d, _) in enumerate(devs):
        r = records.reading(m.state, d, T0)
        assert r is not None and (r.txid, r.produced_wh) == (batch.txid, i + 1)
        assert m.cert(root_id(d, T0))["wh"] == i + 1
