"""A method that raises what no rule names (a bug) is answered -32603
``internal error`` and logged once as ``rpc.internal_error`` with its
``method`` and the traceback (README, the log events table), for a plain
call and for a batch method's calls alike; the other calls of a batch are
answered as usual."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from powernode.node.rpc import RpcServer
from powernode.node.rpc_spec import MethodSpec, shape


async def _broken(params: dict[str, Any]) -> Any:
    raise KeyError("injected bug")


async def _broken_batch(params: list[dict[str, Any]]) -> Any:
    raise KeyError("injected bug")


async def _fine(params: dict[str, Any]) -> Any:
    return 7


def _server() -> RpcServer:
    spec = MethodSpec(summary="test", params=(), result=shape("x:int"))
    return RpcServer(
        methods={"test.broken": _broken, "test.fine": _fine},
        batch_methods={"test.batch": _broken_batch},
        specs={"test.broken": spec, "test.fine": spec, "test.batch": spec},
        cookie="c",
        token="",
        max_request_bytes=10_000,
        batch_limit=10,
        max_response_bytes=10_000,
        max_depth=8,
        max_values=100,
        version="0",
    )


@pytest.mark.parametrize("method", ["test.broken", "test.batch"])
def test_a_bug_in_a_method_is_internal_error_and_one_event(
    method: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls = [
        {"jsonrpc": "2.0", "id": 1, "method": method},
        {"jsonrpc": "2.0", "id": 2, "method": "test.fine"},
    ]
    with caplog.at_level(logging.DEBUG, logger="powernode"):
        answers = asyncio.run(_server().dispatch_batch(calls))
    broken, fine = (json.loads(a) for a in answers if a is not None)
    assert broken["id"] == 1 and broken["error"]["code"] == -32603
    assert broken["error"]["data"]["code"] == "internal_error"
    assert fine["result"] == 7
    (rec,) = [r for r in caplog.records if r.getMessage() == "rpc.internal_error"]
    assert rec.levelno == logging.ERROR
    assert rec.fields == {"method": method}  # type: ignore[attr-defined]
    assert rec.exc_info is not None and "injected bug" in str(rec.exc_info[1])
