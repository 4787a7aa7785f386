"""What each RPC method declares about itself: its params (name, JSON Schema,
required), the shape of its result and the errors it may answer with. The
server refuses a param a method does not declare, and ``rpc.discover``
serves every declaration as one OpenRPC 1.2 document (https://spec.open-rpc.org),
so a client learns the API from the node itself, as geth's ``rpc_modules``
or bitcoind's ``help`` let it.

Each method table (rpc_methods.py, rpc_market.py, ...) keeps its specs
beside its handlers; tests/unit/test_rpc_spec.py checks that every handler
reads exactly the params its spec declares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from powernode.core.errors import InvalidParams

Schema = Mapping[str, Any]

# JSON-RPC error numbers: the standard ones, and the server range's.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REJECTED = -32000
# An implementation-defined server error (-32000..-32099), geth's code for it.
RESPONSE_TOO_LARGE = -32003
NOT_FOUND = -32004

# The largest integer a JavaScript number holds exactly (2^53 - 1); larger
# ones go out as decimal strings (rpc.py, README "RPC").
SAFE_INT = 2**53 - 1

OPENRPC_VERSION = "1.2.6"


@dataclass(frozen=True, slots=True)
class Param:
    """One param: by name, or by position in the order the spec lists them
    (``by_position=False``: by name only)."""

    name: str
    schema: Schema
    required: bool = False
    description: str = ""
    by_position: bool = True


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """An error a method may answer with: the JSON-RPC number and the stable
    code in ``error.data.code``."""

    number: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class MethodSpec:
    summary: str
    params: tuple[Param, ...] = ()
    result: Schema | None = None
    errors: tuple[ErrorSpec, ...] = ()
    # A read anyone may make without auth while the explorer is on (README,
    # "Explorer"); every method must choose, so the default is False and
    # tests/integration/test_explorer_server.py (PUBLIC) holds the list.
    public: bool = False
    # The params' names, for check (it runs for every call of a batch).
    names: frozenset[str] = dataclass_field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = frozenset(p.name for p in self.params)
        if "_args" in names:  # the positional params' key (see check)
            raise ValueError("a param may not be named _args")
        object.__setattr__(self, "names", names)

    def check(self, params: Mapping[str, Any]) -> None:
        """InvalidParams for a param the method does not take: an unknown
        name, or more positional params than it has (a typo would otherwise
        be ignored and the call run with the default)."""
        if params.keys() <= self.names:  # named params, all known
            return
        args = params.get("_args")
        if args is not None:
            positional = [p.name for p in self.params if p.by_position]
            if len(args) > len(positional):
                raise InvalidParams(
                    f"at most {len(positional)} positional params"
                    + (f" ({', '.join(positional)})" if positional else "")
                    + f", got {len(args)}"
                )
            return
        known = {p.name for p in self.params}
        unknown = sorted(k for k in params if k not in known)
        if unknown:
            takes = ", ".join(sorted(known)) if known else "no params"
            raise InvalidParams(f"unknown params {', '.join(map(repr, unknown))} (takes {takes})")


# --- schema helpers -------------------------------------------------------------


def integer(lo: int = 0, hi: int | None = None) -> Schema:
    out: dict[str, Any] = {"type": "integer", "minimum": lo}
    if hi is not None:
        out["maximum"] = hi
    return out


def one_of(values: tuple[str, ...] | list[str]) -> Schema:
    return {"type": "string", "enum": list(values)}


def hex_of(size: int) -> Schema:
    return {"type": "string", "pattern": f"^(0x)?[0-9a-fA-F]{{{2 * size}}}$"}


HEX: Schema = {"type": "string", "pattern": "^(0x)?([0-9a-fA-F]{2})*$"}
ID32 = hex_of(32)
ADDRESS = hex_of(20)

# The most rows a list method's ``limit`` may ask for.
LIST_MAX = 10_000
# ``limit`` of the list methods that answer all by default (cert.list,
# device.list, ppa.list, contract.list, market.orders): by name only.
LIST_LIMIT = Param(
    "limit",
    integer(1, LIST_MAX),
    by_position=False,
    description=f"at most this many (1..{LIST_MAX}), the first in the list's order; default all",
)
BOOL: Schema = {"type": "boolean"}
STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
HOST_PORT: Schema = {"type": "string", "pattern": "^.+:[0-9]+$"}
# An integer that may pass 2^53: a decimal string on the wire.
BIG_INT: Schema = {"type": "string", "pattern": "^[0-9]+$"}
# An integer bounded in practice but not by type (money up to the 10^18
# supply cap): a number, or a decimal string past 2^53 - 1.
AMOUNT: Schema = {"oneOf": [INT, BIG_INT]}

_TYPES: dict[str, Schema] = {
    "int": INT,
    "amount": AMOUNT,
    "str": STR,
    "hex": HEX,
    "bool": BOOL,
    "list": {"type": "array"},
    "obj": {"type": "object"},
    "big": BIG_INT,
    "any": {},
}


def nullable(schema: Schema) -> Schema:
    return {"oneOf": [dict(schema), {"type": "null"}]}


def shape(fields: str, **nested: Schema) -> Schema:
    """An object result from ``"name:type name:type? ..."`` (types: int,
    amount, str, hex, bool, list, obj, big, any; ``?``: may be null).
    ``nested`` names a ``list`` field's items or an ``obj`` field's own
    schema, by the field's name, where the field's content is fixed."""
    props: dict[str, Any] = {}
    for field in fields.split():
        name, _, kind = field.partition(":")
        may_be_null = kind.endswith("?")
        kind = kind.rstrip("?") or "any"
        schema: Schema = dict(_TYPES[kind])
        inner = nested.get(name)
        if inner is not None:
            if kind == "list":
                schema = array_of(inner)
            elif kind == "obj":
                schema = dict(inner)
            else:
                raise ValueError(f"{name}: only a list or obj field has a nested schema")
        props[name] = nullable(schema) if may_be_null else schema
    if not nested.keys() <= props.keys():
        raise ValueError(f"nested schemas of no field: {sorted(nested.keys() - props.keys())}")
    return {"type": "object", "properties": props}


def array_of(item: Schema) -> Schema:
    return {"type": "array", "items": dict(item)}


def map_of(value: Schema) -> Schema:
    """An object keyed by names the data holds (addresses, categories),
    each value of schema ``value``."""
    return {"type": "object", "additionalProperties": dict(value)}


# An error as ``{"code", "message"}`` (PowernodeError.to_dict).
ERROR_OBJ = shape("code:str message:str")


# --- errors -----------------------------------------------------------------------


def not_found(code: str = "not_found", message: str = "not found") -> ErrorSpec:
    return ErrorSpec(NOT_FOUND, code, message)


def rejected(code: str, message: str) -> ErrorSpec:
    return ErrorSpec(REJECTED, code, message)


def invalid(code: str, message: str) -> ErrorSpec:
    return ErrorSpec(INVALID_PARAMS, code, message)


INVALID = invalid("invalid_params", "a param is missing, unknown, of the wrong type or range")
INTERNAL = ErrorSpec(INTERNAL_ERROR, "internal_error", "the node failed (a bug): see node.log")


# --- the document -----------------------------------------------------------------


def openrpc(specs: Mapping[str, MethodSpec], *, version: str, url: str) -> dict[str, Any]:
    """The OpenRPC document of ``specs``, methods sorted by name."""
    methods = []
    for name in sorted(specs):
        spec = specs[name]
        errors = list(spec.errors)
        if spec.params and INVALID not in errors:
            errors.insert(0, INVALID)
        errors.append(INTERNAL)
        methods.append(
            {
                "name": name,
                "summary": spec.summary,
                "paramStructure": "either",
                "params": [
                    {
                        "name": p.name,
                        "required": p.required,
                        "schema": dict(p.schema),
                        **({"description": p.description} if p.description else {}),
                        **({} if p.by_position else {"x-by-name-only": True}),
                    }
                    for p in spec.params
                ],
                "result": {"name": "result", "schema": dict(spec.result or {})},
                "errors": [
                    {"code": e.number, "message": e.message, "data": {"code": e.code}}
                    for e in errors
                ],
                # An OpenRPC extension field: callable without auth while
                # the explorer is on.
                "x-public": spec.public,
            }
        )
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {"title": "powernode JSON-RPC", "version": version},
        "servers": [{"name": "this node", "url": url}],
        "methods": methods,
    }


# The shape of what ``openrpc`` returns (``rpc.discover``'s result).
OPENRPC_DOC = shape(
    "openrpc:str info:obj servers:list methods:list",
    info=shape("title:str version:str"),
    servers=shape("name:str url:str"),
    methods=shape(
        "name:str summary:str paramStructure:str params:list result:obj errors:list x-public:bool",
        params=shape("name:str required:bool schema:obj description:str x-by-name-only:bool"),
        result=shape("name:str schema:obj"),
        errors=shape("code:int message:str data:obj", data=shape("code:str")),
    ),
)


def big_ints_as_strings(obj: Any) -> Any:
    """``obj`` with every integer past +-(2^53 - 1) as a decimal string."""
    if type(obj) is int:
        return str(obj) if not -SAFE_INT <= obj <= SAFE_INT else obj
    if isinstance(obj, dict):
        return {k: big_ints_as_strings(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [big_ints_as_strings(v) for v in obj]
    return obj
