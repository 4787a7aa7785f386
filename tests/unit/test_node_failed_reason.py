"""README, Logs: every ``node.failed`` line carries ``reason``, the error's
code, including a config that stops ``powernode run`` before the node's log
is set up (that line had only ``error=``)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from powernode.cli import main


def test_config_failure_line_names_its_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.toml").write_text("[rpc]\nport = true\n")
    root = logging.getLogger()
    handlers = list(root.handlers)
    try:
        status = main(["run", "--datadir", str(tmp_path), "--no-log-stderr"])
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
                h.close()
    assert status == 1
    assert "config [rpc] port" in capsys.readouterr().err
    last = (tmp_path / "node.log").read_text().splitlines()[-1]
    assert " node.failed " in last
    assert "reason=bad_config" in last
