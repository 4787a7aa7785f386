"""What a caller without auth (the explorer's public RPC) may make the node
hold or do, over a real node's socket: its own small bounds on a body, a
batch, an answer, requests at once, WebSocket clients and their queued
bytes ([explorer] keys), and the Host and Origin rules that keep another
site's page (DNS rebinding, cached credentials) from reading the node."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from powernode.client import endpoint_from_datadir
from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.node.config import load_config
from powernode.node.node import Node
from tests.harness import TEST_CHAIN
from tests.harness.arpc import AsyncRpc
from tests.harness.network import async_wait_until
from tests.harness.p2pnet import events


def call(method: str, id_: int = 1, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}


async def _node(tmp_path: Path, explorer: str) -> Node:
    genesis = write_genesis(
        tmp_path / "genesis.json",
        dev_genesis({KeyPair.generate().address: 10**9}, chain_id=TEST_CHAIN),
    )
    datadir = tmp_path / "node"
    init_datadir(datadir, genesis)
    cfg = datadir / "config.toml"
    text = cfg.read_text()
    assert 'enabled = "auto"' in text
    cfg.write_text(text.replace('enabled = "auto"', 'enabled = "auto"\n' + explorer))
    node = Node(load_config(datadir))
    await node.start()
    return node


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    """A dev node whose no-auth bounds are small enough to reach in a test."""
    node = await _node(
        tmp_path,
        "max_request_bytes = 4096\nbatch_limit = 5\nmax_response_bytes = 2000\n"
        "max_parallel = 1\nws_max_clients = 1\nws_queue_bytes = 200000\n"
        'hosts = ["node.example"]\n',
    )
    try:
        yield node
    finally:
        await node.stop()


async def test_no_auth_posts_have_their_own_small_bounds(node: Node) -> None:
    url = node.rpc_url
    async with (
        aiohttp.ClientSession() as http,
        AsyncRpc(endpoint_from_datadir(node.config.datadir)) as rpc,
    ):
        # A body past [explorer] max_request_bytes: 413, while with auth it runs.
        big = [call("node.info", i) for i in range(5)] + [{"pad": "x" * 5000}]
        async with http.post(url, json=big) as resp:
            assert resp.status == 413
            assert (await resp.json())["error"]["data"]["code"] == "request_too_large"
        status, answer = await rpc.raw(big)
        assert status == 200 and len(answer) == 6
        # A batch past [explorer] batch_limit is refused whole; with auth it runs.
        six = [call("node.info", i) for i in range(6)]
        async with http.post(url, json=six) as resp:
            body = await resp.json()
            assert body["error"]["data"]["code"] == "batch_too_large"
        assert len((await rpc.raw(six))[1]) == 6
        five = [call("cert.params", i) for i in range(5)]  # about 250 bytes each
        async with http.post(url, json=five) as resp:
            assert all("result" in a for a in await resp.json())
        # The answer stops at [explorer] max_response_bytes (2000 here): the
        # rest -32003 (market.params is about 1200 bytes).
        params = [call("market.params", i) for i in range(5)]
        async with http.post(url, json=params) as resp:
            answers = await resp.json()
        assert ["result" in a for a in answers] == [True, True, False, False, False]
        assert answers[-1]["error"]["data"]["code"] == "response_too_large"
        assert all("result" in a for a in (await rpc.raw(params))[1])
        # A single answer past it is not sent either (rpc.discover: ~66 kB),
        # over POST and the WebSocket; with auth it is.
        async with http.post(url, json=call("rpc.discover")) as resp:
            assert (await resp.json())["error"]["data"]["code"] == "response_too_large"
        async with http.ws_connect(url) as ws:
            await ws.send_json(call("rpc.discover"))
            got = await ws.receive_json(timeout=30)
            assert got["error"]["data"]["code"] == "response_too_large"
        assert "methods" in await rpc.call("rpc.discover")


async def test_no_auth_posts_at_once_are_bounded(node: Node) -> None:
    """[explorer] max_parallel = 1: while one no-auth POST is being served
    (its body still arriving), another is 503; with auth it runs."""
    host, _, port = node.rpc_url.removeprefix("http://").removesuffix("/rpc").rpartition(":")
    _, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"POST /rpc HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n[".encode()
        )
        await writer.drain()
        rpc_server = node.rpc
        assert rpc_server is not None
        await async_wait_until(lambda: rpc_server._public_running == 1, what="a POST held")
        async with (
            aiohttp.ClientSession() as http,
            http.post(node.rpc_url, json=call("node.info")) as resp,
        ):
            assert resp.status == 503
            assert "[explorer] max_parallel" in (await resp.json())["error"]["message"]
        async with AsyncRpc(endpoint_from_datadir(node.config.datadir)) as rpc:
            assert (await rpc.call("node.info"))["explorer"] is True
    finally:
        writer.close()
    await async_wait_until(lambda: rpc_server._public_running == 0, what="the POST gone")
    async with (
        aiohttp.ClientSession() as http,
        http.post(node.rpc_url, json=call("node.info")) as resp,
    ):
        assert resp.status == 200


async def test_no_auth_websocket_clients_have_their_own_cap(node: Node) -> None:
    """[explorer] ws_max_clients = 1: a second no-auth client is refused,
    an authenticated one still connects."""
    headers = {"Authorization": endpoint_from_datadir(node.config.datadir).auth}
    async with aiohttp.ClientSession() as http, http.ws_connect(node.rpc_url) as first:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(node.rpc_url)
        assert refused.value.status == 503
        async with http.ws_connect(node.rpc_url, headers=headers) as authed:
            await authed.send_json(call("node.info"))
            assert "result" in await authed.receive_json(timeout=30)
        await first.send_json(call("node.info"))
        assert "result" in await first.receive_json(timeout=30)


async def test_a_no_auth_websocket_client_that_does_not_read_is_dropped(tmp_path: Path) -> None:
    """Calls whose answers it never reads: once the bytes queued for it pass
    [explorer] ws_queue_bytes, the node drops it instead of holding more."""
    node = await _node(tmp_path, "ws_queue_bytes = 200000\n")
    push = node.push
    assert push is not None
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(node.rpc_url) as ws:
            await async_wait_until(lambda: len(push.clients) == 1, what="the client connected")
            batch = [call("rpc.discover", i) for i in range(5)]  # ~330 kB of answers
            for _ in range(2000):
                if not push.clients:
                    break
                try:
                    await ws.send_json(batch)
                except ConnectionError:
                    break
                await asyncio.sleep(0)
            await async_wait_until(lambda: not push.clients, timeout=60, what="the drop")
    finally:
        await node.stop()


async def test_a_no_auth_websocket_message_past_the_cap_closes_it(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="powernode.rpc")
    async with aiohttp.ClientSession() as http, http.ws_connect(node.rpc_url) as ws:
        await ws.send_str(" " * 5000 + '{"jsonrpc": "2.0", "id": 1, "method": "node.info"}')
        msg = await ws.receive(timeout=30)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 1009
    # The node closed it, and its log says with what (not 0: "the client").
    await async_wait_until(lambda: events(caplog, "ws.closed"), what="ws.closed logged")
    (closed,) = events(caplog, "ws.closed")
    assert closed.fields["code"] == 1009  # type: ignore[attr-defined]


async def test_refused_requests_are_logged_with_their_stable_code(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    """rpc.refused: the JSON-RPC number, the stable code of error.data.code,
    the HTTP status where it is not 200, and the message; 401 and 403
    included."""
    caplog.set_level(logging.DEBUG, logger="powernode.rpc")
    url = node.rpc_url
    port = url.removesuffix("/rpc").rpartition(":")[2]
    auth = endpoint_from_datadir(node.config.datadir).auth
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=[call("node.info", i) for i in range(6)]) as resp:
            assert resp.status == 200
        async with http.post(url, json=call("node.info"), headers={"Host": f"evil:{port}"}) as resp:
            assert resp.status == 403
        async with http.post(
            url, json=call("node.info"), headers={"Authorization": "Basic bm9wZTpub3Bl"}
        ) as resp:
            assert resp.status == 401
        foreign = {"Authorization": auth, "Origin": "http://evil.example"}
        async with http.post(url, json=call("node.info"), headers=foreign) as resp:
            assert resp.status == 403
            message = (await resp.json())["error"]["message"]
            assert "even with auth" in message, message
    logged = [r.fields for r in events(caplog, "rpc.refused")]  # type: ignore[attr-defined]
    assert [(f["code"], f["reason"], f.get("status")) for f in logged] == [
        (-32600, "batch_too_large", None),
        (-32600, "unauthorized", 403),
        (-32600, "unauthorized", 401),
        (-32600, "unauthorized", 403),
    ]
    assert "limit is 5" in logged[0]["msg"] and "evil" in logged[1]["msg"]


async def test_no_auth_needs_an_allowed_host(node: Node) -> None:
    """DNS rebinding: an attacker's page on its own name that resolves here
    sends Host (and Origin) with that name; without auth that is refused,
    while this machine's names and [explorer] hosts are served."""
    url = node.rpc_url
    port = url.removesuffix("/rpc").rpartition(":")[2]
    async with aiohttp.ClientSession() as http:
        for name in ("evil.example", "127.0.0.2", "node.example.evil"):
            host = f"{name}:{port}"
            for headers in ({"Host": host}, {"Host": host, "Origin": f"http://{host}"}):
                async with http.post(url, json=call("node.info"), headers=headers) as resp:
                    assert resp.status == 403, headers
                    assert (await resp.json())["error"]["data"]["code"] == "unauthorized"
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(url, headers={"Host": host})
            assert refused.value.status == 403
        for name in ("127.0.0.1", "localhost", "LOCALHOST", "[::1]", "node.example"):
            host = f"{name}:{port}"
            headers = {"Host": host, "Origin": f"http://{host}"}
            async with http.post(url, json=call("node.info"), headers=headers) as resp:
                assert resp.status == 200, name
    # With auth, the Host does not matter (a tool behind a proxy).
    async with AsyncRpc(endpoint_from_datadir(node.config.datadir)) as rpc:
        status, answer = await rpc.raw(call("node.info"), headers={"Host": f"evil.example:{port}"})
        assert status == 200 and answer["result"]["explorer"] is True


async def test_any_host_with_a_star(tmp_path: Path) -> None:
    node = await _node(tmp_path, 'hosts = ["*"]\n')
    try:
        async with aiohttp.ClientSession() as http:
            headers = {"Host": "anything.example:1"}
            async with http.post(node.rpc_url, json=call("node.info"), headers=headers) as resp:
                assert resp.status == 200
    finally:
        await node.stop()


async def test_a_get_without_an_upgrade_is_told_what_the_url_is(node: Node) -> None:
    async with aiohttp.ClientSession() as http, http.get(node.rpc_url) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
        assert error["code"] == -32600 and "WebSocket" in error["message"]


async def test_a_client_that_stops_answering_pings_is_logged_as_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No pong to the node's heartbeat: the node drops it, and ws.closed says
    1006 (lost, no close frame), not 0 ("it closed first")."""
    from powernode.node import rpc_ws

    monkeypatch.setattr(rpc_ws, "HEARTBEAT_S", 0.5)
    caplog.set_level(logging.DEBUG, logger="powernode.rpc")
    node = await _node(tmp_path, "")
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(node.rpc_url, autoping=False):
            await async_wait_until(
                lambda: events(caplog, "ws.closed"), timeout=30, what="the node to drop it"
            )
        (closed,) = events(caplog, "ws.closed")
        assert closed.fields["code"] == 1006  # type: ignore[attr-defined]
    finally:
        await node.stop()
