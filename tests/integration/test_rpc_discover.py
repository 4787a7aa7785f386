"""RPC discovery and the envelope's rules, over a real node's socket:
``rpc.discover`` covers every method the node serves, an undeclared param is
-32602, every error carries ``error.data.code``, a malformed id or address
is one code whichever method gets it, and integers past 2^53 are strings."""

from __future__ import annotations

from typing import Any

import pytest

from powernode.client import RpcError
from tests.integration.conftest import DevNode


async def discover(dev: DevNode) -> dict[str, Any]:
    doc: dict[str, Any] = await dev.rpc.call("rpc.discover")
    return doc


async def test_discover_covers_every_method_the_node_serves(dev_node: DevNode) -> None:
    server = dev_node.node.rpc
    assert server is not None
    doc = await discover(dev_node)
    assert doc["openrpc"].startswith("1.")
    assert doc["info"]["version"] == (await dev_node.rpc.call("node.info"))["version"]
    assert doc["servers"][0]["url"] == dev_node.rpc.endpoint.url
    served = set(server.methods) | set(server.batch_methods)
    assert {m["name"] for m in doc["methods"]} == served
    assert "rpc.discover" in served
    for m in doc["methods"]:
        assert m["summary"] and "schema" in m["result"], m["name"]
        assert all(e["data"]["code"] for e in m["errors"]), m["name"]


async def test_every_method_refuses_a_param_it_does_not_declare(dev_node: DevNode) -> None:
    # node.stop among them: the call is refused before the method runs.
    doc = await discover(dev_node)
    for m in doc["methods"]:
        _, resp = await dev_node.rpc.raw(
            {"jsonrpc": "2.0", "id": 1, "method": m["name"], "params": {"bogus": 1}}
        )
        err = resp["error"]
        assert err["code"] == -32602, m["name"]
        assert err["data"]["code"] == "invalid_params" and "bogus" in err["message"], m["name"]
        # One positional param more than it has is refused too.
        positional = [p for p in m["params"] if not p.get("x-by-name-only")]
        _, resp = await dev_node.rpc.raw(
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": m["name"],
                "params": [None] * (len(positional) + 1),
            }
        )
        assert resp["error"]["data"]["code"] == "invalid_params", m["name"]
    assert (await dev_node.rpc.call("node.info"))["height"] == 0


@pytest.mark.parametrize(
    ("method", "params", "unknown"),
    [
        # The two the new-operator pass found ignoring a typo: next to
        # params they do take, the unknown one is still refused.
        ("chain.block", {"height": 0, "verbos": True}, "verbos"),
        ("chain.block", {"height": 0, "verbose": True, "full": True}, "full"),
        ("node.info", {"verbose": True}, "verbose"),
    ],
)
async def test_a_typo_next_to_good_params_is_refused(
    dev_node: DevNode, method: str, params: dict[str, Any], unknown: str
) -> None:
    with pytest.raises(RpcError) as info:
        await dev_node.rpc.call(method, params)
    assert (info.value.code, info.value.reason) == (-32602, "invalid_params")
    assert unknown in info.value.message


@pytest.mark.parametrize(
    ("body", "number", "code"),
    [
        (b"{not json", -32700, "parse_error"),
        (b"[]", -32600, "invalid_request"),
        (b'{"jsonrpc": "2.0", "id": 1}', -32600, "invalid_request"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "no.such"}', -32601, "method_not_found"),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "chain.block", "params": [99]}',
            -32004,
            "not_found",
        ),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "peer.list"}', -32000, "p2p_disabled"),
    ],
)
async def test_every_error_carries_a_stable_data_code(
    dev_node: DevNode, body: bytes, number: int, code: str
) -> None:
    _, resp = await dev_node.rpc.raw(body)
    err = resp["error"]
    assert err["code"] == number and err["data"]["code"] == code


async def test_an_unauthorized_call_carries_its_code(dev_node: DevNode) -> None:
    status, resp = await dev_node.rpc.raw(
        {"jsonrpc": "2.0", "id": 1, "method": "node.info"}, headers={"Authorization": "Bearer x"}
    )
    assert status == 401 and resp["error"]["data"]["code"] == "unauthorized"


# Every method with an id, hash or address param, given one that is not hex
# and one of the wrong length.
MALFORMED = [
    ("chain.block", "hash"),
    ("tx.get", "id"),
    ("account.get", "address"),
    ("dev.mine", "address"),
    ("market.trades", "participant"),
    ("market.orders", "participant"),
    ("market.order", "id"),
    ("market.participant", "address"),
    ("market.position", "participant"),
    ("market.settlement", "seller"),
    ("device.get", "device"),
    ("device.list", "owner"),
    ("meter.readings", "device"),
    ("cert.get", "cert"),
    ("cert.list", "owner"),
    ("cert.list", "device"),
    ("cert.trace", "cert"),
    ("cert.tree", "cert"),
    ("cert.verify", "cert"),
    ("cert.proof", "cert"),
    ("cert.cfe", "participant"),
    ("ppa.get", "id"),
    ("ppa.list", "party"),
    ("contract.get", "id"),
    ("contract.list", "party"),
    ("peer.ban", "node_id"),
    ("peer.unban", "node_id"),
    ("subscribe", "id"),
    ("subscribe", "participant"),
    ("subscribe", "seller"),
]
# The other params a call needs for the malformed one to be what is refused.
WITH = {
    ("subscribe", "id"): {"topic": "tx"},
    ("subscribe", "participant"): {"topic": "trades"},
    ("subscribe", "seller"): {"topic": "settlements"},
}


@pytest.mark.parametrize(("method", "param"), MALFORMED, ids=[f"{m}.{p}" for m, p in MALFORMED])
async def test_a_malformed_id_or_address_is_one_code_everywhere(
    dev_node: DevNode, method: str, param: str
) -> None:
    # README: hex in any case, "0x" optional with a lowercase x, nothing
    # around it (only search takes "0X"), for ids and addresses alike.
    right_length = ["ab" * 20, "ab" * 32]
    for bad in (
        "zz",
        "ab" * 7,
        12,
        *(f"0X{h}" for h in right_length),
        *(f" {h}" for h in right_length),
    ):
        with pytest.raises(RpcError) as info:
            await dev_node.rpc.call(method, {**WITH.get((method, param), {}), param: bad})
        assert (info.value.code, info.value.reason) == (-32602, "invalid_params"), bad


async def test_every_id_and_address_param_is_in_the_malformed_table(dev_node: DevNode) -> None:
    doc = await discover(dev_node)
    hexy = {
        (m["name"], p["name"])
        for m in doc["methods"]
        for p in m["params"]
        if p["schema"].get("pattern", "").endswith("{64}$")
        or p["schema"].get("pattern", "").endswith("{40}$")
    }
    assert hexy == set(MALFORMED)


async def test_integers_past_2_53_are_strings_and_the_block_nonce_always(
    dev_node: DevNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    await dev_node.rpc.call("dev.mine", {"blocks": 1})
    block = await dev_node.rpc.call("chain.block", {"height": 1})
    assert isinstance(block["nonce"], str) and block["nonce"].isdigit()
    server = dev_node.node.rpc
    assert server is not None

    async def big(p: dict[str, Any]) -> Any:
        return {"safe": 2**53 - 1, "big": 2**53, "neg": -(2**64), "list": [2**70, 1]}

    monkeypatch.setitem(server.methods, "node.info", big)
    got = await dev_node.rpc.call("node.info")
    assert got == {
        "safe": 2**53 - 1,
        "big": str(2**53),
        "neg": str(-(2**64)),
        "list": [str(2**70), 1],
    }
