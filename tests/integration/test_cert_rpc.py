"""The metering and certificate RPC methods on an in-process dev node, over
its real socket: the seed scenario (a solar device in Beijing, a 100 kWh
reading, a 40 kWh split transferred and retired) read back through every
method, and bad params refused with typed errors.

Also the client's builders for these tx types and its certificate id
derivations, which the CLI and the demo build on.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from powernode.client import (
    RpcError,
    build_cert_issue,
    build_cert_retire,
    build_cert_transfer,
    build_device_approve,
    build_device_register,
    build_device_retire,
    build_meter_report,
    build_register,
    cert_id_of,
    child_cert_id,
)
from powernode.core.crypto import KeyPair
from powernode.core.tx import Transaction, sign_tx
from powernode.engines.metering import reading_message
from tests.integration.conftest import DevNode, authority_node

INVALID_PARAMS, NOT_FOUND = -32602, -32004
INTERVAL = 900


@pytest.fixture
async def cert_node(tmp_path: Path, users: list[KeyPair]) -> AsyncIterator[DevNode]:
    """A dev node (miner off): users[3] is the only certificate authority."""
    async with authority_node(tmp_path, users, interval_seconds=INTERVAL) as dev:
        yield dev


async def mine(dev: DevNode, txs: list[Transaction]) -> list[dict[str, Any]]:
    """Submit, mine one block, and return each tx's confirmed status (ok)."""
    for tx in txs:
        await dev.rpc.call("tx.submit", {"raw": tx.raw.hex()})
    await dev.rpc.call("dev.mine", {"blocks": 1})
    out = []
    for tx in txs:
        st = await dev.rpc.call("tx.get", {"id": tx.txid.hex()})
        assert st["status"] == "confirmed" and st["receipt"]["status"] == "ok", st
        out.append(st)
    return out


async def error_of(dev: DevNode, method: str, params: Any) -> tuple[int, str]:
    with pytest.raises(RpcError) as info:
        await dev.rpc.call(method, params)
    return info.value.code, info.value.reason


class Seed:
    """Issue 10's seed scenario, through the client's builders."""

    def __init__(self, dev: DevNode) -> None:
        self.dev = dev
        self.producer, self.consumer, self.outsider, self.authority = dev.users
        self.meter = KeyPair.generate()
        self.consumer_meter = KeyPair.generate()
        self.nonces: dict[bytes, int] = {}

    def nonce(self, key: KeyPair) -> int:
        n = self.nonces.get(key.address, 0)
        self.nonces[key.address] = n + 1
        return n

    async def run(self) -> None:
        dev, cid = self.dev, self.dev.chain_id
        await mine(
            dev,
            [
                build_register(
                    k, chain_id=cid, nonce=self.nonce(k), role=r, location=loc, capacity_w=w
                )
                for k, r, loc, w in (
                    (self.producer, "producer", "Beijing", 1_000_000),
                    (self.consumer, "consumer", "Shanghai", 500_000),
                )
            ],
        )
        self.register = build_device_register(
            self.producer,
            chain_id=cid,
            nonce=self.nonce(self.producer),
            kind="generation",
            source="solar",
            capacity_w=1_000_000,
            location="Beijing",
            carbon_intensity=50,
            meter_pubkey=self.meter.pubkey,
        )
        self.register_consumer = build_device_register(
            self.consumer,
            chain_id=cid,
            nonce=self.nonce(self.consumer),
            kind="consumption",
            source="none",
            capacity_w=500_000,
            location="Shanghai",
            carbon_intensity=0,
            meter_pubkey=self.consumer_meter.pubkey,
        )
        await mine(dev, [self.register, self.register_consumer])
        self.device = self.register.txid
        self.consumer_device = self.register_consumer.txid
        await mine(
            dev,
            [
                build_device_approve(
                    self.authority,
                    chain_id=cid,
                    nonce=self.nonce(self.authority),
                    device_id=d,
                )
                for d in (self.device, self.consumer_device)
            ],
        )
        params = await dev.rpc.call("cert.params")
        # The latest interval ended by the chain's clock.
        self.interval = params["now"] // INTERVAL * INTERVAL - INTERVAL
        self.report = build_meter_report(
            self.producer,
            self.meter,
            chain_id=cid,
            nonce=self.nonce(self.producer),
            device_id=self.device,
            interval_start=self.interval,
            produced_wh=100_000,
            consumed_wh=0,
        )
        # Relayed by someone else: anyone may pay for a reading.
        self.consumer_report = build_meter_report(
            self.outsider,
            self.consumer_meter,
            chain_id=cid,
            nonce=self.nonce(self.outsider),
            device_id=self.consumer_device,
            interval_start=self.interval,
            produced_wh=0,
            consumed_wh=60_000,
        )
        (self.report_status, _) = await mine(dev, [self.report, self.consumer_report])
        self.root = cert_id_of(self.device, self.interval)
        self.transfer = build_cert_transfer(
            self.producer,
            chain_id=cid,
            nonce=self.nonce(self.producer),
            cert_id=self.root,
            to=self.consumer.address,
            wh=40_000,
        )
        await mine(dev, [self.transfer])
        self.child = child_cert_id(self.root, self.transfer.txid)
        self.retire = build_cert_retire(
            self.consumer,
            chain_id=cid,
            nonce=self.nonce(self.consumer),
            cert_id=self.child,
            wh=40_000,
            beneficiary="consumer_001",
            purpose="Shanghai",
            period_start=self.interval,
            period_end=self.interval + INTERVAL,
        )
        await mine(dev, [self.retire])


async def test_seed_scenario_read_back(cert_node: DevNode) -> None:
    dev, rpc = cert_node, cert_node.rpc
    s = Seed(dev)
    await s.run()
    producer, consumer = s.producer.address.hex(), s.consumer.address.hex()
    events = s.report_status["receipt"]["events"]
    assert {"event": "cert.issued", "cert": s.root.hex(), "wh": 100_000} in events

    params = await rpc.call("cert.params")
    assert params["authorities"] == [s.authority.address.hex()]
    assert (params["interval_seconds"], params["reading_window"]) == (INTERVAL, 1800)
    assert params["validity"] == 604800 and params["green_threshold"] == 100
    assert params["sources"] == ["solar", "wind", "hydro"]
    assert params["now"] >= params["time"]

    # Devices.
    d = await rpc.call("device.get", {"device": s.device.hex()})
    assert d == {
        **d,
        "id": s.device.hex(),
        "owner": producer,
        "kind": "generation",
        "source": "solar",
        "capacity_w": 1_000_000,
        "location": "Beijing",
        "carbon_intensity": 50,
        "meter_pubkey": s.meter.pubkey.hex(),
        "status": "active",
    }
    assert await rpc.call("device.get", [s.device.hex()]) == d
    assert await rpc.call("device.get", {"device": "0x" + s.device.hex()}) == d
    everyone = await rpc.call("device.list")
    # Both registered in one block: ordered by height, then id.
    assert [x["id"] for x in everyone] == sorted([s.device.hex(), s.consumer_device.hex()])
    mine_ = await rpc.call("device.list", {"owner": producer})
    assert mine_ == [d]
    assert await rpc.call("device.list", [consumer, "active"]) == [
        await rpc.call("device.get", [s.consumer_device.hex()])
    ]
    assert await rpc.call("device.list", {"status": "pending"}) == []
    assert await rpc.call("device.list", {"owner": s.outsider.address.hex()}) == []

    # Readings.
    (r,) = await rpc.call("meter.readings", {"device": s.device.hex()})
    assert r == {
        **r,
        "device": s.device.hex(),
        "interval": s.interval,
        "produced_wh": 100_000,
        "consumed_wh": 0,
        "relayer": producer,
        "txid": s.report.txid.hex(),
    }
    (rc,) = await rpc.call("meter.readings", [s.consumer_device.hex()])
    assert rc["consumed_wh"] == 60_000 and rc["relayer"] == s.outsider.address.hex()
    window = {"device": s.device.hex(), "start": s.interval, "end": s.interval + INTERVAL}
    assert await rpc.call("meter.readings", window) == [r]
    assert await rpc.call("meter.readings", {**window, "end": s.interval}) == []
    assert await rpc.call("meter.readings", {**window, "start": s.interval + 1}) == []

    # Certificates.
    root = await rpc.call("cert.get", {"cert": s.root.hex()})
    assert root == {
        **root,
        "id": s.root.hex(),
        "owner": producer,
        "producer": producer,
        "device": s.device.hex(),
        "source": "solar",
        "location": "Beijing",
        "carbon_intensity": 50,
        "type": "green",
        "interval_start": s.interval,
        "interval_seconds": INTERVAL,
        "wh": 100_000,
        "remaining_wh": 60_000,
        "status": "active",
    }
    child = await rpc.call("cert.get", [s.child.hex()])
    assert child == {
        **child,
        "id": s.child.hex(),
        "owner": consumer,
        "producer": producer,
        "wh": 40_000,
        "remaining_wh": 40_000,
        "status": "retired",
        "parent": s.root.hex(),
        "source": "solar",
        "location": "Beijing",
    }
    assert child["claim"]["beneficiary"] == "consumer_001"
    assert child["claim"]["purpose"] == "Shanghai"

    ids = lambda cs: [c["id"] for c in cs]  # noqa: E731
    assert set(ids(await rpc.call("cert.list"))) == {s.root.hex(), s.child.hex()}
    assert ids(await rpc.call("cert.list", {"owner": consumer})) == [s.child.hex()]
    assert ids(await rpc.call("cert.list", {"status": "active"})) == [s.root.hex()]
    assert ids(await rpc.call("cert.list", {"status": "retired"})) == [s.child.hex()]
    assert await rpc.call("cert.list", {"status": "expired"}) == []
    assert await rpc.call("cert.list", {"source": "wind"}) == []
    assert len(await rpc.call("cert.list", {"device": s.device.hex(), "source": "solar"})) == 2
    assert await rpc.call("cert.list", {"device": s.consumer_device.hex()}) == []
    assert len(await rpc.call("cert.list", {"start": s.interval, "end": s.interval + 1})) == 2
    assert await rpc.call("cert.list", {"start": s.interval + INTERVAL}) == []
    assert await rpc.call("cert.list", {"end": s.interval}) == []
    assert ids(await rpc.call("cert.list", [producer, "active"])) == [s.root.hex()]

    # Lineage: the reading that issued the root, the split, the transfer, the retirement.
    t = await rpc.call("cert.trace", {"cert": s.child.hex()})
    assert t["root"] == s.root.hex() and t["cert"] == s.child.hex()
    kinds = [(x["kind"], x["cert"]) for x in t["steps"]]
    # The split is shown once, as the first step of the part it made.
    assert kinds == [
        ("reading", s.root.hex()),
        ("split", s.child.hex()),
        ("transfer", s.child.hex()),
        ("retire", s.child.hex()),
    ], kinds
    reading, split, transfer, retire = t["steps"]
    assert reading["txid"] == s.report.txid.hex() and reading["wh"] == 100_000
    assert reading["other"] == s.device.hex()
    assert split["other"] == s.root.hex() and split["txid"] == s.transfer.txid.hex()
    assert (transfer["from"], transfer["to"], transfer["wh"]) == (producer, consumer, 40_000)
    assert retire["note"] == "consumer_001" and retire["txid"] == s.retire.txid.hex()
    heights = [x["height"] for x in t["steps"]]
    assert heights == sorted(heights)
    assert all(x["time"] > 0 for x in t["steps"])
    root_trace = await rpc.call("cert.trace", [s.root.hex()])
    assert [x["kind"] for x in root_trace["steps"]] == ["reading", "split"]

    v = await rpc.call("cert.verify", {"cert": s.root.hex()})
    assert v == {
        **v,
        "valid": True,
        "source": "solar",
        "carbon_intensity": 50,
        "type": "green",
        "location": "Beijing",
        "interval_start": s.interval,
        "interval_end": s.interval + INTERVAL,
        "status": "active",
        "remaining_wh": 60_000,
    }
    assert v["trace_length"] == len(root_trace["steps"])
    vc = await rpc.call("cert.verify", [s.child.hex()])
    assert (vc["status"], vc["remaining_wh"], vc["trace_length"]) == ("retired", 40_000, 4)
    assert vc["valid"] and vc["problems"] == [] and vc["root"] == s.root.hex()

    # Hour by hour: 60 kWh consumed, 40 kWh retired for it, 40 matched.
    span = {"participant": consumer, "start": s.interval - INTERVAL, "end": s.interval + INTERVAL}
    cfe = await rpc.call("cert.cfe", span)
    assert cfe == {
        **cfe,
        "consumed_wh": 60_000,
        "retired_wh": 40_000,
        "matched_wh": 40_000,
        "matched_bps": 6666,
    }
    # Only intervals with a reading or a retirement are listed.
    assert cfe["intervals"] == [
        {
            "interval": s.interval,
            "consumed_wh": 60_000,
            "retired_wh": 40_000,
            "matched_wh": 40_000,
        }
    ]
    assert await rpc.call("cert.cfe", [consumer, span["start"], span["end"]]) == cfe
    nothing = await rpc.call("cert.cfe", {**span, "participant": producer})
    assert (nothing["consumed_wh"], nothing["retired_wh"], nothing["matched_wh"]) == (0, 0, 0)


async def test_retired_device_and_manual_issue(cert_node: DevNode) -> None:
    """cert.issue by the authority for an interval with no reading; the
    device retired by its owner shows as retired."""
    dev, rpc = cert_node, cert_node.rpc
    s = Seed(dev)
    await s.run()
    cid = dev.chain_id
    manual = s.interval - INTERVAL
    issue = build_cert_issue(
        s.authority,
        chain_id=cid,
        nonce=s.nonce(s.authority),
        device_id=s.device,
        interval_start=manual,
        wh=5_000,
    )
    await mine(dev, [issue])
    got = await rpc.call("cert.get", {"cert": cert_id_of(s.device, manual).hex()})
    assert (got["owner"], got["wh"], got["interval_start"]) == (
        s.producer.address.hex(),
        5_000,
        manual,
    )
    t = await rpc.call("cert.trace", {"cert": got["id"]})
    assert [x["kind"] for x in t["steps"]] == ["issue"]

    await mine(
        dev,
        [
            build_device_retire(
                s.producer, chain_id=cid, nonce=s.nonce(s.producer), device_id=s.device
            )
        ],
    )
    assert (await rpc.call("device.get", [s.device.hex()]))["status"] == "retired"
    assert [x["id"] for x in await rpc.call("device.list", {"status": "retired"})] == [
        s.device.hex()
    ]


async def test_bad_params_are_typed(cert_node: DevNode) -> None:
    dev = cert_node
    addr = dev.users[0].address.hex()
    unknown = "ab" * 32
    assert await error_of(dev, "device.get", {"device": unknown}) == (NOT_FOUND, "unknown_device")
    assert await error_of(dev, "meter.readings", {"device": unknown}) == (
        NOT_FOUND,
        "unknown_device",
    )
    for method in ("cert.get", "cert.trace", "cert.verify"):
        assert await error_of(dev, method, {"cert": unknown}) == (NOT_FOUND, "unknown_cert")
        assert await error_of(dev, method, [unknown]) == (NOT_FOUND, "unknown_cert")

    now = int(time.time()) // INTERVAL * INTERVAL
    bad: list[tuple[str, Any, str]] = [
        ("device.get", {}, "invalid_params"),
        ("device.get", {"device": "zz" * 32}, "invalid_params"),
        ("device.get", {"device": "00" * 31}, "invalid_params"),
        ("device.get", {"device": 5}, "invalid_params"),
        ("device.get", [None], "invalid_params"),
        ("device.list", {"owner": "abcd"}, "invalid_params"),
        ("device.list", {"owner": 7}, "invalid_params"),
        ("device.list", {"status": "open"}, "invalid_params"),
        ("device.list", {"status": ["active"]}, "invalid_params"),
        ("meter.readings", {}, "invalid_params"),
        ("meter.readings", {"device": unknown, "start": -1}, "invalid_params"),
        ("meter.readings", {"device": unknown, "start": "0"}, "invalid_params"),
        ("meter.readings", {"device": unknown, "end": 1.5}, "invalid_params"),
        ("meter.readings", {"device": unknown, "start": 10, "end": 5}, "invalid_params"),
        ("cert.get", {}, "invalid_params"),
        ("cert.get", {"cert": "00" * 33}, "invalid_params"),
        ("cert.trace", {"cert": True}, "invalid_params"),
        ("cert.verify", {"cert": "0x"}, "invalid_params"),
        ("cert.list", {"owner": "xyz"}, "invalid_params"),
        ("cert.list", {"status": "pending"}, "invalid_params"),
        ("cert.list", {"device": "00"}, "invalid_params"),
        ("cert.list", {"source": "coal"}, "invalid_params"),
        ("cert.list", {"source": "none"}, "invalid_params"),
        ("cert.list", {"start": 900, "end": 0}, "invalid_params"),
        ("cert.list", {"start": True}, "invalid_params"),
        ("cert.cfe", {}, "invalid_params"),
        ("cert.cfe", {"participant": addr}, "invalid_params"),
        ("cert.cfe", {"participant": addr, "start": now}, "invalid_params"),
        ("cert.cfe", {"participant": "no", "start": now, "end": now + 900}, "invalid_params"),
        ("cert.cfe", {"participant": addr, "start": now, "end": now}, "invalid_params"),
        ("cert.cfe", {"participant": addr, "start": now + 900, "end": now}, "invalid_params"),
        ("cert.cfe", {"participant": addr, "start": -900, "end": now}, "invalid_params"),
    ]
    for method, params, code in bad:
        assert await error_of(dev, method, params) == (INVALID_PARAMS, code), (method, params)
    # Any range is fine: the answer lists only intervals the chain has data for.
    everything = {"participant": addr, "start": 0, "end": 2**62}
    assert (await dev.rpc.call("cert.cfe", everything))["intervals"] == []


async def test_a_reading_signed_by_another_key_is_refused_with_its_code(
    cert_node: DevNode,
) -> None:
    """tx.submit names the co-signature that failed (``bad_meter_signature``),
    not the sender's, and the pool stays without it."""
    dev = cert_node
    s = Seed(dev)
    await s.run()
    forged = build_meter_report(
        s.producer,
        KeyPair.generate(),  # not the device's meter
        chain_id=dev.chain_id,
        nonce=s.nonce(s.producer),
        device_id=s.device,
        interval_start=s.interval - INTERVAL,
        produced_wh=1_000,
        consumed_wh=0,
    )
    # The payload must carry the device's key (else wrong_meter_key comes
    # first): keep it, with the other key's signature.
    payload = [*forged.payload[:4], s.meter.pubkey, forged.payload[5]]
    tx = sign_tx(
        s.producer,
        chain_id=dev.chain_id,
        tx_type="meter.report",
        nonce=forged.nonce,
        fee=forged.fee,
        payload=payload,
    )
    with pytest.raises(RpcError) as info:
        await dev.rpc.call("tx.submit", {"raw": tx.raw.hex()})
    assert info.value.reason == "bad_meter_signature"
    with pytest.raises(RpcError):  # not pending: the pool did not take it
        await dev.rpc.call("tx.get", {"id": tx.txid.hex()})


async def test_a_batch_is_refused_over_rpc_naming_its_entry(cert_node: DevNode) -> None:
    """tx.submit of a ``meter.batch``: the first entry that breaks a rule
    refuses the whole tx with its code, the message naming the entry; one
    bad co-signature refuses it with ``bad_meter_signature``."""
    dev = cert_node
    s = Seed(dev)
    await s.run()
    start = s.interval - INTERVAL  # ended, no reading yet

    def entry(device: bytes, meter: KeyPair, produced: int, consumed: int) -> list[Any]:
        msg = reading_message(dev.chain_id, device, start, produced, consumed)
        return [device, produced, consumed, meter.pubkey, meter.sign(msg)]

    nonce = s.nonce(s.producer)  # a refused tx leaves the nonce unused

    def batch(entries: list[list[Any]]) -> Transaction:
        return sign_tx(
            s.producer, chain_id=dev.chain_id, tx_type="meter.batch",
            nonce=nonce, fee=1000, payload=[start, sorted(entries)],
        )  # fmt: skip

    good = [entry(s.device, s.meter, 1_000, 0), entry(s.consumer_device, s.consumer_meter, 0, 9)]
    # the consumption device reports production: wrong_device_kind
    wrong = [good[0], entry(s.consumer_device, s.consumer_meter, 5, 0)]
    tx = batch(wrong)
    index = sorted(wrong).index(wrong[1])
    with pytest.raises(RpcError) as info:
        await dev.rpc.call("tx.submit", {"raw": tx.raw.hex()})
    assert info.value.reason == "wrong_device_kind"
    assert f"entry {index} (device {s.consumer_device.hex()})" in str(info.value)
    forged = [good[0], [*good[1][:4], KeyPair.generate().sign(b"x")]]
    with pytest.raises(RpcError) as info:
        await dev.rpc.call("tx.submit", {"raw": batch(forged).raw.hex()})
    assert info.value.reason == "bad_meter_signature"
    (status,) = await mine(dev, [batch(good)])
    assert [e["event"] for e in status["receipt"]["events"]][:2] == ["meter.reading"] * 2
