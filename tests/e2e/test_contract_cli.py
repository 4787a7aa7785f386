"""The ``powernode`` ppa and contract commands as a user runs them, against a
real mining dev node (``init --dev`` makes the node key a certificate
authority): the seed's PPA bound to a solar device, accepted, funded and
delivered from a reading; a PPA without a device delivered by claim and
confirmation, then terminated by both parties; a rejected one; a
demand-response contract from a terms file executed; then the chain's
refusals as one clean line each."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from powernode.client import RpcClient
from powernode.devnet.datadir import free_port
from powernode.devnet.process import ProcessNode
from tests.e2e.test_cli import assert_user_error, pn

pytestmark = pytest.mark.e2e


def pj(*args: str) -> Any:
    return json.loads(pn(*args, "--json").stdout)


@pytest.fixture
def mining_node(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "node"
    pn("init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port()))
    node = ProcessNode(d, extra_args=("--mine",))
    node.start()
    try:
        yield d
    finally:
        node.stop()


def test_ppa_and_contract_commands(mining_node: Path, tmp_path: Path) -> None:
    d = mining_node
    dd = ("--datadir", str(d))
    wait = ("--wait", "30")

    def ok(*args: str) -> dict[str, Any]:
        r = pj(*args, *dd, *wait)
        assert r["status"] == "confirmed" and r["receipt"]["status"] == "ok", r
        return r

    def err(needle: str, *args: str) -> None:
        assert_user_error(pn(*args, *dd, check=False), needle)

    consumer_key = str(tmp_path / "consumer.key")
    as_consumer = ("--key", consumer_key)
    consumer = pj("keygen", "--out", consumer_key)["address"]
    ok("transfer", "--to", consumer, "--amount", "500")
    producer = pj("balance", *dd)["address"]
    ok("register", "--role", "producer", "--location", "Beijing", "--capacity-kw", "1000")
    ok("register", "--role", "consumer", "--location", "Shanghai", "--capacity-kw", "500",
       *as_consumer)  # fmt: skip
    meter_key = str(tmp_path / "meter.key")
    pn("keygen", "--out", meter_key)
    device = ok(
        "device", "register", "--kind", "generation", "--source", "solar",
        "--capacity-kw", "1000", "--location", "Beijing", "--carbon-intensity", "50",
        "--meter-key", meter_key,
    )["device"]  # fmt: skip
    ok("device", "approve", device)
    with RpcClient.from_datadir(d) as c:
        cp = c.call("cert.params")
    size = cp["interval_seconds"]
    interval = cp["now"] // size * size - size  # the latest ended interval

    # The seed's contract_001: 1,000 kWh at 0.50 over 30 days, half the device's output.
    terms = ("--total-kwh", "1000", "--price", "0.50", "--days", "30", "--start", str(interval))
    proposed = ok("ppa", "propose", "--buyer", consumer, "--device", device, "--share", "50",
                  *terms)  # fmt: skip
    ppa = proposed["ppa"]
    assert proposed["id"] == ppa and proposed["start"] == interval
    assert "proposed" in pn("ppa", "show", ppa, *dd).stdout
    err("ppa_not_party", "ppa", "accept", ppa)  # the seller cannot accept
    accepted = pn("ppa", "accept", ppa, *as_consumer, *dd, *wait).stdout
    assert "confirmed in block" in accepted
    ok("ppa", "fund", ppa, "--amount", "50", *as_consumer)
    shown = pj("ppa", "show", ppa, *dd)
    assert (shown["status"], shown["escrow"]) == ("active", 50_000_000 + 16_666_500)

    report = pn(
        "meter", "report", "--device", device, "--interval", str(interval), "--produced", "200",
        "--meter-key", meter_key, *dd, *wait,
    ).stdout  # fmt: skip
    assert "ppa.delivered" in report, report
    text = pn("ppa", "show", ppa, *dd).stdout
    assert f"PPA {ppa}  active" in text
    assert "1000 kWh at 0.50/kWh over 30 days" in text
    assert f"source: 50.0% of device {device}" in text
    assert "delivered 100 of 1000 kWh (10.0%), paid 50.00, escrow 16.6665" in text
    assert re.search(r"days remaining (29|30)\n", text), text
    assert "delivery #0 (metered): 100 kWh in interval" in text
    assert "certificates 100 kWh" in text

    # Without a device: claimed by the seller, confirmed by the buyer.
    manual = ok("ppa", "propose", "--buyer", consumer, "--total-kwh", "10", "--price", "0.40",
                "--days", "1", "--start", str(interval))["ppa"]  # fmt: skip
    rejected = ok("ppa", "propose", "--buyer", consumer, "--total-kwh", "10", "--price", "0.40",
                  "--days", "1", "--start", str(interval))["ppa"]  # fmt: skip
    ok("ppa", "accept", manual, *as_consumer)
    ok("ppa", "reject", rejected, *as_consumer)
    err("ppa_device_bound", "ppa", "deliver", ppa, "--energy-kwh", "1", "--interval",
        str(interval))  # fmt: skip
    ok("ppa", "deliver", manual, "--energy-kwh", "4", "--interval", str(interval))
    assert pj("ppa", "show", manual, *dd)["pending_wh"] == 4_000
    ok("ppa", "confirm", manual, "--delivery", "0", *as_consumer)
    err("ppa_delivery_not_pending", "ppa", "confirm", manual, "--delivery", "0", *as_consumer)
    m = pj("ppa", "show", manual, *dd)
    assert (m["delivered_wh"], m["paid"], m["deliveries"][0]["status"]) == (
        4_000,
        1_600_000,
        "confirmed",
    )
    ok("ppa", "terminate", manual)
    assert pj("ppa", "show", manual, *dd)["status"] == "active"  # one side asked
    ok("ppa", "terminate", manual, *as_consumer)
    assert pj("ppa", "show", manual, *dd)["status"] == "terminated"

    listed = pn("ppa", "list", "--party", consumer, *dd).stdout.splitlines()
    assert len(listed) == 3 and any(line.startswith(f"{ppa}  active") for line in listed)
    assert [p["id"] for p in pj("ppa", "list", "--status", "rejected", *dd)] == [rejected]
    assert pn("ppa", "list", "--status", "lapsed", *dd).stdout.strip() == "no PPAs"

    # A demand-response contract: the operator (the node key) pays the
    # consumer 5.00 if the device's production in the interval was at most
    # 250 kWh (a stand-in for a consumption meter: the same vocabulary).
    terms_file = tmp_path / "dr.json"
    span = [interval, interval + size]
    terms_file.write_text(
        json.dumps(
            {
                "conditions": [
                    ["produced_at_least", device, *span, 1],
                    ["produced_at_most", device, *span, 250_000],
                ],
                "actions": [["pay", consumer, "5.00"]],
            }
        )
    )
    created = ok("contract", "create", "--terms", str(terms_file), "--escrow", "5",
                 "--expiry", "+86400", "--party", consumer)  # fmt: skip
    contract = created["contract"]
    assert created["receipt"]["events"][0]["event"] == "contract.created"
    shown_c = pj("contract", "show", contract, *dd)
    assert (shown_c["status"], shown_c["escrow"], shown_c["min_fee"]) == ("open", 5_000_000, 3_000)
    assert shown_c["actions"] == [["pay", consumer, 5_000_000]]
    assert f"contract {contract}  open" in pn("contract", "show", contract, *dd).stdout
    executed = ok("contract", "execute", contract, *as_consumer)
    paid = [e for e in executed["receipt"]["events"] if e["event"] == "contract.paid"]
    assert paid == [{"event": "contract.paid", "contract": contract, "to": consumer,
                     "amount": 5_000_000}]  # fmt: skip
    assert pj("contract", "show", contract, *dd)["status"] == "executed"
    assert [c["id"] for c in pj("contract", "list", "--party", consumer, *dd)] == [contract]
    assert f"{contract}  executed" in pn("contract", "list", *dd).stdout
    assert pn("contract", "list", "--status", "open", *dd).stdout.strip() == "no contracts"

    # The chain's refusals, each one line.
    err("unknown_ppa", "ppa", "show", "ab" * 32)
    err("unknown_contract", "contract", "show", "ab" * 32)
    err("unknown_contract", "contract", "execute", "ab" * 32)
    err("contract_not_open", "contract", "execute", contract)
    err("ppa_wrong_state", "ppa", "accept", rejected, *as_consumer)
    err("ppa_same_party", "ppa", "propose", "--buyer", producer, *terms)
    err("contract_fee_too_low", "contract", "create", "--terms", str(terms_file), "--escrow",
        "5", "--expiry", "+60", "--fee", "0.001")  # fmt: skip
    err("contract_overdrawn", "contract", "create", "--terms", str(terms_file), "--escrow",
        "4", "--expiry", "+60")  # fmt: skip
