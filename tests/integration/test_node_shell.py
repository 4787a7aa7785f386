"""The node shell's own edges: a config key under its old name, the node's
typed RPC errors, and telling an oversize frame by its type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode

from powernode.client import RpcError, endpoint_from_datadir
from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.node.config import load_config
from powernode.node.node import Node
from powernode.node.p2p import is_oversize
from tests.harness.arpc import AsyncRpc
from tests.harness.p2pnet import events


async def test_old_config_key_and_node_errors_over_rpc(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    genesis = write_genesis(
        tmp_path / "genesis.json", dev_genesis({KeyPair.generate().address: 10**9}, dev=False)
    )
    datadir = tmp_path / "node"
    init_datadir(datadir, genesis)
    config = datadir / "config.toml"
    text = config.read_text()
    assert "verify_processes = 2" in text
    config.write_text(text.replace("verify_processes = 2", "verify_threads = 1"))

    node = Node(load_config(datadir))
    with pytest.raises(RuntimeError, match="not started"):
        _ = node.ledger
    await node.start()
    try:
        (record,) = events(caplog, "config.deprecated")
        assert record.fields == {"key": "verify_threads", "use": "verify_processes"}  # type: ignore[attr-defined]
        assert node.verifier.processes == 1

        async with AsyncRpc(endpoint_from_datadir(datadir)) as rpc:
            cases: list[tuple[str, dict[str, Any], int, str]] = [
                ("dev.mine", {"blocks": 1}, -32000, "not_dev_mode"),
                ("peer.list", {}, -32000, "p2p_disabled"),
                ("peer.add", {"address": "nowhere"}, -32602, "invalid_params"),
                # The rule [p2p] peers has: a port in 1..65535, no spaces.
                ("peer.add", {"address": "127.0.0.1:99999"}, -32602, "invalid_params"),
                ("peer.add", {"address": "127.0.0.1:0"}, -32602, "invalid_params"),
                ("peer.add", {"address": "bad host:80"}, -32602, "invalid_params"),
                # A flag is true or false, not a truthy string.
                ("chain.block", {"height": 0, "verbose": "false"}, -32602, "invalid_params"),
                ("chain.block", {"height": 0, "raw": 1}, -32602, "invalid_params"),
                ("chain.block", {"height": 5}, -32004, "not_found"),
                # Hex is hex digits: not bytes with spaces between them.
                ("tx.get", {"id": " ".join(["ab"] * 32)}, -32602, "invalid_params"),
                ("account.get", {"address": " ".join(["ab"] * 20)}, -32602, "invalid_params"),
                ("market.order", {"id": "ab " + "cd" * 31}, -32602, "invalid_params"),
            ]
            for method, params, code, reason in cases:
                with pytest.raises(RpcError) as info:
                    await rpc.call(method, params)
                assert (info.value.code, info.value.reason) == (code, reason), method
    finally:
        await node.stop()
    assert len(events(caplog, "config.deprecated")) == 1


@pytest.mark.parametrize(
    ("error", "oversize"),
    [
        # What aiohttp gives for a frame over max_msg_size, whatever it says.
        (aiohttp.WebSocketError(WSCloseCode.MESSAGE_TOO_BIG, "frame refused"), True),
        (aiohttp.WebSocketError(WSCloseCode.PROTOCOL_ERROR, "bad size field"), False),
        (ValueError("message size too big"), False),
        (None, False),
    ],
)
def test_an_oversize_frame_is_told_by_its_type_and_code(error: object, oversize: bool) -> None:
    assert is_oversize(error) is oversize
