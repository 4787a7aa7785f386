"""``node.backup`` while another copy runs: refused with ``backup_failed``,
and logged as every refusal is (README, Logs: ``backup.failed`` when
``node.backup`` wrote no copy)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from powernode.chain.backup import BackupResult
from powernode.core.errors import BackupFailed
from powernode.node import rpc_ops
from tests.harness.p2pnet import events


async def test_a_second_backup_while_one_runs_is_refused_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    started, release = threading.Event(), threading.Event()

    def slow_copy(db: Path, out: Path, **_: Any) -> BackupResult:
        started.set()
        assert release.wait(10), "the test never let the copy finish"
        return BackupResult(path=str(out), height=1, tip=b"\x00" * 32, bytes=10)

    monkeypatch.setattr(rpc_ops, "backup_store", slow_copy)
    backup = rpc_ops.ops_methods(tmp_path / "chain.db")["node.backup"]
    caplog.set_level("INFO", logger="powernode.node")
    first: asyncio.Future[Any] = asyncio.ensure_future(backup({"path": str(tmp_path / "a.db")}))
    try:
        assert await asyncio.to_thread(started.wait, 10)
        with pytest.raises(BackupFailed, match="already running"):
            await backup({"path": str(tmp_path / "b.db")})
        (record,) = events(caplog, "backup.failed")
        assert record.fields["path"] == tmp_path / "b.db"  # type: ignore[attr-defined]
        assert "already running" in record.fields["error"]  # type: ignore[attr-defined]
    finally:
        release.set()
    result = await first
    assert result["height"] == 1 and events(caplog, "backup.done")
