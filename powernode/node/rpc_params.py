"""Reading RPC params: every method's param helpers, in one place.

Params come by name (``{"height": 5}``) or by position (``[5]``, which the
server hands over as ``{"_args": [5]}``); ``arg`` reads either. A param of the
wrong type or out of range raises ``InvalidParams`` (-32602) naming it, or the
market's own code where one fits (``unknown_market``, ``slot_not_aligned``).
"""

from __future__ import annotations

from typing import Any

from powernode.core.crypto import parse_address
from powernode.core.errors import DecodeError, InvalidParams
from powernode.core.hextext import from_hex
from powernode.engines.market.params import PRODUCTS, MarketParams
from powernode.node.config import is_host_port
from powernode.node.rpc import Params

U63 = 2**63 - 1


def arg(params: Params, key: str, pos: int) -> Any:
    """The param named ``key``, or the one at position ``pos``; None if absent."""
    if key in params:
        return params[key]
    args = params.get("_args", [])
    return args[pos] if pos < len(args) else None


def hex_bytes(params: Params, key: str, pos: int = 0, *, size: int | None = None) -> bytes:
    """Hex (``0x`` optional) as bytes; not hex at all is ``malformed``, as a
    raw tx or block that does not decode is."""
    v = arg(params, key, pos)
    if not isinstance(v, str):
        raise InvalidParams(f"'{key}' must be a hex string")
    try:
        raw = from_hex(v.removeprefix("0x"))
    except ValueError:
        raise DecodeError(f"'{key}' is not valid hex") from None
    if size is not None and len(raw) != size:
        raise InvalidParams(f"'{key}' must be {size} bytes")
    return raw


def integer(
    params: Params, key: str, pos: int, *, default: int | None = None, lo: int = 0, hi: int = 2**63
) -> int:
    """A required integer in ``lo..hi``, or ``default`` when absent (if given)."""
    v = arg(params, key, pos)
    if v is None and default is not None:
        return default
    if type(v) is not int or not lo <= v <= hi:
        raise InvalidParams(f"'{key}' must be an integer in {lo}..{hi}")
    return v


def opt_int(params: Params, key: str, pos: int, *, lo: int = 0, hi: int = U63) -> int | None:
    """An optional integer in ``lo..hi``; None when absent."""
    v = arg(params, key, pos)
    if v is None:
        return None
    if type(v) is not int or not lo <= v <= hi:
        raise InvalidParams(f"'{key}' must be an integer in {lo}..{hi}")
    return v


def flag(params: Params, key: str, pos: int | None = None) -> bool:
    """A boolean param (false when absent); anything but true or false is
    ``invalid_params``, not read as truthy."""
    v = params.get(key) if pos is None else arg(params, key, pos)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise InvalidParams(f"'{key}' must be true or false")
    return v


def list_limit(params: Params, hi: int) -> int | None:
    """The ``limit`` param (by name only, 1..``hi``) of a list method that
    answers all its rows without it; None when absent."""
    v = params.get("limit")
    if v is not None and (type(v) is not int or not 1 <= v <= hi):
        raise InvalidParams(f"'limit' must be an integer in 1..{hi}")
    return v


def host_port(params: Params) -> str:
    """A peer address, ``host:port``, by the rule ``[p2p] peers`` uses."""
    v = arg(params, "address", 0)
    if not isinstance(v, str) or not is_host_port(v):
        raise InvalidParams("'address' must be 'host:port' (a port in 1..65535, no spaces)")
    return v


def address(params: Params, key: str, pos: int, *, required: bool) -> bytes | None:
    """An account address (hex); a bad one is ``invalid_params``."""
    v = arg(params, key, pos)
    if v is None and not required:
        return None
    if not isinstance(v, str):
        raise InvalidParams(f"'{key}' must be a hex address")
    try:
        return parse_address(v, strict=True)
    except DecodeError as exc:
        raise InvalidParams(f"'{key}': {exc.message}") from None


def product(params: Params, pos: int, *, required: bool) -> str | None:
    v = arg(params, "product", pos)
    if v is None and not required:
        return None
    if not isinstance(v, str):
        raise InvalidParams(f"'product' must be one of {list(PRODUCTS)}")
    if v not in PRODUCTS:
        raise InvalidParams(f"unknown product {v!r}, known {list(PRODUCTS)}", code="unknown_market")
    return v


def order_id(params: Params) -> bytes:
    """An order's id: the 32-byte id of the tx that placed it, as hex."""
    v = arg(params, "id", 0)
    try:
        if not isinstance(v, str):
            raise ValueError
        raw = from_hex(v.removeprefix("0x"))
    except ValueError:
        raise InvalidParams("'id' must be an order id: 32 bytes as hex") from None
    if len(raw) != 32:
        raise InvalidParams("'id' must be an order id: 32 bytes as hex")
    return raw


def id32(params: Params, key: str, pos: int, what: str) -> bytes:
    """A required 32-byte id (a device, a certificate) as hex, ``0x`` optional;
    anything else is ``invalid_params`` naming ``key`` and what it should be."""
    v = arg(params, key, pos)
    try:
        if not isinstance(v, str):
            raise ValueError
        raw = from_hex(v.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InvalidParams(f"'{key}' must be {what}: 32 bytes as hex")
    return raw


def slot(markets: dict[str, MarketParams], product: str, params: Params, pos: int) -> int | None:
    """An optional delivery slot, on the product's slot grid."""
    value = opt_int(params, "slot", pos)
    if value is not None and value % markets[product].slot_seconds:
        raise InvalidParams(
            f"slot {value} is not aligned to {product}'s {markets[product].slot_seconds} s slots",
            code="slot_not_aligned",
        )
    return value
