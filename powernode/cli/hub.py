"""``powernode meter sign`` and ``powernode meter batch``: the data hub's
path for readings. A meter signs its reading offline (one JSON line); a hub
collects the lines and relays them as ``meter.batch`` txs, up to 100
readings each, paying one fee per batch instead of one per reading.

A batch is refused whole at admission if any of its readings is, and one
bad meter signature makes it invalid; so ``meter batch`` checks every line
(shape, ranges, the signature against the node's chain id, one reading per
device and interval) before it sends anything, and names the line.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from powernode.cli.common import (
    EXIT_WAIT_TIMEOUT,
    Subparsers,
    UserError,
    add_command,
    add_tx_options,
    await_tx,
    counted,
    error_line,
    hex_id,
    rpc_client,
    signing_key,
    tx_context,
    tx_failure,
    tx_line,
    whole_number,
)
from powernode.client import RpcClient, RpcError, format_kwh, read_key, read_text
from powernode.core.crypto import KeyPair, point_ok, signature_ok
from powernode.core.errors import DecodeError
from powernode.core.hextext import from_hex
from powernode.core.tx import MAX_CHAIN_ID_LEN, Transaction, sign_tx
from powernode.core.units import clip, parse_decimal, parse_units
from powernode.engines.metering.batch import MAX_BATCH_READINGS
from powernode.engines.metering.records import reading_message

U64_MAX = 2**64 - 1
# A reading line's fields, in the order `meter sign` prints them.
FIELDS = ("chain_id", "device", "interval", "produced_wh", "consumed_wh", "meter_pubkey", "sig")


@dataclass(frozen=True)
class SignedReading:
    """One meter-signed reading as a hub relays it."""

    device: bytes
    interval: int
    produced_wh: int
    consumed_wh: int
    meter_pubkey: bytes
    sig: bytes
    line: int  # where it was read, for error messages

    def entry(self) -> list[Any]:
        return [self.device, self.produced_wh, self.consumed_wh, self.meter_pubkey, self.sig]


# --- meter sign ---------------------------------------------------------------


def reading_json(
    meter: KeyPair, chain_id: str, device: bytes, interval: int, produced: int, consumed: int
) -> dict[str, Any]:
    sig = meter.sign(reading_message(chain_id, device, interval, produced, consumed))
    return {
        "chain_id": chain_id,
        "device": device.hex(),
        "interval": interval,
        "produced_wh": produced,
        "consumed_wh": consumed,
        "meter_pubkey": meter.pubkey.hex(),
        "sig": sig.hex(),
    }


def cmd_meter_sign(a: argparse.Namespace) -> int:
    if a.produced == 0 and a.consumed == 0:
        raise UserError("a reading needs --produced or --consumed above 0")
    meter = read_key(Path(a.meter_key))
    line = reading_json(meter, a.chain_id, a.device, a.interval, a.produced, a.consumed)
    print(json.dumps(line, separators=(",", ":")))
    return 0


# --- meter batch: reading the file ----------------------------------------------


def _shown(v: Any) -> str:
    """A value from the file as JSON, clipped: any type, one line."""
    return clip(json.dumps(v))


def _field(obj: dict[str, Any], name: str, n: int) -> Any:
    if name not in obj:
        raise UserError(f"line {n}: no {name!r} (a line is what 'powernode meter sign' prints)")
    return obj[name]


def _u64(obj: dict[str, Any], name: str, n: int) -> int:
    v = _field(obj, name, n)
    if type(v) is not int or not 0 <= v <= U64_MAX:
        raise UserError(f"line {n}: {name} must be a whole number 0..{U64_MAX}, not {_shown(v)}")
    return v


def _hex(obj: dict[str, Any], name: str, size: int, n: int) -> bytes:
    v = _field(obj, name, n)
    raw = b""
    if isinstance(v, str) and v.isascii():
        try:
            raw = from_hex(v)
        except ValueError:
            raw = b""
    if len(raw) != size:
        raise UserError(f"line {n}: {name} must be {size * 2} hex digits, not {_shown(v)}")
    return raw


def chain_id_arg(text: str) -> str:
    """A chain id as a tx carries it: 1..64 characters, taken as typed."""
    if not 1 <= len(text) <= MAX_CHAIN_ID_LEN:
        raise UserError(f"--chain-id must be 1..{MAX_CHAIN_ID_LEN} characters")
    return text


def parse_reading(text: str, n: int, chain_id: str) -> SignedReading:
    """One line of the file, checked as far as it can be without the chain's
    state: shape, ranges, the meter key and its signature for ``chain_id``."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise UserError(f"line {n}: not a JSON object: {clip(text)!r}") from None
    if not isinstance(obj, dict):
        raise UserError(f"line {n}: not a JSON object: {clip(text)!r}")
    line_chain = _field(obj, "chain_id", n)
    if line_chain != chain_id:
        raise UserError(
            f"line {n}: signed for chain {_shown(line_chain)}, but the node runs {chain_id!r}"
        )
    r = SignedReading(
        device=_hex(obj, "device", 32, n),
        interval=_u64(obj, "interval", n),
        produced_wh=_u64(obj, "produced_wh", n),
        consumed_wh=_u64(obj, "consumed_wh", n),
        meter_pubkey=_hex(obj, "meter_pubkey", 32, n),
        sig=_hex(obj, "sig", 64, n),
        line=n,
    )
    if not point_ok(r.meter_pubkey):
        raise UserError(f"line {n}: meter_pubkey is not a valid Ed25519 public key")
    msg = reading_message(chain_id, r.device, r.interval, r.produced_wh, r.consumed_wh)
    if not signature_ok(r.meter_pubkey, r.sig, msg):
        raise UserError(f"line {n}: the meter signature does not verify (altered or another chain)")
    return r


def read_readings(path: Path, chain_id: str) -> list[SignedReading]:
    """Every reading of the file (blank lines skipped), one per device and
    interval."""
    out: list[SignedReading] = []
    seen: dict[tuple[bytes, int], int] = {}
    for n, text in enumerate(read_text(path, "readings file").splitlines(), start=1):
        if not text.strip():
            continue
        r = parse_reading(text, n, chain_id)
        first = seen.setdefault((r.device, r.interval), n)
        if first != n:
            raise UserError(
                f"line {n}: a second reading of device {r.device.hex()} for interval "
                f"{r.interval} (the first is line {first})"
            )
        out.append(r)
    if not out:
        raise UserError(f"{path}: no readings in the file")
    return out


def batches(readings: list[SignedReading]) -> list[tuple[int, list[SignedReading]]]:
    """By interval (ascending), devices ascending bytewise as the chain
    requires, cut into runs of at most MAX_BATCH_READINGS."""
    by_interval: dict[int, list[SignedReading]] = {}
    for r in readings:
        by_interval.setdefault(r.interval, []).append(r)
    out = []
    for interval in sorted(by_interval):
        rs = sorted(by_interval[interval], key=lambda r: r.device)
        for i in range(0, len(rs), MAX_BATCH_READINGS):
            out.append((interval, rs[i : i + MAX_BATCH_READINGS]))
    return out


def build_meter_batch(
    key: KeyPair,
    *,
    chain_id: str,
    nonce: int,
    interval_start: int,
    readings: list[SignedReading],
    fee: int,
) -> Transaction:
    payload = [interval_start, [r.entry() for r in readings]]
    return sign_tx(
        key, chain_id=chain_id, tx_type="meter.batch", nonce=nonce, fee=fee, payload=payload
    )


# --- meter batch: sending and telling ------------------------------------------------


def file_lines(numbers: list[int]) -> str:
    """The file lines of a batch, in order, the first five: ``line 3``,
    ``lines 1, 3``, ``lines 1, 2, 3, 4, 5..``."""
    shown = sorted(numbers)
    more = ".." if len(shown) > 5 else ""
    noun = "line" if len(shown) == 1 else "lines"
    return f"{noun} {', '.join(map(str, shown[:5]))}{more}"


def batch_summary(status: dict[str, Any], interval: int, entries: int) -> dict[str, Any]:
    """A batch tx's status with what its receipt says of its readings."""
    events = (status.get("receipt") or {}).get("events", [])
    skipped = [
        {"device": e.get("device"), "code": e.get("code")}
        for e in events
        if e.get("event") == "meter.skipped"
    ]
    applied = sum(1 for e in events if e.get("event") == "meter.reading")
    certs = sum(1 for e in events if e.get("event") == "cert.issued")
    return {
        # height and receipt always (null until mined), as --json promises
        "height": None,
        "receipt": None,
        **status,
        "interval": interval,
        "entries": entries,
        "applied": applied,
        "skipped": skipped,
        "certificates": certs,
    }


def summary_text(s: dict[str, Any]) -> str:
    line = f"{tx_line(s)}: interval {s['interval']}, {counted(s['entries'], 'reading')}"
    if s["status"] == "confirmed" and (s.get("receipt") or {}).get("status") == "ok":
        line += (
            f", {s['applied']} applied, {len(s['skipped'])} skipped, "
            f"{counted(s['certificates'], 'certificate')} issued"
        )
        wh = sum(
            e.get("wh", 0)
            for e in s["receipt"].get("events", [])
            if e.get("event") == "cert.issued"
        )
        if wh:
            line += f" ({format_kwh(wh)} kWh)"
    lines = [line]
    lines += [f"  skipped device {k['device']}: {k['code']}" for k in s["skipped"]]
    return "\n".join(lines)


def send_batches(
    c: RpcClient,
    a: argparse.Namespace,
    key: KeyPair,
    chain_id: str,
    fee: int,
    readings: list[SignedReading],
) -> tuple[list[dict[str, Any]], str | None]:
    """Submit every batch (consecutive nonces), then wait for each; stops at
    the first batch the node refuses (later nonces would leave a gap)."""
    _, nonce = tx_context(c, key)
    sent: list[tuple[str, int, int]] = []
    refused = None
    for interval, rs in batches(readings):
        tx = build_meter_batch(
            key, chain_id=chain_id, nonce=nonce, interval_start=interval, readings=rs, fee=fee
        )
        try:
            sent.append((c.submit(tx), interval, len(rs)))
        except RpcError as exc:
            refused = (
                f"the batch of {counted(len(rs), 'reading')} for interval {interval} "
                f"({file_lines([r.line for r in rs])}) was refused: {exc}; "
                "nothing after it was sent"
            )
            break
        nonce += 1
    # One --wait for them all: the batches are mined together, so after the
    # first confirms the rest take a short look each, not a --wait each.
    deadline = time.monotonic() + a.wait
    out = []
    for txid, interval, n in sent:
        wait = max(0.2, deadline - time.monotonic()) if a.wait else 0
        out.append(batch_summary(await_tx(c, txid, wait), interval, n))
    return out, refused


def cmd_meter_batch(a: argparse.Namespace) -> int:
    fee = parse_units(a.fee, "--fee")  # the typed input, before a key or a node
    key = signing_key(a)
    with rpc_client(a) as c:
        chain_id = c.chain_id()
        readings = read_readings(Path(a.file), chain_id)
        out, refused = send_batches(c, a, key, chain_id, fee, readings)
    if a.json:
        print(json.dumps(out, indent=2))
    elif out:
        print("\n".join(summary_text(s) for s in out))
    code = 0
    for s in out:
        why = tx_failure(s)
        if why:
            error_line(a.command, f"tx {s['id']} {why}")
            code = 1
        elif s["status"] == "pending" and a.wait and code == 0:
            code = EXIT_WAIT_TIMEOUT
    if code == EXIT_WAIT_TIMEOUT:
        error_line(
            a.command,
            f"not every batch confirmed within --wait {a.wait:g} s (the pending ones may yet "
            "be mined; check with tx.get before sending them again)",
        )
    if refused:
        error_line(a.command, refused)
        return 1
    return code


# --- parser ---------------------------------------------------------------------------


def add_hub_commands(met: Subparsers) -> None:
    """``meter sign`` and ``meter batch``, in the ``meter`` group (certs)."""
    sp = add_command(
        met, "sign", cmd_meter_sign, "sign a reading with a meter key and print it (no network)"
    )
    sp.add_argument(
        "--device",
        required=True,
        type=lambda t: hex_id(t, "DEVICE_ID (the id of the tx that registered the device)"),
        metavar="DEVICE_ID",
        help="the device id (hex)",
    )
    sp.add_argument(
        "--interval",
        required=True,
        type=whole_number("--interval"),
        help="interval start (unix time, on the chain's metering grid)",
    )
    sp.add_argument(
        "--produced", type=wh_arg("--produced"), default=0, metavar="KWH", help="kWh produced"
    )
    sp.add_argument(
        "--consumed", type=wh_arg("--consumed"), default=0, metavar="KWH", help="kWh consumed"
    )
    sp.add_argument("--meter-key", required=True, help="the device's meter key file")
    sp.add_argument(
        "--chain-id",
        required=True,
        type=chain_id_arg,
        help="the chain the reading is for (node.info's chain_id)",
    )

    sp = add_command(
        met,
        "batch",
        cmd_meter_batch,
        "relay meter-signed readings (JSON lines) as meter.batch txs of up to 100",
    )
    sp.add_argument(
        "--file", required=True, help="JSON lines as 'powernode meter sign' prints them"
    )
    add_tx_options(sp)


def wh_arg(what: str) -> Callable[[str], int]:
    """kWh as on every meter command, to Wh (exact: finer than 1 Wh is refused)."""

    def parse(text: str) -> int:
        try:
            wh = parse_decimal(text, 3, f"{what} (kWh)")
        except DecodeError as exc:
            raise UserError(exc.message) from None
        if wh > U64_MAX:
            raise UserError(f"{what} must be at most {U64_MAX // 1000} kWh")
        return wh

    return parse
