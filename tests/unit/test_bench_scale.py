"""scripts/bench_scale.py at its ``--quick`` sizes, so the benchmark cannot
rot: every row runs (node processes on loopback included) and the table's
curves come out of one run; and the linearity rule the table prints can say
no. Timings are not asserted."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def common() -> ModuleType:
    if str(SCRIPTS) not in sys.path:
        sys.path.append(str(SCRIPTS))  # the scripts import their siblings
    return importlib.import_module("benchkit.scale.common")


def test_linearity_rule(common: ModuleType) -> None:
    sizes = (1000, 10_000, 100_000)
    flat = common.Curve("a", "n", "us", sizes, (10.0, 11.0, 10.5), True)
    rising = common.Curve("b", "n", "us", sizes, (10.0, 20.0, 40.0), True)
    total = common.Curve("c", "n", "s", sizes, (1.0, 9.0, 95.0), False)
    quadratic = common.Curve("d", "n", "s", sizes, (1.0, 100.0, 10_000.0), False)
    assert flat.linear() and total.linear()
    assert not rising.linear() and not quadratic.linear()
    assert rising.ratios() == [2.0, 2.0]
    assert total.size_ratios() == [10.0, 10.0]


def test_quick_run_measures_every_row() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_scale.py"), "--quick", "--json", "--wait-quiet", "0"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=SCRIPTS.parent,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    r = json.loads(out[out.index("\n{") + 1 :])
    assert "error" not in r
    assert [x["accounts"] for x in r["accounts"]] == [1000, 2000, 4000]
    for row in r["accounts"]:
        assert row["block_txs"] == 200
        assert {"account_get", "node_info", "cert_list", "market_orders"} <= set(row)
    assert [x["blocks"] for x in r["chain"]["startup"]] == [50, 100, 200]
    assert r["chain"]["db"]["bytes_per_tx"] > 0
    assert r["sync"]["blocks"] == 200 and r["sync"]["txs"] == 400
    assert r["sync"]["main_cpu_ms_per_block"] > 0 and r["sync"]["workers_cpu_ms_per_block"] >= 0
    assert [x["pending"] for x in r["mempool"]] == [500, 1000, 2000]
    assert [x["resting"] for x in r["market"]] == [500, 1000, 2000]
    assert r["readings"]["db"]["bytes_per_reading"] > 0
    names = set(r["targets"])
    assert {"block connect (warm) vs accounts", "node start-up vs blocks"} <= names
    assert {"market.orders p50 vs accounts", "block template vs pending txs"} <= names
    assert "Scale curves" in out and "mempool admission" in out
