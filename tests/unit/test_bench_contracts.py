"""scripts/bench_contracts.py at a tiny size, so the benchmark cannot rot:
each reading must deliver its share to the device's PPA, paid exactly, each
contract must execute, and the checks must notice a delivery or payment
that is off. Timings are not asserted."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def kit() -> ModuleType:
    if str(SCRIPTS) not in sys.path:
        sys.path.append(str(SCRIPTS))  # the scripts import their siblings
    return importlib.import_module("benchkit.contracts")


def test_readings_deliver_to_ppas_and_the_check_can_fail(kit: ModuleType) -> None:
    certs = importlib.import_module("benchkit.certs")
    chain, fleet = certs.setup_fleet(2, 3)
    ids = kit.setup_ppas(chain, fleet, 2, 4)
    readings = kit.sign_ppa_readings(fleet, 2)
    fig = certs.run_blocks(chain, readings, 5, lambda b: certs.T0 + 3 * certs.INTERVAL + b, "t")
    assert fig["txs"] == 12 and fig["failed"] == 0
    ck = kit.check_ppas(chain, ids, readings)
    assert ck["problems"] == [] and ck["delivered_wh"] == ck["expected_wh"] > 0
    assert ck["paid"] == ck["delivered_wh"] * kit.PPA_PRICE // 1000

    creates, executes = kit.sign_contracts(fleet, 5, readings_interval=0)
    certs.run_blocks(chain, creates, 5, lambda b: certs.T0 + 10_000 + b, "t")
    certs.run_blocks(chain, executes, 5, lambda b: certs.T0 + 10_100 + b, "t")
    assert chain.failed == 0
    assert kit.check_contracts(chain, creates)["problems"] == []

    key = ("ppa.ppa", ids[0])
    p = chain.state.get(key)
    chain.state.apply_values({key: p._replace(delivered_wh=p.delivered_wh + 1)})
    problems = kit.check_ppas(chain, ids, readings)["problems"]
    assert any("delivered" in x for x in problems), problems


def test_command_line_run_prints_the_table() -> None:
    args = (
        "--owners 2 --devices 8 --intervals 3 --contracts 20 --block-txs 10 --sigs 50 "
        "--trades 200 --sellers 4 --reps 1 --wait-quiet 0 --json"
    )
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_contracts.py"), *args.split()],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for line in (
        "s settlement of 200 trades, one block hook",
        "a PPA deliveries through block application",
        "b contract executions",
    ):
        assert line in out.stdout
    assert "paid" in out.stdout and ": exact" in out.stdout
    assert "20 of 20 contracts executed" in out.stdout


def test_an_unknown_phase_is_a_usage_error() -> None:
    r = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_contracts.py"), "--phases", "settle,nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--phases" in r.stderr and "'settle,nope'" in r.stderr
