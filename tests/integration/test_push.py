"""Push subscriptions over the node's WebSocket (``GET /rpc``), on real
loopback sockets: each topic against what RPC says, a reorg between two
in-process nodes, auth, limits, unsubscribe, and a client that never reads
being dropped while the node goes on."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import os
import re
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from powernode.client import RpcError, build_register, build_transfer, endpoint_from_datadir
from powernode.core.crypto import KeyPair
from powernode.node.node import Node
from powernode.ws_client import WsClient, WsUnavailable
from tests.harness.network import Network, async_wait_until, cut, heal
from tests.harness.p2pnet import events
from tests.harness.wsrpc import WsRpc
from tests.integration.conftest import DevNode
from tests.integration.test_market_rpc import Scenario, market_node  # noqa: F401

WEBSOCKET_ONLY = "websocket_only"


def ws_of(dev: DevNode) -> WsRpc:
    return WsRpc(endpoint_from_datadir(dev.datadir))


async def test_every_tip_in_order_and_the_last_is_the_head(dev_node: DevNode) -> None:
    async with ws_of(dev_node) as ws:
        sid = await ws.subscribe("tips")
        await dev_node.rpc.call("dev.mine", {"blocks": 20})
        got = [await ws.next(sid) for _ in range(20)]
        assert [n["height"] for n in got] == list(range(1, 21))
        assert all(n["type"] == "tip" for n in got)
        for n in (got[0], got[9], got[-1]):
            block = await dev_node.rpc.call("chain.block", {"height": n["height"]})
            assert n["hash"] == block["hash"] and n["prev_hash"] == block["prev_hash"]
            assert n["state_root"] == block["state_root"] and n["timestamp"] == block["timestamp"]
        # Each notice links to the one before: no block skipped or repeated.
        assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(got))
        info = await dev_node.rpc.call("node.info")
        assert got[-1]["hash"] == info["tip"] and got[-1]["height"] == info["height"]
        assert ws.pending(sid) == 0


async def test_reorg_between_two_nodes_is_noticed(tmp_path: Path) -> None:
    users = [KeyPair.generate() for _ in range(2)]
    net = Network(tmp_path, users)
    try:
        a, b = await net.start(2)
        ep = endpoint_from_datadir(a.config.datadir)
        async with WsRpc(ep) as ws:
            sid = await ws.subscribe("tips")
            await cut(a, b)
            await a.mine_now(2)
            await b.mine_now(3)
            old_tip = a.ledger.chain.tip
            own = [await ws.next(sid) for _ in range(2)]
            assert [(n["type"], n["height"]) for n in own] == [("tip", 1), ("tip", 2)]
            assert own[-1]["hash"] == old_tip.hash.hex()
            await heal(a, b)
            reorg = await ws.next(sid)
            assert reorg["type"] == "reorg"
            assert reorg["old_tip"] == {"height": 2, "hash": old_tip.hash.hex()}
            new_tip = b.ledger.chain.tip
            assert reorg["new_tip"] == {"height": 3, "hash": new_tip.hash.hex()}
            genesis = a.ledger.chain.genesis
            assert reorg["fork_point"] == {"height": 0, "hash": genesis.hash.hex()}
            assert [p["height"] for p in reorg["disconnected"]] == [2, 1]
            assert reorg["disconnected"][0]["hash"] == old_tip.hash.hex()
            assert [p["height"] for p in reorg["connected"]] == [1, 2, 3]
            tips = [await ws.next(sid) for _ in range(3)]
            assert [t["type"] for t in tips] == ["tip"] * 3
            assert [t["hash"] for t in tips] == [p["hash"] for p in reorg["connected"]]
            assert tips[-1]["hash"] == a.ledger.chain.tip.hash.hex() == new_tip.hash.hex()
    finally:
        await net.stop()


async def test_tx_goes_pending_then_confirmed(dev_node: DevNode) -> None:
    alice, bob = dev_node.users[:2]
    tx = build_transfer(alice, chain_id=dev_node.chain_id, nonce=0, to=bob.address, amount=5)
    txid = tx.txid.hex()
    async with ws_of(dev_node) as ws:
        sid = await ws.subscribe("tx", id=txid)
        assert await ws.next(sid) == {"id": txid, "status": "unknown"}
        await dev_node.rpc.call("tx.submit", {"raw": tx.raw.hex()})
        assert await ws.next(sid) == {"id": txid, "status": "pending"}
        await dev_node.rpc.call("dev.mine", {"blocks": 1})
        confirmed = await ws.next(sid)
        got = await dev_node.rpc.call("tx.get", {"id": txid})
        got.pop("tx")
        got.pop("raw")
        assert confirmed == {"id": txid, **got}
        assert confirmed["status"] == "confirmed" and confirmed["height"] == 1
        # Later blocks add confirmations, not notices.
        await dev_node.rpc.call("dev.mine", {"blocks": 1})
        late = await ws.subscribe("tx", id=txid)
        # A subscription to a tx confirmed before it gets the status at once.
        now = await ws.next(late)
        assert now["status"] == "confirmed" and now["confirmations"] == 2
        assert ws.pending(sid) == 0


async def test_replaced_and_conflicting_txs_are_dropped_with_a_code(dev_node: DevNode) -> None:
    alice, bob = dev_node.users[:2]
    cid = dev_node.chain_id
    first = build_transfer(alice, chain_id=cid, nonce=0, to=bob.address, amount=1, fee=1000)
    better = build_transfer(alice, chain_id=cid, nonce=0, to=bob.address, amount=2, fee=2000)
    async with ws_of(dev_node) as ws:
        await dev_node.rpc.call("tx.submit", {"raw": first.raw.hex()})
        sid = await ws.subscribe("tx", id=first.txid.hex())
        assert (await ws.next(sid))["status"] == "pending"
        await dev_node.rpc.call("tx.submit", {"raw": better.raw.hex()})
        dropped = await ws.next(sid)
        assert dropped["status"] == "dropped" and dropped["error"]["code"] == "replaced"
        got = await dev_node.rpc.call("tx.get", {"id": first.txid.hex()})
        assert got == {"status": "dropped", "error": dropped["error"]}


async def test_ordinary_calls_and_unsubscribe_over_the_socket(dev_node: DevNode) -> None:
    async with ws_of(dev_node) as ws:
        info = await ws.call("node.info")
        assert info["height"] == (await dev_node.rpc.call("node.info"))["height"]
        # A batch, through the same dispatch as HTTP.
        batch = [
            {"jsonrpc": "2.0", "id": "a", "method": "mempool.info"},
            {"jsonrpc": "2.0", "id": "b", "method": "no.such"},
        ]
        assert ws.ws is not None
        await ws.ws.send_json(batch)
        await async_wait_until(lambda: any(isinstance(m, list) for m in ws.log), what="batch")
        answer = next(m for m in ws.log if isinstance(m, list))
        assert answer[0]["id"] == "a" and "size" in answer[0]["result"]
        assert answer[1]["error"]["code"] == -32601

        sid = await ws.subscribe("tips")
        await dev_node.rpc.call("dev.mine", {"blocks": 1})
        assert (await ws.next(sid))["height"] == 1
        assert await ws.call("unsubscribe", {"subscription": sid}) is True
        assert await ws.call("unsubscribe", [sid]) is False
        await dev_node.rpc.call("dev.mine", {"blocks": 2})
        # The queue keeps order: an answer sent after the blocks comes after
        # any notice of them, so none came.
        await ws.call("node.info")
        assert ws.pending(sid) == 0

        # The same bounds as HTTP: too deep is refused before it is parsed.
        deep = {"jsonrpc": "2.0", "id": "deep", "method": "node.info", "params": {}}
        inner: dict[str, Any] = deep["params"]  # type: ignore[assignment]
        for _ in range(100):
            inner["x"] = {}
            inner = inner["x"]
        await ws.ws.send_json(deep)
        await async_wait_until(
            lambda: any(
                m.get("id") is None and "error" in m for m in ws.log if isinstance(m, dict)
            ),
            what="the refusal",
        )
        refused = next(
            m for m in ws.log if isinstance(m, dict) and m.get("id") is None and "error" in m
        )
        assert refused["error"]["code"] == -32700 and "nested deeper" in refused["error"]["message"]
        # As over HTTP, the envelope's own refusals carry error.data's code.
        assert set(refused["error"]["data"]) == {"code", "message"}
        limit = dev_node.node.config.rpc.batch_limit
        await ws.ws.send_json(
            [{"jsonrpc": "2.0", "id": i, "method": "node.info"} for i in range(limit + 1)]
        )

        def too_large() -> list[dict[str, Any]]:
            return [
                m
                for m in ws.log
                if isinstance(m, dict)
                and "batch too large" in m.get("error", {}).get("message", "")
            ]

        await async_wait_until(lambda: too_large() != [], what="the batch refusal")
        assert too_large()[0]["error"]["data"]["code"] == "batch_too_large"

        with pytest.raises(RpcError) as info_err:
            await ws.call("subscribe", {"topic": "weather"})
        assert info_err.value.code == -32602
        with pytest.raises(RpcError) as info_err:
            await ws.call("subscribe", {"topic": "tips", "height": 3})
        assert "unknown params" in info_err.value.message
    # Over HTTP there is nowhere to push to.
    with pytest.raises(RpcError) as http_err:
        await dev_node.rpc.call("subscribe", {"topic": "tips"})
    assert http_err.value.reason == WEBSOCKET_ONLY


async def test_trades_by_product_and_participant(market_node: DevNode) -> None:  # noqa: F811
    dev = market_node
    s = Scenario(dev)
    async with ws_of(dev) as ws:
        spot = await ws.subscribe("trades", product="spot")
        forward = await ws.subscribe("trades", product="forward")
        buyer = await ws.subscribe("trades", participant=s.consumer.address.hex())
        outsider = await ws.subscribe("trades", participant=s.outsider.address.hex())
        await s.run()
        trade = await ws.next(spot)
        listed = await dev.rpc.call("market.trades", {"product": "spot"})
        assert [trade] == listed
        assert trade["buyer"] == s.consumer.address.hex() and trade["energy"] == 50_000
        assert await ws.next(buyer) == trade
        await ws.call("node.info")  # every notice of the blocks is in by now
        assert ws.pending(forward) == 0 and ws.pending(outsider) == 0


async def test_the_socket_reads_bodies_as_http_does(dev_node: DevNode) -> None:
    """Strict UTF-8 with a leading BOM skipped, over both transports: an
    encoded surrogate (not UTF-8) is a parse error on each."""
    call = b'{"jsonrpc": "2.0", "id": 7, "method": "node.info"}'
    surrogate = (
        b'{"jsonrpc": "2.0", "id": 8, "method": "node.info", "params": {"x": "\xed\xa0\x80"}}'
    )
    async with ws_of(dev_node) as ws:
        assert ws.ws is not None
        await ws.ws.send_bytes(b"\xef\xbb\xbf" + call)
        await async_wait_until(
            lambda: any(isinstance(m, dict) and m.get("id") == 7 for m in ws.log), what="answer"
        )
        answer = next(m for m in ws.log if isinstance(m, dict) and m.get("id") == 7)
        assert answer["result"]["height"] == 0
        await ws.ws.send_bytes(surrogate)
        await async_wait_until(
            lambda: any(isinstance(m, dict) and "error" in m for m in ws.log), what="refusal"
        )
        refused = next(m for m in ws.log if isinstance(m, dict) and "error" in m)
        assert refused["id"] is None
        assert refused["error"]["code"] == -32700
        assert refused["error"]["message"] == "parse error: not UTF-8"
    ep = endpoint_from_datadir(dev_node.datadir)
    headers = {"Authorization": ep.auth}
    async with (
        aiohttp.ClientSession() as http,
        http.post(ep.url, data=surrogate, headers=headers) as r,
    ):
        body = await r.json()
    assert body["error"]["code"] == -32700 and body["error"]["message"] == "parse error: not UTF-8"


async def test_engine_events_by_engine_and_name(dev_node: DevNode) -> None:
    alice, bob = dev_node.users[:2]
    cid = dev_node.chain_id
    reg = build_register(
        alice, chain_id=cid, nonce=0, role="producer", location="Oslo", capacity_w=1000
    )
    pay = build_transfer(bob, chain_id=cid, nonce=0, to=alice.address, amount=3)
    async with ws_of(dev_node) as ws:
        market = await ws.subscribe("events", engine="market")
        transfers = await ws.subscribe("events", event=["transfer"])
        certs = await ws.subscribe("events", event="cert.issued")
        for tx in (reg, pay):
            await dev_node.rpc.call("tx.submit", {"raw": tx.raw.hex()})
        await dev_node.rpc.call("dev.mine", {"blocks": 1})
        registered = await ws.next(market)
        receipt = (await dev_node.rpc.call("tx.get", {"id": reg.txid.hex()}))["receipt"]
        assert registered["event"] == receipt["events"][0]
        assert registered["engine"] == "market" and registered["txid"] == reg.txid.hex()
        assert registered["height"] == 1 and registered["tx_type"] == "participant.register"
        moved = await ws.next(transfers)
        assert moved["event"]["event"] == "transfer" and moved["txid"] == pay.txid.hex()
        await ws.call("node.info")
        assert ws.pending(market) == 0 and ws.pending(certs) == 0


async def test_auth_is_that_of_rpc(dev_node: DevNode) -> None:
    # No auth at all is the explorer's public access (on for a dev chain):
    # tests/integration/test_explorer_server.py.
    url = dev_node.node.rpc_url
    async with aiohttp.ClientSession() as http:
        bad = "Basic " + base64.b64encode(b"__cookie__:wrong").decode()
        with pytest.raises(aiohttp.WSServerHandshakeError) as wrong:
            await http.ws_connect(url, headers={"Authorization": bad})
        assert wrong.value.status == 401
    # The CLI's client says so in its own terms.
    ep = endpoint_from_datadir(dev_node.datadir)
    stale = type(ep)(url=ep.url, auth=bad)
    with pytest.raises(RpcError) as err:
        await asyncio.to_thread(WsClient(stale).connect)
    assert err.value.reason == "unauthorized"


async def test_cli_client_sees_no_websocket_on_a_plain_http_server(dev_node: DevNode) -> None:
    # /health is no WebSocket: the client must tell "no WebSocket here"
    # (fall back to polling) from "no node".
    ep = endpoint_from_datadir(dev_node.datadir)
    plain = type(ep)(url=ep.url.removesuffix("/rpc") + "/health", auth=ep.auth)
    with pytest.raises(WsUnavailable):
        await asyncio.to_thread(WsClient(plain).connect)


async def test_limits_on_subscriptions_and_clients(tmp_path: Path, users: list[KeyPair]) -> None:
    node = await start_with(tmp_path, users, ws_max_clients=2, ws_max_subscriptions=3)
    try:
        ep = endpoint_from_datadir(node.config.datadir)
        async with WsRpc(ep) as ws, WsRpc(ep):
            for _ in range(3):
                await ws.subscribe("tips")
            with pytest.raises(RpcError) as err:
                await ws.subscribe("tips")
            assert err.value.reason == "subscription_limit"
            async with aiohttp.ClientSession() as http:
                with pytest.raises(aiohttp.WSServerHandshakeError) as full:
                    await http.ws_connect(ep.url, headers={"Authorization": ep.auth})
                assert full.value.status == 503
    finally:
        await node.stop()


async def start_with(tmp_path: Path, users: list[KeyPair], **rpc: int) -> Node:
    """A dev node with some ``[rpc]`` keys set."""
    from powernode.devnet.datadir import init_datadir, write_genesis
    from powernode.devnet.devchain import dev_genesis
    from powernode.node.config import load_config
    from tests.harness import TEST_CHAIN

    genesis = write_genesis(
        tmp_path / "genesis.json",
        dev_genesis({u.address: 10**12 for u in users}, chain_id=TEST_CHAIN),
    )
    datadir = tmp_path / "node"
    init_datadir(datadir, genesis)
    cfg = datadir / "config.toml"
    text = cfg.read_text()
    for key, value in rpc.items():
        text, n = re.subn(rf"(?m)^{key} = \d+", f"{key} = {value}", text)
        assert n == 1, key
    cfg.write_text(text)
    node = Node(load_config(datadir))
    await node.start()
    return node


def raw_websocket(url: str, auth: str) -> socket.socket:
    """A WebSocket that is opened and then never read: a tiny receive
    buffer, so the node's writes back up quickly."""
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET /rpc HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: {auth}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)  # only the handshake, byte by byte: nothing past it
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def client_frame(doc: Any) -> bytes:
    from powernode.ws_client import OP_TEXT, encode_frame

    return encode_frame(OP_TEXT, json.dumps(doc).encode(), os.urandom(4))


async def test_a_client_that_never_reads_is_dropped_and_the_node_goes_on(
    tmp_path: Path, users: list[KeyPair], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="powernode")
    node = await start_with(tmp_path, users, ws_queue=8, ws_max_subscriptions=50)
    try:
        ep = endpoint_from_datadir(node.config.datadir)
        slow = await asyncio.to_thread(raw_websocket, ep.url, ep.auth)
        try:
            # 50 subscriptions to tips: each block is 50 notices for it.
            for i in range(50):
                slow.sendall(
                    client_frame(
                        {"jsonrpc": "2.0", "id": i, "method": "subscribe", "params": ["tips"]}
                    )
                )
            async with WsRpc(ep) as fast:
                sid = await fast.subscribe("tips")
                await async_wait_until(lambda: len(node.push.clients) == 2 if node.push else False)

                async def mined_until_dropped() -> bool:
                    await node.mine_now(1)
                    return bool(events(caplog, "ws.dropped"))

                await async_wait_until(mined_until_dropped, timeout=60, what="ws.dropped")
                height = node.ledger.chain.height
                dropped = events(caplog, "ws.dropped")[0]
                assert dropped.fields["reason"] == "too slow: 8 messages queued"  # type: ignore[attr-defined]
                await async_wait_until(
                    lambda: len(node.push.clients) == 1 if node.push else False,
                    what="slow client gone",
                )
                # The node goes on: blocks connect, RPC and the fast client are served.
                await node.mine_now(2)
                assert node.ledger.chain.height == height + 2
                info = await fast.call("node.info")
                assert info["height"] == height + 2
                seen: list[Any] = []
                while not seen or seen[-1]["height"] < height + 2:
                    seen.append(await fast.next(sid))
                assert [n["height"] for n in seen] == list(range(1, height + 3))
        finally:
            slow.close()
    finally:
        await node.stop()


async def test_wait_polls_a_node_without_the_websocket(dev_node: DevNode) -> None:
    from powernode.cli.common import submit_and_wait
    from powernode.client import RpcClient

    node = dev_node.node
    assert node.rpc is not None
    node.rpc.websocket = None  # as a node from before push: GET /rpc is 405
    alice, bob = dev_node.users[:2]
    tx = build_transfer(alice, chain_id=dev_node.chain_id, nonce=0, to=bob.address, amount=1)
    ep = endpoint_from_datadir(dev_node.datadir)

    async def mine_when_pending() -> None:
        await async_wait_until(lambda: len(node.ledger.mempool) == 1, what="tx in the pool")
        await node.mine_now(1)

    def wait_in_cli() -> dict[str, Any]:
        with RpcClient(ep) as c:
            return submit_and_wait(c, tx, 30.0)

    miner = asyncio.create_task(mine_when_pending())
    status = await asyncio.to_thread(wait_in_cli)
    await miner
    assert status["status"] == "confirmed" and status["height"] == 1
    # Without the fallback WsUnavailable would have ended the command; it
    # asked tx.get instead, and no subscription was ever made.
    calls = node.metrics.rpc_calls
    assert calls.labels("tx.get")._value.get() >= 1
    assert calls.labels("subscribe")._value.get() == 0


async def test_a_stopping_node_closes_its_clients_going_away(
    tmp_path: Path, users: list[KeyPair]
) -> None:
    node = await start_with(tmp_path, users)
    stopped = False
    try:
        async with WsRpc(endpoint_from_datadir(node.config.datadir)) as ws:
            await ws.subscribe("tips")
            await node.stop()
            stopped = True
            async with asyncio.timeout(30):
                await ws.closed.wait()
            assert ws.ws is not None and ws.ws.close_code == 1001
    finally:
        if not stopped:
            await node.stop()
