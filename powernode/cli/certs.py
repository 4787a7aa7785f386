"""The ``powernode`` metering and certificate commands: ``device``
(register, approve, retire, list, get), ``meter`` (report, readings; sign
and batch are in ``hub``) and
``cert`` (issue, transfer, retire, list, get, trace, verify, cfe, proof).

On the command line energy is in kWh (exact to the Wh), capacity in kW and
carbon intensity in whole gCO2/kWh; times are unix seconds. On the wire and
in RPC energy is in Wh and capacity in W. Device and certificate ids are 64
hex digits: a device's is the id of the tx that registered it, a
certificate's is derived from its device and interval (or, for a part split
off, from its parent and the splitting tx).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
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
    counted,
    emit,
    event_line,
    hex_id,
    out_file,
    report_tx,
    rpc_client,
    signing_key,
    submit_and_wait,
    tx_context,
    tx_line,
    whole_number,
)
from powernode.cli.hub import add_hub_commands
from powernode.client import (
    RpcClient,
    build_cert_issue,
    build_cert_retire,
    build_cert_transfer,
    build_device_approve,
    build_device_register,
    build_device_retire,
    build_meter_report,
    child_cert_id,
    format_decimal,
    format_kwh,
    read_key,
)
from powernode.core.crypto import point_ok
from powernode.core.errors import DecodeError
from powernode.core.hextext import from_hex
from powernode.core.units import clip, parse_decimal, parse_units, parse_whole
from powernode.engines.certificates.records import STATUSES as CERT_STATUSES
from powernode.engines.certificates.records import root_id
from powernode.engines.metering.params import NO_SOURCE, SOURCES
from powernode.engines.metering.records import CONSUMPTION, KINDS
from powernode.engines.metering.records import STATUSES as DEVICE_STATUSES

DEVICE_SOURCES = (*SOURCES, NO_SOURCE)
# The chain's bounds (engines/metering, engines/certificates), checked here
# too so a bad value is refused before a key is read or a node asked.
MAX_CARBON_INTENSITY = 100_000
MAX_BENEFICIARY = 128
MAX_PURPOSE = 256


def when(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- parsing --------------------------------------------------------------------


def device_id_arg(text: str) -> bytes:
    return hex_id(text, "DEVICE_ID (the id of the tx that registered the device)")


def cert_id_arg(text: str) -> bytes:
    return hex_id(text, "CERT_ID")


U64_MAX = 2**64 - 1  # what a tx can carry


def kwh_arg(what: str, *, positive: bool) -> Callable[[str], int]:
    """Energy in kWh, to Wh (exact: finer than 1 Wh is refused)."""

    def parse(text: str) -> int:
        try:
            wh = parse_decimal(text, 3, f"{what} (kWh)")
        except DecodeError as exc:
            raise UserError(exc.message) from None
        if positive and wh <= 0:
            raise UserError(f"{what} must be positive")
        if wh > U64_MAX:
            raise UserError(f"{what} must be at most {U64_MAX // 1000} kWh")
        return wh

    return parse


def pubkey_arg(text: str) -> bytes:
    s = text.strip().removeprefix("0x")
    try:
        raw = from_hex(s)
    except ValueError:
        raw = b""
    if len(raw) != 32 or not point_ok(raw):
        raise UserError(
            f"--meter-pubkey must be an Ed25519 public key (64 hex digits, canonical, "
            f"not of small order), not {clip(text)!r}"
        )
    return raw


# An --interval as parsed: a unix time, or "last" (resolved against the chain).
Interval = int | str


def interval_arg(text: str) -> Interval:
    if text.strip() == "last":
        return "last"
    try:
        return parse_whole(text, "--interval")
    except DecodeError:
        raise UserError(f"--interval must be a unix time or 'last', not {clip(text)!r}") from None


def cert_params(c: RpcClient) -> dict[str, Any]:
    return dict(c.call("cert.params"))


def resolve_interval(c: RpcClient, interval: Interval) -> int:
    """A unix time on the metering grid; 'last' is the latest interval that
    has ended by the chain's clock or this machine's, whichever is later
    (the one a reading can be sent for now: admission judges by the next
    block's time, which on a dev chain left idle is the wall clock)."""
    cp = cert_params(c)
    size = int(cp["interval_seconds"])
    if isinstance(interval, str):
        return max(int(cp["now"]), int(time.time())) // size * size - size
    if interval % size:
        raise UserError(
            f"interval_not_aligned: --interval {interval} is not a multiple of the {size} s "
            "metering interval"
        )
    return interval


def text_arg(what: str, lo: int, hi: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        s = text.strip()
        if not lo <= len(s) <= hi:
            raise UserError(f"{what} must be {lo}..{hi} characters")
        return s

    return parse


# --- output ---------------------------------------------------------------------


def kw(w: int) -> str:
    return format_decimal(w, 3)


def device_text(d: dict[str, Any]) -> str:
    lines = [
        f"device {d['id']}  {d['status']}",
        f"  owner {d['owner']}  {d['kind']} {d['source']}, {kw(d['capacity_w'])} kW, "
        f"{d['location']}, {d['carbon_intensity']} gCO2/kWh",
        f"  meter key {d['meter_pubkey']}",
        f"  registered in block {d['registered_height']}"
        + (f", approved in {d['approved_height']}" if d.get("approved_height") else "")
        + (f", retired in {d['retired_height']}" if d.get("retired_height") else ""),
    ]
    return "\n".join(lines)


def device_line(d: dict[str, Any]) -> str:
    return (
        f"{d['id']}  {d['status']:<8} {d['kind']:<11} {d['source']:<7} "
        f"{kw(d['capacity_w'])} kW  {d['location']}  {d['carbon_intensity']} g/kWh"
    )


def reading_line(r: dict[str, Any]) -> str:
    return (
        f"{r['interval']} ({when(r['interval'])})  produced {format_kwh(r['produced_wh'])} kWh"
        f"  consumed {format_kwh(r['consumed_wh'])} kWh  block {r['height']}"
    )


def cert_text(c: dict[str, Any]) -> str:
    lines = [
        f"certificate {c['id']}  {c['status']}  {c['type']} {c['source']}",
        f"  owner {c['owner']}  remaining {format_kwh(c['remaining_wh'])} of "
        f"{format_kwh(c['wh'])} kWh",
        f"  producer {c['producer']}  device {c['device']}",
        f"  generated {when(c['interval_start'])} for {c['interval_seconds'] // 60} min in "
        f"{c['location']}, {c['carbon_intensity']} gCO2/kWh",
        f"  issued in block {c['issued_height']}, expires {when(c['expires'])}",
    ]
    if c.get("parent"):
        lines.append(f"  split from {c['parent']}")
    claim = c.get("claim")
    if claim:
        lines.append(
            f"  retired for {claim['beneficiary']}"
            + (f" ({claim['purpose']})" if claim.get("purpose") else "")
            + f", consumption {when(claim['period_start'])} .. {when(claim['period_end'])}"
        )
    return "\n".join(lines)


def cert_line(c: dict[str, Any]) -> str:
    return (
        f"{c['id']}  {c['status']:<7} {c['type']:<9} {c['source']:<7} "
        f"{format_kwh(c['remaining_wh'])}/{format_kwh(c['wh'])} kWh  "
        f"{when(c['interval_start'])}  {c['location']}  owner {c['owner'][:12]}.."
    )


def step_line(s: dict[str, Any]) -> str:
    kind = s["kind"]
    what = f"{format_kwh(s['wh'])} kWh"
    if kind == "reading":
        what += f" from the meter reading of device {s['other'][:16]}.."
    elif kind == "issue":
        what += " issued by an authority"
    elif kind == "split":
        what += f" split, other part {s['other'][:16]}.."
    elif kind == "transfer":
        what += f" {s['from'][:12]}.. -> {s['to'][:12]}.."
    elif kind == "retire":
        what += f" for {s['note']}"
    return f"  {kind:<8} {what}  cert {s['cert'][:12]}..  block {s['height']} tx {s['txid'][:16]}.."


def trace_text(t: dict[str, Any]) -> str:
    head = f"certificate {t['cert']}, root {t['root']}, {counted(len(t['steps']), 'step')}"
    return "\n".join([head, *(step_line(s) for s in t["steps"])])


def verify_text(v: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"valid {'yes' if v['valid'] else 'no'}  status {v['status']}  type {v['type']}  "
            f"source {v['source']}",
            f"location {v['location']}  carbon intensity {v['carbon_intensity']} gCO2/kWh",
            f"generated {when(v['interval_start'])} .. {when(v['interval_end'])}",
            f"remaining {format_kwh(v['remaining_wh'])} kWh  trace length {v['trace_length']}",
        ]
    )


def cfe_text(r: dict[str, Any]) -> str:
    lines = [
        f"  {when(i['interval'])}  consumed {format_kwh(i['consumed_wh'])} kWh  "
        f"retired {format_kwh(i['retired_wh'])} kWh  matched {format_kwh(i['matched_wh'])} kWh"
        for i in r["intervals"]
        if i["consumed_wh"] or i["retired_wh"]
    ]
    pct = format_decimal(r["matched_bps"], 2)
    lines.append(
        f"total consumed {format_kwh(r['consumed_wh'])} kWh  retired {format_kwh(r['retired_wh'])}"
        f" kWh  matched {format_kwh(r['matched_wh'])} kWh ({pct}% hour by hour)"
    )
    return "\n".join(lines)


def event_lines(status: dict[str, Any]) -> list[str]:
    """A confirmed tx's metering and certificate events, readable."""
    out = []
    for e in status.get("receipt", {}).get("events", []):
        kind = e.get("event")
        if kind == "device.registered":
            out.append(f"  device {e['device']} registered (pending approval)")
        elif kind in ("device.approved", "device.retired"):
            out.append(f"  device {e['device']} {kind.removeprefix('device.')}")
        elif kind == "meter.reading":
            out.append(
                f"  reading for {e['interval']} ({when(e['interval'])}): produced "
                f"{format_kwh(e['produced'])} kWh, consumed {format_kwh(e['consumed'])} kWh"
            )
        elif kind == "cert.issued":
            out.append(f"  certificate {e['cert']} issued: {format_kwh(e['wh'])} kWh")
        elif kind == "cert.skipped":
            out.append(f"  no certificate issued: {e.get('reason')}")
        elif isinstance(kind, str):
            out.append(event_line(e))
    return out


def tx_text(s: dict[str, Any]) -> str:
    return "\n".join([tx_line(s), *event_lines(s)])


# --- device ---------------------------------------------------------------------


def cmd_device_register(a: argparse.Namespace) -> int:
    source = a.source or (NO_SOURCE if a.kind == CONSUMPTION else None)
    if source is None or (a.kind != CONSUMPTION and source == NO_SOURCE):
        raise UserError(f"a {a.kind} device names its --source ({', '.join(SOURCES)})")
    if a.kind == CONSUMPTION and source != NO_SOURCE:
        raise UserError(f"a consumption device has no energy source (--source {NO_SOURCE})")
    fee = parse_units(a.fee, "--fee")
    # The typed input is checked before a key file is read.
    meter_pubkey = a.meter_pubkey if a.meter_pubkey else read_key(Path(a.meter_key)).pubkey
    key = signing_key(a)
    with rpc_client(a) as c:
        chain_id, nonce = tx_context(c, key)
        tx = build_device_register(
            key,
            chain_id=chain_id,
            nonce=nonce,
            kind=a.kind,
            source=source,
            capacity_w=a.capacity_kw,
            location=a.location,
            carbon_intensity=a.carbon_intensity,
            meter_pubkey=meter_pubkey,
            fee=fee,
        )
        status = submit_and_wait(c, tx, a.wait)
    out = {"device": tx.txid.hex(), "meter_pubkey": meter_pubkey.hex(), **status}
    return report_tx(a, out, lambda s: f"device {s['device']}\n" + tx_text(s))


def device_tx(build: Callable[..., Any]) -> Callable[[argparse.Namespace], int]:
    def cmd(a: argparse.Namespace) -> int:
        fee = parse_units(a.fee, "--fee")
        key = signing_key(a)
        with rpc_client(a) as c:
            chain_id, nonce = tx_context(c, key)
            tx = build(key, chain_id=chain_id, nonce=nonce, device_id=a.device_id, fee=fee)
            status = submit_and_wait(c, tx, a.wait)
        return report_tx(a, {"device": a.device_id.hex(), **status}, tx_text)

    return cmd


def cmd_device_list(a: argparse.Namespace) -> int:
    params: dict[str, Any] = {}
    if a.owner is not None:
        params["owner"] = a.owner.hex()
    if a.status:
        params["status"] = a.status
    with rpc_client(a) as c:
        devices = c.call("device.list", params)
    emit(a, devices, lambda ds: "\n".join(device_line(d) for d in ds) or "no devices")
    return 0


def cmd_device_get(a: argparse.Namespace) -> int:
    with rpc_client(a) as c:
        d = c.call("device.get", {"device": a.device_id.hex()})
    emit(a, d, device_text)
    return 0


# --- meter ----------------------------------------------------------------------


def cmd_meter_report(a: argparse.Namespace) -> int:
    if a.produced == 0 and a.consumed == 0:
        raise UserError("a reading needs --produced or --consumed above 0")
    fee = parse_units(a.fee, "--fee")
    # The typed input is checked before the key files are read.
    meter_key = read_key(Path(a.meter_key))
    key = signing_key(a)
    with rpc_client(a) as c:
        interval = resolve_interval(c, a.interval)
        chain_id, nonce = tx_context(c, key)
        tx = build_meter_report(
            key,
            meter_key,
            chain_id=chain_id,
            nonce=nonce,
            device_id=a.device,
            interval_start=interval,
            produced_wh=a.produced,
            consumed_wh=a.consumed,
            fee=fee,
        )
        status = submit_and_wait(c, tx, a.wait)
    out = {"device": a.device.hex(), "interval": interval, **status}
    return report_tx(a, out, tx_text)


def cmd_meter_readings(a: argparse.Namespace) -> int:
    params: dict[str, Any] = {"device": a.device.hex()}
    if a.start is not None and a.end is not None and a.start > a.end:
        raise UserError("--start must not be after --end")
    if a.start is not None:
        params["start"] = a.start
    if a.end is not None:
        params["end"] = a.end
    with rpc_client(a) as c:
        readings = c.call("meter.readings", params)
    emit(a, readings, lambda rs: "\n".join(reading_line(r) for r in rs) or "no readings")
    return 0


# --- cert -----------------------------------------------------------------------


def cmd_cert_issue(a: argparse.Namespace) -> int:
    fee = parse_units(a.fee, "--fee")
    key = signing_key(a)
    with rpc_client(a) as c:
        interval = resolve_interval(c, a.interval)
        chain_id, nonce = tx_context(c, key)
        tx = build_cert_issue(
            key,
            chain_id=chain_id,
            nonce=nonce,
            device_id=a.device,
            interval_start=interval,
            wh=a.energy_kwh,
            fee=fee,
        )
        status = submit_and_wait(c, tx, a.wait)
    made = {
        "device": a.device.hex(),
        "interval": interval,
        "cert": root_id(a.device, interval).hex(),
    }
    return report_tx(a, {**made, **status}, tx_text)


def cmd_cert_transfer(a: argparse.Namespace) -> int:
    fee = parse_units(a.fee, "--fee")
    key = signing_key(a)
    with rpc_client(a) as c:
        cert = c.call("cert.get", {"cert": a.cert_id.hex()})
        chain_id, nonce = tx_context(c, key)
        tx = build_cert_transfer(
            key,
            chain_id=chain_id,
            nonce=nonce,
            cert_id=a.cert_id,
            to=a.to,
            wh=a.energy_kwh,
            fee=fee,
        )
        status = submit_and_wait(c, tx, a.wait)
    out = {"cert": a.cert_id.hex(), **split_of(cert, a.energy_kwh, tx.txid), **status}
    return report_tx(a, out, lambda s: cert_tx_text(s, "transferred"))


def split_of(cert: dict[str, Any], wh: int, txid: bytes) -> dict[str, Any]:
    """The part a transfer or retirement moves: the certificate itself if it
    takes all that remains, else a child split off it (known before mining)."""
    if wh >= cert["remaining_wh"]:
        return {"part": cert["id"], "split": False}
    return {"part": child_cert_id(bytes.fromhex(cert["id"]), txid).hex(), "split": True}


def cert_tx_text(s: dict[str, Any], done: str) -> str:
    head = (
        f"{done} as new certificate {s['part']} (split off {s['cert']})"
        if s["split"]
        else f"{done} certificate {s['cert']} whole"
    )
    return head + "\n" + tx_text(s)


def cmd_cert_retire(a: argparse.Namespace) -> int:
    if (a.period_start is None) != (a.period_end is None):
        raise UserError("give both --period-start and --period-end, or neither")
    if a.period_start is not None and a.period_start >= a.period_end:
        raise UserError("--period-start must be before --period-end")
    fee = parse_units(a.fee, "--fee")
    key = signing_key(a)
    with rpc_client(a) as c:
        cert = c.call("cert.get", {"cert": a.cert_id.hex()})
        # By default the claim covers the certificate's own generation
        # interval: hour-by-hour matching pairs them.
        start = cert["interval_start"] if a.period_start is None else a.period_start
        end = start + cert["interval_seconds"] if a.period_end is None else a.period_end
        chain_id, nonce = tx_context(c, key)
        tx = build_cert_retire(
            key,
            chain_id=chain_id,
            nonce=nonce,
            cert_id=a.cert_id,
            wh=a.energy_kwh,
            beneficiary=a.beneficiary,
            purpose=a.purpose,
            period_start=start,
            period_end=end,
            fee=fee,
        )
        status = submit_and_wait(c, tx, a.wait)
    out = {"cert": a.cert_id.hex(), **split_of(cert, a.energy_kwh, tx.txid), **status}
    return report_tx(a, out, lambda s: cert_tx_text(s, f"retired for {a.beneficiary}:"))


def cmd_cert_list(a: argparse.Namespace) -> int:
    if a.start is not None and a.end is not None and a.start > a.end:
        raise UserError("--start must not be after --end")
    params: dict[str, Any] = {}
    if a.owner is not None:
        params["owner"] = a.owner.hex()
    if a.device is not None:
        params["device"] = a.device.hex()
    for k in ("status", "source", "start", "end"):
        if getattr(a, k) is not None:
            params[k] = getattr(a, k)
    with rpc_client(a) as c:
        certs = c.call("cert.list", params)
    emit(a, certs, lambda cs: "\n".join(cert_line(x) for x in cs) or "no certificates")
    return 0


def cert_query(method: str, text: Callable[[Any], str]) -> Callable[[argparse.Namespace], int]:
    def cmd(a: argparse.Namespace) -> int:
        with rpc_client(a) as c:
            r = c.call(method, {"cert": a.cert_id.hex()})
        emit(a, r, text)
        return 0

    return cmd


def cmd_cert_proof(a: argparse.Namespace) -> int:
    """Fetch the certificate's proof (``cert.proof``) and write it to
    ``--out``; ``powernode verify-proof`` checks it offline."""
    # Checked before the node is asked: a proof of a long chain is large.
    out = out_file(a.out, force=a.force)
    with rpc_client(a) as c:
        r = c.call("cert.proof", {"cert": a.cert_id.hex()})
    try:
        raw = bytes.fromhex(r["proof"])
    except (KeyError, TypeError, ValueError):
        raise UserError("the node's cert.proof answer holds no hex proof") from None
    # Written whole or not at all: a file cut short would only be refused later.
    tmp = out.with_name(f".{out.name}.partial")
    try:
        tmp.write_bytes(raw)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    info = {k: r.get(k) for k in ("cert", "height", "tip", "bytes")} | {"out": str(out)}
    emit(
        a,
        info,
        lambda i: (
            f"proof of {i['cert']} at height {i['height']} ({i['tip']}):"
            f" {i['bytes']} bytes written to {i['out']}"
        ),
    )
    return 0


def cmd_cert_cfe(a: argparse.Namespace) -> int:
    if a.start >= a.end:
        raise UserError("--start must be before --end")
    who = chosen_address(a)
    with rpc_client(a) as c:
        r = c.call("cert.cfe", {"participant": who.hex(), "start": a.start, "end": a.end})
    emit(a, r, cfe_text)
    return 0


# --- parser ---------------------------------------------------------------------


def group(sub: Subparsers, name: str, help: str) -> Subparsers:
    sp = sub.add_parser(name, help=help, description=help)
    return sp.add_subparsers(dest="action", required=True, metavar="ACTION")


def unix_time(what: str) -> Callable[[str], int]:
    return whole_number(what)


def add_commands(sub: Subparsers) -> None:
    dev = group(sub, "device", "metering devices: register, approve, retire, list, get")
    sp = add_command(dev, "register", cmd_device_register, "register a device (starts pending)")
    sp.add_argument("--kind", required=True, choices=KINDS, help="what the device measures")
    sp.add_argument(
        "--source",
        choices=DEVICE_SOURCES,
        help=f"energy source (a consumption device's is {NO_SOURCE}, the default for it)",
    )
    sp.add_argument("--capacity-kw", required=True, type=capacity_arg, help="capacity in kW")
    sp.add_argument(
        "--location", required=True, type=text_arg("--location", 1, 64), help="e.g. Beijing"
    )
    sp.add_argument(
        "--carbon-intensity",
        required=True,
        type=whole_number("--carbon-intensity", hi=MAX_CARBON_INTENSITY),
        help="declared gCO2/kWh (whole number)",
    )
    meter = sp.add_mutually_exclusive_group(required=True)
    meter.add_argument("--meter-key", help="the meter's key file (its public key is registered)")
    meter.add_argument("--meter-pubkey", type=pubkey_arg, help="the meter's public key (hex)")
    add_tx_options(sp)

    for name, build, help in (
        ("approve", build_device_approve, "authorities: approve a pending device"),
        ("retire", build_device_retire, "the owner or an authority: retire a device"),
    ):
        sp = add_command(dev, name, device_tx(build), help)
        sp.add_argument(
            "device_id", metavar="DEVICE_ID", type=device_id_arg, help="the device id (hex)"
        )
        add_tx_options(sp)

    sp = add_command(dev, "list", cmd_device_list, "list devices")
    sp.add_argument("--owner", type=address_arg("--owner"), help="only this owner's")
    sp.add_argument("--status", choices=DEVICE_STATUSES, help="only those in this status")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = add_command(dev, "get", cmd_device_get, "show a device")
    sp.add_argument(
        "device_id", metavar="DEVICE_ID", type=device_id_arg, help="the device id (hex)"
    )
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    met = group(sub, "meter", "meter readings: report, readings, sign, batch")
    sp = add_command(
        met, "report", cmd_meter_report, "sign a reading with the meter key and send it"
    )
    sp.add_argument(
        "--device",
        required=True,
        type=device_id_arg,
        metavar="DEVICE_ID",
        help="the device id (hex)",
    )
    sp.add_argument(
        "--interval",
        required=True,
        type=interval_arg,
        help="interval start (unix), or 'last': the latest ended interval",
    )
    sp.add_argument(
        "--produced",
        type=kwh_arg("--produced", positive=False),
        default=0,
        metavar="KWH",
        help="energy produced in the interval, kWh (default 0)",
    )
    sp.add_argument(
        "--consumed",
        type=kwh_arg("--consumed", positive=False),
        default=0,
        metavar="KWH",
        help="energy consumed in the interval, kWh (default 0)",
    )
    sp.add_argument("--meter-key", required=True, help="the device's meter key file")
    add_tx_options(sp)

    sp = add_command(met, "readings", cmd_meter_readings, "list a device's readings")
    sp.add_argument(
        "--device",
        required=True,
        type=device_id_arg,
        metavar="DEVICE_ID",
        help="the device id (hex)",
    )
    sp.add_argument("--start", type=unix_time("--start"), help="from this interval (unix)")
    sp.add_argument("--end", type=unix_time("--end"), help="before this interval (unix)")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
    add_hub_commands(met)

    crt = group(
        sub, "cert", "certificates: issue, transfer, retire, list, get, trace, verify, cfe, proof"
    )
    sp = add_command(crt, "issue", cmd_cert_issue, "authorities: certify a device's interval")
    sp.add_argument(
        "--device",
        required=True,
        type=device_id_arg,
        metavar="DEVICE_ID",
        help="the device id (hex)",
    )
    sp.add_argument(
        "--interval", required=True, type=interval_arg, help="interval start (unix) or 'last'"
    )
    sp.add_argument(
        "--energy-kwh",
        required=True,
        type=kwh_arg("--energy-kwh", positive=True),
        help="energy in kWh, e.g. 100 or 0.5",
    )
    add_tx_options(sp)

    sp = add_command(crt, "transfer", cmd_cert_transfer, "transfer a certificate or a part of it")
    sp.add_argument("cert_id", metavar="CERT_ID", type=cert_id_arg, help="the certificate id (hex)")
    sp.add_argument("--to", required=True, type=address_arg("--to"), help="recipient address")
    sp.add_argument(
        "--energy-kwh",
        required=True,
        type=kwh_arg("--energy-kwh", positive=True),
        help="energy in kWh, e.g. 100 or 0.5",
    )
    add_tx_options(sp)

    sp = add_command(
        crt, "retire", cmd_cert_retire, "retire a certificate or a part for a beneficiary"
    )
    sp.add_argument("cert_id", metavar="CERT_ID", type=cert_id_arg, help="the certificate id (hex)")
    sp.add_argument(
        "--energy-kwh",
        required=True,
        type=kwh_arg("--energy-kwh", positive=True),
        help="energy in kWh, e.g. 100 or 0.5",
    )
    sp.add_argument(
        "--beneficiary",
        required=True,
        type=text_arg("--beneficiary", 1, MAX_BENEFICIARY),
        help="who the energy is retired for",
    )
    sp.add_argument(
        "--purpose",
        default="",
        type=text_arg("--purpose", 0, MAX_PURPOSE),
        help="why it is retired (optional)",
    )
    sp.add_argument(
        "--period-start",
        type=unix_time("--period-start"),
        help="consumption period start (default: the certificate's interval)",
    )
    sp.add_argument(
        "--period-end",
        type=unix_time("--period-end"),
        help="consumption period end (default: the certificate's interval)",
    )
    add_tx_options(sp)

    sp = add_command(crt, "list", cmd_cert_list, "list certificates")
    sp.add_argument("--owner", type=address_arg("--owner"), help="only this owner's")
    sp.add_argument("--status", choices=CERT_STATUSES, help="only those in this status")
    sp.add_argument("--device", type=device_id_arg, metavar="DEVICE_ID", help="only this device's")
    sp.add_argument("--source", choices=SOURCES, help="only this energy source")
    sp.add_argument("--start", type=unix_time("--start"), help="generated from (unix)")
    sp.add_argument("--end", type=unix_time("--end"), help="generated before (unix)")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    for name, method, text, help in (
        ("get", "cert.get", cert_text, "show a certificate"),
        ("trace", "cert.trace", trace_text, "a certificate's lineage, from its reading"),
        ("verify", "cert.verify", verify_text, "check a certificate: valid, source, type"),
    ):
        sp = add_command(crt, name, cert_query(method, text), help)
        sp.add_argument(
            "cert_id", metavar="CERT_ID", type=cert_id_arg, help="the certificate id (hex)"
        )
        sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = add_command(
        crt, "cfe", cmd_cert_cfe, "hourly matching: consumption vs retired certificates"
    )
    add_address_options(sp)
    sp.add_argument(
        "--start", required=True, type=unix_time("--start"), help="from this interval (unix)"
    )
    sp.add_argument(
        "--end", required=True, type=unix_time("--end"), help="before this interval (unix)"
    )
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = add_command(
        crt, "proof", cmd_cert_proof, "write a certificate's proof (check: verify-proof)"
    )
    sp.add_argument("cert_id", metavar="CERT_ID", type=cert_id_arg, help="the certificate id (hex)")
    sp.add_argument("--out", required=True, metavar="FILE", help="where to write the proof")
    sp.add_argument("--force", action="store_true", help="replace FILE if it exists")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
