"""scripts/bench_metrics.py run briefly, as a user runs it, so the benchmark
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

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_metrics.py"
PHASES = ("none", "every_interval", "back_to_back", "none_again")
SCRAPED = ("every_interval", "back_to_back")


def test_bench_metrics_runs_its_phases_and_prints_their_figures() -> None:
    args = ["--senders", "10", "--blocks", "2", "--pending", "50", "--calls", "50"]
    r = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--interval", "0.2", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "filling: 2 blocks of 10 txs, 50 pending" in r.stderr, r.stderr
    table, _, doc = r.stdout.partition("\n{")
    ms = r"\d+\.\d\dms"
    for name in PHASES:
        scrape = rf"\s+{ms}\s+{ms}" if name in SCRAPED else r"\s+-\s+-"
        row = rf"^{name}\s+{ms}\s+{ms}\s+\d+\.\d\d{scrape}$"
        assert re.search(row, table, re.MULTILINE), table

    fig = json.loads("{" + doc)
    assert fig["args"]["calls"] == 50 and fig["args"]["interval"] == 0.2
    assert tuple(fig["node_info"]) == PHASES and set(fig["p99_ratio"]) == set(PHASES)
    for name, run in fig["node_info"].items():
        assert run["max_ms"] >= run["p99_ms"] >= run["p50_ms"] > 0, name
        assert fig["p99_ratio"][name] > 0, name
    # Each scraper phase scraped at least once, and a scrape has a body.
    assert tuple(fig["scrape"]) == SCRAPED
    for name, scrape in fig["scrape"].items():
        assert scrape["count"] >= 1 and scrape["max_ms"] >= scrape["p50_ms"] > 0, name
    assert fig["scrape_bytes"] > 0
    assert f"one scrape: {fig['scrape_bytes']} bytes" in table
