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
from powernode.engines.metering import records
from powernode.engines.metering.batch import MAX_BATCH_READINGS
from powernode.node.sigworker import check_request, decode_reply
from powernode.node.verify import encode_request
from powernode.state.registry import verify_tx
from tests.unit.cert_helpers import issue_tx, root_id
from tests.unit.helpers import MONO, LedgerFactory, transfer
from tests.unit.market_helpers import ALICE, BOB, CAROL, DAVE, FEE, KWH, UNIT, market_tx
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


def test_the_miner_leaves_out_a_batch_an_earlier_tx_made_a_duplicate(m: Ppas) -> None:
    devs = fleet(m, 2)
    m.mine(INTERVAL_END)
    (a, ka), _ = devs
    report = report_tx(ALICE, ka, a, T0, KWH, nonce=m.nonce(ALICE))
    batch = batch_tx(BOB, T0, entries(devs), nonce=m.nonce(BOB))
    m.submit(report)
    m.submit(batch)  # admission cannot see the report still in the mempool
    block = m.mine()  # the template: the report first (the same fee on fewer bytes)
    assert [tx.txid for tx in block.txs] == [report.txid]
    status = m.ledger.tx_status(batch.txid)
    assert status["status"] == "dropped" and status["error"]["code"] == "duplicate_reading"
