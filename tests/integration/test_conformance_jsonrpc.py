"""JSON-RPC 2.0 conformance of a running node (tests/data/jsonrpc-2.0).

The spec's own examples (section 7) are replayed against an in-process node
over its real socket on 127.0.0.1, the spec's methods swapped for node
methods of the same shape (the data file's ``stand_ins``), and every answer
is compared with the spec's: whether there is one at all, one object or a
batch of how many, ``jsonrpc``, the ids, result or error and the error codes
(messages are free text in the spec, so only their type is checked). A batch
is compared as a multiset, since the spec lets a server answer in any order.
The spec's rules on ids, error objects and notifications follow.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import DevNode

DATA = Path(__file__).parents[1] / "data" / "jsonrpc-2.0" / "examples.json"
EXAMPLES: dict[str, Any] = json.loads(DATA.read_text())
MISSING = object()


def _strict_json(text: str) -> Any:
    """JSON as the spec means it: NaN and Infinity are no JSON values."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"the node answered with {name}, which is not JSON")

    return json.loads(text, parse_constant=refuse)


async def post(dev: DevNode, body: str | bytes) -> tuple[int, str, str]:
    """POST ``body`` as is; (HTTP status, content type, response text)."""
    raw = body.encode() if isinstance(body, str) else body
    headers = {"Content-Type": "application/json"}
    async with dev.rpc.session.post(dev.rpc.endpoint.url, data=raw, headers=headers) as resp:
        return resp.status, resp.content_type, await resp.text()


async def answer(dev: DevNode, body: str | bytes) -> Any:
    """The parsed answer; None when the node (rightly or not) sent nothing."""
    status, ctype, text = await post(dev, body)
    if status == 204 or not text:
        assert (status, text) == (204, ""), "nothing to answer is 204 with an empty body"
        return None
    assert status == 200 and ctype == "application/json", (status, ctype)
    return _strict_json(text)


def check_response_object(obj: Any) -> None:
    """Section 5: jsonrpc, id, and exactly one of result and error; 5.1: an
    error has an integer code, a string message and maybe data."""
    assert isinstance(obj, dict), obj
    assert obj.get("jsonrpc") == "2.0"
    assert set(obj) in ({"jsonrpc", "id", "result"}, {"jsonrpc", "id", "error"}), obj
    assert obj["id"] is None or type(obj["id"]) in (str, int), obj
    if "error" in obj:
        err = obj["error"]
        assert set(err) <= {"code", "message", "data"} and {"code", "message"} <= set(err), err
        assert type(err["code"]) is int and isinstance(err["message"], str)


def shape(doc: Any) -> Any:
    """What the spec fixes about an answer: per object its id, result or error
    and the error code; a batch as a multiset of those."""
    if doc is None:
        return None
    if isinstance(doc, list):
        assert doc, "an empty array is never an answer"
        return sorted((shape(x) for x in doc), key=repr)
    check_response_object(doc)
    if "error" in doc:
        return ("error", doc["id"], doc["error"]["code"])
    return ("result", doc["id"])


def results_by_id(doc: Any) -> dict[Any, Any]:
    items = doc if isinstance(doc, list) else [doc] if doc is not None else []
    return {x["id"]: x["result"] for x in items if "result" in x}


def stand_in(call: Any) -> tuple[Any, int]:
    """``call`` with a spec method replaced by its node stand-in; and how many
    blocks it mines if it is a notification (its visible effect)."""
    if not isinstance(call, dict):
        return call, 0
    for s in EXAMPLES["stand_ins"]:
        spec = s["spec"]
        if call.get("method") == spec["method"] and call.get("params", MISSING) == spec.get(
            "params", MISSING
        ):
            node = {k: v for k, v in call.items() if k not in ("method", "params")}
            node.update(s["node"])
            mined = 0
            if "id" not in call and node["method"] == "dev.mine":
                mined = node["params"][0]
            return node, mined
    return call, 0


def node_request(text: str) -> tuple[str, int]:
    """The request to send for the spec's request text, and the blocks its
    notifications mine. Unparseable or unmapped text is sent as printed."""
    try:
        doc = json.loads(text)
    except ValueError:
        return text, 0
    if isinstance(doc, list):
        pairs = [stand_in(c) for c in doc]
        new: Any = [c for c, _ in pairs]
        mined = sum(m for _, m in pairs)
    else:
        new, mined = stand_in(doc)
    return (text if new == doc else json.dumps(new)), mined


async def height(dev: DevNode) -> int:
    h: int = (await dev.rpc.call("node.info"))["height"]
    return h


def test_examples_file_is_the_spec_section() -> None:
    titles = [e["title"] for e in EXAMPLES["examples"]]
    assert titles == [
        "rpc call with positional parameters",
        "rpc call with named parameters",
        "a Notification",
        "rpc call of non-existent method",
        "rpc call with invalid JSON",
        "rpc call with invalid Request object",
        "rpc call Batch, invalid JSON",
        "rpc call with an empty Array",
        "rpc call with an invalid Batch (but not empty)",
        "rpc call with invalid Batch",
        "rpc call Batch",
        "rpc call Batch (all notifications)",
    ]
    # Every spec response is itself well formed by the rules checked below.
    for e in EXAMPLES["examples"]:
        for x in e["exchanges"]:
            if x["response"] is not None:
                shape(json.loads(x["response"]))


async def test_spec_examples(dev_node: DevNode) -> None:
    dev = dev_node
    info = await dev.rpc.call("node.info")
    assert info["dev"]
    await dev.rpc.call("dev.mine", {"blocks": 1})  # chain.block [1] stands in for a call
    replayed = 0
    for example in EXAMPLES["examples"]:
        spec_results: list[Any] = []
        node_results: list[Any] = []
        for x in example["exchanges"]:
            body, mined = node_request(x["request"])
            before = await height(dev)
            got = await answer(dev, body)
            expected = None if x["response"] is None else json.loads(x["response"])
            assert shape(got) == shape(expected), (example["title"], body, got)
            # A notification runs although nothing is answered.
            assert await height(dev) == before + mined, example["title"]
            spec_results += list(results_by_id(expected).values())
            node_results += list(results_by_id(got).values())
            replayed += 1
        # Where the spec's results are equal (named params in either order),
        # so are the node's; where they differ (swapped positions), they differ.
        for i in range(len(spec_results)):
            for j in range(i + 1, len(spec_results)):
                same_spec = spec_results[i] == spec_results[j]
                assert same_spec == (node_results[i] == node_results[j]), example["title"]
    assert replayed == sum(len(e["exchanges"]) for e in EXAMPLES["examples"]) == 15


# --- ids --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "id_", [1, 0, -7, 2**70, "1", "", "ünïcode id", None], ids=lambda v: repr(v)[:20]
)
async def test_id_is_echoed_as_sent(dev_node: DevNode, id_: Any) -> None:
    # Strings, integers of any size and null: the same value and type back
    # ("1" stays a string, 1 a number); an explicit null id is still a call.
    got = await answer(dev_node, json.dumps({"jsonrpc": "2.0", "method": "node.info", "id": id_}))
    check_response_object(got)
    assert "result" in got and got["id"] == id_ and type(got["id"]) is type(id_)
    got = await answer(dev_node, json.dumps({"jsonrpc": "2.0", "method": "no.such", "id": id_}))
    assert got["error"]["code"] == -32601 and got["id"] == id_ and type(got["id"]) is type(id_)


@pytest.mark.parametrize(
    "id_text", ["1.5", "1.0", "1e3", "-0.0", "true", "false", "[1]", '{"a": 1}']
)
async def test_unusable_id_is_an_invalid_request_answered_with_null(
    dev_node: DevNode, id_text: str
) -> None:
    # A fractional id might not survive a float (the spec: numbers SHOULD NOT
    # have fractional parts); booleans, arrays and objects are no ids at all.
    # The node cannot echo them faithfully, so it answers -32600 with id null.
    body = f'{{"jsonrpc": "2.0", "method": "node.info", "id": {id_text}}}'
    got = await answer(dev_node, body)
    assert shape(got) == ("error", None, -32600)
    batch = await answer(dev_node, f"[{body}, {body}]")
    assert shape(batch) == [("error", None, -32600)] * 2


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity_are_parse_errors(dev_node: DevNode, constant: str) -> None:
    # Not JSON, so never a request and never echoed back (the answer is
    # parsed strictly: a NaN in it would fail here).
    for body in (
        f'{{"jsonrpc": "2.0", "method": "node.info", "id": {constant}}}',
        f'{{"jsonrpc": "2.0", "method": "chain.block", "params": [{constant}], "id": 1}}',
        f'[{{"jsonrpc": "2.0", "method": "node.info", "id": {constant}}}]',
    ):
        assert shape(await answer(dev_node, body)) == ("error", None, -32700), body


# --- errors and notifications ------------------------------------------------------


async def test_one_error_object_per_failed_call(dev_node: DevNode) -> None:
    calls = [
        {"jsonrpc": "2.0", "method": "no.such", "id": 1},
        {"jsonrpc": "2.0", "method": "chain.block", "params": {"height": "x"}, "id": 2},
        {"jsonrpc": "2.0", "method": "chain.block", "params": "bar", "id": 3},
        {"jsonrpc": "1.0", "method": "node.info", "id": 4},
        {"method": "node.info", "id": 5},
        {"jsonrpc": "2.0", "id": 6},
        {"jsonrpc": "2.0", "method": "chain.block", "params": {"height": 10**6}, "id": 7},
        {"jsonrpc": "2.0", "method": "node.info", "id": 8},
        {"jsonrpc": "2.0", "method": "no.such"},  # a notification: no answer, even failing
        {"jsonrpc": "2.0", "method": "chain.block", "params": {"height": "x"}},  # likewise
    ]
    got = await answer(dev_node, json.dumps(calls))
    assert shape(got) == sorted(
        [
            ("error", 1, -32601),
            ("error", 2, -32602),
            ("error", 3, -32600),  # params must be structured: not a valid Request
            ("error", 4, -32600),
            ("error", 5, -32600),
            ("error", 6, -32600),
            ("error", 7, -32004),  # an implementation-defined server error
            ("result", 8),
        ],
        key=repr,
    )
    # Exactly one answer per id, each with one error object or one result.
    assert Counter(x["id"] for x in got) == Counter(range(1, 9))


async def test_invalid_request_without_id_is_answered(dev_node: DevNode) -> None:
    # Only a valid Request without an id is a notification; the spec's own
    # example of an invalid Request has no id and gets an answer.
    for call in (
        {"jsonrpc": "2.0", "method": "node.info", "params": "bar"},
        {"jsonrpc": "1.0", "method": "node.info"},
        {"jsonrpc": "2.0", "method": "node.info", "params": 7},
    ):
        assert shape(await answer(dev_node, json.dumps(call))) == ("error", None, -32600), call
        assert shape(await answer(dev_node, json.dumps([call]))) == [("error", None, -32600)]


async def test_notifications_get_nothing_back(dev_node: DevNode) -> None:
    before = await height(dev_node)
    single = {"jsonrpc": "2.0", "method": "dev.mine", "params": {"blocks": 1}}
    status, _, text = await post(dev_node, json.dumps(single))
    assert (status, text) == (204, "")
    batch = [
        {"jsonrpc": "2.0", "method": "dev.mine", "params": [2]},
        {"jsonrpc": "2.0", "method": "no.such", "params": [1]},
        {"jsonrpc": "2.0", "method": "chain.block", "params": {"height": "x"}},
        {"jsonrpc": "2.0", "method": "tx.submit", "params": {"raw": "zz"}},
    ]
    status, _, text = await post(dev_node, json.dumps(batch))
    assert (status, text) == (204, ""), "an all-notification batch gets no array, not even []"
    # They ran: three blocks mined by the two dev.mine notifications.
    assert await height(dev_node) == before + 3
