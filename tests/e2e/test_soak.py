"""``scripts/soak.py --minutes 2`` run the way a user runs it: four mining
nodes under every engine's txs survive kill -9 and partitions, and its table
says so (events survived, no failed check)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

# Minutes of waiting on the chain's clock: handed out first (tests/conftest.py).
pytestmark = [pytest.mark.e2e, pytest.mark.minutes]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "soak.py"


def row(table: str, name: str) -> int:
    m = re.search(rf"^{re.escape(name)}\s+(\d+)", table, re.MULTILINE)
    assert m, f"no row {name!r} in the table:\n{table}"
    return int(m.group(1))


def test_two_minute_soak_survives_kills_and_partitions(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--minutes", "2", "--seed", "7", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out[-6000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
    table = out[out.index("soak: events survived") :]
    assert row(table, "kill -9") > 0
    assert row(table, "restarts") == row(table, "kill -9")
    assert row(table, "partitions") > 0
    assert row(table, "heals") == row(table, "partitions")
    assert row(table, "checks failed") == 0
    assert row(table, "checks passed") > 0
    assert row(table, "txs confirmed") > 0
    # every engine's tx types went in
    kinds = table[table.index("txs by type:") :].splitlines()[0]
    for tx_type in ("transfer", "order.place", "order.cancel", "device.approve", "ppa.accept"):
        assert tx_type in kinds, kinds
    # each event and check is one line of its own
    assert re.search(r"^\[\s*[\d.]+s\] kill node=\d", out, re.MULTILINE)
    assert re.search(r"^\[\s*[\d.]+s\] heal side_a=", out, re.MULTILINE)
