"""A peer's tx relay budget (node/peer.py): blame for unasked and fee-refused
txs, drained over time; slowed past one mark, disconnected past another."""

from __future__ import annotations

from powernode.node.peer import TX_BLAME_DRAIN_PER_S, TX_DROP_AT, TX_SLOW_AT, RelayBudget


def test_marks_are_ordered_and_leave_room_for_honest_relays() -> None:
    # A few dozen refused txs are nothing; a slowed peer has room to finish
    # what it was asked for before the drop mark.
    assert 0 < TX_BLAME_DRAIN_PER_S < TX_SLOW_AT < TX_DROP_AT
    assert TX_DROP_AT >= 2 * TX_SLOW_AT


def test_blame_drains_at_its_rate() -> None:
    b = RelayBudget(drain_per_s=50, slow_at=100, drop_at=400)
    assert b.charge(120, 1_000) == 120
    assert b.slowed(1_000)
    assert b.level(1_400) == 100  # 0.4 s x 50
    assert not b.slowed(1_400)
    assert b.level(1_401) == 100  # 99.95 points still count as 100
    assert b.level(1_420) == 99
    assert b.level(10_000) == 0  # never below nothing
    assert b.charge(1, 10_000) == 1


def test_small_steps_are_not_rounded_away() -> None:
    b = RelayBudget(drain_per_s=1, slow_at=10, drop_at=20)
    b.charge(2, 0)
    for t in range(1, 1001):  # 1,000 steps of 1 ms: one point drained
        b.level(t)
    assert b.level(1_000) == 1


def test_allowance_is_what_is_left_before_slowing() -> None:
    b = RelayBudget(drain_per_s=10, slow_at=100, drop_at=400, unasked_points=1)
    assert b.allowance(0) == 100
    b.charge(70, 0)
    assert b.allowance(0) == 30
    b.charge(100, 0)
    assert b.allowance(0) == 0
    assert b.allowance(7_000) == 100 - (170 - 70)


def test_over_the_drop_mark() -> None:
    b = RelayBudget(drain_per_s=10, slow_at=100, drop_at=400)
    assert not b.over(b.charge(400, 0))
    assert b.over(b.charge(1, 0))


def test_a_clock_that_steps_back_drains_nothing() -> None:
    b = RelayBudget(drain_per_s=10, slow_at=100, drop_at=400)
    b.charge(50, 5_000)
    assert b.level(4_000) == 50
    assert b.level(5_000) == 50
    assert b.level(6_000) == 40


def test_unasked_txs_weigh_more_than_refused_ones() -> None:
    b = RelayBudget(drain_per_s=10, slow_at=100, drop_at=400, unasked_points=4)
    assert b.allowance(0) == 25  # 100 points of room, 4 a tx
    assert b.charge_unasked(25, 0) == 100
    assert not b.slowed(0) and b.allowance(0) == 0
    assert b.charge(1, 0) == 101 and b.slowed(0)
    # A frame of unasked txs past the drop mark is over by itself.
    assert RelayBudget().over(RelayBudget().charge_unasked(2_000, 0))
