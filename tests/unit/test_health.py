"""The sync state and the /health answer, as pure functions."""

from __future__ import annotations

import pytest

from powernode.node.health import SYNC_SLACK, health, sync_state


def test_syncing_only_past_the_slack() -> None:
    assert sync_state(10, []) == sync_state(10, ())
    none = sync_state(10, [])
    assert not none.syncing and none.best_peer_height is None
    at_slack = sync_state(10, [3, 10 + SYNC_SLACK])
    assert not at_slack.syncing and at_slack.best_peer_height == 10 + SYNC_SLACK
    past = sync_state(10, [3, 11 + SYNC_SLACK])
    assert past.syncing and past.best_peer_height == 11 + SYNC_SLACK
    assert not sync_state(50, [20]).syncing  # peers behind us


@pytest.mark.parametrize(
    "phase, peers, max_age, status, reason",
    [
        ("serving", [5], None, 200, None),
        ("serving", [5], 100, 200, None),
        ("serving", [5], 99, 503, "tip_stale"),
        ("serving", [5 + SYNC_SLACK + 1], 99, 503, "syncing"),
        ("starting", [5], None, 503, "starting"),
        ("stopping", [5 + SYNC_SLACK + 1], None, 503, "stopping"),
    ],
)
def test_health_answers_with_the_first_reason(
    phase: str, peers: list[int], max_age: int | None, status: int, reason: str | None
) -> None:
    h = health(
        phase=phase,
        sync=sync_state(5, peers),
        peers=len(peers),
        tip_age_s=100,
        max_tip_age_s=max_age,
    )
    assert h.status == status
    assert h.body.get("reason") == reason
    assert h.body["status"] == ("ok" if status == 200 else "unavailable")
    assert h.body["height"] == 5 and h.body["peers"] == len(peers) and h.body["tip_age_s"] == 100
