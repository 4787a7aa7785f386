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
from typing import Any

from powernode.chain.ledger import Ledger
from powernode.core.errors import InvalidParams, NotFound
from powernode.engines.market import queries
from powernode.engines.market.params import PRODUCTS, MarketParams
from powernode.engines.market.params import markets as market_params_of
from powernode.engines.market.records import ORDER_STATUSES, TRADE_STATUSES
from powernode.engines.settlement import queries as settlement_queries
from powernode.node import rpc_params as rp
from powernode.node.rpc import Method, Params
from powernode.node.rpc_spec import (
    ADDRESS,
    ID32,
    INT,
    LIST_LIMIT,
    LIST_MAX,
    MethodSpec,
    Param,
    array_of,
    invalid,
    map_of,
    not_found,
    one_of,
    shape,
)
from powernode.node.rpc_spec import integer as int_schema

TRADES_LIMIT = 100
TRADES_MAX = 1000
SLOTS_LIMIT = 50
SLOTS_MAX = 500
MAX_LEVELS = 1000


_PRODUCT = Param("product", one_of(PRODUCTS))
_SLOT = Param("slot", int_schema(), description="a slot's unix start, on the product's grid")
_UNKNOWN_MARKET = invalid("unknown_market", "no such product")
_OFF_GRID = invalid("slot_not_aligned", "a slot off the product's slot grid")
_TRADE = shape(
    "seq:int height:int time:int product:str slot:int buy_id:hex sell_id:hex buyer:hex "
    "seller:hex energy:int price:int value:amount buyer_fee:amount seller_fee:amount "
    "status:str delivered_wh:int paid:amount refunded:amount penalty:amount bundled_wh:int "
    "settled_height:int escrow:amount"
)
_ORDER = shape(
    "id:hex owner:hex product:str side:str slot:int energy:int price:int source:str "
    "expiry:amount tif:str seq:int height:int filled:int remaining:int escrow:amount status:str"
)
# A product's params as market.params gives them (MarketParams less its name).
_MARKET_PARAMS = shape(
    "slot_seconds:int gate_closure_seconds:int min_order_wh:int max_order_wh:int "
    "price_tick:int min_price:int max_price:int open_hour:int close_hour:int "
    "utc_offset_seconds:int min_lead_seconds:int max_lead_seconds:int price_rule:str "
    "buyer_fee_bps:int seller_fee_bps:int shortfall_penalty_bps:int"
)
_LEVEL = shape("price:int energy:int orders:int")
_SETTLEMENT = shape(
    "slot:int seller:hex height:int time:int metered_wh:int ppa_wh:int sold_wh:int "
    "delivered_wh:int paid:amount refunded:amount penalty:amount bundled_wh:int trades:int"
)

MARKET_SPECS = {
    "market.params": MethodSpec(
        summary="the market params of each product (or one)",
        params=(_PRODUCT,),
        result=shape(
            "height:int time:int market_time:int products:obj", products=map_of(_MARKET_PARAMS)
        ),
        errors=(_UNKNOWN_MARKET,),
        public=True,
    ),
    "market.book": MethodSpec(
        summary="a slot's order book, best price first",
        params=(
            Param("product", one_of(PRODUCTS), required=True),
            Param("slot", int_schema(), required=True),
            Param("levels", int_schema(1, MAX_LEVELS)),
        ),
        result=shape(
            "product:str slot:int gate:int closed:bool open_orders:int bids:list asks:list",
            bids=_LEVEL,
            asks=_LEVEL,
        ),
        errors=(_UNKNOWN_MARKET, _OFF_GRID),
        public=True,
    ),
    "market.stats": MethodSpec(
        summary="trades, volume, value and prices: market-wide, per product or per slot",
        params=(_PRODUCT, _SLOT),
        result=shape(
            "trades:int volume_wh:int value:amount avg_price:int? min_price:int? "
            "max_price:int? open_orders:int"
        ),
        errors=(_UNKNOWN_MARKET, _OFF_GRID),
        public=True,
    ),
    "market.trades": MethodSpec(
        summary="the latest matching trades, oldest first",
        params=(
            _PRODUCT,
            _SLOT,
            Param("participant", ADDRESS),
            Param("from_height", int_schema()),
            Param("to_height", int_schema()),
            Param("limit", int_schema(1, TRADES_MAX), description=f"default {TRADES_LIMIT}"),
            Param("status", one_of(TRADE_STATUSES)),
        ),
        result=array_of(_TRADE),
        errors=(_UNKNOWN_MARKET, _OFF_GRID),
        public=True,
    ),
    "market.orders": MethodSpec(
        summary="a participant's orders in chain order",
        params=(
            Param("participant", ADDRESS, required=True),
            Param("status", one_of(ORDER_STATUSES)),
            LIST_LIMIT,
        ),
        result=array_of(_ORDER),
        public=True,
    ),
    "market.order": MethodSpec(
        summary="an order by its id (the txid that placed it)",
        params=(Param("id", ID32, required=True),),
        result=_ORDER,
        errors=(not_found(),),
        public=True,
    ),
    "market.participant": MethodSpec(
        summary="a registered participant",
        params=(Param("address", ADDRESS, required=True),),
        result=shape("address:hex role:str location:str capacity_w:int registered_height:int"),
        errors=(not_found(),),
        public=True,
    ),
    "market.position": MethodSpec(
        summary="a participant's energy position, balance and escrows",
        params=(Param("participant", ADDRESS, required=True),),
        result=shape(
            "address:hex balance:amount bought_wh:int sold_wh:int received_wh:int "
            "not_received_wh:int delivered_wh:int undelivered_wh:int pending_bought_wh:int "
            "pending_sold_wh:int order_escrow:amount settlement_escrow:amount"
        ),
        public=True,
    ),
    "market.slots": MethodSpec(
        summary="a product's slots with orders or trades, newest first, with their statistics",
        params=(
            Param("product", one_of(PRODUCTS), required=True),
            Param("limit", int_schema(1, SLOTS_MAX), description=f"default {SLOTS_LIMIT}"),
        ),
        result=array_of(
            shape(
                "slot:int gate:int closed:bool open_orders:int trades:int volume_wh:int "
                "value:amount avg_price:int? min_price:int? max_price:int?"
            )
        ),
        errors=(_UNKNOWN_MARKET,),
        public=True,
    ),
    "market.settlement": MethodSpec(
        summary="slots still to settle and the settlements made",
        params=(Param("slot", int_schema()), Param("seller", ADDRESS)),
        result=shape(
            "pending_slots:list settlements:list", pending_slots=INT, settlements=_SETTLEMENT
        ),
        public=True,
    ),
}


def params_json(mp: MarketParams) -> dict[str, Any]:
    out = asdict(mp)
    out.pop("product")
    return out


def market_methods(ledger: Ledger) -> dict[str, Method]:
    """``market.params``, ``.book``, ``.stats``, ``.trades``, ``.orders``,
    ``.order``, ``.participant``, ``.position``, ``.settlement``, ``.slots``: reads of
    the tip state."""

    def state() -> Any:
        return ledger.chain.state

    def markets() -> dict[str, MarketParams]:
        return market_params_of(ledger.params)

    # market.slots' index of the tip state, kept until the tip moves: a
    # batch of market.slots calls (public) costs one pass over the state.
    slots_at: dict[bytes, queries.SlotIndex] = {}

    def slot_index() -> queries.SlotIndex:
        tip = ledger.chain.tip.hash
        index = slots_at.get(tip)
        if index is None:
            index = queries.slot_index(state())
            slots_at.clear()
            slots_at[tip] = index
        return index

    async def market_params(p: Params) -> Any:
        product = rp.product(p, 0, required=False)
        tip = ledger.chain.tip
        wanted = [product] if product else list(PRODUCTS)
        ms = markets()
        return {
            "height": tip.height,
            "time": tip.header.timestamp,
            # Before the market's first order nothing stores a clock, and
            # the rules take the block's own time: the tip's, here.
            "market_time": max(queries.market_time(state()), tip.header.timestamp),
            "products": {name: params_json(ms[name]) for name in wanted},
        }

    async def market_book(p: Params) -> Any:
        product = rp.product(p, 0, required=True)
        assert product is not None
        if rp.arg(p, "slot", 1) is None:
            raise InvalidParams("'slot' is required")
        slot = rp.slot(markets(), product, p, 1)
        assert slot is not None
        levels = rp.opt_int(p, "levels", 2, lo=1, hi=MAX_LEVELS)
        view = state()
        result = queries.book(view, product, slot, levels, params=ledger.params)
        # A book is marked closed by its gate's hook, which only books that
        # held orders get: a slot that never had one is closed all the same
        # once the market clock reaches its gate (as an order would find it).
        clock = max(queries.market_time(view), ledger.chain.tip.header.timestamp)
        if result["gate"] is not None and clock >= result["gate"]:
            result["closed"] = True
        return result

    def product_and_slot(p: Params) -> tuple[str | None, int | None]:
        """The optional ``product`` (position 0) and ``slot`` (1) filters."""
        product = rp.product(p, 0, required=False)
        if rp.arg(p, "slot", 1) is None:
            return product, None
        if product is None:
            raise InvalidParams("'slot' needs 'product'")
        return product, rp.slot(markets(), product, p, 1)

    async def market_stats(p: Params) -> Any:
        product, slot = product_and_slot(p)
        return queries.stats(state(), product, slot)

    async def market_trades(p: Params) -> Any:
        product, slot = product_and_slot(p)
        participant = rp.address(p, "participant", 2, required=False)
        from_height = rp.opt_int(p, "from_height", 3)
        to_height = rp.opt_int(p, "to_height", 4)
        if from_height is not None and to_height is not None and from_height > to_height:
            raise InvalidParams("'from_height' must not be above 'to_height'")
        limit = rp.opt_int(p, "limit", 5, lo=1, hi=TRADES_MAX)
        status = rp.arg(p, "status", 6)
        if status is not None and status not in TRADE_STATUSES:
            raise InvalidParams(f"'status' must be one of {list(TRADE_STATUSES)}")
        return queries.trades(
            state(),
            product=product,
            slot=slot,
            participant=participant,
            from_height=from_height,
            to_height=to_height,
            limit=TRADES_LIMIT if limit is None else limit,
            status=status,
        )

    async def market_slots(p: Params) -> Any:
        product = rp.product(p, 0, required=True)
        assert product is not None
        limit = rp.opt_int(p, "limit", 1, lo=1, hi=SLOTS_MAX) or SLOTS_LIMIT
        return queries.slots(state(), product, limit, params=ledger.params, index=slot_index())

    async def market_position(p: Params) -> Any:
        addr = rp.address(p, "participant", 0, required=True)
        assert addr is not None
        return queries.position(state(), addr)

    async def market_settlement(p: Params) -> Any:
        slot = rp.opt_int(p, "slot", 0)
        seller = rp.address(p, "seller", 1, required=False)
        return {
            "pending_slots": settlement_queries.pending(state()),
            "settlements": settlement_queries.settlements(state(), slot=slot, seller=seller),
        }

    async def market_orders(p: Params) -> Any:
        owner = rp.address(p, "participant", 0, required=True)
        status = rp.arg(p, "status", 1)
        if status is not None and status not in ORDER_STATUSES:
            raise InvalidParams(f"'status' must be one of {list(ORDER_STATUSES)}")
        limit = rp.list_limit(p, LIST_MAX)
        return queries.orders(state(), owner, status)[:limit]

    async def market_order(p: Params) -> Any:
        oid = rp.order_id(p)
        found = queries.order(state(), oid)
        if found is None:
            raise NotFound(f"no order {oid.hex()}")
        return found

    async def market_participant(p: Params) -> Any:
        addr = rp.address(p, "address", 0, required=True)
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
        "market.position": market_position,
        "market.settlement": market_settlement,
        "market.slots": market_slots,
    }
