"""Market parameters from the genesis ``markets`` object: the defaults per
product, overrides, and every refusal (unknown product or key, a value of the
wrong type or out of range, floats). The genesis file is the entry point:
``parse_genesis_json`` refuses a bad markets section before a chain starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from powernode.core.errors import GenesisError
from powernode.engines.market.params import MarketParams
from powernode.engines.market.params import markets as chain_markets
from powernode.state.genesis import genesis_block, parse_genesis_json
from tests.unit.helpers import LedgerFactory, genesis_doc, make_params
from tests.unit.market_helpers import (
    ALICE,
    BOB,
    KWH,
    SLOT,
    T0,
    open_market,
    place_tx,
)


def markets_of(markets: Any) -> dict[str, MarketParams]:
    """Parse a genesis carrying ``markets`` the way a node does."""
    params = parse_genesis_json(json.dumps(genesis_doc(markets=markets)))
    return chain_markets(params)


def refused(markets: Any) -> str:
    with pytest.raises(GenesisError) as info:
        markets_of(markets)
    assert info.value.code == "bad_genesis"
    return info.value.message


# --- defaults -------------------------------------------------------------------


def test_defaults_are_the_seed_market() -> None:
    mk = markets_of({})
    assert set(mk) == {"spot", "forward", "reserve"}
    for p in mk.values():
        assert p.slot_seconds == 900
        assert p.gate_closure_seconds == 300
        assert (p.min_order_wh, p.max_order_wh) == (1 * KWH, 10_000 * KWH)  # 1 .. 10,000 kWh
        assert p.price_tick == 10_000  # 0.01 per kWh
        assert (p.min_price, p.max_price) == (10_000, 10_000_000)
        assert (p.open_hour, p.close_hour, p.utc_offset_seconds) == (8, 22, 0)
        assert (p.buyer_fee_bps, p.seller_fee_bps) == (0, 0)
    assert mk["spot"].price_rule == "midpoint"
    assert mk["forward"].price_rule == "maker"
    assert mk["reserve"].price_rule == "uniform"
    assert (mk["spot"].min_lead_seconds, mk["spot"].max_lead_seconds) == (0, 86_400)
    assert (mk["forward"].min_lead_seconds, mk["forward"].max_lead_seconds) == (
        86_400,
        365 * 86_400,
    )
    assert mk["reserve"].max_lead_seconds == 7 * 86_400


def test_an_override_changes_only_its_product_and_key() -> None:
    mk = markets_of({"spot": {"price_rule": "maker", "min_order_wh": 5_000}})
    base = markets_of({})
    assert mk["spot"].price_rule == "maker" and mk["spot"].min_order_wh == 5_000
    assert mk["spot"].max_order_wh == base["spot"].max_order_wh
    assert mk["forward"] == base["forward"] and mk["reserve"] == base["reserve"]


def test_a_product_default_can_be_overridden() -> None:
    mk = markets_of({"reserve": {"price_rule": "midpoint"}, "forward": {"min_lead_seconds": 0}})
    assert mk["reserve"].price_rule == "midpoint"
    assert mk["forward"].min_lead_seconds == 0
    assert mk["forward"].price_rule == "maker"  # the rest of its defaults stay


def test_comment_keys_are_ignored() -> None:
    mk = markets_of({"_note": "x", "spot": {"_why": "seed", "min_order_wh": 1800}})
    assert mk["spot"].min_order_wh == 1800


@pytest.mark.parametrize(
    "section",
    [
        {"slot_seconds": 86_400, "gate_closure_seconds": 0},
        {"slot_seconds": 60},
        {"gate_closure_seconds": 86_400, "max_lead_seconds": 2 * 86_400},
        {"open_hour": 0, "close_hour": 24},  # always open
        {"open_hour": 22, "close_hour": 6},  # overnight
        {"utc_offset_seconds": 14 * 3600},
        {"utc_offset_seconds": -14 * 3600},
        {"min_order_wh": 1, "max_order_wh": 10**12},
        {"price_tick": 1, "min_price": 1, "max_price": 10**12},
        {"min_order_wh": 7, "max_order_wh": 7},
        {"buyer_fee_bps": 1000, "seller_fee_bps": 1000},
        {"min_lead_seconds": 5 * 365 * 86_400, "max_lead_seconds": 5 * 365 * 86_400},
        {"price_rule": "uniform"},
    ],
)
def test_edge_values_accepted(section: dict[str, Any]) -> None:
    markets: dict[str, Any] = {"spot": section}
    if "slot_seconds" in section:  # one slot grid for every product
        markets |= {k: {"slot_seconds": section["slot_seconds"]} for k in ("forward", "reserve")}
    p = markets_of(markets)["spot"]
    for k, v in section.items():
        assert getattr(p, k) == v


# --- refusals -------------------------------------------------------------------


def test_products_on_different_slot_grids_are_refused() -> None:
    assert "same slot_seconds" in refused({"reserve": {"slot_seconds": 3600}})


def test_a_product_whose_gate_outlasts_its_lead_is_refused() -> None:
    msg = refused({"spot": {"gate_closure_seconds": 3600, "max_lead_seconds": 3600}})
    assert "max_lead_seconds must exceed gate_closure_seconds" in msg


@pytest.mark.parametrize("markets", [{"intraday": {}}, {"Spot": {}}, {"spot": {}, "futures": {}}])
def test_unknown_product_refused(markets: dict[str, Any]) -> None:
    assert "unknown products" in refused(markets)


@pytest.mark.parametrize("k", ["slot", "tick", "min_order", "fee_bps", "priceRule"])
def test_unknown_key_refused(k: str) -> None:
    msg = refused({"spot": {k: 1}})
    assert "unknown keys" in msg and k in msg


@pytest.mark.parametrize(
    ("k", "v"),
    [
        ("slot_seconds", "900"),
        ("slot_seconds", True),  # a bool is not an integer here
        ("min_order_wh", [1000]),
        ("price_tick", None),
        ("buyer_fee_bps", False),
    ],
)
def test_non_integer_value_refused(k: str, v: Any) -> None:
    msg = refused({"spot": {k: v}})
    assert k in msg


@pytest.mark.parametrize("v", [1, True, ["maker"]])
def test_price_rule_must_be_a_string(v: Any) -> None:
    assert "price_rule" in refused({"forward": {"price_rule": v}})


@pytest.mark.parametrize("v", ["auction", "Maker", "pro-rata", ""])
def test_unknown_price_rule_refused(v: str) -> None:
    assert "price_rule" in refused({"spot": {"price_rule": v}})


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ({"slot_seconds": 0}, "slot_seconds"),
        ({"slot_seconds": 30}, "slot_seconds"),
        ({"slot_seconds": 90}, "slot_seconds"),  # not whole minutes
        ({"slot_seconds": 420}, "slot_seconds"),  # 7 minutes do not divide a day
        ({"slot_seconds": 2 * 86_400}, "slot_seconds"),
        ({"slot_seconds": -900}, "slot_seconds"),
        ({"gate_closure_seconds": 30}, "gate_closure_seconds"),
        ({"gate_closure_seconds": -60}, "gate_closure_seconds"),
        ({"gate_closure_seconds": 86_460}, "gate_closure_seconds"),
        ({"min_order_wh": 0}, "min_order_wh"),
        ({"min_order_wh": 2_000, "max_order_wh": 1_000}, "min_order_wh"),
        ({"max_order_wh": 10**12 + 1}, "max_order_wh"),
        ({"price_tick": 0}, "price_tick"),
        ({"price_tick": 20_000, "min_price": 10_000}, "price_tick"),
        ({"min_price": 15_000}, "multiples of price_tick"),
        ({"max_price": 10_005_000}, "multiples of price_tick"),
        ({"min_price": 20_000, "max_price": 10_000}, "min_price"),
        ({"max_price": 10**12 + 10_000}, "max_price"),
        ({"open_hour": 24}, "open_hour"),
        ({"open_hour": -1}, "open_hour"),
        ({"close_hour": 0}, "close_hour"),
        ({"close_hour": 25}, "close_hour"),
        ({"open_hour": 9, "close_hour": 9}, "must differ"),
        ({"utc_offset_seconds": 14 * 3600 + 1}, "utc_offset_seconds"),
        ({"utc_offset_seconds": -14 * 3600 - 1}, "utc_offset_seconds"),
        ({"min_lead_seconds": -1}, "min_lead_seconds"),
        ({"min_lead_seconds": 100, "max_lead_seconds": 99}, "min_lead_seconds"),
        ({"max_lead_seconds": 5 * 365 * 86_400 + 1}, "max_lead_seconds"),
        ({"buyer_fee_bps": 1001}, "fees"),
        ({"seller_fee_bps": -1}, "fees"),
    ],
)
def test_bad_value_refused(section: dict[str, Any], needle: str) -> None:
    msg = refused({"spot": section})
    assert "markets.spot" in msg and needle in msg


def test_bad_value_in_a_product_default_section_names_the_product() -> None:
    assert "markets.reserve" in refused({"reserve": {"gate_closure_seconds": 61}})


@pytest.mark.parametrize("markets", [[], "spot", 1, {"spot": []}, {"spot": 5}, {"spot": "maker"}])
def test_markets_must_be_objects(markets: Any) -> None:
    refused(markets)


@pytest.mark.parametrize(
    "text",
    [
        '{"spot": {"price_tick": 0.01}}',
        '{"spot": {"min_order_wh": 1000.0}}',
        '{"spot": {"buyer_fee_bps": 1e2}}',
        '{"forward": {"max_price": 1.5E7}}',
    ],
)
def test_floats_refused_in_genesis_json(text: str) -> None:
    doc = json.dumps({**genesis_doc(), "markets": "@"}).replace('"@"', text)
    with pytest.raises(GenesisError) as info:
        parse_genesis_json(doc)
    assert "float" in info.value.message


@pytest.mark.parametrize("v", [0.5, 900.0, float("nan")])
def test_floats_refused_in_parsed_params(v: float) -> None:
    with pytest.raises(GenesisError):
        make_params(markets={"spot": {"slot_seconds": v}})


def test_market_params_are_part_of_the_genesis_hash() -> None:
    a = make_params(markets={"spot": {"buyer_fee_bps": 10}})
    b = make_params(markets={"spot": {"buyer_fee_bps": 11}})
    assert a.commitment() != b.commitment()
    assert genesis_block(a).hash != genesis_block(b).hash


def test_the_dev_genesis_file_parses() -> None:
    path = Path(__file__).resolve().parents[2] / "configs" / "genesis-dev.json"
    params = parse_genesis_json(path.read_bytes())
    assert set(chain_markets(params)) == {"spot", "forward", "reserve"}


# --- the params take effect ---------------------------------------------------------


def test_custom_order_limits_and_tick_apply(factory: LedgerFactory) -> None:
    m = open_market(
        factory,
        {
            "spot": {
                "min_order_wh": 5_000,
                "max_order_wh": 20_000,
                "price_tick": 5_000,
                "min_price": 5_000,
                "max_price": 1_000_000,
            }
        },
    )
    n = m.nonce(ALICE)
    assert m.refused(place_tx(ALICE, "sell", nonce=n, energy=4_999)) == "order_below_min"
    assert m.refused(place_tx(ALICE, "sell", nonce=n, energy=20_001)) == "order_above_max"
    assert m.refused(place_tx(ALICE, "sell", nonce=n, price=502_500)) == "price_off_tick"
    assert m.refused(place_tx(ALICE, "sell", nonce=n, price=1_005_000)) == "price_out_of_range"
    ok = place_tx(ALICE, "sell", nonce=n, energy=20_000, price=505_000)  # off the default tick
    m.submit(ok)
    m.mine()
    m.ok(ok)
    assert m.depth() == ([], [(505_000, 20_000, 1)])


def test_custom_slot_length_and_gate(factory: LedgerFactory) -> None:
    m = open_market(
        factory,
        {
            "spot": {"slot_seconds": 3600, "gate_closure_seconds": 1800},
            "forward": {"slot_seconds": 3600},
            "reserve": {"slot_seconds": 3600},
        },
    )
    n = m.nonce(BOB)
    # 13:15 is a 15-minute slot but not an hourly one
    assert m.refused(place_tx(BOB, "buy", nonce=n, slot=SLOT + 900)) == "slot_not_aligned"
    # the gate of the 13:00 slot closes at 12:30, so at 12:30 it is closed
    m.mine(T0 + 1800)
    assert m.refused(place_tx(BOB, "buy", nonce=n, slot=SLOT)) == "gate_closed"
    tx = place_tx(BOB, "buy", nonce=n, slot=SLOT + 3600, energy=KWH)
    m.submit(tx)
    m.mine()
    m.ok(tx)


@pytest.mark.parametrize(
    ("spot", "ok"),
    [
        ({"utc_offset_seconds": 50_400}, True),
        ({"utc_offset_seconds": -50_401}, False),
        ({"buyer_fee_bps": 1_000, "seller_fee_bps": 1_000}, True),
        ({"seller_fee_bps": 1_001}, False),
        ({"shortfall_penalty_bps": 10_000}, True),
        ({"shortfall_penalty_bps": 10_001}, False),
        ({"open_hour": 22, "close_hour": 8}, True),  # overnight
        ({"open_hour": 9, "close_hour": 9}, False),
        ({"gate_closure_seconds": 0}, True),
        ({"gate_closure_seconds": 90}, False),  # not whole minutes
        ({"max_lead_seconds": 300}, False),  # not above the gate closure
        ({"min_order_wh": 10**12, "max_order_wh": 10**12}, True),
        ({"max_order_wh": 10**12 + 1}, False),
        ({"max_price": 10**12, "min_price": 10_000}, True),
        ({"min_price": 15_000}, False),  # not a multiple of the tick
        ({"max_lead_seconds": 5 * 365 * 86_400}, True),
        ({"max_lead_seconds": 5 * 365 * 86_400 + 1}, False),
    ],
)
def test_the_readme_params_table_bounds(spot: dict[str, Any], ok: bool) -> None:
    # README, The market, Params: the bounds column.
    if ok:
        assert markets_of({"spot": spot})["spot"]
    else:
        refused({"spot": spot})
