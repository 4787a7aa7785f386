"""scripts/bench_certs.py at a tiny size, so the benchmark cannot rot: its
readings must each issue their certificate, its certificate txs and deep
lineage must apply without a failed receipt, and its issuance check must
notice a missing or altered certificate. Timings are not asserted."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def bc() -> ModuleType:
    if str(SCRIPTS) not in sys.path:
        sys.path.append(str(SCRIPTS))  # the scripts import their siblings
    return importlib.import_module("bench_certs")


def test_readings_issue_certificates_and_the_check_can_fail(bc: ModuleType) -> None:
    kit = importlib.import_module("benchkit.certs")
    chain, fleet = kit.setup_fleet(2, 4)  # solar, wind, hydro, thermal per owner
    readings = kit.sign_readings(fleet, 3)
    fig = kit.run_blocks(chain, readings, 5, lambda b: kit.T0 + 3 * kit.INTERVAL + 10 + b, "t")
    assert fig["txs"] == 24 and fig["failed"] == 0
    ck = bc.check_issuance(chain, fleet, readings)
    assert ck["problems"] == [] and ck["certified_wh"] == ck["metered_wh"] > 0
    # thermal earned none: 3 of every 4 devices certify
    roots = [("crt.cert", k) for k in chain.state.namespace("crt.cert")]
    assert len(roots) == 18
    cert_txs = bc.sign_cert_txs(chain, fleet, readings)
    kit.run_blocks(chain, cert_txs, 7, lambda b: kit.T0 + 10_000 + b, "t")
    assert chain.failed == 0
    assert len(chain.state.namespace("crt.cert")) == 18 * 3  # two splits each

    key = ("crt.cert", kit.root_id(fleet.devices[0], kit.T0))
    chain.state.apply_values({key: None})
    assert (
        bc.check_issuance(chain, fleet, readings)["problems"][0]
        == "1 readings issued no certificate"
    )


def test_deep_lineage_trace_has_every_split(bc: ModuleType) -> None:
    kit = importlib.import_module("benchkit.certs")
    queries = importlib.import_module("powernode.engines.certificates.queries")
    chain, fleet = kit.setup_fleet(2, 1)
    leaf, txs = kit.deep_lineage(chain, fleet, 12)
    assert chain.failed == 0 and len(txs) == 13
    trace = queries.trace(chain.state, leaf)
    kinds = [s["kind"] for s in trace["steps"]]
    assert kinds[0] == "reading" and kinds.count("split") >= 12


def test_command_line_run_prints_the_table() -> None:
    args = "--quick --wait-quiet 0 --json"
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_certs.py"), *args.split()],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = (
        "a readings through block application",
        "c cert.trace",
        "c proof verify",
        "d state",
        "meter.report vs meter.batch of 100",
        "verify CPU us/reading",
        "of baseline",
        "chain.db bytes per reading",
        "f end to end, one node, 200 devices",
        "of which the node's sig workers",
        "readings/s, first send to all in chain",
    )
    for line in lines:
        assert line in out.stdout
    assert "every reading certified once" in out.stdout
    assert '"problems": []' in out.stdout


def test_batches_carry_the_same_readings_as_reports(bc: ModuleType) -> None:
    """Phase e compares like with like: the same readings either way, one
    hub's batches of at most 100, devices ascending; each form certifies
    every certifying reading and fails no receipt."""
    hub = importlib.import_module("benchkit.hub")
    fig = hub.batch_vs_report(2, 8, 2, 10, 20)
    assert fig["problems"] == [] and fig["readings"] == 16
    assert fig["report"]["failed"] == fig["batch"]["failed"] == 0
    assert fig["batch"]["tx_bytes_per_reading"] < fig["report"]["tx_bytes_per_reading"]
    kit = importlib.import_module("benchkit.certs")
    _, fleet = kit.setup_fleet(2, 60)
    batches = hub.sign_batches(fleet, 1)
    assert [len(tx.payload[1]) for tx in batches] == [100, 20]
    devices = [e[0] for tx in batches for e in tx.payload[1]]
    assert devices == sorted(fleet.devices)
