"""The market's RPC methods: order book, statistics, trades, orders, participants.

Each method parses its params, reads the tip state through the market's pure
query functions and returns JSON-ready results: addresses and ids as lowercase
hex, energy in Wh, prices in micro-units per kWh, money in micro-units.

Bad params are ``InvalidParams`` (-32602); its ``error.data.code`` is
``invalid_params``, or the market's own code where one fits
(``unknown_market``, ``slot_not_aligned``). An unknown order or participant
is ``NotFound`` (-32004, ``not_found``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from powernode.core.crypto import parse_address
from powernode.core.errors import DecodeError, NotFound
from powernode.engines.market import queries
from powernode.engines.market.params import PRODUCTS, MarketParams
from powernode.engines.market.params import markets as market_params_of
from powernode.node.rpc import InvalidParams, Method, Params
from powernode.node.rpc_methods import _arg

if TYPE_CHECKING:
    from powernode.node.node import Node

ORDER_STATUSES = ("open", "filled", "cancelled", "expired", "killed")
TRADES_LIMIT = 100
TRADES_MAX = 1000
MAX_LEVELS = 1000
_U63 = 2**63 - 1


def _opt_int(p: Params, key: str, pos: int, *, lo: int = 0, hi: int = _U63) -> int | None:
    v = _arg(p, key, pos)
    if v is None:
        return None
    if type(v) is not int or not lo <= v <= hi:
        raise InvalidParams(f"'{key}' must be an integer in {lo}..{hi}")
    return v


def _req_int(p: Params, key: str, pos: int, *, lo: int = 0, hi: int = _U63) -> int:
    v = _opt_int(p, key, pos, lo=lo, hi=hi)
    if v is None:
        raise InvalidParams(f"'{key}' is required")
    return v


def _product(p: Params, pos: int, *, required: bool) -> str | None:
    v = _arg(p, "product", pos)
    if v is None and not required:
        return None
    if not isinstance(v, str):
        raise InvalidParams(f"'product' must be one of {list(PRODUCTS)}")
    if v not in PRODUCTS:
        raise InvalidParams(f"unknown product {v!r}, known {list(PRODUCTS)}", code="unknown_market")
    return v


def _address(p: Params, key: str, pos: int, *, required: bool) -> bytes | None:
    v = _arg(p, key, pos)
    if v is None and not required:
        return None
    if not isinstance(v, str):
        raise InvalidParams(f"'{key}' must be a hex address")
    try:
        return parse_address(v)
    except DecodeError as exc:
        raise InvalidParams(f"'{key}': {exc.message}") from None


def _order_id(p: Params) -> bytes:
    v = _arg(p, "id", 0)
    try:
        if not isinstance(v, str):
            raise ValueError
        raw = bytes.fromhex(v.removeprefix("0x"))
    except ValueError:
        raise InvalidParams("'id' must be an order id: 32 bytes as hex") from None
    if len(raw) != 32:
        raise InvalidParams("'id' must be an order id: 32 bytes as hex")
    return raw


def _slot(markets: dict[str, MarketParams], product: str, p: Params, pos: int) -> int | None:
    slot = _opt_int(p, "slot", pos)
    if slot is not None and slot % markets[product].slot_seconds:
        raise InvalidParams(
            f"slot {slot} is not aligned to {product}'s {markets[product].slot_seconds} s slots",
            code="slot_not_aligned",
        )
    return slot


def params_json(mp: MarketParams) -> dict[str, Any]:
    out = asdict(mp)
    out.pop("product")
    return out


def build_market_methods(node: Node) -> dict[str, Method]:
    def state() -> Any:
        return node.L.chain.state

    def markets() -> dict[str, MarketParams]:
        return market_params_of(node.L.params)

    async def market_params(p: Params) -> Any:
        product = _product(p, 0, required=False)
        tip = node.L.chain.tip
        wanted = [product] if product else list(PRODUCTS)
        ms = markets()
        return {
            "height": tip.height,
            "time": tip.header.timestamp,
            "market_time": queries.market_time(state()),
            "products": {name: params_json(ms[name]) for name in wanted},
        }

    async def market_book(p: Params) -> Any:
        product = _product(p, 0, required=True)
        assert product is not None
        if _arg(p, "slot", 1) is None:
            raise InvalidParams("'slot' is required")
        slot = _slot(markets(), product, p, 1)
        assert slot is not None
        levels = _opt_int(p, "levels", 2, lo=1, hi=MAX_LEVELS)
        return queries.book(state(), product, slot, levels, params=node.L.params)

    def product_and_slot(p: Params) -> tuple[str | None, int | None]:
        """The optional ``product`` (position 0) and ``slot`` (1) filters."""
        product = _product(p, 0, required=False)
        if _arg(p, "slot", 1) is None:
            return product, None
        if product is None:
            raise InvalidParams("'slot' needs 'product'")
        return product, _slot(markets(), product, p, 1)

    async def market_stats(p: Params) -> Any:
        product, slot = product_and_slot(p)
        return queries.stats(state(), product, slot)

    async def market_trades(p: Params) -> Any:
        product, slot = product_and_slot(p)
        participant = _address(p, "participant", 2, required=False)
        from_height = _opt_int(p, "from_height", 3)
        to_height = _opt_int(p, "to_height", 4)
        if from_height is not None and to_height is not None and from_height > to_height:
            raise InvalidParams("'from_height' must not be above 'to_height'")
        limit = _opt_int(p, "limit", 5, lo=1, hi=TRADES_MAX)
        return queries.trades(
            state(),
            product=product,
            slot=slot,
            participant=participant,
            from_height=from_height,
            to_height=to_height,
            limit=TRADES_LIMIT if limit is None else limit,
        )

    async def market_orders(p: Params) -> Any:
        owner = _address(p, "participant", 0, required=True)
        status = _arg(p, "status", 1)
        if status is not None and status not in ORDER_STATUSES:
            raise InvalidParams(f"'status' must be one of {list(ORDER_STATUSES)}")
        return queries.orders(state(), owner, status)

    async def market_order(p: Params) -> Any:
        oid = _order_id(p)
        found = queries.order(state(), oid)
        if found is None:
            raise NotFound(f"no order {oid.hex()}")
        return found

    async def market_participant(p: Params) -> Any:
        addr = _address(p, "address", 0, required=True)
        assert addr is not None
        found = queries.participant(state(), addr)
        if found is None:
            raise NotFound(f"{addr.hex()} is not a registered participant")
        return found

    return {
        "market.params": market_params,
        "market.book": market_book,
        "market.stats": market_stats,
        "market.trades": market_trades,
        "market.orders": market_orders,
        "market.order": market_order,
        "market.participant": market_participant,
    }
