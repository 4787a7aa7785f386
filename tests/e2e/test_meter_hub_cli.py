"""``powernode meter sign`` and ``meter batch`` as a data hub runs them,
against a real mining dev node: meters sign offline, the hub relays their
lines as one meter.batch, every reading lands and certifies; a batch the
node refuses and lines that are wrong each give one clean error line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.test_cert_cli import mining_node, pj
from tests.e2e.test_cli import assert_user_error, pn

__all__ = ["mining_node"]  # the fixture, used by name


def write_lines(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_hub_relays_meter_signed_readings(mining_node: Path, tmp_path: Path) -> None:
    d = mining_node
    dd = ("--datadir", str(d))
    wait = ("--wait", "30")

    def ok(*args: str) -> dict[str, Any]:
        r = pj(*args, *dd, *wait)
        assert r["status"] == "confirmed" and r["receipt"]["status"] == "ok", r
        return r

    ok("register", "--role", "producer", "--location", "Beijing", "--capacity-kw", "1000")
    devices: list[str] = []
    keys: list[str] = []
    for i in range(3):
        key = str(tmp_path / f"meter{i}.key")
        pn("keygen", "--out", key)
        reg = ok(
            "device", "register", "--kind", "generation", "--source", "wind",
            "--capacity-kw", "1000", "--location", "Beijing", "--carbon-intensity", "10",
            "--meter-key", key,
        )  # fmt: skip
        ok("device", "approve", reg["device"])
        devices.append(reg["device"])
        keys.append(key)
    info = json.loads(pn("rpc", "cert.params", *dd).stdout)
    size = int(info["interval_seconds"])
    interval = int(info["now"]) // size * size - size
    chain_id = json.loads(pn("rpc", "node.info", *dd).stdout)["chain_id"]

    def sign(i: int, kwh: str) -> str:
        out = pn(
            "meter", "sign", "--device", devices[i], "--interval", str(interval),
            "--produced", kwh, "--meter-key", keys[i], "--chain-id", chain_id,
        ).stdout  # fmt: skip
        assert out.count("\n") == 1
        return out.strip()

    lines = [sign(i, f"{i + 1}.5") for i in range(3)]
    first = json.loads(lines[0])
    assert (first["device"], first["interval"], first["produced_wh"]) == (
        devices[0],
        interval,
        1500,
    )

    # Device 2 already reported this interval itself: the node refuses the
    # batch at the door (duplicate_reading), naming the entry; nothing sent.
    pn(
        "meter", "report", "--device", devices[2], "--interval", str(interval), "--produced",
        "1", "--meter-key", keys[2], *dd, *wait,
    )  # fmt: skip
    whole = write_lines(tmp_path / "all.jsonl", lines)
    assert_user_error(
        pn("meter", "batch", "--file", whole, *dd, *wait, check=False), "duplicate_reading"
    )

    # The hub relays the other two, in any order in the file.
    two = write_lines(tmp_path / "two.jsonl", [lines[1], "", lines[0]])
    (batch,) = pj("meter", "batch", "--file", two, *dd, *wait)
    assert batch["status"] == "confirmed" and batch["receipt"]["status"] == "ok", batch
    assert (batch["entries"], batch["applied"], batch["skipped"]) == (2, 2, [])
    assert batch["certificates"] == 2 and batch["interval"] == interval
    readings = [pj("meter", "readings", "--device", dev, *dd) for dev in devices[:2]]
    assert [r[0]["produced_wh"] for r in readings] == [1500, 2500]
    assert {r[0]["relayer"] for r in readings} == {pj("balance", *dd)["address"]}

    # A second relay of the same lines: refused whole, the batch's lines named.
    r = pn("meter", "batch", "--file", two, *dd, check=False)
    assert_user_error(r, "duplicate_reading")
    assert "lines 1, 3" in r.stderr and "nothing after it was sent" in r.stderr

    # Lines that are wrong: named by number before anything is sent.
    tampered = json.loads(lines[0]) | {"produced_wh": 9}
    other_chain = json.loads(lines[0]) | {"chain_id": "powernode-elsewhere"}
    no_sig = {k: v for k, v in json.loads(lines[0]).items() if k != "sig"}
    for bad, needle in (
        ("not json", "line 2: not a JSON object"),
        (json.dumps(tampered), "line 2: the meter signature does not verify"),
        (json.dumps(other_chain), 'line 2: signed for chain "powernode-elsewhere"'),
        (json.dumps(no_sig), "line 2: no 'sig'"),
        (json.dumps(json.loads(lines[1]) | {"interval": -1}), "line 2: interval must be"),
        (lines[1], "line 2: a second reading of device"),
        (json.dumps(json.loads(lines[1]) | {"chain_id": 6}), "line 2: signed for chain 6"),
    ):
        f = write_lines(tmp_path / "bad.jsonl", [lines[1], bad])
        assert_user_error(pn("meter", "batch", "--file", f, *dd, check=False), needle)
    empty = write_lines(tmp_path / "empty.jsonl", [""])
    assert_user_error(pn("meter", "batch", "--file", empty, *dd, check=False), "no readings")
    assert_user_error(
        pn("meter", "batch", "--file", str(tmp_path / "none"), *dd, check=False), "none"
    )
