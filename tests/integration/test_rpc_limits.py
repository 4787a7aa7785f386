"""The RPC bounds (issue 12, item 1) against a node on its real socket on
127.0.0.1: batch length, answer size, nesting depth, JSON values and body
size, each refused with a JSON-RPC error while the node carries on; and the
issue's own requests (a 4 MB batch of bare integers, 100,000 nested
brackets, an id of NaN).

``dev_node`` has the default ``[rpc]`` bounds; ``small`` has tiny ones, so a
few calls reach each bound."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import re
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from powernode.client import build_transfer, endpoint_from_datadir
from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.node import rpc as rpc_module
from powernode.node.config import NodeConfig, load_config
from powernode.node.node import Node
from tests.harness import TEST_CHAIN
from tests.harness.arpc import AsyncRpc
from tests.integration.conftest import FUNDS, DevNode

SMALL = {
    "max_request_bytes": 64 * 1024,
    "batch_limit": 10,
    "max_response_bytes": 2048,
    "max_depth": 4,
    "max_values": 200,
}
# The defaults the README documents (what dev_node runs with).
BATCH_LIMIT = 1000
MAX_RESPONSE_BYTES = 25 * 1024 * 1024
MAX_DEPTH = 64
MAX_VALUES = 100_000


def test_the_defaults_are_the_documented_ones() -> None:
    rpc = NodeConfig(datadir=Path(".")).rpc
    assert (rpc.batch_limit, rpc.max_response_bytes, rpc.max_depth, rpc.max_values) == (
        BATCH_LIMIT,
        MAX_RESPONSE_BYTES,
        MAX_DEPTH,
        MAX_VALUES,
    )


@pytest.fixture
async def small(tmp_path: Path, users: list[KeyPair]) -> AsyncIterator[DevNode]:
    """A dev node (miner off, four funded users) with the ``SMALL`` bounds,
    set in its config.toml as an operator would."""
    genesis = write_genesis(
        tmp_path / "genesis.json",
        dev_genesis({u.address: FUNDS for u in users}, chain_id=TEST_CHAIN),
    )
    datadir = tmp_path / "node"
    init_datadir(datadir, genesis)
    cfg = datadir / "config.toml"
    text = cfg.read_text()
    for key, value in SMALL.items():
        text, n = re.subn(rf"(?m)^{key} = \d+", f"{key} = {value}", text)
        assert n == 1, f"config.toml shows no {key}"
    cfg.write_text(text)
    node = Node(load_config(datadir))
    assert node.config.rpc.batch_limit == SMALL["batch_limit"]
    await node.start()
    try:
        async with AsyncRpc(endpoint_from_datadir(datadir)) as client:
            yield DevNode(node, client, genesis, datadir, users, TEST_CHAIN)
    finally:
        await node.stop()


async def post(dev: DevNode, body: bytes | Any) -> tuple[int, bytes]:
    """POST ``body`` (bytes as is, else its JSON): (HTTP status, raw answer)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    # aiohttp warns that a big bytes body blocks its loop (a file it streams).
    data = io.BytesIO(raw) if len(raw) > 1024 * 1024 else raw
    headers = {"Content-Type": "application/json"}
    async with dev.rpc.session.post(dev.rpc.endpoint.url, data=data, headers=headers) as resp:
        return resp.status, await resp.read()


def strict(raw: bytes) -> Any:
    """The answer as JSON; NaN or Infinity in it fails the test."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in the answer, which is not JSON")

    return json.loads(raw, parse_constant=refuse)


async def refused(dev: DevNode, body: bytes | Any, *, status: int = 200) -> dict[str, Any]:
    """The error of a request refused whole: one error object, id null."""
    got_status, raw = await post(dev, body)
    doc = strict(raw)
    assert got_status == status, (got_status, raw[:200])
    assert isinstance(doc, dict) and set(doc) == {"jsonrpc", "id", "error"}, raw[:200]
    assert doc["id"] is None
    err: dict[str, Any] = doc["error"]
    return err


async def height(dev: DevNode) -> int:
    h: int = (await dev.rpc.call("node.info"))["height"]
    return h


def call(method: str, params: Any = None, id_: Any = None) -> dict[str, Any]:
    """A call; without ``id_``, a notification."""
    out: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        out["params"] = params
    if id_ is not None:
        out["id"] = id_
    return out


# --- batch length ------------------------------------------------------------------


async def test_a_batch_over_batch_limit_is_refused_whole_and_none_of_it_runs(
    small: DevNode,
) -> None:
    limit = SMALL["batch_limit"]
    mine = call("dev.mine", {"blocks": 1})  # notifications: their effect is all we see
    err = await refused(small, [mine] * (limit + 1))
    assert err["code"] == -32600
    assert err["message"] == f"batch too large: {limit + 1} calls, the limit is {limit}"
    assert await height(small) == 0, "no call of a refused batch runs"
    # At the limit the batch runs: nothing to answer, every call ran.
    assert await post(small, [mine] * limit) == (204, b"")
    assert await height(small) == limit


async def test_the_issue_batch_of_bare_integers_is_refused_cheaply(dev_node: DevNode) -> None:
    # The issue: 2,000,000 bare integers (a 4 MB body) built a 178 MB answer
    # (an error object each) and took the node to 1.3 GB. It is now refused
    # with one small error object, before it is parsed.
    body = b"[" + b",".join([b"0"] * 2_000_000) + b"]"
    assert len(body) == 4_000_001
    status, raw = await post(dev_node, body)
    assert status == 200 and len(raw) < 300, (status, len(raw))
    err = strict(raw)["error"]
    assert err["code"] == -32600 and err["data"]["code"] == "request_too_large"
    assert err["message"] == f"request too large: more than {MAX_VALUES} JSON values"
    # A batch of bare integers within max_values still meets batch_limit.
    err = await refused(dev_node, [0] * (BATCH_LIMIT + 1))
    assert err["message"].startswith(f"batch too large: {BATCH_LIMIT + 1} calls")
    assert (await dev_node.rpc.call("node.info"))["height"] == 0


def _peak_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/self/status")


def _reset_peak() -> bool:
    """VmHWM back to the current RSS (Linux ``clear_refs``); False if this
    system cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@pytest.mark.parametrize("shape", ["ints", "objects", "params"])
async def test_memory_while_a_hostile_request_is_served_is_bounded(
    dev_node: DevNode, shape: str
) -> None:
    # The node runs in this process, so this process's peak RSS bounds the
    # node's. Before the bounds, each of these 15 MB bodies took the node
    # past 450 MB (params) or 3 GB (batches); the node now reads about a
    # max_values' worth of them before refusing.
    size = 15_000_000
    item, wrap = {
        "ints": (b"0", b"%s"),
        "objects": (b"{}", b"%s"),
        "params": (b"{}", b'{"jsonrpc": "2.0", "id": 1, "method": "node.info", "params": %s}'),
    }[shape]
    body = wrap % (b"[" + b",".join([item] * (size // (len(item) + 1))) + b"]")
    if not _reset_peak():
        pytest.skip("no /proc/self/clear_refs to reset the peak RSS")
    before = _peak_kb()
    err = await refused(dev_node, body)
    grew_mb = (_peak_kb() - before) / 1024
    assert err["code"] == -32600
    # The client's side of this process adds its own buffers of the body.
    assert grew_mb < 64, f"peak RSS grew {grew_mb:.0f} MB while serving a {size:,} byte body"
    assert (await dev_node.rpc.call("node.info"))["height"] == 0


async def test_memory_while_a_huge_hex_param_is_checked_is_bounded(dev_node: DevNode) -> None:
    """A raw block of 8 MB of hex digits: checking them is a scan, not a
    regex keeping state per byte pair (that took about 500 MB for this)."""
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "block.submit", "params": {"raw": "%s"}}' % (
        b"ab" * 4_000_000
    )
    if not _reset_peak():
        pytest.skip("no /proc/self/clear_refs to reset the peak RSS")
    before = _peak_kb()
    status, raw = await post(dev_node, body)
    grew_mb = (_peak_kb() - before) / 1024
    assert status == 200 and "error" in strict(raw), raw[:200]
    assert grew_mb < 64, f"peak RSS grew {grew_mb:.0f} MB while checking 8 MB of hex"
    assert (await dev_node.rpc.call("node.info"))["height"] == 0


# --- answer size -------------------------------------------------------------------


async def test_a_batch_stops_running_calls_once_its_answer_passes_max_response_bytes(
    small: DevNode,
) -> None:
    cap = SMALL["max_response_bytes"]
    alice, bob = small.users[0], small.users[1]
    tx = build_transfer(alice, chain_id=small.chain_id, nonce=0, to=bob.address, amount=10)
    # Each dev.mine answer (three block hashes) is about 300 bytes, so the
    # answer passes the cap within the batch; tx.submit and the
    # notifications come after that point.
    batch = [call("dev.mine", {"blocks": 3}, id_=i) for i in range(8)]
    batch += [call("tx.submit", {"raw": tx.raw.hex()}, id_=8), call("dev.mine", [1])]
    status, raw = await post(small, batch)
    assert status == 200
    got = strict(raw)
    assert [a["id"] for a in got] == list(range(9)), "one answer per call with an id, in order"
    ran = [a for a in got if "result" in a]
    skipped = [a for a in got if "error" in a]
    assert ran and skipped and got == ran + skipped, "the calls that ran come first"
    assert {a["error"]["code"] for a in skipped} == {-32003}
    assert {a["error"]["message"] for a in skipped} == {"response too large"}
    assert skipped[-1]["id"] == 8, "tx.submit (run after the others) was not run either"
    # The calls that were not answered did not run: only the answered calls
    # mined, the notification did not, and the tx is not in the mempool.
    assert await height(small) == 3 * len(ran)
    assert (await small.rpc.call("mempool.info"))["size"] == 0
    # The answer passed the cap only with its last result: the ones before fit.
    before_last = sum(len(json.dumps(a)) + 2 for a in ran[:-1])
    assert before_last <= cap < before_last + len(json.dumps(ran[-1])) + 2
    # A single call is not capped: its answer is bounded by what the node
    # stores, as in geth. 40 hashes are about 2.7 KB, more than the cap.
    status, raw = await post(small, call("dev.mine", {"blocks": 40}, id_=1))
    assert status == 200 and len(raw) > cap
    assert len(strict(raw)["result"]["hashes"]) == 40


async def test_a_batch_under_max_response_bytes_is_answered_in_full(dev_node: DevNode) -> None:
    # With the default bounds a batch of batch_limit cheap calls is all
    # answered: the bounds cut off only what they must.
    n = BATCH_LIMIT
    status, raw = await post(dev_node, [call("node.info", id_=i) for i in range(n)])
    got = strict(raw)
    assert status == 200 and [a["id"] for a in got] == list(range(n))
    assert all(a["result"]["height"] == 0 for a in got)
    assert len(raw) < MAX_RESPONSE_BYTES


async def test_other_clients_are_served_while_a_batch_runs(
    dev_node: DevNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A method that never suspends would hold the event loop for a whole
    # batch of it; the batch yields between calls (here after every one), so
    # node.info from another connection is answered in the middle of it.
    monkeypatch.setattr(rpc_module, "YIELD_AFTER", 0.0, raising=False)
    served: list[str] = []
    assert dev_node.node.rpc is not None
    methods = dev_node.node.rpc.methods
    node_info = methods["node.info"]

    async def tick(p: dict[str, Any]) -> int:
        served.append("tick")
        return len(served)

    async def logged_info(p: dict[str, Any]) -> Any:
        served.append("info")
        return await node_info(p)

    monkeypatch.setitem(methods, "test.tick", tick)
    monkeypatch.setitem(methods, "node.info", logged_info)
    batch = [call("test.tick", id_=i) for i in range(BATCH_LIMIT)]
    big = asyncio.create_task(post(dev_node, batch))
    async with AsyncRpc(dev_node.rpc.endpoint) as other:
        while not big.done():
            await other.call("node.info")
    status, raw = await big
    assert status == 200 and len(strict(raw)) == BATCH_LIMIT
    first, last = served.index("tick"), len(served) - 1 - served[::-1].index("tick")
    assert "info" in served[first:last], "node.info was only served before or after the batch"


# --- nesting depth -----------------------------------------------------------------


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
async def test_nesting_deeper_than_max_depth_is_a_parse_error(
    dev_node: DevNode, opener: bytes
) -> None:
    depth = MAX_DEPTH
    closer = b"]" if opener == b"[" else b"}"

    def nested(n: int) -> bytes:
        return opener * n + b"1" + closer * n

    err = await refused(dev_node, nested(depth + 1))
    message = f"parse error: nested deeper than {depth}"
    assert err == {
        "code": -32700,
        "message": message,
        "data": {"code": "parse_error", "message": message},
    }
    # The issue's 100,000 unclosed openers: the same answer, no recursion.
    err = await refused(dev_node, opener * 100_000)
    message = f"parse error: nested deeper than {depth}"
    assert err == {
        "code": -32700,
        "message": message,
        "data": {"code": "parse_error", "message": message},
    }
    # At the limit the text is parsed (and is no valid request).
    status, raw = await post(dev_node, nested(depth))
    doc = strict(raw)
    assert status == 200 and -32600 in (
        [a["error"]["code"] for a in doc] if isinstance(doc, list) else [doc["error"]["code"]]
    )
    assert (await dev_node.rpc.call("node.info"))["height"] == 0


async def test_max_depth_counts_brackets_outside_strings_only(small: DevNode) -> None:
    # max_depth 4: a batch of a call with object params holding an array is
    # 4 deep; brackets inside a string (escaped quotes and all) are no nesting.
    text = 'x[[[[{{\\"[[[\\\\'
    status, raw = await post(small, [call("node.info", {"a": [text]}, id_=1)])
    # Parsed and dispatched: node.info takes no params, so -32602, not -32700.
    assert status == 200 and strict(raw)[0]["error"]["data"]["code"] == "invalid_params"
    err = await refused(small, [call("node.info", {"a": [[text]]}, id_=1)])
    assert err["message"] == "parse error: nested deeper than 4"


# --- values, body size, encoding, non-standard numbers -------------------------------


async def test_more_json_values_than_max_values_is_refused(small: DevNode) -> None:
    limit = SMALL["max_values"]
    ok = call("node.info", list(range(limit - 20)), id_=1)
    status, raw = await post(small, ok)
    # Parsed and dispatched: node.info takes no params, so -32602, not -32600.
    assert status == 200 and strict(raw)["error"]["data"]["code"] == "invalid_params"
    params: list[Any]
    for params in (list(range(limit)), ["ab"] * limit, [{}] * limit):
        err = await refused(small, call("node.info", params, id_=1))
        message = f"request too large: more than {limit} JSON values"
        assert err == {
            "code": -32600,
            "message": message,
            "data": {"code": "request_too_large", "message": message},
        }


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_a_compressed_body_is_read_and_bounded_decompressed(
    small: DevNode, coding: str
) -> None:
    def pack(raw: bytes) -> bytes:
        return gzip.compress(raw) if coding == "gzip" else zlib.compress(raw)

    headers = {"Content-Type": "application/json", "Content-Encoding": coding}
    url = small.rpc.endpoint.url
    body = pack(json.dumps(call("node.info", id_=1)).encode())
    async with small.rpc.session.post(url, data=body, headers=headers) as r:
        assert r.status == 200 and strict(await r.read())["result"]["height"] == 0
    # Under the cap on the wire, over it once decompressed: refused.
    cap = SMALL["max_request_bytes"]
    bomb = pack(json.dumps(call("node.info", ["x" * cap], id_=2)).encode())
    assert len(bomb) < cap // 10
    async with small.rpc.session.post(url, data=bomb, headers=headers) as r:
        assert r.status == 413
        assert strict(await r.read())["error"]["data"]["code"] == "request_too_large"


def _call_of_size(size: int, id_: int) -> bytes:
    """A node.info call of exactly ``size`` bytes (padded with spaces)."""
    raw = json.dumps(call("node.info", id_=id_)).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


async def test_a_compressed_body_is_bounded_by_its_decompressed_size_only(
    small: DevNode,
) -> None:
    # gzip level 0 makes the wire bytes longer than the body: a body of
    # exactly the cap is taken, though its Content-Length is past it.
    cap = SMALL["max_request_bytes"]
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    url = small.rpc.endpoint.url
    wire = gzip.compress(_call_of_size(cap, 1), compresslevel=0)
    assert len(wire) > cap
    async with small.rpc.session.post(url, data=wire, headers=headers) as r:
        assert r.status == 200 and strict(await r.read())["id"] == 1
    wire = gzip.compress(_call_of_size(cap + 1, 2), compresslevel=0)
    async with small.rpc.session.post(url, data=wire, headers=headers) as r:
        assert r.status == 413


async def test_a_body_that_does_not_decompress_is_a_parse_error(
    small: DevNode, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    async with small.rpc.session.post(
        small.rpc.endpoint.url, data=b"not gzip at all", headers=headers
    ) as r:
        assert r.status == 200
        err = strict(await r.read())["error"]
    assert err["code"] == -32700 and err["data"]["code"] == "parse_error"
    assert (
        err["message"]
        == "parse error: the body does not decode: Can not decode content-encoding: gzip"
    )
    assert (await small.rpc.call("node.info"))["height"] == 0
    # the client's fault: aiohttp reported no error of its own
    assert not [r for r in caplog.records if r.name.startswith("aiohttp") and r.levelno >= 40]


async def test_a_websocket_message_of_exactly_the_bound_is_taken(small: DevNode) -> None:
    cap = SMALL["max_request_bytes"]
    async with small.rpc.session.ws_connect(small.rpc.endpoint.url) as ws:
        await ws.send_bytes(_call_of_size(cap, 1))
        assert (await ws.receive_json(timeout=30))["id"] == 1
        await ws.send_bytes(_call_of_size(cap + 1, 2))
        msg = await ws.receive(timeout=30)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 1009


async def test_a_body_over_max_request_bytes_is_413(small: DevNode) -> None:
    cap = SMALL["max_request_bytes"]
    body = json.dumps(call("node.info", ["x" * cap], id_=1)).encode()
    err = await refused(small, body, status=413)
    assert err == {
        "code": -32600,
        "message": "request too large",
        "data": {"code": "request_too_large", "message": "request too large"},
    }

    # Without a Content-Length (chunked), the count of bytes read says it.
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    headers = {"Content-Type": "application/json"}
    async with small.rpc.session.post(small.rpc.endpoint.url, data=chunks(), headers=headers) as r:
        assert r.status == 413
        assert strict(await r.read())["error"]["message"] == "request too large"
    assert (await small.rpc.call("node.info"))["height"] == 0


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
async def test_only_utf8_is_read(dev_node: DevNode, encoding: str) -> None:
    # JSON between systems is UTF-8 (RFC 8259); the node no longer guesses
    # UTF-16 or UTF-32, whose bytes the pre-parse scan cannot read.
    body = json.dumps(call("node.info", id_=1)).encode(encoding)
    err = await refused(dev_node, body)
    assert err == {
        "code": -32700,
        "message": "parse error: not UTF-8",
        "data": {"code": "parse_error", "message": "parse error: not UTF-8"},
    }
    bom = b"\xef\xbb\xbf" + json.dumps(call("node.info", id_=1)).encode()
    status, raw = await post(dev_node, bom)
    assert status == 200 and strict(raw)["result"]["height"] == 0


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_the_issue_nan_id_is_refused_not_echoed(dev_node: DevNode, constant: str) -> None:
    # The issue: "id": NaN came back as NaN, which is not JSON.
    for body in (
        f'{{"jsonrpc": "2.0", "method": "node.info", "id": {constant}}}',
        f'[{{"jsonrpc": "2.0", "method": "node.info", "id": 1, "params": [[{constant}]]}}]',
    ):
        err = await refused(dev_node, body.encode())
        assert err["code"] == -32700 and err["message"] == "parse error"
