"""scripts/bench_push.py run briefly, as a user runs it, so the benchmark
cannot rot: its phases, table and JSON are checked, never its figures
(timings vary)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_push.py"
PHASES = ("none", "subscribers", "subs_and_scraper", "slow_client", "none_again")


def test_bench_push_runs_its_phases_and_prints_their_figures() -> None:
    args = ["--subscribers", "2", "--txs", "5", "--seconds", "1", "--json"]
    r = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    table, _, doc = r.stdout.partition("\n{")
    for name in PHASES:
        row = rf"^{name}\s+\d+\.\d\dms\s+\d+\.\d\dms\s+\d+\.\d\d\s+\d+$"
        assert re.search(row, table, re.MULTILINE), table
        assert re.search(rf"node\.info, {name}\s+p50 \d", r.stderr), r.stderr
    assert re.search(r"^slow client dropped: (True|False)$", table, re.MULTILINE), table

    fig = json.loads("{" + doc)
    assert fig["args"]["subscribers"] == 2 and fig["args"]["seconds"] == 1.0
    assert tuple(fig["node_info"]) == PHASES and set(fig["p99_ratio"]) == set(PHASES)
    for name, run in fig["node_info"].items():
        assert run["max_ms"] >= run["p99_ms"] >= run["p50_ms"] > 0, name
        assert run["blocks"] >= 0 and fig["p99_ratio"][name] > 0, name
    # Blocks were mined while the phases ran, and the subscribers heard of them.
    assert sum(run["blocks"] for run in fig["node_info"].values()) > 0
    notices = (fig["notices_subscribers"], fig["notices_subs_and_scraper"])
    assert min(notices) >= 0 and sum(notices) > 0, notices
    assert f"notices received by 2 subscribers: {notices[0]}, with the scraper {notices[1]}" in (
        table
    )
    assert isinstance(fig["slow_client_dropped"], bool)
