"""scripts/bench_market.py at a tiny size, so the benchmark cannot rot: its
three pipelines (the order book alone, the handlers on state, full block
application) must agree on every trade and every resting order, and its
cross-check must notice when they do not. Timings are not asserted."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def bm() -> ModuleType:
    if str(SCRIPTS) not in sys.path:
        sys.path.append(str(SCRIPTS))  # the scripts import their siblings
    return importlib.import_module("bench_market")


def test_stream_is_seeded_and_has_the_intended_mix(bm: ModuleType) -> None:
    s = bm.make_stream(3000, 5, 40, 3)
    assert s.ops == bm.make_stream(3000, 5, 40, 3).ops
    assert s.ops != bm.make_stream(3000, 6, 40, 3).ops
    n = s.summary
    assert 0.2 <= n["cancel"] / 3000 <= 0.3
    assert 0.1 <= n["cross"] / 3000 <= 0.2
    assert n["fills"] > 0 and n["rested"] > n["cancel"]
    assert set(Counter(op[7] for op in s.ops if op[0] == bm.PLACE)) == {"GTC", "IOC", "FOK"}
    assert {op[3] for op in s.ops} == set(s.slots)
    # every cancel names an order placed earlier by the same participant, on its slot
    for i, op in enumerate(s.ops):
        if op[0] == bm.CANCEL:
            ref = s.ops[op[8]]
            assert op[8] < i and ref[0] == bm.PLACE and ref[1:4] == op[1:4]


def test_the_three_runs_agree_and_the_check_can_fail(bm: ModuleType) -> None:
    s = bm.make_stream(400, 11, 12, 2)
    r: dict[str, Any] = {}
    r["engine"], a = bm.run_engine(s, 1)
    r["state"], b, b_state = bm.run_state(s, 64)
    regs, txs = bm.sign_stream(s)
    r["blocks"], c, c_state = bm.run_blocks(s, regs, txs, 64)
    outs, states = {"a": a, "b": b, "c": c}, {"b": b_state, "c": c_state}
    ck = bm.cross_check(s, outs, states, r)
    assert ck["problems"] == []
    assert r["blocks"]["blocks"] == 7 and r["state"]["failed"] == r["blocks"]["failed"] == 0
    assert ck["trades"]["a"] == ck["trades"]["c"] > 0
    assert ck["volume_wh"]["a"] == ck["volume_wh"]["b"] > 0
    assert ck["value"]["b"] == ck["value"]["c"] > 0
    assert len(a.resting) == s.summary["resting_at_end"]

    # a dropped trade, a changed price, a resting order too many, money created
    worse = outs | {"c": c._replace(trades=c.trades[:-1])}
    assert bm.cross_check(s, worse, states, r)["problems"] == ["(c) trades differ from (a)'s"]
    buy, sell, qty, price = b.trades[0]
    worse = outs | {"b": b._replace(trades=[(buy, sell, qty, price + 1), *b.trades[1:]])}
    assert bm.cross_check(s, worse, states, r)["problems"] == ["(b) trades differ from (a)'s"]
    worse = outs | {"a": a._replace(resting=[*a.resting, (s.slots[0], 0, 1)])}
    assert len(bm.cross_check(s, worse, states, r)["problems"]) >= 2
    acct, was = next(iter(b_state.namespace("acct").items()))
    b_state.apply_values({("acct", acct): was._replace(balance=was.balance + 1)})
    assert any("(b) balances" in p for p in bm.cross_check(s, outs, states, r)["problems"])


def test_command_line_run_prints_the_table() -> None:
    args = "--orders 300 --participants 8 --block-txs 50 --reps 1 --sigs 50 --wait-quiet 0 --json"
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_market.py"), *args.split()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for line in ("a engine alone", "c block application (50-tx blocks)", "c / baseline"):
        assert line in out.stdout
    assert "the runs agree" in out.stdout
    assert '"problems": []' in out.stdout
