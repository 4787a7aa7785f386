"""``reindex.progress``: a line at most every REINDEX_EVERY_S seconds, with
the height reached and the rate since the previous line; every connect is
still observed by the metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

import pytest

from powernode.node import node as node_module
from powernode.node.metrics import NodeMetrics
from powernode.node.node import ReindexProgress


@dataclass
class FakeChain:
    height: int = 0


def test_progress_lines_name_the_height_and_rate(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [100.0]
    monkeypatch.setattr(node_module.time, "monotonic", lambda: clock[0])
    chain = FakeChain()
    metrics = NodeMetrics()
    progress = ReindexProgress(cast(Any, chain), metrics)
    caplog.set_level(logging.INFO, logger="powernode.node")
    for _ in range(4):  # 4 blocks in half a second: no line yet
        chain.height += 1
        clock[0] += 0.125
        progress(0.001)
    assert not [r for r in caplog.records if r.getMessage() == "reindex.progress"]
    for _ in range(4):  # 4 more: a second has passed, one line for all eight
        chain.height += 1
        clock[0] += 0.125
        progress(0.001)
    lines = [r for r in caplog.records if r.getMessage() == "reindex.progress"]
    assert len(lines) == 1
    fields = lines[0].__dict__["fields"]
    assert fields["height"] == 8 and fields["blocks_per_s"] == 8.0
    observed = metrics.registry.get_sample_value("powernode_block_connect_seconds_count")
    assert observed == 8
