"""Every RPC method's declared spec (node/rpc_spec.py): one for each method
in the tables, and the params it declares are exactly those its handler
reads, so what ``rpc.discover`` tells a client is what the node does."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Mapping
from typing import Any, cast

import pytest

from powernode.core.errors import InvalidParams
from powernode.node import rpc_params
from powernode.node.push_topics import TOPIC_PARAMS
from powernode.node.rpc_certs import CERT_SPECS, cert_methods
from powernode.node.rpc_contracts import CONTRACT_SPECS, contract_methods
from powernode.node.rpc_explorer import EXPLORER_SPECS, explorer_methods
from powernode.node.rpc_market import MARKET_SPECS, market_methods
from powernode.node.rpc_methods import (
    CHAIN_SPECS,
    LOG_SPECS,
    NODE_SPECS,
    PEER_SPECS,
    SUBMIT_SPECS,
    chain_methods,
    log_methods,
    node_methods,
    peer_methods,
    submit_methods,
)
from powernode.node.rpc_ops import OPS_SPECS, ops_methods
from powernode.node.rpc_spec import (
    ID32,
    SAFE_INT,
    MethodSpec,
    Param,
    big_ints_as_strings,
    map_of,
    openrpc,
    shape,
)
from powernode.node.rpc_ws import PUSH_SPECS, http_methods

NONE = cast(Any, None)

# (the factory, its table built over stand-ins, its specs): building a
# table only makes closures, so nothing is read from the stand-ins.
TABLES: list[tuple[Callable[..., Any], Mapping[str, Any], Mapping[str, MethodSpec]]] = [
    (
        node_methods,
        node_methods(
            ledger=NONE,
            explorer=False,
            miner=NONE,
            p2p=None,
            mining_address=b"",
            rpc_url=str,
            stop=NONE,
            started_mono=0.0,
        ),
        NODE_SPECS,
    ),
    (log_methods, log_methods(), LOG_SPECS),
    (chain_methods, chain_methods(NONE, NONE, NONE), CHAIN_SPECS),
    (submit_methods, submit_methods(NONE), SUBMIT_SPECS),
    (peer_methods, peer_methods(None), PEER_SPECS),
    (market_methods, market_methods(NONE), MARKET_SPECS),
    (cert_methods, cert_methods(NONE), CERT_SPECS),
    (contract_methods, contract_methods(NONE), CONTRACT_SPECS),
    (explorer_methods, explorer_methods(NONE), EXPLORER_SPECS),
    (ops_methods, ops_methods(NONE), OPS_SPECS),
    (http_methods, http_methods(), PUSH_SPECS),
]

# subscribe/unsubscribe over HTTP only refuse (websocket_only); their params
# are read on the WebSocket by push_topics.parse_topic, checked below.
CASES = [
    (name, factory, table[name], specs[name])
    for factory, table, specs in TABLES
    if factory is not http_methods
    for name in sorted(table)
]


@pytest.mark.parametrize(("factory", "table", "specs"), TABLES, ids=lambda v: "")
def test_every_method_of_a_table_has_a_spec_and_no_spec_is_left_over(
    factory: Callable[..., Any], table: Mapping[str, Any], specs: Mapping[str, MethodSpec]
) -> None:
    assert sorted(table) == sorted(specs), factory.__name__
    for name, spec in specs.items():
        assert spec.summary and spec.result is not None, name
        names = [p.name for p in spec.params]
        assert len(names) == len(set(names)), name


# --- what a handler reads ------------------------------------------------------------


def _functions(tree: ast.AST) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {
        n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }


RPC_PARAMS = _functions(ast.parse(inspect.getsource(rpc_params)))


def read_keys(
    fn: ast.FunctionDef | ast.AsyncFunctionDef,
    params: str,
    local: Mapping[str, ast.FunctionDef | ast.AsyncFunctionDef],
    seen: frozenset[str] = frozenset(),
) -> set[str]:
    """The param names ``fn`` reads from its argument ``params``: a string
    right after it in a call (``arg(p, "key", 0)``), ``p.get("key")``,
    ``"key" in p`` and ``p["key"]``; through a helper it is passed to (a
    local function or one of rpc_params.py) the names that helper reads."""
    names = {params, "p"}  # a batch handler reads each call's params as p
    keys: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "get"
                and isinstance(func.value, ast.Name)
                and func.value.id in names
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                keys.add(str(node.args[0].value))
                continue
            for i, a in enumerate(node.args):
                if not (isinstance(a, ast.Name) and a.id in names):
                    continue
                after = node.args[i + 1] if i + 1 < len(node.args) else None
                if isinstance(after, ast.Constant) and isinstance(after.value, str):
                    keys.add(after.value)
                    continue
                callee = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                target = local.get(callee) or RPC_PARAMS.get(callee)
                if target is not None and callee not in seen:
                    inner = target.args.args[i].arg
                    keys |= read_keys(target, inner, local, seen | {callee})
        elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant):
            if any(isinstance(c, ast.Name) and c.id in names for c in node.comparators):
                keys.add(str(node.left.value))
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id in names
            and isinstance(node.slice, ast.Constant)
        ):
            keys.add(str(node.slice.value))
    keys.discard("_args")  # positional params, read through arg()
    return keys


@pytest.mark.parametrize(("name", "factory", "handler", "spec"), CASES, ids=[c[0] for c in CASES])
def test_the_declared_params_are_those_the_handler_reads(
    name: str, factory: Callable[..., Any], handler: Callable[..., Any], spec: MethodSpec
) -> None:
    local = _functions(ast.parse(textwrap.dedent(inspect.getsource(factory))))
    fn = local[handler.__name__]
    read = read_keys(fn, fn.args.args[0].arg, local)
    assert read == {p.name for p in spec.params}


def test_the_reader_sees_each_way_a_handler_reads_a_param() -> None:
    src = textwrap.dedent(
        """
        def table():
            def helper(q, pos):
                return arg(q, "inner", pos)

            async def handler(p):
                if "named" in p:
                    return p["indexed"]
                return p.get("got"), integer(p, "typed", 0), helper(p, 1), host_port(p)
        """
    )
    local = _functions(ast.parse(src))
    got = read_keys(local["handler"], "p", local)
    assert got == {"named", "indexed", "got", "typed", "inner", "address"}


# --- checking a call -------------------------------------------------------------------

SPEC = MethodSpec(
    summary="test",
    params=(Param("a", ID32, required=True), Param("b", ID32), Param("c", ID32, by_position=False)),
    result=shape("x:int"),
)


@pytest.mark.parametrize(
    ("params", "ok"),
    [
        ({}, True),
        ({"a": 1, "b": 2, "c": 3}, True),
        ({"_args": [1, 2]}, True),
        ({"_args": []}, True),
        ({"a": 1, "bogus": 2}, False),
        ({"A": 1}, False),
        ({"_args": [1, 2, 3]}, False),  # c is by name only
    ],
)
def test_a_param_the_method_does_not_declare_is_refused(params: dict[str, Any], ok: bool) -> None:
    if ok:
        SPEC.check(params)
    else:
        with pytest.raises(InvalidParams) as info:
            SPEC.check(params)
        assert info.value.code == "invalid_params"


def test_the_openrpc_document_has_every_method_with_params_result_and_errors() -> None:
    specs = {name: spec for _, _, s in TABLES for name, spec in s.items()}
    doc = openrpc(specs, version="9", url="http://127.0.0.1:1/rpc")
    assert doc["openrpc"].startswith("1.") and doc["info"]["version"] == "9"
    methods = {m["name"]: m for m in doc["methods"]}
    assert sorted(methods) == sorted(specs)
    book = methods["market.book"]
    assert [(p["name"], p["required"]) for p in book["params"]] == [
        ("product", True),
        ("slot", True),
        ("levels", False),
    ]
    assert book["params"][2]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}
    codes = {e["data"]["code"]: e["code"] for e in book["errors"]}
    assert codes["invalid_params"] == -32602 and codes["unknown_market"] == -32602
    assert codes["internal_error"] == -32603
    device = {e["data"]["code"]: e["code"] for e in methods["device.get"]["errors"]}
    assert device["unknown_device"] == -32004
    # A method without params cannot answer invalid_params.
    assert "invalid_params" not in {e["data"]["code"] for e in methods["node.info"]["errors"]}
    assert methods["chain.block"]["result"]["schema"]["properties"]["nonce"]["type"] == "string"


def test_shape_declares_nested_rows_and_refuses_a_misplaced_one() -> None:
    row = shape("a:int b:hex?")
    got = shape("rows:list one:obj? n:int", rows=row, one=row)
    assert got["properties"]["rows"] == {"type": "array", "items": row}
    assert got["properties"]["one"] == {"oneOf": [row, {"type": "null"}]}
    assert got["properties"]["n"] == {"type": "integer"}
    assert row["properties"]["b"]["oneOf"][1] == {"type": "null"}
    assert map_of(row) == {"type": "object", "additionalProperties": row}
    with pytest.raises(ValueError, match="only a list or obj"):
        shape("n:int", n=row)
    with pytest.raises(ValueError, match="no field"):
        shape("rows:list", rwos=row)


def test_integers_past_2_53_become_strings_and_others_stay() -> None:
    obj = {"a": SAFE_INT, "b": SAFE_INT + 1, "c": [-SAFE_INT - 1, 5, True], "d": "x"}
    assert big_ints_as_strings(obj) == {
        "a": SAFE_INT,
        "b": str(SAFE_INT + 1),
        "c": [str(-SAFE_INT - 1), 5, True],
        "d": "x",
    }


def test_the_server_refuses_a_method_without_a_spec() -> None:
    from powernode.node.rpc import RpcServer

    async def handler(p: dict[str, Any]) -> Any:
        return None

    limits: dict[str, Any] = {
        "cookie": "c",
        "token": "",
        "max_request_bytes": 1000,
        "batch_limit": 10,
        "max_response_bytes": 1000,
        "max_depth": 8,
        "max_values": 100,
        "version": "0",
    }
    with pytest.raises(ValueError, match=r"without a spec.*'test\.x'"):
        RpcServer(methods={"test.x": handler}, batch_methods={}, specs={}, **limits)
    server = RpcServer(
        methods={"test.x": handler}, batch_methods={}, specs={"test.x": SPEC}, **limits
    )
    assert sorted(server.methods) == ["rpc.discover", "test.x"]


def test_subscribe_declares_exactly_the_filters_of_every_topic() -> None:
    declared = {p.name for p in PUSH_SPECS["subscribe"].params}
    assert declared == {"topic"}.union(*TOPIC_PARAMS.values())
    assert PUSH_SPECS["subscribe"].params[0].schema["enum"] == list(TOPIC_PARAMS)


def test_a_method_without_a_spec_is_not_public() -> None:
    """The public check fails closed: a method a table holds without a spec
    (a WebSocket adds its own) is not run for a caller without auth, and an
    unknown name is still method_not_found."""
    import asyncio
    import json

    from powernode.node.rpc import RpcServer

    ran: list[str] = []

    async def handler(p: dict[str, Any]) -> Any:
        ran.append("x")
        return None

    server = RpcServer(
        methods={},
        batch_methods={},
        specs={},
        cookie="c",
        token="",
        max_request_bytes=1000,
        batch_limit=10,
        max_response_bytes=1000,
        max_depth=8,
        max_values=100,
        version="0",
        explorer=True,
    )
    calls = [
        {"jsonrpc": "2.0", "id": 1, "method": "test.unspecced"},
        {"jsonrpc": "2.0", "method": "test.unspecced"},
        {"jsonrpc": "2.0", "id": 2, "method": "no.such"},
    ]
    answers = asyncio.run(
        server.dispatch_batch(calls, methods={"test.unspecced": handler}, public_only=True)
    )
    first, notification, unknown = (None if a is None else json.loads(a) for a in answers)
    assert ran == []
    assert first is not None and first["error"]["data"]["code"] == "unauthorized"
    assert notification is None
    assert unknown is not None and unknown["error"]["data"]["code"] == "method_not_found"
