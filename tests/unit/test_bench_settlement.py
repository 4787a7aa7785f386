"""scripts/bench_contracts.py's settlement phase at a tiny size, so it cannot
rot: every trade settles (completed, partial and undelivered all occur),
money is conserved and its checks hold. Timings are not asserted."""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_the_settlement_phase_settles_every_trade() -> None:
    if str(SCRIPTS) not in sys.path:
        sys.path.append(str(SCRIPTS))  # the scripts import their siblings
    from benchkit.settlement import bench_settlement

    fig = bench_settlement(300, 6, reps=1)
    assert fig["problems"] == []
    assert set(fig["statuses"]) == {"completed", "partial", "undelivered"}
    assert sum(fig["statuses"].values()) == 300


def test_the_main_runs() -> None:
    if str(SCRIPTS) not in sys.path:
        sys.path.append(str(SCRIPTS))
    import bench_contracts

    args = ["--phases", "settle", "--trades", "90", "--sellers", "3", "--reps", "1"]
    assert bench_contracts.main([*args, "--wait-quiet", "0"]) == 0
