"""The ``powernode`` device, meter and cert commands as a user runs them,
against a real mining dev node (``init --dev`` makes the node key a
certificate authority): issue 10's seed scenario end to end, then the
chain's refusals as one clean line each."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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


def test_device_reading_certificate_lifecycle(mining_node: Path, tmp_path: Path) -> None:
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
    consumer = pj("keygen", "--out", consumer_key)["address"]
    ok("transfer", "--to", consumer, "--amount", "100")
    producer = pj("balance", *dd)["address"]
    ok("register", "--role", "producer", "--location", "Beijing", "--capacity-kw", "1000")
    ok("register", "--role", "consumer", "--location", "Shanghai", "--capacity-kw", "500",
       "--key", consumer_key)  # fmt: skip

    # keygen makes meter keys too; its human output names the public key.
    meter_key = str(tmp_path / "meter.key")
    keygen_text = pn("keygen", "--out", meter_key).stdout
    meter_pub = keygen_text.split("pubkey")[1].split()[0]
    assert len(meter_pub) == 64

    reg = ok(
        "device", "register", "--kind", "generation", "--source", "solar",
        "--capacity-kw", "1000", "--location", "Beijing", "--carbon-intensity", "50",
        "--meter-key", meter_key,
    )  # fmt: skip
    device = reg["device"]
    assert reg["meter_pubkey"] == meter_pub and reg["id"] == device
    assert reg["receipt"]["events"][0] == {
        "event": "device.registered",
        "device": device,
        "owner": producer,
    }
    assert "pending" in pn("device", "get", device, *dd).stdout
    approve_text = pn("device", "approve", device, *dd, *wait).stdout
    assert f"device {device} approved" in approve_text
    got = pj("device", "get", device, *dd)
    assert got == {
        **got,
        "status": "active",
        "kind": "generation",
        "source": "solar",
        "capacity_w": 1_000_000,
        "location": "Beijing",
        "carbon_intensity": 50,
        "meter_pubkey": meter_pub,
    }
    assert [x["id"] for x in pj("device", "list", "--owner", producer, *dd)] == [device]
    assert pn("device", "list", "--status", "pending", *dd).stdout.strip() == "no devices"
    listed = pn("device", "list", *dd).stdout
    assert device in listed and "solar" in listed and "1000 kW  Beijing  50 g/kWh" in listed

    report = pn(
        "meter", "report", "--device", device, "--interval", "last", "--produced", "100",
        "--meter-key", meter_key, *dd, *wait,
    ).stdout  # fmt: skip
    assert "reading for " in report and "produced 100 kWh, consumed 0 kWh" in report
    assert "certificate " in report and " issued: 100 kWh" in report
    (reading,) = pj("meter", "readings", "--device", device, *dd)
    interval = reading["interval"]
    assert (reading["produced_wh"], reading["relayer"]) == (100_000, producer)
    assert (
        "produced 100 kWh  consumed 0 kWh"
        in pn("meter", "readings", "--device", device, *dd).stdout
    )
    assert pj("meter", "readings", "--device", device, "--start", str(interval + 1), *dd) == []
    # One reading per (device, interval): the second is refused at the door.
    err(
        "duplicate_reading",
        "meter", "report", "--device", device, "--interval", str(interval), "--produced", "1",
        "--meter-key", meter_key,
    )  # fmt: skip
    # A reading signed by another key than the device's meter key.
    err(
        "wrong_meter_key",
        "meter", "report", "--device", device, "--interval", str(interval), "--produced", "1",
        "--meter-key", consumer_key,
    )  # fmt: skip

    (cert,) = pj("cert", "list", "--owner", producer, *dd)
    root = cert["id"]
    assert (cert["wh"], cert["type"], cert["source"], cert["interval_start"]) == (
        100_000,
        "green",
        "solar",
        interval,
    )
    verify = pn("cert", "verify", root, *dd).stdout
    assert "valid yes  status active  type green  source solar" in verify
    assert "location Beijing  carbon intensity 50 gCO2/kWh" in verify
    assert "remaining 100 kWh  trace length 1" in verify

    moved = ok("cert", "transfer", root, "--to", consumer, "--energy-kwh", "40")
    child = moved["part"]
    assert moved["split"] is True and child != root
    err("cert_amount_too_large", "cert", "transfer", root, "--to", consumer, "--energy-kwh", "61")
    err("not_cert_owner", "cert", "transfer", child, "--to", producer, "--energy-kwh", "1")
    retire_text = pn(
        "cert", "retire", child, "--energy-kwh", "40", "--beneficiary", "consumer_001",
        "--purpose", "Shanghai", "--key", consumer_key, *dd, *wait,
    ).stdout  # fmt: skip
    assert f"retired for consumer_001: certificate {child} whole" in retire_text
    err("cert_retired", "cert", "transfer", child, "--to", producer, "--energy-kwh", "1",
        "--key", consumer_key)  # fmt: skip

    got_child = pj("cert", "get", child, *dd)
    assert got_child["claim"]["beneficiary"] == "consumer_001"
    assert (got_child["claim"]["period_start"], got_child["claim"]["period_end"]) == (
        interval,
        interval + 900,
    )
    text = pn("cert", "get", child, *dd).stdout
    assert "retired for consumer_001 (Shanghai)" in text and f"split from {root}" in text
    assert [c["id"] for c in pj("cert", "list", "--status", "retired", *dd)] == [child]
    assert pn("cert", "list", "--source", "wind", *dd).stdout.strip() == "no certificates"

    trace = pj("cert", "trace", child, *dd)
    assert [s["kind"] for s in trace["steps"]] == ["reading", "split", "transfer", "retire"]
    trace_text = pn("cert", "trace", child, *dd).stdout
    assert f"root {root}, 4 steps" in trace_text
    assert "for consumer_001" in trace_text

    span = ("--start", str(interval), "--end", str(interval + 900))
    cfe = pj("cert", "cfe", "--participant", consumer, *span, *dd)
    assert (cfe["consumed_wh"], cfe["retired_wh"], cfe["matched_wh"]) == (0, 40_000, 0)
    assert "retired 40 kWh" in pn("cert", "cfe", "--key", consumer_key, *span, *dd).stdout

    # The chain's refusals, each one line.
    err("unknown_cert", "cert", "get", "ab" * 32)
    err("unknown_device", "device", "get", "ab" * 32)
    err("device_not_pending", "device", "approve", device)
    err("not_authority", "device", "approve", device, "--key", consumer_key)
    err("not_authority", "cert", "issue", "--device", device, "--interval", "last",
        "--energy-kwh", "1", "--key", consumer_key)  # fmt: skip
    err("already_certified", "cert", "issue", "--device", device, "--interval", str(interval),
        "--energy-kwh", "1")  # fmt: skip
    # An authority's manual issue for an interval with no reading; --json
    # names the certificate it made.
    issued = ok("cert", "issue", "--device", device, "--interval", str(interval - 900),
                "--energy-kwh", "1")  # fmt: skip
    assert pj("cert", "get", issued["cert"], *dd)["wh"] == 1_000
    err("not a multiple of the 900 s", "meter", "report", "--device", device, "--interval",
        str(interval + 1), "--produced", "1", "--meter-key", meter_key)  # fmt: skip
    err("meter_key_in_use", "device", "register", "--kind", "generation", "--source", "wind",
        "--capacity-kw", "1", "--location", "X", "--carbon-intensity", "0",
        "--meter-pubkey", meter_pub)  # fmt: skip

    retired = ok("device", "retire", device)
    assert retired["receipt"]["events"][0]["event"] == "device.retired"
    err("device_retired", "device", "retire", device)
