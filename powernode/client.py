"""RPC client and tx builders, for the CLI, scripts and tests.

Synchronous on purpose (``http.client`` with keep-alive): callers are
command-line tools and test code, and a blocking client keeps them simple.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from powernode.core.crypto import KeyPair
from powernode.core.errors import ConfigError, DecodeError
from powernode.core.hextext import from_hex
from powernode.core.tx import Transaction, sign_tx
from powernode.core.units import parse_decimal
from powernode.engines.certificates.records import child_id, root_id
from powernode.engines.metering import reading_message
from powernode.engines.settlement.settle import bundle_ref


class RpcError(Exception):
    """An error answer from the node; ``reason`` is the stable typed code."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data if isinstance(data, dict) else {}

    @property
    def reason(self) -> str:
        return str(self.data.get("code", "rpc_error"))

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class RpcUnavailable(Exception):
    """The node could not be reached at all."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    auth: str  # full Authorization header value


def endpoint_from_datadir(datadir: str | os.PathLike[str]) -> Endpoint:
    """Find a running node's RPC URL and credentials in its data dir.
    RpcUnavailable, naming the file, if they are missing, unreadable or not
    what a node writes there: all of these mean "no node to talk to here",
    which callers polling a starting node (whose node.json may be
    half-written) already treat as "not yet"."""
    datadir = Path(datadir)  # scripts pass a str as often as a Path
    runtime = datadir / "node.json"
    cookie = datadir / ".cookie"
    if not runtime.exists() or not cookie.exists():
        raise RpcUnavailable(f"no running node found in {datadir} (is 'powernode run' up?)")
    stale = "; if no node runs there, delete it"
    try:
        url = json.loads(read_text(runtime, "runtime file"))["rpc"]
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or parts.port is None:
            raise ValueError(url)
        secret = read_text(cookie, "RPC cookie").strip()
    except ConfigError as exc:  # read_text: gone since the check, a directory, not text
        raise RpcUnavailable(f"{exc.message}{stale}") from None
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        # json.loads: not JSON; ["rpc"]: no such key or not an object;
        # urlsplit: not a string; .port: not a number 0..65535.
        raise RpcUnavailable(f"{runtime} does not name the node's RPC URL{stale}") from None
    auth = "Basic " + base64.b64encode(secret.encode()).decode()
    return Endpoint(url=url, auth=auth)


# The largest key, cookie or runtime file read: they hold a line or two,
# and a `--key /dev/zero` must not be read for ever.
MAX_SMALL_FILE = 64 * 1024


def read_bytes(path: Path, what: str, *, max_bytes: int = MAX_SMALL_FILE) -> bytes:
    """A file of at most ``max_bytes``, or a ConfigError naming it (``what``
    says what it is): a missing file, a directory, an unreadable or an
    oversized one is one clear line, and ``/dev/zero`` ends."""
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} not found") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise ConfigError(f"{what} {path} is larger than {max_bytes} bytes")
    return data


def read_text(path: Path, what: str) -> str:
    """A small text file in the data dir, or a ConfigError naming it: the
    one way the client reads key, cookie and runtime files, so a directory,
    an unreadable file or bytes that are not UTF-8 are one clear line."""
    data = read_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not a text file") from None


# How long a call may take before the client gives up on it.
CALL_TIMEOUT_S = 60.0


class RpcClient:
    def __init__(self, endpoint: Endpoint, *, timeout: float = CALL_TIMEOUT_S) -> None:
        self.endpoint = endpoint
        parts = urlsplit(endpoint.url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._path = parts.path or "/rpc"
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._id = 0

    @classmethod
    def from_datadir(cls, datadir: str | os.PathLike[str], **kw: Any) -> RpcClient:
        return cls(endpoint_from_datadir(datadir), **kw)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, body: bytes) -> Any:
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
            try:
                self._conn.request(
                    "POST",
                    self._path,
                    body=body,
                    headers={
                        "Content-Type": "application/json",
                        "Authorization": self.endpoint.auth,
                    },
                )
                resp = self._conn.getresponse()
                data = resp.read()
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                self.close()
                if attempt:
                    raise RpcUnavailable(
                        f"cannot reach node at {self.endpoint.url}: {exc}"
                    ) from exc
                continue
            if resp.status == 401:
                raise RpcError(
                    -32600,
                    "unauthorized (stale cookie? restart the client)",
                    {"code": "unauthorized"},
                )
            if resp.status == 204:
                return None
            try:
                return json.loads(data)
            except ValueError:
                # Something else listens there (node.json names a port a
                # dead node left to another program).
                raise RpcUnavailable(
                    f"{self.endpoint.url} did not answer JSON-RPC (HTTP {resp.status})"
                ) from None
        raise AssertionError("unreachable")

    def _next_id(self) -> int:
        self._id += 1
        return self._id

    def call(self, method: str, params: dict[str, Any] | list[Any] | None = None) -> Any:
        doc = {"jsonrpc": "2.0", "id": self._next_id(), "method": method, "params": params or {}}
        resp = self._post(json.dumps(doc).encode())
        if not isinstance(resp, dict) or not (
            "result" in resp or isinstance(resp.get("error"), dict)
        ):
            raise RpcUnavailable(f"{self.endpoint.url} did not answer JSON-RPC")
        if "error" in resp:
            e = resp["error"]
            raise RpcError(e.get("code", 0), e.get("message", ""), e.get("data"))
        return resp["result"]

    def batch(self, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Results in call order; an error answer is returned as an RpcError."""
        if not calls:
            return []
        first = self._id + 1
        doc = [
            {"jsonrpc": "2.0", "id": self._next_id(), "method": m, "params": p} for m, p in calls
        ]
        resp = self._post(json.dumps(doc).encode())
        by_id = {r.get("id"): r for r in resp}
        out: list[Any] = []
        for i in range(first, first + len(calls)):
            r = by_id.get(i, {"error": {"code": -32603, "message": "missing response"}})
            if "error" in r:
                e = r["error"]
                out.append(RpcError(e.get("code", 0), e.get("message", ""), e.get("data")))
            else:
                out.append(r["result"])
        return out

    # --- helpers ------------------------------------------------------------

    def submit(self, tx: Transaction) -> str:
        return str(self.call("tx.submit", {"raw": tx.raw.hex()}))

    def chain_id(self) -> str:
        return str(self.call("node.info")["chain_id"])


# --- keys ---------------------------------------------------------------------


def write_key(path: Path, key: KeyPair) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.seed().hex() + "\n")


def read_key(path: Path) -> KeyPair:
    text = read_text(path, "key file").strip()
    try:
        return KeyPair.from_seed(from_hex(text))
    except (ValueError, DecodeError):
        # fromhex: not hex; from_seed: hex, but not 32 bytes.
        raise ConfigError(f"{path} does not hold a hex private key (64 hex digits)") from None


# --- tx builders --------------------------------------------------------------


def build_transfer(
    key: KeyPair, *, chain_id: str, nonce: int, to: bytes, amount: int, fee: int = 1000
) -> Transaction:
    return sign_tx(
        key, chain_id=chain_id, tx_type="transfer", nonce=nonce, fee=fee, payload=[to, amount]
    )


def build_register(
    key: KeyPair,
    *,
    chain_id: str,
    nonce: int,
    role: str,
    location: str,
    capacity_w: int,
    fee: int = 1000,
) -> Transaction:
    """``participant.register``: role producer|consumer|prosumer, capacity in W."""
    return sign_tx(
        key,
        chain_id=chain_id,
        tx_type="participant.register",
        nonce=nonce,
        fee=fee,
        payload=[role, location, capacity_w],
    )


def build_order(
    key: KeyPair,
    *,
    chain_id: str,
    nonce: int,
    product: str,
    side: str,
    slot: int,
    energy_wh: int,
    price: int,
    source: str,
    expiry: int = 0,
    tif: str = "GTC",
    fee: int = 1000,
) -> Transaction:
    """``order.place``; the order's id is the returned tx's txid. ``price`` is in
    micro-units per kWh, ``slot`` the unix start of the delivery slot."""
    return sign_tx(
        key,
        chain_id=chain_id,
        tx_type="order.place",
        nonce=nonce,
        fee=fee,
        payload=[product, side, slot, energy_wh, price, source, expiry, tif],
    )


def build_cancel(
    key: KeyPair, *, chain_id: str, nonce: int, order_id: bytes, fee: int = 1000
) -> Transaction:
    return sign_tx(
        key, chain_id=chain_id, tx_type="order.cancel", nonce=nonce, fee=fee, payload=[order_id]
    )


# --- metering and certificates ------------------------------------------------
#
# Payloads as engines/metering and engines/certificates decode them (README,
# "Metering and certificates"); ids are the 32-byte device / certificate ids,
# energy in Wh, times in unix seconds.


def build_device_register(
    key: KeyPair,
    *,
    chain_id: str,
    nonce: int,
    kind: str,
    source: str,
    capacity_w: int,
    location: str,
    carbon_intensity: int,
    meter_pubkey: bytes,
    fee: int = 1000,
) -> Transaction:
    """``device.register``: kind generation|consumption|both, source
    solar|wind|hydro|thermal (``none`` for consumption), carbon intensity in
    gCO2/kWh. The device's id is the returned tx's txid."""
    return sign_tx(
        key,
        chain_id=chain_id,
        tx_type="device.register",
        nonce=nonce,
        fee=fee,
        payload=[kind, source, capacity_w, location, carbon_intensity, meter_pubkey],
    )


def build_device_approve(
    key: KeyPair, *, chain_id: str, nonce: int, device_id: bytes, fee: int = 1000
) -> Transaction:
    return sign_tx(
        key, chain_id=chain_id, tx_type="device.approve", nonce=nonce, fee=fee, payload=[device_id]
    )


def build_device_retire(
    key: KeyPair, *, chain_id: str, nonce: int, device_id: bytes, fee: int = 1000
) -> Transaction:
    return sign_tx(
        key, chain_id=chain_id, tx_type="device.retire", nonce=nonce, fee=fee, payload=[device_id]
    )


def build_meter_report(
    key: KeyPair,
    meter_key: KeyPair,
    *,
    chain_id: str,
    nonce: int,
    device_id: bytes,
    interval_start: int,
    produced_wh: int,
    consumed_wh: int,
    fee: int = 1000,
) -> Transaction:
    """``meter.report``: the reading signed by the device's ``meter_key``,
    relayed (and paid for) by ``key``."""
    message = reading_message(chain_id, device_id, interval_start, produced_wh, consumed_wh)
    return sign_tx(
        key,
        chain_id=chain_id,
        tx_type="meter.report",
        nonce=nonce,
        fee=fee,
        payload=[
            device_id,
            interval_start,
            produced_wh,
            consumed_wh,
            meter_key.pubkey,
            meter_key.sign(message),
        ],
    )


def build_cert_issue(
    key: KeyPair,
    *,
    chain_id: str,
    nonce: int,
    device_id: bytes,
    interval_start: int,
    wh: int,
    fee: int = 1000,
) -> Transaction:
    """``cert.issue``: an authority's manual certificate for a device's interval."""
    return sign_tx(
        key,
        chain_id=chain_id,
        tx_type="cert.issue",
        nonce=nonce,
        fee=fee,
        payload=[device_id, interval_start, wh],
    )


def build_cert_transfer(
    key: KeyPair, *, chain_id: str, nonce: int, cert_id: bytes, to: bytes, wh: int, fee: int = 1000
) -> Transaction:
    """``cert.transfer``: the whole certificate (``wh`` = its remaining Wh) or
    a part, which splits off a child certificate owned by ``to``."""
    return sign_tx(
        key,
        chain_id=chain_id,
        tx_type="cert.transfer",
        nonce=nonce,
        fee=fee,
        payload=[cert_id, to, wh],
    )


def build_cert_retire(
    key: KeyPair,
    *,
    chain_id: str,
    nonce: int,
    cert_id: bytes,
    wh: int,
    beneficiary: str,
    purpose: str,
    period_start: int,
    period_end: int,
    fee: int = 1000,
) -> Transaction:
    """``cert.retire``: ``wh`` of the certificate claimed for ``beneficiary``
    over the consumption period [period_start, period_end)."""
    return sign_tx(
        key,
        chain_id=chain_id,
        tx_type="cert.retire",
        nonce=nonce,
        fee=fee,
        payload=[cert_id, wh, beneficiary, purpose, period_start, period_end],
    )


def cert_id_of(device_id: bytes, interval_start: int) -> bytes:
    """The id of the certificate issued for a device's interval (from its
    reading or by cert.issue), known before the tx is mined."""
    return root_id(device_id, interval_start)


def child_cert_id(parent_id: bytes, txid: bytes) -> bytes:
    """The id of the part a transfer or retirement (tx ``txid``) splits off."""
    return child_id(parent_id, txid)


def trade_settlement_ref(seq: int) -> bytes:
    """The ref a trade's settlement records in its certificates' steps; the
    part of a certificate it bundles is ``child_cert_id(root, ref)``."""
    return bundle_ref(seq)


# --- market units -------------------------------------------------------------
#
# Exact decimal <-> integer conversions, with no floats. Parsing is
# core.units.parse_decimal (more decimals than the unit can hold is an error,
# never a rounding); these name the market's units.


def format_decimal(n: int, places: int, *, min_places: int = 0) -> str:
    """An integer count of 10**-places as a decimal, trailing zeros trimmed
    down to ``min_places``: format_decimal(550000, 6, min_places=2) == '0.55'."""
    sign = "-" if n < 0 else ""
    q, r = divmod(abs(n), 10**places)
    frac = f"{r:0{places}d}".rstrip("0") if places else ""
    frac = frac.ljust(min_places, "0")
    return f"{sign}{q}.{frac}" if frac else f"{sign}{q}"


def parse_price(text: str, what: str = "price") -> int:
    """A price in units per kWh ('0.50') to micro-units per kWh (500000);
    an error names ``what`` (a CLI option, say)."""
    return parse_decimal(text, 6, what)


def format_price(micro_per_kwh: int) -> str:
    """Micro-units per kWh as units per kWh with at least 2 decimals: '0.55'."""
    return format_decimal(micro_per_kwh, 6, min_places=2)


def parse_kwh(text: str, what: str = "energy (kWh)") -> int:
    """Energy in kWh ('100', '0.5') to Wh (100000, 500); finer than 1 Wh is an
    error, naming ``what``."""
    return parse_decimal(text, 3, what)


def format_kwh(wh: int) -> str:
    """Wh as kWh: 50000 -> '50', 500 -> '0.5'."""
    return format_decimal(wh, 3)


def format_money(micro: int) -> str:
    """Micro-units as units, at least 2 decimals: 27500000 -> '27.50'."""
    return format_decimal(micro, 6, min_places=2)


def next_slot(
    now: int,
    *,
    slot_seconds: int,
    gate_closure_seconds: int,
    min_lead_seconds: int = 0,
    margin: int = 60,
) -> int:
    """The first delivery slot an order sent at ``now`` can still reach: its
    gate (slot start - gate closure) and its minimum lead are both at least
    ``margin`` seconds away, so the order is mined before the gate closes."""
    earliest = now + margin + max(gate_closure_seconds, min_lead_seconds)
    return -(-earliest // slot_seconds) * slot_seconds


# --- PPAs and declarative contracts -------------------------------------------
#
# Payloads as engines/contracts decodes them (README, "Power purchase
# agreements" and "Contracts"): a PPA's and a contract's id is
# the id of the tx that proposed / created it; energy in Wh, prices in
# micro-units per kWh, money in micro-units, times in unix seconds.


def build_ppa_propose(
    key: KeyPair,
    *,
    chain_id: str,
    nonce: int,
    buyer: bytes,
    device_id: bytes | None,
    share_bps: int,
    total_wh: int,
    price: int,
    start: int,
    duration_days: int,
    period_seconds: int,
    accept_deadline: int,
    fee: int = 1000,
) -> Transaction:
    """``ppa.propose`` by the seller. ``device_id`` None: no device, energy
    comes from ``ppa.deliver`` (and ``share_bps`` is 0); with a device the
    PPA takes ``share_bps`` of each of its readings. The PPA's id is the
    returned tx's txid."""
    return sign_tx(
        key,
        chain_id=chain_id,
        tx_type="ppa.propose",
        nonce=nonce,
        fee=fee,
        payload=[
            buyer,
            device_id or b"",
            share_bps,
            total_wh,
            price,
            start,
            duration_days,
            period_seconds,
            accept_deadline,
        ],
    )


def build_ppa_id_tx(
    key: KeyPair, *, chain_id: str, nonce: int, tx_type: str, ppa_id: bytes, fee: int = 1000
) -> Transaction:
    """``ppa.accept``, ``ppa.reject`` or ``ppa.terminate``: payload [ppa_id]."""
    if tx_type not in ("ppa.accept", "ppa.reject", "ppa.terminate"):
        raise ValueError(f"not a [ppa_id] tx type: {tx_type}")
    return sign_tx(key, chain_id=chain_id, tx_type=tx_type, nonce=nonce, fee=fee, payload=[ppa_id])


def build_ppa_accept(
    key: KeyPair, *, chain_id: str, nonce: int, ppa_id: bytes, fee: int = 1000
) -> Transaction:
    """``ppa.accept`` by the buyer: escrows the first period's expected cost."""
    return build_ppa_id_tx(
        key, chain_id=chain_id, nonce=nonce, tx_type="ppa.accept", ppa_id=ppa_id, fee=fee
    )


def build_ppa_reject(
    key: KeyPair, *, chain_id: str, nonce: int, ppa_id: bytes, fee: int = 1000
) -> Transaction:
    return build_ppa_id_tx(
        key, chain_id=chain_id, nonce=nonce, tx_type="ppa.reject", ppa_id=ppa_id, fee=fee
    )


def build_ppa_terminate(
    key: KeyPair, *, chain_id: str, nonce: int, ppa_id: bytes, fee: int = 1000
) -> Transaction:
    """``ppa.terminate``: mutual (both parties send one), or one-sided after
    the other party's default."""
    return build_ppa_id_tx(
        key, chain_id=chain_id, nonce=nonce, tx_type="ppa.terminate", ppa_id=ppa_id, fee=fee
    )


def build_ppa_fund(
    key: KeyPair, *, chain_id: str, nonce: int, ppa_id: bytes, amount: int, fee: int = 1000
) -> Transaction:
    """``ppa.fund``: top up the PPA's escrow by ``amount`` micro-units."""
    return sign_tx(
        key, chain_id=chain_id, tx_type="ppa.fund", nonce=nonce, fee=fee, payload=[ppa_id, amount]
    )


def build_ppa_deliver(
    key: KeyPair,
    *,
    chain_id: str,
    nonce: int,
    ppa_id: bytes,
    wh: int,
    interval_start: int,
    fee: int = 1000,
) -> Transaction:
    """``ppa.deliver`` by the seller of a PPA without a device."""
    return sign_tx(
        key,
        chain_id=chain_id,
        tx_type="ppa.deliver",
        nonce=nonce,
        fee=fee,
        payload=[ppa_id, wh, interval_start],
    )


def build_ppa_confirm(
    key: KeyPair, *, chain_id: str, nonce: int, ppa_id: bytes, delivery_seq: int, fee: int = 1000
) -> Transaction:
    """``ppa.confirm`` by the buyer: accepts delivery ``delivery_seq`` (and pays it)."""
    return sign_tx(
        key,
        chain_id=chain_id,
        tx_type="ppa.confirm",
        nonce=nonce,
        fee=fee,
        payload=[ppa_id, delivery_seq],
    )


def build_contract_create(
    key: KeyPair,
    *,
    chain_id: str,
    nonce: int,
    parties: list[bytes],
    escrow: int,
    expiry: int,
    conditions: list[list[Any]],
    actions: list[list[Any]],
    fee: int = 1000,
) -> Transaction:
    """``contract.create``: conditions and actions as tagged arrays
    (``["after", t]``, ``["pay", to, amount]``, ...; ids and addresses as
    bytes). The contract's id is the returned tx's txid."""
    return sign_tx(
        key,
        chain_id=chain_id,
        tx_type="contract.create",
        nonce=nonce,
        fee=fee,
        payload=[parties, escrow, expiry, conditions, actions],
    )


def build_contract_id_tx(
    key: KeyPair, *, chain_id: str, nonce: int, tx_type: str, contract_id: bytes, fee: int = 1000
) -> Transaction:
    """``contract.execute``, ``contract.approve`` or ``contract.cancel``:
    payload [contract_id]."""
    if tx_type not in ("contract.execute", "contract.approve", "contract.cancel"):
        raise ValueError(f"not a [contract_id] tx type: {tx_type}")
    return sign_tx(
        key, chain_id=chain_id, tx_type=tx_type, nonce=nonce, fee=fee, payload=[contract_id]
    )


def build_contract_execute(
    key: KeyPair, *, chain_id: str, nonce: int, contract_id: bytes, fee: int = 1000
) -> Transaction:
    return build_contract_id_tx(
        key,
        chain_id=chain_id,
        nonce=nonce,
        tx_type="contract.execute",
        contract_id=contract_id,
        fee=fee,
    )
