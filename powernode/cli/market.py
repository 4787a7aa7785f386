"""The ``powernode`` market commands: register, order, cancel, and the queries
book, trades, orders, stats and participant.

On the command line energy is in kWh (exact to the Wh), prices in units per
kWh (exact to the micro-unit) and capacity in kW; on the wire and in RPC they
are integers (Wh, micro-units per kWh, W). Slots are unix times, or ``next``:
the first delivery slot whose gate is still a minute or more away.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from powernode.cli.common import (
    Subparsers,
    UserError,
    add_address_options,
    add_command,
    add_tx_options,
    address_arg,
    capacity_arg,
    chosen_address,
    emit,
    report_tx,
    rpc_client,
    signing_key,
    submit_and_wait,
    tx_context,
    tx_line,
    whole_number,
)
from powernode.client import (
    RpcClient,
    build_cancel,
    build_order,
    build_register,
    format_decimal,
    format_kwh,
    format_money,
    format_price,
    next_slot,
    parse_kwh,
    parse_price,
)
from powernode.core.errors import DecodeError
from powernode.core.hextext import from_hex
from powernode.core.units import clip, parse_units, parse_whole
from powernode.engines.market.level import ANY_SOURCE
from powernode.engines.market.params import PRODUCTS
from powernode.engines.market.records import (
    BUY,
    ORDER_STATUSES,
    ROLES,
    SELL,
    SIDES,
    SOURCES,
    TIFS,
    TRADE_STATUSES,
)

# The node's bounds on market.book levels and market.trades limit
# (node/rpc_market.py, which the CLI does not import): checked while parsing,
# so a bad value is refused before a node is looked for.
MAX_BOOK_LEVELS = 1000
MAX_TRADES = 1000

# How messages name the sources: "solar, wind, hydro or thermal".
SOURCE_LIST = f"{', '.join(SOURCES[:-1])} or {SOURCES[-1]}"


def when(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def market_params(c: RpcClient, product: str) -> tuple[dict[str, Any], int]:
    """A product's params and the time to plan against: the later of this
    machine's clock and the chain tip's timestamp."""
    r = c.call("market.params", {"product": product})
    return r["products"][product], max(int(time.time()), r["time"])


# A --slot as parsed: a unix time, or "next" (resolved against the chain).
Slot = int | str


def resolve_slot(c: RpcClient, product: str, slot: Slot) -> int:
    mp, now = market_params(c, product)
    return _slot_from(slot, mp, now)


def slot_arg(text: str) -> Slot:
    """``--slot``: 'next' or a unix time in ASCII digits (checked against
    the product's slot length once the node's params are known)."""
    if text.strip() == "next":
        return "next"
    try:
        return parse_whole(text, "--slot")
    except DecodeError:
        raise UserError(f"--slot must be a unix time or 'next', not {clip(text)!r}") from None


def _slot_from(slot: Slot, mp: dict[str, Any], now: int) -> int:
    if isinstance(slot, str):  # "next"
        return next_slot(
            now,
            slot_seconds=mp["slot_seconds"],
            gate_closure_seconds=mp["gate_closure_seconds"],
            min_lead_seconds=mp["min_lead_seconds"],
        )
    if slot % mp["slot_seconds"]:
        raise UserError(
            f"--slot {slot} is not a multiple of the {mp['slot_seconds']} s slot length"
        )
    return slot


def check_order(mp: dict[str, Any], energy: int, price: int) -> None:
    """The product's size and price rules, told in kWh and units; the node
    checks them again (and the rest) when the order arrives."""
    if not mp["min_order_wh"] <= energy <= mp["max_order_wh"]:
        raise UserError(
            f"--energy-kwh {format_kwh(energy)} outside {format_kwh(mp['min_order_wh'])}.."
            f"{format_kwh(mp['max_order_wh'])} kWh"
        )
    if price % mp["price_tick"]:
        raise UserError(
            f"--price {format_price(price)} is not a multiple of the tick "
            f"{format_price(mp['price_tick'])}"
        )
    if not mp["min_price"] <= price <= mp["max_price"]:
        raise UserError(
            f"--price {format_price(price)} outside {format_price(mp['min_price'])}.."
            f"{format_price(mp['max_price'])} per kWh"
        )


def event_lines(status: dict[str, Any]) -> list[str]:
    """A confirmed market tx's receipt events, readable."""
    out = []
    for e in status.get("receipt", {}).get("events", []):
        kind = e.get("event")
        if kind == "trade":
            out.append(
                f"  trade {format_kwh(e['energy'])} kWh at {format_price(e['price'])}/kWh"
                f" = {format_money(e['value'])}  (buy {e['buy'][:16]}.. sell {e['sell'][:16]}..)"
            )
        elif kind == "order_placed":
            out.append(
                f"  placed {e['side']} {format_kwh(e['energy'])} kWh at {format_price(e['price'])}/kWh"
                + (f", escrow {format_money(e['escrow'])}" if e.get("escrow") else "")
            )
        elif kind in ("registered", "reregistered"):
            kw = format_decimal(e["capacity_w"], 3)
            out.append(f"  {kind} as {e['role']} in {e['location']}, {kw} kW")
        elif isinstance(kind, str) and kind.startswith("order_"):
            refund = e.get("refund") or 0
            out.append(
                f"  {kind.removeprefix('order_')}"
                + (f", refund {format_money(refund)}" if refund else "")
            )
    return out


def tx_text(s: dict[str, Any]) -> str:
    return "\n".join([tx_line(s), *event_lines(s)])


# --- tx commands ----------------------------------------------------------------


def cmd_register(a: argparse.Namespace) -> int:
    capacity_w = a.capacity_kw
    location = a.location.strip()
    if not 1 <= len(location) <= 64:
        raise UserError("--location must be 1..64 characters")
    fee = parse_units(a.fee, "--fee")
    # The typed input is checked before the key file is read.
    key = signing_key(a)
    with rpc_client(a) as c:
        chain_id, nonce = tx_context(c, key)
        tx = build_register(
            key,
            chain_id=chain_id,
            nonce=nonce,
            role=a.role,
            location=location,
            capacity_w=capacity_w,
            fee=fee,
        )
        status = submit_and_wait(c, tx, a.wait)
    return report_tx(a, {"address": key.address.hex(), **status}, tx_text)


def cmd_order(a: argparse.Namespace) -> int:
    energy = parse_kwh(a.energy_kwh, "--energy-kwh")
    price = parse_price(a.price, "--price")
    source = a.source or (ANY_SOURCE if a.side == BUY else None)
    if source is None:
        raise UserError(f"a sell order needs --source ({SOURCE_LIST})")
    if source == ANY_SOURCE and a.side == SELL:
        raise UserError(f"source {ANY_SOURCE!r} is for buy orders; a sell names its source")
    fee = parse_units(a.fee, "--fee")
    # The typed input is checked before the key file is read.
    key = signing_key(a)
    with rpc_client(a) as c:
        mp, now = market_params(c, a.product)
        expiry = a.expiry.at(now) if isinstance(a.expiry, MinutesFromNow) else a.expiry
        slot = _slot_from(a.slot, mp, now)
        check_order(mp, energy, price)
        chain_id, nonce = tx_context(c, key)
        tx = build_order(
            key,
            chain_id=chain_id,
            nonce=nonce,
            product=a.product,
            side=a.side,
            slot=slot,
            energy_wh=energy,
            price=price,
            source=source,
            expiry=expiry,
            tif=a.tif,
            fee=fee,
        )
        status = submit_and_wait(c, tx, a.wait)
    out = {"order": tx.txid.hex(), "product": a.product, "slot": slot, **status}
    return report_tx(
        a,
        out,
        lambda s: (
            f"order {s['order']}: {a.side} {format_kwh(energy)} kWh at "
            f"{format_price(price)}/kWh, {a.product} slot {slot} ({when(slot)})\n" + tx_text(s)
        ),
    )


# The furthest +MINUTES: a year; the chain's own rules bound real expiries.
MAX_EXPIRY_MINUTES = 366 * 24 * 60


@dataclass(frozen=True, slots=True)
class MinutesFromNow:
    """``--expiry +MINUTES``, resolved once the command knows its now: the
    later of this machine's clock and the tip's time, as ``--slot next``
    (a dev chain mined fast runs ahead of the wall clock, and an expiry
    counted from the wall clock would already be past there)."""

    minutes: int

    def at(self, now: int) -> int:
        return (now // 60 + self.minutes) * 60


def expiry_arg(text: str) -> int | MinutesFromNow:
    """``--expiry``: 0 (or 'none'), a whole-minute unix time, or +MINUTES
    from now, in ASCII digits."""
    s = text.strip()
    if s in ("0", "none"):
        return 0
    try:
        if s.startswith("+"):
            # +0 is now, which no order can expire at: at least a minute.
            return MinutesFromNow(parse_whole(s[1:], "--expiry", lo=1, hi=MAX_EXPIRY_MINUTES))
        t = parse_whole(s, "--expiry")
    except DecodeError:
        t = -1
    if t <= 0 or t % 60:
        raise UserError(
            f"--expiry must be 0, a whole-minute unix time, or +MINUTES from now "
            f"(+1 to +{MAX_EXPIRY_MINUTES}), not {clip(text)!r}"
        )
    return t


def cmd_cancel(a: argparse.Namespace) -> int:
    try:
        oid = from_hex(a.order_id.removeprefix("0x"))
    except ValueError:
        oid = b""
    if len(oid) != 32:
        raise UserError("ORDER_ID is the 64-hex-digit id of the tx that placed the order")
    fee = parse_units(a.fee, "--fee")
    # The typed input is checked before the key file is read.
    key = signing_key(a)
    with rpc_client(a) as c:
        chain_id, nonce = tx_context(c, key)
        tx = build_cancel(key, chain_id=chain_id, nonce=nonce, order_id=oid, fee=fee)
        status = submit_and_wait(c, tx, a.wait)
    return report_tx(a, {"order": oid.hex(), **status}, tx_text)


# --- queries --------------------------------------------------------------------


def book_text(b: dict[str, Any]) -> str:
    state = "closed" if b["closed"] else "open"
    lines = [
        f"{b['product']} book, slot {b['slot']} ({when(b['slot'])}), gate {when(b['gate'])} {state}"
    ]
    for title, side in (("asks (sell)", "asks"), ("bids (buy)", "bids")):
        lines.append(f"  {title}")
        for lvl in b[side]:
            n = lvl["orders"]
            lines.append(
                f"    {format_price(lvl['price']):>10}/kWh {format_kwh(lvl['energy']):>12} kWh"
                f"  {n} order{'s' if n != 1 else ''}"
            )
        if not b[side]:
            lines.append("    (none)")
    return "\n".join(lines)


def cmd_book(a: argparse.Namespace) -> int:
    with rpc_client(a) as c:
        slot = resolve_slot(c, a.product, a.slot)
        b = c.call("market.book", {"product": a.product, "slot": slot, "levels": a.levels})
    emit(a, b, book_text)
    return 0


def settled_text(t: dict[str, Any]) -> str:
    """A trade's settlement: still confirmed (its value in the settlement
    escrow), or what was delivered, paid, refunded and bundled."""
    status = t.get("status", "confirmed")
    if status == "confirmed":
        return f"confirmed, {format_money(t.get('escrow', 0))} in settlement escrow"
    out = (
        f"{status} in block {t['settled_height']}: delivered {format_kwh(t['delivered_wh'])} kWh,"
        f" paid {format_money(t['paid'])}, refunded {format_money(t['refunded'])}"
    )
    if t.get("penalty"):
        out += f", penalty {format_money(t['penalty'])}"
    return out + f", certificates {format_kwh(t['bundled_wh'])} kWh"


def trade_line(t: dict[str, Any]) -> str:
    return (
        f"#{t['seq']} block {t['height']} {t['product']} slot {t['slot']}: "
        f"{format_kwh(t['energy'])} kWh at {format_price(t['price'])}/kWh = {format_money(t['value'])}"
        f"  buyer {t['buyer'][:12]}.. seller {t['seller'][:12]}..  {settled_text(t)}"
    )


def cmd_trades(a: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": a.limit}
    if a.participant:
        params["participant"] = a.participant.hex()
    if a.slot is not None and not a.product:
        raise UserError("--slot needs --product")
    if a.from_height is not None and a.to_height is not None and a.from_height > a.to_height:
        raise UserError("--from-height must not be above --to-height")
    for k in ("from_height", "to_height"):
        if getattr(a, k) is not None:
            params[k] = getattr(a, k)
    if a.status:
        params["status"] = a.status
    with rpc_client(a) as c:
        if a.product:
            params["product"] = a.product
        if a.slot is not None:
            if not a.product:
                raise UserError("--slot needs --product")
            params["slot"] = resolve_slot(c, a.product, a.slot)
        trades = c.call("market.trades", params)
    emit(a, trades, lambda ts: "\n".join(trade_line(t) for t in ts) or "no trades")
    return 0


def order_line(o: dict[str, Any]) -> str:
    return (
        f"{o['id']}  {o['status']:<9} {o['side']:<4} {o['product']} slot {o['slot']}  "
        f"{format_kwh(o['filled'])}/{format_kwh(o['energy'])} kWh filled at "
        f"{format_price(o['price'])}/kWh  {o['source']} {o['tif']}"
    )


def cmd_orders(a: argparse.Namespace) -> int:
    addr = chosen_address(a)
    params: dict[str, Any] = {"participant": addr.hex()}
    if a.status:
        params["status"] = a.status
    with rpc_client(a) as c:
        orders = c.call("market.orders", params)
    emit(a, orders, lambda os: "\n".join(order_line(o) for o in os) or "no orders")
    return 0


def stats_text(s: dict[str, Any]) -> str:
    def px(v: int | None) -> str:
        return "-" if v is None else format_price(v)

    return (
        f"trades {s['trades']}  volume {format_kwh(s['volume_wh'])} kWh  "
        f"value {format_money(s['value'])}  open orders {s['open_orders']}\n"
        f"price avg {px(s['avg_price'])}  min {px(s['min_price'])}  max {px(s['max_price'])} per kWh"
    )


def cmd_stats(a: argparse.Namespace) -> int:
    params: dict[str, Any] = {}
    if a.slot is not None and not a.product:
        raise UserError("--slot needs --product")
    with rpc_client(a) as c:
        if a.product:
            params["product"] = a.product
        if a.slot is not None:
            if not a.product:
                raise UserError("--slot needs --product")
            params["slot"] = resolve_slot(c, a.product, a.slot)
        s = c.call("market.stats", params)
    emit(a, s, stats_text)
    return 0


def position_text(p: dict[str, Any]) -> str:
    kwh = format_kwh
    return "\n".join(
        [
            f"participant {p['address']}",
            f"  bought {kwh(p['bought_wh'])} kWh: received {kwh(p['received_wh'])}, not received"
            f" {kwh(p['not_received_wh'])}, to settle {kwh(p['pending_bought_wh'])}",
            f"  sold {kwh(p['sold_wh'])} kWh: delivered {kwh(p['delivered_wh'])}, undelivered"
            f" {kwh(p['undelivered_wh'])}, to settle {kwh(p['pending_sold_wh'])}",
            f"  balance {format_money(p['balance'])}, order escrow {format_money(p['order_escrow'])},"
            f" settlement escrow {format_money(p['settlement_escrow'])}",
        ]
    )


def participant_text(p: dict[str, Any]) -> str:
    # Capacity in kW, the unit `register --capacity-kw` takes; the RPC's
    # capacity_w (and --json) stays in W, the integer the chain holds.
    return (
        f"participant {p['address']}  role {p['role']}  location {p['location']}  "
        f"capacity {format_decimal(p['capacity_w'], 3)} kW  "
        f"registered at height {p['registered_height']}"
    )


def cmd_position(a: argparse.Namespace) -> int:
    addr = chosen_address(a)
    with rpc_client(a) as c:
        p = c.call("market.position", {"participant": addr.hex()})
    emit(a, p, position_text)
    return 0


def cmd_participant(a: argparse.Namespace) -> int:
    addr = chosen_address(a)
    with rpc_client(a) as c:
        p = c.call("market.participant", {"address": addr.hex()})
    emit(a, p, participant_text)
    return 0


# --- parser ---------------------------------------------------------------------


def add_commands(sub: Subparsers) -> None:
    sp = add_command(sub, "register", cmd_register, "register the key as a market participant")
    sp.add_argument(
        "--role", required=True, choices=ROLES, help="what the participant does on the market"
    )
    sp.add_argument("--location", required=True, help="location or grid zone, e.g. Beijing")
    sp.add_argument(
        "--capacity-kw", required=True, type=capacity_arg, help="capacity in kW, e.g. 1000 or 2.5"
    )
    add_tx_options(sp)

    sp = add_command(sub, "order", cmd_order, "sign and submit a market order")
    sp.add_argument("--side", required=True, choices=SIDES, help="buy or sell energy")
    sp.add_argument(
        "--product", default="spot", choices=PRODUCTS, help="the market product (default spot)"
    )
    sp.add_argument(
        "--slot", type=slot_arg, default="next", help="delivery slot start (unix) or 'next'"
    )
    sp.add_argument("--energy-kwh", required=True, help="energy in kWh, e.g. 100 or 0.5")
    sp.add_argument("--price", required=True, help="limit price in units per kWh, e.g. 0.50")
    sp.add_argument(
        "--source",
        choices=(*SOURCES, ANY_SOURCE),
        help=f"energy source (buys default to {ANY_SOURCE})",
    )
    sp.add_argument(
        "--expiry", type=expiry_arg, default=0, help="0, a whole-minute unix time, or +MINUTES"
    )
    sp.add_argument("--tif", default="GTC", choices=TIFS, help="time in force (default GTC)")
    add_tx_options(sp)

    sp = add_command(sub, "cancel", cmd_cancel, "cancel one of your open orders")
    sp.add_argument("order_id", metavar="ORDER_ID", help="the id (txid) of the order")
    add_tx_options(sp)

    sp = add_command(sub, "book", cmd_book, "show a delivery slot's order book")
    sp.add_argument(
        "--product", default="spot", choices=PRODUCTS, help="the market product (default spot)"
    )
    sp.add_argument(
        "--slot", type=slot_arg, default="next", help="delivery slot start (unix) or 'next'"
    )
    sp.add_argument(
        "--levels",
        type=whole_number("--levels", lo=1, hi=MAX_BOOK_LEVELS),
        default=10,
        help=f"price levels per side, 1..{MAX_BOOK_LEVELS} (default 10)",
    )
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = add_command(sub, "trades", cmd_trades, "list trades, oldest first")
    sp.add_argument("--product", choices=PRODUCTS, help="only this product (default all)")
    sp.add_argument(
        "--slot", type=slot_arg, help="delivery slot start (unix) or 'next'; needs --product"
    )
    sp.add_argument(
        "--participant", type=address_arg("--participant"), help="only trades of this address"
    )
    sp.add_argument(
        "--from-height",
        type=whole_number("--from-height"),
        help="only trades at or above this block height",
    )
    sp.add_argument(
        "--to-height",
        type=whole_number("--to-height"),
        help="only trades at or below this block height",
    )
    sp.add_argument(
        "--limit",
        type=whole_number("--limit", lo=1, hi=MAX_TRADES),
        default=100,
        help=f"at most this many, 1..{MAX_TRADES} (default 100)",
    )
    sp.add_argument("--status", choices=TRADE_STATUSES, help="only trades in this state")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = add_command(
        sub,
        "position",
        cmd_position,
        "a participant's energy bought, sold, delivered and undelivered, balance and escrows",
    )
    add_address_options(sp)
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = add_command(sub, "orders", cmd_orders, "list a participant's orders")
    add_address_options(sp)
    sp.add_argument("--status", choices=ORDER_STATUSES, help="only those in this status")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = add_command(
        sub, "stats", cmd_stats, "market statistics: trades, volume, prices, open orders"
    )
    sp.add_argument("--product", choices=PRODUCTS, help="only this product (default all)")
    sp.add_argument(
        "--slot", type=slot_arg, help="delivery slot start (unix) or 'next'; needs --product"
    )
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = add_command(
        sub, "participant", cmd_participant, "show a market participant's registration"
    )
    add_address_options(sp)
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
