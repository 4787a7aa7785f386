"""The explorer on the RPC port, over a real node's socket: its files with
their security headers, nothing outside its folder, the how-to 404 when it is
off, and what a caller without auth may do (public methods only, over POST
and the WebSocket), with the public set pinned to the explorer contract."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from powernode.client import endpoint_from_datadir
from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.node.config import load_config
from powernode.node.explorer_http import CSP, STATIC_DIR
from powernode.node.node import Node
from tests.harness import TEST_CHAIN
from tests.harness.arpc import AsyncRpc
from tests.harness.p2pnet import events
from tests.integration.conftest import DevNode

# Every method a caller without auth may call while the explorer is on (the
# explorer contract); a new method must choose, and this list says so.
PUBLIC = {
    "node.info",
    "chain.block",
    "chain.blocks",
    "tx.get",
    "account.get",
    "mempool.info",
    "mempool.txs",
    "search",
    "market.params",
    "market.book",
    "market.stats",
    "market.trades",
    "market.orders",
    "market.order",
    "market.participant",
    "market.position",
    "market.settlement",
    "market.slots",
    "cert.params",
    "cert.get",
    "cert.list",
    "cert.trace",
    "cert.verify",
    "cert.cfe",
    "cert.proof",
    "cert.tree",
    "device.get",
    "device.list",
    "meter.readings",
    "ppa.get",
    "ppa.list",
    "contract.get",
    "contract.list",
    "peer.list",
    "peer.stats",
    "rpc.discover",
    "subscribe",
    "unsubscribe",
}
# Never public, whatever else changes: they write, mine, stop or configure.
NEVER = {
    "tx.submit",
    "block.submit",
    "miner.start",
    "miner.stop",
    "dev.mine",
    "node.stop",
    "node.loglevel",
    "node.backup",
    "peer.add",
    "peer.remove",
    "peer.ban",
    "peer.unban",
}


def base_url(dev: DevNode) -> str:
    return dev.node.rpc_url.removesuffix("rpc")


def call(method: str, id_: int = 1, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}


async def test_the_public_set_is_the_contracts_and_discover_marks_it(dev_node: DevNode) -> None:
    server = dev_node.node.rpc
    assert server is not None
    public = {name for name, spec in server.specs.items() if spec.public}
    assert public == PUBLIC, sorted(public ^ PUBLIC)
    assert set(server.specs) >= NEVER
    doc = await dev_node.rpc.call("rpc.discover")
    marked = {m["name"] for m in doc["methods"] if m["x-public"] is True}
    assert marked == public
    assert all(isinstance(m["x-public"], bool) for m in doc["methods"])


async def test_the_page_and_its_files_carry_the_security_headers(dev_node: DevNode) -> None:
    names = sorted(p.name for p in STATIC_DIR.iterdir() if p.is_file())
    assert "index.html" in names
    async with aiohttp.ClientSession() as http:
        async with http.get(base_url(dev_node)) as resp:
            assert resp.status == 200
            assert resp.content_type == "text/html"
            assert await resp.read() == (STATIC_DIR / "index.html").read_bytes()
            assert resp.headers["Content-Security-Policy"] == CSP
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert resp.headers["Referrer-Policy"] == "no-referrer"
        for name in names:
            async with http.get(base_url(dev_node) + "explorer/" + name) as resp:
                assert resp.status == 200, name
                assert await resp.read() == (STATIC_DIR / name).read_bytes(), name
                assert resp.headers["Content-Security-Policy"] == CSP, name
                suffix = Path(name).suffix
                expected = {
                    ".html": "text/html",
                    ".js": "text/javascript",
                    ".css": "text/css",
                }.get(suffix)
                if expected:
                    assert resp.content_type == expected, name


@pytest.mark.parametrize(
    "path",
    [
        "explorer/",
        "explorer",
        "explorer/a/b.js",
        "no-such-page",
        "explorer/no-such.js",
        "explorer/..%2Fexplorer_http.py",
        "explorer/%2e%2e%2fnode%2fconfig.py",
        "explorer/../node/config.py",
        "explorer/.hidden.js",
        "explorer/__init__.py",
        "explorer/static",
        "explorer/index.html%00.js",
    ],
)
async def test_nothing_outside_the_static_folder_is_served(dev_node: DevNode, path: str) -> None:
    # Sent as written (encoded=True): the client would otherwise normalise
    # "explorer/../node/config.py" to "node/config.py" before sending it.
    url = URL(base_url(dev_node) + path, encoded=True)
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 404, path
        body = await resp.read()
        assert b"import" not in body and b"<html" not in body.lower()
        # Every 404 carries the security headers, aiohttp's own ones too.
        assert resp.headers["Content-Security-Policy"] == CSP, path
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("POST", "", "GET"), ("POST", "explorer/app.js", "GET"), ("DELETE", "rpc", "POST")],
)
async def test_a_method_a_path_does_not_take_is_405_with_the_headers(
    dev_node: DevNode, method: str, path: str, allowed: str
) -> None:
    url = base_url(dev_node) + path
    async with aiohttp.ClientSession() as http, http.request(method, url) as resp:
        assert resp.status == 405, path
        assert allowed in resp.headers["Allow"].split(","), resp.headers["Allow"]
        assert resp.headers["Content-Security-Policy"] == CSP, path
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path


async def test_a_dot_dot_path_reaches_the_server_as_written(dev_node: DevNode) -> None:
    """The path the test above sends is the one the server sees."""
    seen: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append(request.raw_path)
        return cast(web.StreamResponse, await handler(request))

    app = web.Application(middlewares=[record])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        url = URL(f"http://127.0.0.1:{port}/explorer/../node/config.py", encoded=True)
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            assert resp.status == 404
        assert seen == ["/explorer/../node/config.py"]
    finally:
        await runner.cleanup()


async def test_no_auth_calls_run_public_methods_only(dev_node: DevNode) -> None:
    async with aiohttp.ClientSession() as http:
        batch = [
            call("node.info", 1),
            call("node.stop", 2),
            call("dev.mine", 3, blocks=1),
            call("tx.submit", 4, raw="00"),
            call("no.such", 5),
            call("chain.block", 6, height=0),
        ]
        async with http.post(dev_node.node.rpc_url, json=batch) as resp:
            assert resp.status == 200
            by_id = {a["id"]: a for a in await resp.json()}
        assert by_id[1]["result"]["explorer"] is True
        for i in (2, 3, 4):
            err = by_id[i]["error"]
            assert (err["code"], err["data"]["code"]) == (-32600, "unauthorized"), i
        assert by_id[5]["error"]["data"]["code"] == "method_not_found"
        assert by_id[6]["result"]["height"] == 0
        # A notification (no id) of a method that is not public is not run
        # either, and, as any notification, gets no answer: alone (204) or in
        # a batch.
        mine = {"jsonrpc": "2.0", "method": "dev.mine", "params": {"blocks": 1}}
        async with http.post(dev_node.node.rpc_url, json=mine) as resp:
            assert resp.status == 204
        async with http.post(dev_node.node.rpc_url, json=[mine, call("node.info", 7)]) as resp:
            assert [a["id"] for a in await resp.json()] == [7]
        async with http.ws_connect(dev_node.node.rpc_url) as ws:
            await ws.send_json(mine)
            await ws.send_json(call("node.info", 8))
            assert (await ws.receive_json(timeout=30))["id"] == 8
        # Nothing ran: no block mined, the node still serves.
        assert (await dev_node.rpc.call("node.info"))["height"] == 0
        # A wrong header is not "no auth": still refused whole.
        async with http.post(
            dev_node.node.rpc_url, json=call("node.info"), headers={"Authorization": "Bearer x"}
        ) as resp:
            assert resp.status == 401


async def test_no_auth_websocket_subscribes_but_may_not_write(dev_node: DevNode) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(dev_node.node.rpc_url) as ws:
        await ws.send_json(call("subscribe", 1, topic="tips"))
        sub = await ws.receive_json(timeout=30)
        assert isinstance(sub["result"], str)
        await ws.send_json(call("dev.mine", 2, blocks=1))
        refused = await ws.receive_json(timeout=30)
        assert refused["error"]["data"]["code"] == "unauthorized"
        # The authorized client mines; the public one is told.
        await dev_node.rpc.call("dev.mine", {"blocks": 1})
        notice = await ws.receive_json(timeout=30)
        assert notice["params"]["subscription"] == sub["result"]
        assert notice["params"]["result"]["height"] == 1


@pytest.fixture
async def closed_node(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Node]:
    """A dev node with ``[explorer] enabled = false`` (its start's log kept)."""
    caplog.set_level(logging.INFO, logger="powernode")
    genesis = write_genesis(
        tmp_path / "genesis.json",
        dev_genesis({KeyPair.generate().address: 10**9}, chain_id=TEST_CHAIN),
    )
    datadir = tmp_path / "node"
    init_datadir(datadir, genesis)
    cfg = datadir / "config.toml"
    text = cfg.read_text()
    assert 'enabled = "auto"' in text
    cfg.write_text(text.replace('enabled = "auto"', "enabled = false"))
    node = Node(load_config(datadir))
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


async def test_off_the_explorer_says_how_to_enable_and_no_auth_is_refused(
    closed_node: Node,
) -> None:
    url = closed_node.rpc_url
    async with aiohttp.ClientSession() as http:
        for path in ("", "explorer/index.html", "explorer/", "explorer"):
            async with http.get(url.removesuffix("rpc") + path) as resp:
                assert resp.status == 404
                text = await resp.text()
                assert "[explorer] enabled = true" in text and text.count("\n") == 1
                assert resp.headers["Content-Security-Policy"] == CSP
        async with http.post(url, json=call("node.info")) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["data"]["code"] == "unauthorized"
        with pytest.raises(aiohttp.WSServerHandshakeError) as no_auth:
            await http.ws_connect(url)
        assert no_auth.value.status == 401
    async with AsyncRpc(endpoint_from_datadir(closed_node.config.datadir)) as rpc:
        assert (await rpc.call("node.info"))["explorer"] is False


async def test_off_the_node_logs_no_explorer_url(
    closed_node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    started = caplog.get_records("setup")
    assert [r for r in started if r.getMessage() == "node.started"], "the start was logged"
    assert [r for r in started if r.getMessage() == "explorer.enabled"] == []


async def test_the_node_logs_the_explorer_url_and_node_info_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="powernode")
    genesis = write_genesis(
        tmp_path / "genesis.json",
        dev_genesis({KeyPair.generate().address: 10**9}, chain_id=TEST_CHAIN),
    )
    datadir = tmp_path / "node"
    init_datadir(datadir, genesis)
    node = Node(load_config(datadir))
    await node.start()
    try:
        url = node.rpc_url.removesuffix("rpc")
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        assert len(events(caplog, "explorer.enabled", url=url)) == 1
    finally:
        await node.stop()


async def test_another_sites_page_may_not_read_without_auth(dev_node: DevNode) -> None:
    url = dev_node.node.rpc_url
    own = base_url(dev_node).rstrip("/")
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=call("node.info"), headers={"Origin": own}) as resp:
            assert resp.status == 200 and (await resp.json())["result"]["height"] == 0
        for origin in ("http://evil.example", "null", own.replace("127.0.0.1", "127.0.0.2")):
            async with http.post(url, json=call("node.info"), headers={"Origin": origin}) as resp:
                assert resp.status == 403, origin
                assert (await resp.json())["error"]["data"]["code"] == "unauthorized"
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(url, headers={"Origin": origin})
            assert refused.value.status == 403
        async with http.ws_connect(url, headers={"Origin": own}) as ws:
            await ws.send_json(call("node.info"))
            assert (await ws.receive_json(timeout=30))["result"]["explorer"] is True
    # With auth too, another site's page is refused: a browser may have
    # cached Basic credentials (the 401 asks for them) and would send them.
    for origin in ("http://evil.example", "null"):
        status, resp = await dev_node.rpc.raw(call("node.info"), headers={"Origin": origin})
        assert status == 403 and resp["error"]["data"]["code"] == "unauthorized"
    # A tool's page on one of this machine's names, with auth, is served.
    status, resp = await dev_node.rpc.raw(
        call("node.info"), headers={"Origin": "http://localhost:1"}
    )
    assert status == 200 and resp["result"]["height"] == 0


async def test_a_private_call_without_auth_and_a_refused_submit_are_logged(
    dev_node: DevNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="powernode.rpc")
    async with aiohttp.ClientSession() as http:
        batch = [call("node.info", 1), call("dev.mine", 2, blocks=1)]
        async with http.post(dev_node.node.rpc_url, json=batch) as resp:
            assert resp.status == 200
    (refused,) = events(caplog, "rpc.refused", reason="unauthorized")
    fields = getattr(refused, "fields", {})
    assert fields["code"] == -32600 and "status" not in fields
    assert "dev.mine" in fields["msg"]
    assert not events(caplog, "rpc.call", method="dev.mine")  # it did not run
    # tx.submit runs as a group: its line names the refused call's code
    caplog.clear()
    status, _ = await dev_node.rpc.raw([call("tx.submit", 3, raw="00ff")])
    assert status == 200
    assert len(events(caplog, "rpc.call", method="tx.submit", error="malformed")) == 1
