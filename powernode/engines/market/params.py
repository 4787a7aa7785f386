"""Market parameters: one section per product in the genesis ``markets`` object.

    "markets": {
      "spot":    {"slot_seconds": 900, "price_rule": "midpoint", ...},
      "forward": {"price_rule": "maker"},
      "reserve": {"price_rule": "uniform"}
    }

A product missing from the object trades with the defaults below; an unknown
product or key is refused, as everywhere in the genesis file. Units: energy in
Wh, prices in micro-units per kWh, times in seconds, fees in basis points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from powernode.core.errors import GenesisError
from powernode.core.params import ChainParams, GenesisSection

PRODUCTS = ("spot", "forward", "reserve")
PRICE_RULES = ("midpoint", "maker", "uniform")

_DAY = 86_400


@dataclass(frozen=True, slots=True)
class MarketParams:
    product: str
    slot_seconds: int = 900
    gate_closure_seconds: int = 300
    min_order_wh: int = 1_000  # the seed's 1 kWh
    max_order_wh: int = 10_000_000  # the seed's 10,000 kWh
    price_tick: int = 10_000  # the seed's 0.01 per kWh
    min_price: int = 10_000
    max_price: int = 10_000_000  # 10 units per kWh
    open_hour: int = 8  # the seed's trading hours, 8 to 22 local time
    close_hour: int = 22
    utc_offset_seconds: int = 0
    # How far ahead of market time a slot's start may be: spot trades the
    # next day, forward anything after that up to a year, reserve a week.
    min_lead_seconds: int = 0
    max_lead_seconds: int = _DAY
    price_rule: str = "midpoint"
    buyer_fee_bps: int = 0
    seller_fee_bps: int = 0
    # Settlement: the seller owes the buyer this share of the value of what
    # it sold but did not deliver (see engines/settlement); 0 = no penalty.
    shortfall_penalty_bps: int = 0

    def slot_capacity_wh(self, capacity_w: int) -> int:
        """Energy a participant of ``capacity_w`` can deliver or take in one slot."""
        return capacity_w * self.slot_seconds // 3600

    def gate_time(self, slot: int) -> int:
        return slot - self.gate_closure_seconds

    def is_open(self, market_time: int) -> bool:
        hour = (market_time + self.utc_offset_seconds) // 3600 % 24
        if self.open_hour <= self.close_hour:
            return self.open_hour <= hour < self.close_hour
        return hour >= self.open_hour or hour < self.close_hour  # overnight session

    @property
    def continuous(self) -> bool:
        return self.price_rule != "uniform"


_PRODUCT_DEFAULTS: dict[str, dict[str, Any]] = {
    "spot": {},
    "forward": {"min_lead_seconds": _DAY, "max_lead_seconds": 365 * _DAY, "price_rule": "maker"},
    "reserve": {"max_lead_seconds": 7 * _DAY, "price_rule": "uniform"},
}

_INT_KEYS = (
    "slot_seconds",
    "gate_closure_seconds",
    "min_order_wh",
    "max_order_wh",
    "price_tick",
    "min_price",
    "max_price",
    "open_hour",
    "close_hour",
    "utc_offset_seconds",
    "min_lead_seconds",
    "max_lead_seconds",
    "buyer_fee_bps",
    "seller_fee_bps",
    "shortfall_penalty_bps",
)


def _check(product: str, p: MarketParams) -> None:
    def bad(msg: str) -> GenesisError:
        return GenesisError(f"genesis markets.{product}: {msg}")

    if not 60 <= p.slot_seconds <= _DAY or p.slot_seconds % 60:
        raise bad("slot_seconds must be whole minutes, 1 minute to 1 day")
    if _DAY % p.slot_seconds:
        raise bad("slot_seconds must divide a day")
    if not 0 <= p.gate_closure_seconds <= _DAY or p.gate_closure_seconds % 60:
        raise bad("gate_closure_seconds must be whole minutes, at most a day")
    if not 1 <= p.min_order_wh <= p.max_order_wh <= 10**12:
        raise bad("need 1 <= min_order_wh <= max_order_wh <= 10^12")
    if not 1 <= p.price_tick <= p.min_price <= p.max_price <= 10**12:
        raise bad("need 1 <= price_tick <= min_price <= max_price <= 10^12")
    if p.min_price % p.price_tick or p.max_price % p.price_tick:
        raise bad("min_price and max_price must be multiples of price_tick")
    if not (0 <= p.open_hour <= 23 and 1 <= p.close_hour <= 24 and p.open_hour != p.close_hour):
        raise bad("open_hour 0..23 and close_hour 1..24 must differ (0 and 24: always open)")
    if not -14 * 3600 <= p.utc_offset_seconds <= 14 * 3600:
        raise bad("utc_offset_seconds must be within +-14 hours")
    if not 0 <= p.min_lead_seconds <= p.max_lead_seconds <= 5 * 365 * _DAY:
        raise bad("need 0 <= min_lead_seconds <= max_lead_seconds <= 5 years")
    if p.price_rule not in PRICE_RULES:
        raise bad(f"price_rule must be one of {list(PRICE_RULES)}")
    if not (0 <= p.buyer_fee_bps <= 1000 and 0 <= p.seller_fee_bps <= 1000):
        raise bad("fees are 0..1000 basis points")
    if not 0 <= p.shortfall_penalty_bps <= 10_000:
        raise bad("shortfall_penalty_bps is 0..10000 basis points")


ENGINE_NAME = "market"


def markets(params: ChainParams) -> dict[str, MarketParams]:
    """Every product's params, as parsed once when the genesis was loaded."""
    parsed: dict[str, MarketParams] = params.engine_params(ENGINE_NAME)
    return parsed


def parse_markets(
    raw: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...],
) -> dict[str, MarketParams]:
    """Every product's params from the genesis ``markets`` section in its
    canonical raw form; GenesisError naming the bad key."""
    given = dict(raw)
    unknown = sorted(set(given) - set(PRODUCTS))
    if unknown:
        raise GenesisError(f"genesis markets: unknown products {unknown}, known {list(PRODUCTS)}")
    out: dict[str, MarketParams] = {}
    for product in PRODUCTS:
        values: dict[str, Any] = {**_PRODUCT_DEFAULTS[product], **dict(given.get(product, ()))}
        bad_keys = sorted(k for k in values if k not in _INT_KEYS and k != "price_rule")
        if bad_keys:
            raise GenesisError(f"genesis markets.{product}: unknown keys {bad_keys}")
        for k in _INT_KEYS:
            if k in values and type(values[k]) is not int:
                raise GenesisError(f"genesis markets.{product}.{k}: expected an integer")
        if type(values.get("price_rule", "")) is not str:
            raise GenesisError(f"genesis markets.{product}.price_rule: expected a string")
        p = MarketParams(product=product, **values)
        _check(product, p)
        out[product] = p
    # A participant's capacity is counted per slot across products (a slot
    # sold forward cannot be sold again spot), which needs one slot grid.
    lengths = {p.slot_seconds for p in out.values()}
    if len(lengths) > 1:
        raise GenesisError(
            f"genesis markets: every product must use the same slot_seconds, got {sorted(lengths)}"
        )
    for p in out.values():
        if p.max_lead_seconds <= p.gate_closure_seconds:
            raise GenesisError(
                f"genesis markets.{p.product}: max_lead_seconds must exceed gate_closure_seconds"
            )
    return out


GENESIS = GenesisSection(key="markets", parse=parse_markets)
