"""``powernode cert proof`` and ``powernode verify-proof`` as a user runs
them: a mining dev node certifies a reading, splits 40 kWh off and retires
them; the proof is written by one command and checked offline, with no
node, by the other; a changed byte, another genesis or a bar the chain does
not meet is one line and exit 1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from powernode.client import RpcClient, read_key
from powernode.core.tx import sign_tx
from powernode.devnet.wait import wait_until
from powernode.devnet.workload import root_cert_id
from powernode.engines.metering import reading_message
from tests.e2e.test_cert_cli import mining_node, pj  # noqa: F401  (the fixture)
from tests.e2e.test_cli import assert_user_error, pn

pytestmark = pytest.mark.e2e


def test_proof_round_trip(mining_node: Path, tmp_path: Path) -> None:  # noqa: F811
    d = mining_node
    dd = ("--datadir", str(d))
    wait = ("--wait", "30")

    def ok(*args: str) -> dict[str, Any]:
        r = pj(*args, *dd, *wait)
        assert r["status"] == "confirmed" and r["receipt"]["status"] == "ok", r
        return r

    consumer_key = str(tmp_path / "consumer.key")
    consumer = pj("keygen", "--out", consumer_key)["address"]
    ok("transfer", "--to", consumer, "--amount", "100")
    ok("register", "--role", "producer", "--location", "Beijing", "--capacity-kw", "1000")
    meter_key = str(tmp_path / "meter.key")
    pn("keygen", "--out", meter_key)
    device = ok(
        "device", "register", "--kind", "generation", "--source", "solar",
        "--capacity-kw", "1000", "--location", "Beijing", "--carbon-intensity", "50",
        "--meter-key", meter_key,
    )["device"]  # fmt: skip
    ok("device", "approve", device)
    pn(
        "meter", "report", "--device", device, "--interval", "last", "--produced", "100",
        "--meter-key", meter_key, *dd, *wait,
    )  # fmt: skip
    (cert,) = pj("cert", "list", *dd)
    root = cert["id"]
    child = ok("cert", "transfer", root, "--to", consumer, "--energy-kwh", "40")["part"]
    ok(
        "cert", "retire", child, "--energy-kwh", "40", "--beneficiary", "consumer_001",
        "--purpose", "Shanghai", "--key", consumer_key,
    )  # fmt: skip

    out = tmp_path / "child.proof"
    written = pn("cert", "proof", child, "--out", str(out), *dd).stdout
    assert f"proof of {child}" in written and str(out) in written
    raw = out.read_bytes()
    assert f"{len(raw)} bytes" in written
    genesis = str(d / "genesis.json")

    # Offline: the node is asked nothing (its data dir is not even named).
    text = pn("verify-proof", str(out), "--genesis", genesis).stdout
    assert text.startswith("valid proof\nproved:\n")
    assert f"certificate {child}: green solar, Beijing, 50 gCO2/kWh" in text
    assert f"owner {consumer}, remaining 40000 Wh, status retired" in text
    assert "retired for 'consumer_001' ('Shanghai')" in text
    assert "cannot prove:\n  - that no other tx touched the certificate after" in text
    got = json.loads(pn("verify-proof", str(out), "--genesis", genesis, "--json").stdout)
    node_cert = pj("cert", "get", child, *dd)
    for k in ("owner", "wh", "remaining_wh", "status", "claim", "device", "type", "location"):
        assert got["cert"][k] == node_cert[k], k
    trace = pj("cert", "trace", child, *dd)
    assert [s["txid"] for s in got["steps"]] == [s["txid"] for s in trace["steps"]]
    assert [s["kind"] for s in got["steps"]] == ["reading", "split", "transfer", "retire"]

    def refused(needle: str, *args: str) -> None:
        assert_user_error(pn("verify-proof", *args, check=False), needle)

    # A changed byte in the middle of the file (a header or a tx): refused,
    # naming why.
    bad = tmp_path / "bad.proof"
    for at in (len(raw) // 2, len(raw) - 40):
        b = bytearray(raw)
        b[at] ^= 0x01
        bad.write_bytes(bytes(b))
        refused("invalid proof (", str(bad), "--genesis", genesis)
    bad.write_bytes(raw[:-1])
    refused("invalid proof (bad_proof)", str(bad), "--genesis", genesis)
    # Another genesis: another chain id, or the same one a second later.
    for change in ({"chain_id": "powernode-other"}, {"timestamp": 1}):
        doc = json.loads(Path(genesis).read_text())
        if "timestamp" in change:
            change = {"timestamp": doc["timestamp"] + 1}
        other = tmp_path / "other.json"
        other.write_text(json.dumps({**doc, **change}))
        refused("proof_wrong_chain", str(out), "--genesis", str(other))
    # Bars the chain does not meet.
    work = got["chain_work"]
    pn("verify-proof", str(out), "--genesis", genesis, "--min-work", str(work))
    pn("verify-proof", str(out), "--genesis", genesis, "--min-work", hex(work))
    refused("proof_too_little_work", str(out), "--genesis", genesis, "--min-work", str(work + 1))
    refused("proof_too_little_work", str(out), "--genesis", genesis, "--min-confirmations",
            str(got["confirmations"] + 1))  # fmt: skip
    # Files that are not there, or not proofs.
    refused("not found", str(tmp_path / "none"), "--genesis", genesis)
    refused("invalid proof (bad_proof)", genesis, "--genesis", genesis)
    # A genesis file that is not one: the error line names the file.
    refused(f"{out}: genesis is not valid JSON", str(out), "--genesis", str(out))
    bad.write_text('{"chain_id": "powernode-x"}')
    refused(f"{bad}: genesis", str(out), "--genesis", str(bad))
    assert_user_error(
        pn("cert", "proof", "ab" * 32, "--out", str(bad), "--force", *dd, check=False),
        "unknown_cert",
    )


def test_proof_of_a_certificate_from_a_batch_entry(
    mining_node: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A data hub's ``meter.batch`` (sent over RPC) carries two devices'
    readings; the certificate of one entry has a proof that verifies offline,
    whose root step is the batch."""
    d = mining_node
    dd = ("--datadir", str(d))
    wait = ("--wait", "30")

    def ok(*args: str) -> dict[str, Any]:
        r = pj(*args, *dd, *wait)
        assert r["status"] == "confirmed" and r["receipt"]["status"] == "ok", r
        return r

    ok("register", "--role", "producer", "--location", "Beijing", "--capacity-kw", "1000")
    meters = [tmp_path / f"meter{i}.key" for i in range(2)]
    devices = []
    for path in meters:
        pn("keygen", "--out", str(path))
        dev = ok(
            "device", "register", "--kind", "generation", "--source", "solar",
            "--capacity-kw", "1000", "--location", "Beijing", "--carbon-intensity", "50",
            "--meter-key", str(path),
        )["device"]  # fmt: skip
        ok("device", "approve", dev)
        devices.append(bytes.fromhex(dev))
    hub = read_key(d / "node.key")
    with RpcClient.from_datadir(d) as c:
        params = c.call("cert.params")
        size = int(params["interval_seconds"])
        interval = int(params["now"]) // size * size - size
        chain_id = c.call("node.info")["chain_id"]
        nonce = c.call("account.get", {"address": hub.address.hex()})["nonce"]
        entries = []
        for i, (dev, path) in enumerate(zip(devices, meters, strict=True)):
            meter = read_key(path)
            wh = (100 + i) * 1000
            sig = meter.sign(reading_message(chain_id, dev, interval, wh, 0))
            entries.append([dev, wh, 0, meter.pubkey, sig])
        tx = sign_tx(
            hub, chain_id=chain_id, tx_type="meter.batch", nonce=nonce, fee=1000,
            payload=[interval, sorted(entries)],
        )  # fmt: skip
        c.submit(tx)
        wait_until(
            lambda: c.call("tx.get", {"id": tx.txid.hex()})["status"] == "confirmed",
            timeout=30,
            what="the batch confirmed",
        )
        receipt = c.call("tx.get", {"id": tx.txid.hex()})["receipt"]
    assert receipt["status"] == "ok", receipt
    assert [e["event"] for e in receipt["events"]].count("meter.reading") == 2
    root = root_cert_id(devices[1], interval).hex()
    out = tmp_path / "batch.proof"
    pn("cert", "proof", root, "--out", str(out), *dd)
    got = json.loads(
        pn("verify-proof", str(out), "--genesis", str(d / "genesis.json"), "--json").stdout
    )
    assert got["valid"] is True
    assert got["cert"]["wh"] == 101_000 and got["cert"]["device"] == devices[1].hex()
    assert [(s["kind"], s["txid"]) for s in got["steps"]] == [("reading", tx.txid.hex())]
