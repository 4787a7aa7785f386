"""The ``powernode`` PPA and contract commands: ``ppa`` (propose, accept,
fund, deliver, confirm, terminate, reject, show, list) and ``contract``
(create, approve, execute, cancel, show, list).

On the command line energy is in kWh (exact to the Wh), prices in units per
kWh, money in units, shares in percent (to 0.01 %), durations in days and
times in unix seconds (or ``+SECONDS`` from the chain's clock where said).
On the wire and in RPC energy is in Wh, prices in micro-units per kWh, money
in micro-units and shares in basis points. A PPA's and a contract's id is
the id of the tx that proposed / created it (64 hex digits).

``contract create`` reads the terms from a JSON file (README, "Declarative
contracts"): ``{"conditions": [...], "actions": [...]}`` with each entry a
tagged array as on the chain, ids and addresses in hex, amounts in
micro-units (an integer) or units (a decimal string such as "5.00").
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from powernode.cli.common import (
    Subparsers,
    UserError,
    add_command,
    add_tx_options,
    address_arg,
    counted,
    emit,
    event_line,
    hex_id,
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
    build_contract_create,
    build_contract_id_tx,
    build_ppa_confirm,
    build_ppa_deliver,
    build_ppa_fund,
    build_ppa_id_tx,
    build_ppa_propose,
    format_decimal,
    format_kwh,
    format_money,
    format_price,
    parse_price,
    read_bytes,
)
from powernode.core.errors import DecodeError
from powernode.core.units import MAX_MONEY, U64, clip, parse_decimal, parse_units, parse_whole
from powernode.engines.contracts.contract_records import STATUSES as CONTRACT_STATUSES
from powernode.engines.contracts.contract_records import contract_address
from powernode.engines.contracts.contract_vocab import (
    MAX_ACTIONS,
    MAX_CONDITIONS,
    MAX_PARTIES,
    TERM_FEE,
)
from powernode.engines.contracts.ppa_flow import MAX_DURATION_DAYS, MIN_PERIOD_SECONDS
from powernode.engines.contracts.ppa_records import STATUSES as PPA_STATUSES

# What the chain allows (engines/contracts), checked here too so a bad
# value is refused before a key is read or a node asked.
MAX_TERMS_FILE = 64 * 1024
DEFAULT_PERIOD = 86_400  # a PPA settles (escrows) per day unless told
DEFAULT_ACCEPT_WITHIN = 86_400
DEFAULT_FEE = 1_000  # add_tx_options' default, 0.001
# Condition tags and what each takes after the tag ("device"/"cert": a
# 32-byte id in hex; "address": 20 bytes in hex; "time"/"wh": a whole
# number; "text": a string).
CONDITIONS: dict[str, tuple[str, ...]] = {
    "after": ("time",),
    "before": ("time",),
    "produced_at_least": ("device", "time", "time", "wh"),
    "produced_at_most": ("device", "time", "time", "wh"),
    "consumed_at_least": ("device", "time", "time", "wh"),
    "consumed_at_most": ("device", "time", "time", "wh"),
    "cert_retired_for": ("cert", "text"),
    "approved_by": ("address",),
}
ACTIONS: dict[str, tuple[str, ...]] = {
    "pay": ("address", "amount"),
    "transfer_cert": ("cert", "address"),
    "refund": (),
}


# --- parsing --------------------------------------------------------------------


def ppa_id_arg(text: str) -> bytes:
    return hex_id(text, "PPA_ID (the id of the tx that proposed it)")


def contract_id_arg(text: str) -> bytes:
    return hex_id(text, "CONTRACT_ID (the id of the tx that created it)")


def device_id_arg(text: str) -> bytes:
    return hex_id(text, "--device (the id of the tx that registered the device)")


def kwh_arg(what: str) -> Callable[[str], int]:
    """Positive energy in kWh, to Wh (finer than 1 Wh is refused)."""

    def parse(text: str) -> int:
        try:
            wh = parse_decimal(text, 3, f"{what} (kWh)")
        except DecodeError as exc:
            raise UserError(exc.message) from None
        if wh <= 0:
            raise UserError(f"{what} must be positive")
        return wh

    return parse


def price_arg(text: str) -> int:
    try:
        price = parse_price(text, "--price")
    except DecodeError as exc:
        raise UserError(exc.message) from None
    if price <= 0:
        raise UserError("--price must be positive")
    return price


def money_arg(what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            amount = parse_units(text, what)
        except DecodeError as exc:
            raise UserError(exc.message) from None
        if amount <= 0:
            raise UserError(f"{what} must be positive")
        if amount > MAX_MONEY:
            raise UserError(f"{what} is above the supply cap ({MAX_MONEY // 10**6:,} units)")
        return amount

    return parse


def share_arg(text: str) -> int:
    """``--share``: percent of the device's production, to 0.01 %, as basis points."""
    try:
        bps = parse_decimal(text.strip().removesuffix("%"), 2, "--share (percent)")
    except DecodeError as exc:
        raise UserError(exc.message) from None
    if not 1 <= bps <= 10_000:
        raise UserError("--share must be 0.01..100 percent")
    return bps


# A time as parsed: a unix time, or ("+", seconds) from the chain's clock.
When = int | tuple[str, int]


def time_arg(what: str, *, now_ok: bool = False) -> Callable[[str], When]:
    """A unix time or ``+SECONDS`` from the chain's clock (at most 10^10);
    ``now`` too where the chain takes the present (a term's start), not
    where it wants a time after it (a deadline, an expiry)."""
    forms = "a unix time, 'now' or +SECONDS" if now_ok else "a unix time or +SECONDS"

    def parse(text: str) -> When:
        s = text.strip()
        try:
            if s == "now" and now_ok:
                return ("+", 0)
            if s.startswith("+"):
                return ("+", parse_whole(s[1:], what, hi=10**10))
            return parse_whole(s, what)
        except DecodeError:
            raise UserError(f"{what} must be {forms}, not {clip(text)!r}") from None

    return parse


def chain_now(c: RpcClient) -> int:
    """The chain's clock as the engines judge time (cert.params ``now``: the
    market clock or the tip's time, whichever is later)."""
    return int(c.call("cert.params")["now"])


def resolve(when: When, now: int) -> int:
    return now + when[1] if isinstance(when, tuple) else when


def given_fee(a: argparse.Namespace) -> int | None:
    """``--fee``, parsed (a bad one is refused before anything is read);
    None when not given."""
    return None if a.fee is None else parse_units(a.fee, "--fee")


# What a contract tx pays without --fee (contract_fee), for --help.
TERMS_FEE_HELP = "0.001 per condition and action"


def contract_fee(given: int | None, terms: int) -> int:
    """The ``--fee`` given, else the least a contract tx of ``terms``
    conditions and actions may pay (TERM_FEE each), and never below the
    usual default of 0.001."""
    if given is not None:
        return given
    return max(DEFAULT_FEE, TERM_FEE * terms)


# --- contract terms (JSON file) -------------------------------------------------


def _term_value(kind: str, v: Any, where: str) -> Any:
    """One element of a condition or action, from JSON to the chain's form."""
    if kind in ("device", "cert"):
        if not isinstance(v, str):
            raise UserError(f"{where}: expected a {kind} id (64 hex digits)")
        return hex_id(v, f"{where}: the {kind} id")
    if kind == "address":
        if not isinstance(v, str):
            raise UserError(f"{where}: expected an address (40 hex digits)")
        return address_arg(where)(v)
    if kind in ("time", "wh"):
        if type(v) is not int or not 0 <= v <= U64:
            raise UserError(f"{where}: expected a whole number 0..2^64-1")
        return v
    if kind == "amount":
        if type(v) is int and 0 < v <= MAX_MONEY:
            return v
        if isinstance(v, str):
            return money_arg(where)(v)
        raise UserError(f'{where}: expected micro-units (an integer 1..10^18) or units ("5.00")')
    if not isinstance(v, str) or not v.strip():  # text
        raise UserError(f"{where}: expected a non-empty string")
    return v


def _terms(items: Any, vocabulary: dict[str, tuple[str, ...]], what: str, most: int) -> list[Any]:
    if not isinstance(items, list):
        raise UserError(f"{what}: expected a list of tagged arrays")
    if len(items) > most:
        raise UserError(f"{what}: at most {most}, found {len(items)}")
    out: list[Any] = []
    for i, item in enumerate(items):
        where = f"{what}[{i}]"
        if not isinstance(item, list) or not item or not isinstance(item[0], str):
            raise UserError(f'{where}: expected ["tag", ...]')
        tag, args = item[0], item[1:]
        if tag not in vocabulary:
            raise UserError(f"{where}: unknown {what[:-1]} {clip(tag)!r}, known {list(vocabulary)}")
        kinds = vocabulary[tag]
        if len(args) != len(kinds):
            raise UserError(
                f"{where}: {tag} takes {counted(len(kinds), 'value')} after the tag, not {len(args)}"
            )
        out.append([tag, *(_term_value(k, v, where) for k, v in zip(kinds, args, strict=True))])
    return out


def read_terms(path: Path) -> tuple[list[Any], list[Any]]:
    """The ``conditions`` and ``actions`` of a contract terms file."""
    data = read_bytes(path, "terms file", max_bytes=MAX_TERMS_FILE)
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UserError(f"terms file {path} is not valid JSON") from None
    if not isinstance(doc, dict) or set(doc) - {"conditions", "actions"}:
        raise UserError(
            f'terms file {path}: expected an object with "conditions" and "actions" only'
        )
    conditions = _terms(doc.get("conditions", []), CONDITIONS, "conditions", MAX_CONDITIONS)
    actions = _terms(doc.get("actions", []), ACTIONS, "actions", MAX_ACTIONS)
    if not actions:
        raise UserError(f"terms file {path}: a contract needs at least one action")
    return conditions, actions


# --- output ---------------------------------------------------------------------


def when(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def pct(bps: int) -> str:
    """Basis points as a percent with one decimal at least: 1000 -> '10.0'."""
    return format_decimal(bps, 2, min_places=1)


def ppa_text(p: dict[str, Any]) -> str:
    """``ppa show``: the seed's get_contract_status, by the chain's clock."""
    source = (
        f"{pct(p['share_bps'])}% of device {p['device']}"
        if p.get("device")
        else "deliveries claimed by the seller, confirmed by the buyer"
    )
    lines = [
        f"PPA {p['id']}  {p['status']}",
        f"  seller {p['seller']}  buyer {p['buyer']}",
        f"  {format_kwh(p['total_wh'])} kWh at {format_price(p['price'])}/kWh over "
        f"{counted(p['duration_days'], 'day')} from {when(p['start'])}",
        f"  source: {source}",
        f"  delivered {format_kwh(p['delivered_wh'])} of {format_kwh(p['total_wh'])} kWh "
        f"({pct(p['progress_bps'])}%), paid {format_money(p['paid'])}, "
        f"escrow {format_money(p['escrow'])}",
        f"  days remaining {p['days_remaining']}",
    ]
    if p.get("pending_wh"):
        lines.append(f"  awaiting the buyer's confirmation: {format_kwh(p['pending_wh'])} kWh")
    if p.get("owed"):
        lines.append(
            f"  owed to the seller {format_money(p['owed'])} (escrow short; default at "
            f"{when(p['grace_until'])} unless funded)"
        )
    if p.get("shortfall_wh"):
        lines.append(f"  shortfall {format_kwh(p['shortfall_wh'])} kWh")
    for d in p.get("deliveries", []):
        lines.append(
            f"  delivery #{d['seq']} ({d['kind']}): {format_kwh(d['wh'])} kWh in interval "
            f"{d['interval_start']}, worth {format_money(d['value'])}, {d['status']}"
            + (f", certificates {format_kwh(d['cert_wh'])} kWh" if d.get("cert_wh") else "")
        )
    return "\n".join(lines)


def ppa_line(p: dict[str, Any]) -> str:
    return (
        f"{p['id']}  {p['status']:<10} {format_kwh(p['delivered_wh'])}/"
        f"{format_kwh(p['total_wh'])} kWh ({pct(p['progress_bps'])}%) at "
        f"{format_price(p['price'])}/kWh  seller {p['seller'][:12]}.. buyer {p['buyer'][:12]}.."
    )


def contract_text(c: dict[str, Any]) -> str:
    lines = [
        f"contract {c['id']}  {c['status']}",
        f"  creator {c['creator']}  escrow {format_money(c['escrow'])}  expiry {c['expiry']}",
        f"  parties {', '.join(c['parties'])}",
        f"  holds certificates at {c.get('address') or contract_address(bytes.fromhex(c['id'])).hex()}",
    ]
    lines += [f"  if   {json.dumps(x)}" for x in c.get("conditions", [])]
    lines += [f"  then {json.dumps(x)}" for x in c.get("actions", [])]
    return "\n".join(lines)


def contract_line(c: dict[str, Any]) -> str:
    return (
        f"{c['id']}  {c['status']:<9} escrow {format_money(c['escrow'])}  "
        f"{counted(len(c.get('conditions', [])), 'condition')}, "
        f"{counted(len(c.get('actions', [])), 'action')}  "
        f"creator {c['creator'][:12]}.."
    )


def event_lines(status: dict[str, Any]) -> list[str]:
    """A confirmed tx's receipt events, one line each."""
    out = []
    for e in status.get("receipt", {}).get("events", []):
        kind = e.get("event")
        if isinstance(kind, str):
            out.append(event_line(e))
    return out


def tx_text(s: dict[str, Any]) -> str:
    return "\n".join([tx_line(s), *event_lines(s)])


# --- ppa ------------------------------------------------------------------------


def cmd_ppa_propose(a: argparse.Namespace) -> int:
    if (a.device is None) != (a.share is None):
        raise UserError("--device and --share go together (a PPA without a device has neither)")
    fee = parse_units(a.fee, "--fee")
    key = signing_key(a)
    with rpc_client(a) as c:
        now = chain_now(c)
        start = resolve(a.start, now)
        end = start + a.days * 86_400
        # By default a day to accept, or until just before the term ends.
        accept_by = (
            min(now + DEFAULT_ACCEPT_WITHIN, end - 1)
            if a.accept_by is None
            else resolve(a.accept_by, now)
        )
        if accept_by >= end:
            raise UserError("--accept-by must be before the PPA's end (start + days)")
        chain_id, nonce = tx_context(c, key)
        tx = build_ppa_propose(
            key,
            chain_id=chain_id,
            nonce=nonce,
            buyer=a.buyer,
            device_id=a.device,
            share_bps=a.share or 0,
            total_wh=a.total_kwh,
            price=a.price,
            start=start,
            duration_days=a.days,
            period_seconds=a.period,
            accept_deadline=accept_by,
            fee=fee,
        )
        status = submit_and_wait(c, tx, a.wait)
    out = {"ppa": tx.txid.hex(), "start": start, "accept_deadline": accept_by, **status}
    return report_tx(a, out, lambda s: f"PPA {s['ppa']}\n" + tx_text(s))


def ppa_id_tx(tx_type: str) -> Callable[[argparse.Namespace], int]:
    def cmd(a: argparse.Namespace) -> int:
        fee = parse_units(a.fee, "--fee")
        key = signing_key(a)
        with rpc_client(a) as c:
            chain_id, nonce = tx_context(c, key)
            tx = build_ppa_id_tx(
                key, chain_id=chain_id, nonce=nonce, tx_type=tx_type, ppa_id=a.ppa_id, fee=fee
            )
            status = submit_and_wait(c, tx, a.wait)
        return report_tx(a, {"ppa": a.ppa_id.hex(), **status}, tx_text)

    return cmd


def cmd_ppa_fund(a: argparse.Namespace) -> int:
    fee = parse_units(a.fee, "--fee")
    key = signing_key(a)
    with rpc_client(a) as c:
        chain_id, nonce = tx_context(c, key)
        tx = build_ppa_fund(
            key, chain_id=chain_id, nonce=nonce, ppa_id=a.ppa_id, amount=a.amount, fee=fee
        )
        status = submit_and_wait(c, tx, a.wait)
    return report_tx(a, {"ppa": a.ppa_id.hex(), **status}, tx_text)


def cmd_ppa_deliver(a: argparse.Namespace) -> int:
    fee = parse_units(a.fee, "--fee")
    key = signing_key(a)
    with rpc_client(a) as c:
        chain_id, nonce = tx_context(c, key)
        tx = build_ppa_deliver(
            key,
            chain_id=chain_id,
            nonce=nonce,
            ppa_id=a.ppa_id,
            wh=a.energy_kwh,
            interval_start=a.interval,
            fee=fee,
        )
        status = submit_and_wait(c, tx, a.wait)
    return report_tx(a, {"ppa": a.ppa_id.hex(), **status}, tx_text)


def cmd_ppa_confirm(a: argparse.Namespace) -> int:
    fee = parse_units(a.fee, "--fee")
    key = signing_key(a)
    with rpc_client(a) as c:
        chain_id, nonce = tx_context(c, key)
        tx = build_ppa_confirm(
            key,
            chain_id=chain_id,
            nonce=nonce,
            ppa_id=a.ppa_id,
            delivery_seq=a.delivery,
            fee=fee,
        )
        status = submit_and_wait(c, tx, a.wait)
    return report_tx(a, {"ppa": a.ppa_id.hex(), "delivery": a.delivery, **status}, tx_text)


def cmd_ppa_show(a: argparse.Namespace) -> int:
    with rpc_client(a) as c:
        p = c.call("ppa.get", {"id": a.ppa_id.hex()})
    emit(a, p, ppa_text)
    return 0


def cmd_ppa_list(a: argparse.Namespace) -> int:
    params: dict[str, Any] = {}
    if a.party is not None:
        params["party"] = a.party.hex()
    if a.status:
        params["status"] = a.status
    with rpc_client(a) as c:
        ppas = c.call("ppa.list", params)
    emit(a, ppas, lambda ps: "\n".join(ppa_line(p) for p in ps) or "no PPAs")
    return 0


# --- contract -------------------------------------------------------------------


def cmd_contract_create(a: argparse.Namespace) -> int:
    # The typed options first, then the file, then the key (README: every
    # number is checked before any file is read).
    parties = list(dict.fromkeys(a.party or []))
    if len(parties) > MAX_PARTIES:
        raise UserError(f"at most {MAX_PARTIES} --party")
    given = given_fee(a)
    conditions, actions = read_terms(Path(a.terms))
    fee = contract_fee(given, len(conditions) + len(actions))
    key = signing_key(a)
    with rpc_client(a) as c:
        expiry = resolve(a.expiry, chain_now(c))
        chain_id, nonce = tx_context(c, key)
        tx = build_contract_create(
            key,
            chain_id=chain_id,
            nonce=nonce,
            parties=parties or [key.address],
            escrow=a.escrow,
            expiry=expiry,
            conditions=conditions,
            actions=actions,
            fee=fee,
        )
        status = submit_and_wait(c, tx, a.wait)
    out = {
        "contract": tx.txid.hex(),
        "address": contract_address(tx.txid).hex(),
        "expiry": expiry,
        **status,
    }
    return report_tx(
        a, out, lambda s: f"contract {s['contract']} (address {s['address']})\n" + tx_text(s)
    )


def contract_id_tx(tx_type: str) -> Callable[[argparse.Namespace], int]:
    def cmd(a: argparse.Namespace) -> int:
        given = given_fee(a)
        key = signing_key(a)
        with rpc_client(a) as c:
            fee = contract_fee(given, 0)
            if given is None and tx_type == "contract.execute":
                # An execution pays per term of the contract: its min_fee.
                found = c.call("contract.get", {"id": a.contract_id.hex()})
                fee = max(fee, int(found["min_fee"]))
            chain_id, nonce = tx_context(c, key)
            tx = build_contract_id_tx(
                key,
                chain_id=chain_id,
                nonce=nonce,
                tx_type=tx_type,
                contract_id=a.contract_id,
                fee=fee,
            )
            status = submit_and_wait(c, tx, a.wait)
        return report_tx(a, {"contract": a.contract_id.hex(), **status}, tx_text)

    return cmd


def cmd_contract_show(a: argparse.Namespace) -> int:
    with rpc_client(a) as c:
        r = c.call("contract.get", {"id": a.contract_id.hex()})
    emit(a, r, contract_text)
    return 0


def cmd_contract_list(a: argparse.Namespace) -> int:
    params: dict[str, Any] = {}
    if a.party is not None:
        params["party"] = a.party.hex()
    if a.status:
        params["status"] = a.status
    with rpc_client(a) as c:
        found = c.call("contract.list", params)
    emit(a, found, lambda cs: "\n".join(contract_line(x) for x in cs) or "no contracts")
    return 0


# --- parser ---------------------------------------------------------------------


def group(sub: Subparsers, name: str, help: str) -> Subparsers:
    sp = sub.add_parser(name, help=help, description=help)
    return sp.add_subparsers(dest="action", required=True, metavar="ACTION")


def add_commands(sub: Subparsers) -> None:
    ppa = group(
        sub,
        "ppa",
        "power purchase agreements: propose, accept, fund, deliver, confirm, terminate, "
        "reject, show, list",
    )
    sp = add_command(ppa, "propose", cmd_ppa_propose, "the seller proposes a PPA to a buyer")
    sp.add_argument(
        "--buyer", required=True, type=address_arg("--buyer"), help="the buyer's address"
    )
    sp.add_argument(
        "--device",
        type=device_id_arg,
        metavar="DEVICE_ID",
        help="the seller's generation device whose readings deliver (default: none, "
        "deliveries by `ppa deliver`)",
    )
    sp.add_argument("--share", type=share_arg, help="percent of the device's production")
    sp.add_argument(
        "--total-kwh",
        required=True,
        type=kwh_arg("--total-kwh"),
        help="energy over the whole term, kWh",
    )
    sp.add_argument("--price", required=True, type=price_arg, help="units per kWh, e.g. 0.50")
    sp.add_argument(
        "--start",
        type=time_arg("--start", now_ok=True),
        default=("+", 0),
        help="unix time, now, +SECONDS",
    )
    sp.add_argument(
        "--days",
        required=True,
        type=whole_number("--days", lo=1, hi=MAX_DURATION_DAYS),
        help=f"the term in days (1..{MAX_DURATION_DAYS})",
    )
    sp.add_argument(
        "--period",
        type=whole_number("--period", lo=MIN_PERIOD_SECONDS, hi=MAX_DURATION_DAYS * 86_400),
        default=DEFAULT_PERIOD,
        metavar="SECONDS",
        help=f"settlement period (default {DEFAULT_PERIOD}: a day)",
    )
    sp.add_argument(
        "--accept-by",
        type=time_arg("--accept-by"),
        help="acceptance deadline: unix time or +SECONDS (default +86400, or just "
        "before the term ends if sooner)",
    )
    add_tx_options(sp)

    for name, tx_type, help in (
        ("accept", "ppa.accept", "the buyer accepts (escrows the first period's cost)"),
        ("reject", "ppa.reject", "the buyer rejects a proposal"),
        ("terminate", "ppa.terminate", "terminate: both parties, or one after the other's default"),
    ):
        sp = add_command(ppa, name, ppa_id_tx(tx_type), help)
        sp.add_argument("ppa_id", metavar="PPA_ID", type=ppa_id_arg, help="the PPA id (hex)")
        add_tx_options(sp)

    sp = add_command(ppa, "fund", cmd_ppa_fund, "top up a PPA's escrow")
    sp.add_argument("ppa_id", metavar="PPA_ID", type=ppa_id_arg, help="the PPA id (hex)")
    sp.add_argument("--amount", required=True, type=money_arg("--amount"), help="units")
    add_tx_options(sp)

    sp = add_command(ppa, "deliver", cmd_ppa_deliver, "the seller claims a delivery (no device)")
    sp.add_argument("ppa_id", metavar="PPA_ID", type=ppa_id_arg, help="the PPA id (hex)")
    sp.add_argument(
        "--energy-kwh",
        required=True,
        type=kwh_arg("--energy-kwh"),
        help="energy in kWh, e.g. 100 or 0.5",
    )
    sp.add_argument(
        "--interval", required=True, type=whole_number("--interval"), help="unix time delivered"
    )
    add_tx_options(sp)

    sp = add_command(ppa, "confirm", cmd_ppa_confirm, "the buyer confirms a claimed delivery")
    sp.add_argument("ppa_id", metavar="PPA_ID", type=ppa_id_arg, help="the PPA id (hex)")
    sp.add_argument(
        "--delivery", required=True, type=whole_number("--delivery"), help="delivery number"
    )
    add_tx_options(sp)

    sp = add_command(ppa, "show", cmd_ppa_show, "a PPA's status, progress and deliveries")
    sp.add_argument("ppa_id", metavar="PPA_ID", type=ppa_id_arg, help="the PPA id (hex)")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = add_command(ppa, "list", cmd_ppa_list, "list PPAs")
    sp.add_argument("--party", type=address_arg("--party"), help="seller or buyer")
    sp.add_argument("--status", choices=PPA_STATUSES, help="only those in this status")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    con = group(
        sub, "contract", "declarative contracts: create, approve, execute, cancel, show, list"
    )
    sp = add_command(con, "create", cmd_contract_create, "create a contract from a terms file")
    sp.add_argument(
        "--terms",
        required=True,
        metavar="FILE",
        help='JSON {"conditions": [...], "actions": [...]}',
    )
    sp.add_argument(
        "--party",
        action="append",
        type=address_arg("--party"),
        help="a party (repeat; default: the creator)",
    )
    sp.add_argument("--escrow", required=True, type=money_arg("--escrow"), help="units escrowed")
    sp.add_argument(
        "--expiry", required=True, type=time_arg("--expiry"), help="unix time or +SECONDS"
    )
    add_tx_options(sp, fee_default=None, fee_help=f"{TERMS_FEE_HELP}, at least 0.001")

    for name, tx_type, help in (
        ("approve", "contract.approve", "a party approves (for an approved_by condition)"),
        ("execute", "contract.execute", "execute: all conditions hold and every action applies"),
        ("cancel", "contract.cancel", "the creator cancels after expiry (escrow refunded)"),
    ):
        sp = add_command(con, name, contract_id_tx(tx_type), help)
        sp.add_argument(
            "contract_id", metavar="CONTRACT_ID", type=contract_id_arg, help="the contract id (hex)"
        )
        paid = (
            f"the contract's min_fee: {TERMS_FEE_HELP}, at least 0.001"
            if name == "execute"
            else "0.001"
        )
        add_tx_options(sp, fee_default=None, fee_help=paid)

    sp = add_command(con, "show", cmd_contract_show, "a contract's terms and status")
    sp.add_argument(
        "contract_id", metavar="CONTRACT_ID", type=contract_id_arg, help="the contract id (hex)"
    )
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = add_command(con, "list", cmd_contract_list, "list contracts")
    sp.add_argument("--party", type=address_arg("--party"), help="only contracts with this party")
    sp.add_argument("--status", choices=CONTRACT_STATUSES, help="only those in this status")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
