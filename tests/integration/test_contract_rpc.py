"""The PPA and declarative contract RPC methods on an in-process dev node,
over its real socket: the seed's PPA (1,000 kWh at 0.50 over 30 days) bound
to a solar device, accepted, funded and delivered from a reading; a PPA
without a device delivered by claim and confirmation; a rejected one; the
README's two contract templates executed; everything read back through
``ppa.get``, ``ppa.list``, ``contract.get`` and ``contract.list``, and bad
params refused with typed errors.

Also the client's builders for these tx types, which the CLI and the demo
build on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from powernode.client import (
    RpcError,
    build_cert_retire,
    build_contract_create,
    build_contract_execute,
    build_contract_id_tx,
    build_device_approve,
    build_device_register,
    build_meter_report,
    build_ppa_accept,
    build_ppa_confirm,
    build_ppa_deliver,
    build_ppa_fund,
    build_ppa_propose,
    build_ppa_reject,
    build_register,
    cert_id_of,
)
from powernode.core.crypto import KeyPair
from powernode.core.tx import Transaction
from powernode.engines.contracts.contract_records import contract_address
from tests.integration.conftest import DevNode, authority_node

INVALID_PARAMS, NOT_FOUND = -32602, -32004
INTERVAL = 900
DAY = 86_400


@pytest.fixture
async def contract_node(tmp_path: Path, users: list[KeyPair]) -> AsyncIterator[DevNode]:
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


class Scenario:
    """Participants, a solar device and a consumer's meter, approved; the
    latest interval ended by the chain's clock, which every reading uses."""

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

    def kw(self, key: KeyPair) -> dict[str, Any]:
        return {"chain_id": self.dev.chain_id, "nonce": self.nonce(key)}

    async def setup(self) -> None:
        dev = self.dev
        await mine(
            dev,
            [
                build_register(k, **self.kw(k), role=r, location=loc, capacity_w=w)
                for k, r, loc, w in (
                    (self.producer, "producer", "Beijing", 1_000_000),
                    (self.consumer, "consumer", "Shanghai", 500_000),
                )
            ],
        )
        solar = build_device_register(
            self.producer, **self.kw(self.producer), kind="generation", source="solar",
            capacity_w=1_000_000, location="Beijing", carbon_intensity=50,
            meter_pubkey=self.meter.pubkey,
        )  # fmt: skip
        load = build_device_register(
            self.consumer, **self.kw(self.consumer), kind="consumption", source="none",
            capacity_w=500_000, location="Shanghai", carbon_intensity=0,
            meter_pubkey=self.consumer_meter.pubkey,
        )  # fmt: skip
        await mine(dev, [solar, load])
        self.device, self.load = solar.txid, load.txid
        await mine(
            dev,
            [
                build_device_approve(self.authority, **self.kw(self.authority), device_id=d)
                for d in (self.device, self.load)
            ],
        )
        params = await dev.rpc.call("cert.params")
        self.now = params["now"]
        self.interval = self.now // INTERVAL * INTERVAL - INTERVAL


async def test_ppa_lifecycle_read_back(contract_node: DevNode) -> None:
    dev, rpc = contract_node, contract_node.rpc
    s = Scenario(dev)
    await s.setup()
    producer, consumer = s.producer.address.hex(), s.consumer.address.hex()

    # The seed's contract_001, bound to the solar device: half its production.
    seed = build_ppa_propose(
        s.producer, **s.kw(s.producer), buyer=s.consumer.address, device_id=s.device,
        share_bps=5_000, total_wh=1_000_000, price=500_000, start=s.interval,
        duration_days=30, period_seconds=DAY, accept_deadline=s.now + 3600,
    )  # fmt: skip
    # One without a device (claimed deliveries) and one the buyer rejects.
    manual = build_ppa_propose(
        s.producer, **s.kw(s.producer), buyer=s.consumer.address, device_id=None,
        share_bps=0, total_wh=10_000, price=400_000, start=s.interval,
        duration_days=1, period_seconds=DAY, accept_deadline=s.now + 3600,
    )  # fmt: skip
    refused = build_ppa_propose(
        s.producer, **s.kw(s.producer), buyer=s.consumer.address, device_id=None,
        share_bps=0, total_wh=10_000, price=400_000, start=s.interval,
        duration_days=1, period_seconds=DAY, accept_deadline=s.now + 3600,
    )  # fmt: skip
    (proposed, _, _) = await mine(dev, [seed, manual, refused])
    assert proposed["receipt"]["events"][0] == {
        "event": "ppa.proposed",
        "ppa": seed.txid.hex(),
        "seller": producer,
        "buyer": consumer,
    }
    p = await rpc.call("ppa.get", {"id": seed.txid.hex()})
    assert (p["status"], p["escrow"], p["delivered_wh"], p["days_remaining"]) == (
        "proposed",
        0,
        0,
        30,
    )
    await mine(
        dev,
        [
            build_ppa_accept(s.consumer, **s.kw(s.consumer), ppa_id=seed.txid),
            build_ppa_accept(s.consumer, **s.kw(s.consumer), ppa_id=manual.txid),
            build_ppa_reject(s.consumer, **s.kw(s.consumer), ppa_id=refused.txid),
        ],
    )
    first_day = 1_000_000 * DAY // (30 * DAY) * 500_000 // 1000  # a day's share at 0.50
    assert (await rpc.call("ppa.get", [seed.txid.hex()]))["escrow"] == first_day
    await mine(
        dev, [build_ppa_fund(s.consumer, **s.kw(s.consumer), ppa_id=seed.txid, amount=50_000_000)]
    )

    # A 200 kWh reading: the PPA takes 50%, 100 kWh, paid in the same tx.
    report = build_meter_report(
        s.producer, s.meter, **s.kw(s.producer), device_id=s.device,
        interval_start=s.interval, produced_wh=200_000, consumed_wh=0,
    )  # fmt: skip
    (st,) = await mine(dev, [report])
    (delivered,) = [e for e in st["receipt"]["events"] if e["event"] == "ppa.delivered"]
    assert delivered == {
        **delivered,
        "ppa": seed.txid.hex(),
        "seq": 0,
        "wh": 100_000,
        "interval": s.interval,
        "paid": 50_000_000,
        "cert_wh": 100_000,
        "status": "active",
    }
    p = await rpc.call("ppa.get", {"id": seed.txid.hex()})
    assert p == {
        **p,
        "id": seed.txid.hex(),
        "seller": producer,
        "buyer": consumer,
        "device": s.device.hex(),
        "share_bps": 5_000,
        "total_wh": 1_000_000,
        "delivered_wh": 100_000,
        "progress_bps": 1_000,
        "price": 500_000,
        "paid": 50_000_000,
        "escrow": first_day + 50_000_000 - 50_000_000,
        "status": "active",
        "duration_days": 30,
    }
    assert 29 <= p["days_remaining"] <= 30
    (d,) = p["deliveries"]
    assert (d["kind"], d["wh"], d["interval_start"], d["value"], d["cert_wh"]) == (
        "metered",
        100_000,
        s.interval,
        50_000_000,
        100_000,
    )
    cert = await rpc.call("cert.get", {"cert": d["cert"]})
    assert (cert["owner"], cert["wh"], cert["device"]) == (consumer, 100_000, s.device.hex())

    # A claimed delivery, confirmed by the buyer.
    await mine(
        dev,
        [
            build_ppa_deliver(
                s.producer, **s.kw(s.producer), ppa_id=manual.txid, wh=4_000,
                interval_start=s.interval,
            )
        ],
    )  # fmt: skip
    m = await rpc.call("ppa.get", {"id": manual.txid.hex()})
    assert (m["pending_wh"], m["delivered_wh"], m["deliveries"][0]["status"]) == (
        4_000,
        0,
        "pending",
    )
    await mine(
        dev,
        [build_ppa_confirm(s.consumer, **s.kw(s.consumer), ppa_id=manual.txid, delivery_seq=0)],
    )
    m = await rpc.call("ppa.get", {"id": manual.txid.hex()})
    assert (m["pending_wh"], m["delivered_wh"], m["paid"], m["progress_bps"]) == (
        0,
        4_000,
        4_000 * 400_000 // 1000,
        4_000,
    )
    assert m["device"] is None and m["deliveries"][0]["status"] == "confirmed"

    # Listings: by party and by status, in proposal order.
    ids = lambda ps: [x["id"] for x in ps]  # noqa: E731
    ordered = sorted([seed.txid.hex(), manual.txid.hex(), refused.txid.hex()])
    assert ids(await rpc.call("ppa.list")) == ordered
    assert ids(await rpc.call("ppa.list", {"party": consumer})) == ordered
    assert await rpc.call("ppa.list", {"party": s.outsider.address.hex()}) == []
    assert ids(await rpc.call("ppa.list", {"status": "rejected"})) == [refused.txid.hex()]
    assert ids(await rpc.call("ppa.list", [producer, "active"])) == sorted(
        [seed.txid.hex(), manual.txid.hex()]
    )
    listed = {x["id"]: x for x in await rpc.call("ppa.list")}
    assert "deliveries" not in listed[seed.txid.hex()]
    assert {k: v for k, v in p.items() if k != "deliveries"} == listed[seed.txid.hex()]

    # Bad params, unknown ids.
    assert await error_of(dev, "ppa.get", {"id": "ab" * 32}) == (NOT_FOUND, "unknown_ppa")
    assert await error_of(dev, "ppa.get", {"id": "abcd"}) == (INVALID_PARAMS, "invalid_params")
    assert await error_of(dev, "ppa.get", {}) == (INVALID_PARAMS, "invalid_params")
    assert await error_of(dev, "ppa.list", {"status": "done"}) == (
        INVALID_PARAMS,
        "invalid_params",
    )
    assert await error_of(dev, "ppa.list", {"party": "xyz"}) == (INVALID_PARAMS, "invalid_params")


async def test_contract_templates_read_back(contract_node: DevNode) -> None:
    dev, rpc = contract_node, contract_node.rpc
    s = Scenario(dev)
    await s.setup()
    consumer, producer = s.consumer.address.hex(), s.producer.address.hex()
    span = (s.interval, s.interval + INTERVAL)

    # Demand response: the operator pays the consumer 5.00 if its meter
    # reports at most 100 kWh in the interval (and reports at all).
    dr = build_contract_create(
        s.authority, **s.kw(s.authority), parties=[s.authority.address, s.consumer.address],
        escrow=5_000_000, expiry=s.now + DAY,
        conditions=[["consumed_at_least", s.load, *span, 1],
                    ["consumed_at_most", s.load, *span, 100_000]],
        actions=[["pay", s.consumer.address, 5_000_000]], fee=3_000,
    )  # fmt: skip
    # Green premium: the consumer pays the producer 2.00 once the producer's
    # certificate of the interval is retired for consumer_001.
    reading = build_meter_report(
        s.producer, s.meter, **s.kw(s.producer), device_id=s.device,
        interval_start=s.interval, produced_wh=100_000, consumed_wh=0,
    )  # fmt: skip
    cert = cert_id_of(s.device, s.interval)
    gp = build_contract_create(
        s.consumer, **s.kw(s.consumer), parties=[s.consumer.address, s.producer.address],
        escrow=2_000_000, expiry=s.now + DAY,
        conditions=[["cert_retired_for", cert, "consumer_001"]],
        actions=[["pay", s.producer.address, 2_000_000]], fee=2_000,
    )  # fmt: skip
    await mine(dev, [dr, reading, gp])
    c = await rpc.call("contract.get", {"id": dr.txid.hex()})
    assert c == {
        **c,
        "id": dr.txid.hex(),
        "address": contract_address(dr.txid).hex(),
        "creator": s.authority.address.hex(),
        "parties": [s.authority.address.hex(), consumer],
        "escrow": 5_000_000,
        "status": "open",
        "conditions": [
            ["consumed_at_least", s.load.hex(), *span, 1],
            ["consumed_at_most", s.load.hex(), *span, 100_000],
        ],
        "actions": [["pay", consumer, 5_000_000]],
        "min_fee": 3_000,
    }
    # Not yet: no consumption reading; refused at the door, naming condition 0.
    early = build_contract_execute(s.consumer, **s.kw(s.consumer), contract_id=dr.txid, fee=3_000)
    with pytest.raises(RpcError) as info:
        await rpc.call("tx.submit", {"raw": early.raw.hex()})
    assert info.value.reason == "condition_failed" and "condition 0" in info.value.message
    s.nonces[s.consumer.address] -= 1
    await mine(
        dev,
        [
            build_meter_report(
                s.outsider, s.consumer_meter, **s.kw(s.outsider), device_id=s.load,
                interval_start=s.interval, produced_wh=0, consumed_wh=60_000,
            )
        ],
    )  # fmt: skip
    await mine(
        dev,
        [
            build_contract_execute(s.consumer, **s.kw(s.consumer), contract_id=dr.txid, fee=3_000),
            build_cert_retire(
                s.producer, **s.kw(s.producer), cert_id=cert, wh=100_000,
                beneficiary="consumer_001", purpose="green premium",
                period_start=s.interval, period_end=s.interval + INTERVAL,
            ),
        ],
    )  # fmt: skip
    await mine(
        dev,
        [build_contract_id_tx(s.producer, **s.kw(s.producer), tx_type="contract.execute",
                              contract_id=gp.txid, fee=2_000)],
    )  # fmt: skip
    for cid in (dr.txid, gp.txid):
        got = await rpc.call("contract.get", [cid.hex()])
        assert (got["status"], got["escrow"]) == ("executed", 0), got

    ids = lambda cs: [x["id"] for x in cs]  # noqa: E731
    both = sorted([dr.txid.hex(), gp.txid.hex()])
    assert sorted(ids(await rpc.call("contract.list"))) == both
    assert sorted(ids(await rpc.call("contract.list", {"party": consumer}))) == both
    assert ids(await rpc.call("contract.list", {"party": producer})) == [gp.txid.hex()]
    assert await rpc.call("contract.list", {"status": "open"}) == []
    assert sorted(ids(await rpc.call("contract.list", [None, "executed"]))) == both

    assert await error_of(dev, "contract.get", {"id": "ab" * 32}) == (
        NOT_FOUND,
        "unknown_contract",
    )
    assert await error_of(dev, "contract.get", ["zz"]) == (INVALID_PARAMS, "invalid_params")
    assert await error_of(dev, "contract.list", {"status": "done"}) == (
        INVALID_PARAMS,
        "invalid_params",
    )
    assert await error_of(dev, "contract.list", {"party": 5}) == (INVALID_PARAMS, "invalid_params")
