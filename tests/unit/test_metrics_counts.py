"""The metrics scrape's engine counts: each is the size of its namespace of
the tip state, or a count by status over that namespace only (never a pass
over the accounts or the readings)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from powernode.engines.contracts.contract_records import CONTRACT_NS
from powernode.engines.contracts.ppa_records import PPA_NS
from powernode.engines.metering.records import DEVICE_NS, READING_NS
from powernode.engines.settlement.records import SLOT_NS
from powernode.node.metrics import _StateCollector
from powernode.state.view import MemoryState


class CountingState(MemoryState):
    """A MemoryState that records which namespaces were listed."""

    __slots__ = ("listed",)

    def __init__(self, data: dict[tuple[str, bytes], Any]) -> None:
        super().__init__(data)
        self.listed: list[str] = []

    def namespace(self, ns: str) -> Any:
        self.listed.append(ns)
        return super().namespace(ns)


def test_engine_counts_read_their_namespaces_only() -> None:
    def rec(status: str) -> SimpleNamespace:
        return SimpleNamespace(status=status)

    data: dict[tuple[str, bytes], Any] = {("acct", bytes([i])): rec("-") for i in range(50)}
    data |= {(READING_NS, bytes([i])): rec("-") for i in range(7)}
    data |= {(DEVICE_NS, b"a"): rec("active"), (DEVICE_NS, b"b"): rec("active")}
    data |= {(DEVICE_NS, b"c"): rec("retired"), (PPA_NS, b"p"): rec("active")}
    data |= {(CONTRACT_NS, b"k"): rec("open"), (SLOT_NS, b"s1"): 1, (SLOT_NS, b"s2"): 2}
    state = CountingState(data)
    w: Any = SimpleNamespace(ledger=SimpleNamespace(chain=SimpleNamespace(state=state)))
    collector = _StateCollector.__new__(_StateCollector)
    collector.w = w
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for m in collector._engines()
        for s in m.samples
    }
    assert got[("powernode_meter_readings", ())] == 7
    assert got[("powernode_settlements", ())] == 2
    assert got[("powernode_devices", (("status", "active"),))] == 2
    assert got[("powernode_devices", (("status", "retired"),))] == 1
    assert got[("powernode_ppas", (("status", "active"),))] == 1
    assert got[("powernode_contracts", (("status", "open"),))] == 1
    assert "acct" not in state.listed


def test_status_series_exist_at_zero_on_an_empty_chain() -> None:
    """README, "Watching a node": every metric of the table is scraped; a
    count by status is 0 for a status no record has, not an absent series."""
    state = CountingState({})
    w: Any = SimpleNamespace(ledger=SimpleNamespace(chain=SimpleNamespace(state=state)))
    collector = _StateCollector.__new__(_StateCollector)
    collector.w = w
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for m in collector._engines()
        for s in m.samples
    }
    for status in ("pending", "active", "retired"):
        assert got[("powernode_devices", (("status", status),))] == 0
    for status in ("proposed", "active", "completed", "terminated"):
        assert got[("powernode_ppas", (("status", status),))] == 0
    for status in ("open", "executed", "cancelled"):
        assert got[("powernode_contracts", (("status", status),))] == 0
