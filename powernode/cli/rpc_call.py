"""``powernode rpc METHOD [KEY=VALUE | VALUE ...]``: call any RPC method, as
``bitcoin-cli -named`` does. A value is read as JSON when it parses as JSON
(``blocks=3``, ``verbose=true``, ``filter={"a": 1}``), else taken as the
string it is (``address=ab12...``); a param whose declared schema
(``rpc.discover``) is a string keeps the text as typed, so an id of decimal
digits is not turned into a number. Arguments are all ``KEY=VALUE`` (params
by name) or all bare (by position)."""

from __future__ import annotations

import argparse
import json
import math
import re
from typing import Any

from powernode.cli.common import Subparsers, UserError, add_command, rpc_client
from powernode.client import RpcClient
from powernode.core.units import clip

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


def parse_value(text: str) -> Any:
    """JSON if ``text`` is JSON, else the text itself."""
    try:
        value = json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError):
        return text
    # A number past a float's range (1e999) parses as infinity, which no JSON
    # request can carry: the node would answer parse_error for the whole call.
    return value if _finite(value) else text


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


def _not_json(constant: str) -> Any:
    raise ValueError(constant)  # NaN and Infinity are no JSON


def split_args(items: list[str]) -> tuple[dict[str, str], list[str]]:
    """``KEY=VALUE`` items by name, the others by position; not both."""
    named: dict[str, str] = {}
    positional: list[str] = []
    for item in items:
        key, eq, value = item.partition("=")
        if eq and _NAME.fullmatch(key):
            if key in named:
                raise UserError(f"param {key!r} given twice")
            named[key] = value
        else:
            positional.append(item)
    if named and positional:
        raise UserError(
            f"give every param as KEY=VALUE or none: {clip(positional[0])!r} has no KEY="
        )
    return named, positional


def string_params(c: RpcClient, method: str) -> tuple[set[str], list[str]]:
    """The method's params declared as strings (by name), and its params'
    names in position order, from ``rpc.discover``."""
    doc = c.call("rpc.discover")
    for m in doc.get("methods", []):
        if m.get("name") == method:
            params = m.get("params", [])
            strings = {p["name"] for p in params if p.get("schema", {}).get("type") == "string"}
            return strings, [p["name"] for p in params]
    return set(), []


def build_params(c: RpcClient, method: str, items: list[str]) -> dict[str, Any] | list[Any]:
    named, positional = split_args(items)
    texts = list(named.values()) or positional
    values = [parse_value(t) for t in texts]
    if any(not (isinstance(v, str) and v == t) for t, v in zip(texts, values, strict=True)):
        # Some text was read as JSON (a number, or a quoted string): only
        # then ask the node which params are strings, whose text stays as
        # typed whatever the other values are.
        strings, order = string_params(c, method)
        names = list(named) or order
        values = [
            t if i < len(names) and names[i] in strings else v
            for i, (t, v) in enumerate(zip(texts, values, strict=True))
        ]
    if named:
        return dict(zip(named, values, strict=True))
    return values


def cmd_rpc(a: argparse.Namespace) -> int:
    with rpc_client(a) as c:
        params = build_params(c, a.method, a.params)
        result = c.call(a.method, params)
    # A string as it is (a tx id), anything else as JSON, as bitcoin-cli.
    print(result if isinstance(result, str) else json.dumps(result, indent=2))
    return 0


def add_commands(sub: Subparsers) -> None:
    sp = add_command(
        sub,
        "rpc",
        cmd_rpc,
        "call any RPC method: powernode rpc METHOD [KEY=VALUE ...] "
        "(values as JSON when they parse, else strings; 'rpc rpc.discover' lists them)",
    )
    sp.add_argument("method", metavar="METHOD", help="e.g. node.info, chain.block")
    sp.add_argument(
        "params",
        nargs="*",
        metavar="KEY=VALUE",
        help="params by name (or bare values, by position)",
    )
