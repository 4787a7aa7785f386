"""Shared builders for the metering (and certificates) tests: a genesis with a
``certificates`` section, signed device and meter-reading txs, and a
``Metering`` driver (the market's ``Market`` driver with device steps).

The cast is the market's (``market_helpers``: ALICE producer, BOB consumer,
CAROL prosumer, DAVE consumer, ERIN poor and unregistered) plus AUTHORITY, a
funded key listed in ``certificates.authorities`` and registered as nothing.
Meter keys are separate keys (``meter_key(i)``), as a real meter's would be.

Time: the genesis is at ``T0`` (a multiple of 900); intervals are 900 s by
default (the spot slot), so interval ``T0`` has ended once the clock is at
``T0 + 900`` (``INTERVAL_END``). Typical use::

    m = open_metering(factory)
    dev = m.active_device(ALICE, METER)          # registered and approved
    m.mine(INTERVAL_END)
    tx = m.report(ALICE, METER, dev, T0, produced=50 * KWH)
    m.mine(); m.ok(tx)
"""

from __future__ import annotations

from typing import Any

from powernode.core.crypto import KeyPair
from powernode.core.params import ChainParams
from powernode.core.tx import Transaction
from powernode.engines.metering import reading_message
from tests.unit.helpers import CHAIN_ID, LedgerFactory, key
from tests.unit.market_helpers import (
    ERIN,
    ERIN_FUNDS,
    FEE,
    FUNDS,
    KWH,
    ROLES,
    T0,
    TRADERS,
    Market,
    market_params,
    market_tx,
)

AUTHORITY = key(5)
INTERVAL = 900
INTERVAL_END = T0 + INTERVAL  # when interval T0 has ended
DEVICE_CAPACITY_W = 1_000_000  # 1 MW: 250 kWh per 900 s interval
DEVICE_CAP_WH = DEVICE_CAPACITY_W * INTERVAL // 3600


def meter_key(i: int) -> KeyPair:
    """A meter's key, distinct from every account key of the unit suite."""
    return key(100 + i)


METER = meter_key(0)
METER_B = meter_key(1)
METER_C = meter_key(2)

__all__ = [
    "AUTHORITY",
    "DEVICE_CAPACITY_W",
    "DEVICE_CAP_WH",
    "INTERVAL",
    "INTERVAL_END",
    "KWH",
    "METER",
    "METER_B",
    "METER_C",
    "T0",
    "Metering",
    "approve_tx",
    "batch_entry",
    "batch_tx",
    "certificates_section",
    "meter_key",
    "metering_params",
    "open_metering",
    "register_device_tx",
    "report_payload",
    "report_tx",
    "retire_device_tx",
]


def certificates_section(**overrides: Any) -> dict[str, Any]:
    """The genesis ``certificates`` section of these tests: AUTHORITY is the
    one authority; everything else defaults unless overridden."""
    return {"authorities": [AUTHORITY.address.hex()], **overrides}


def metering_params(
    certificates: dict[str, Any] | None = None,
    markets: dict[str, Any] | None = None,
    **overrides: Any,
) -> ChainParams:
    """Chain params with the market's funded cast, AUTHORITY funded too, and
    ``certificates`` (default ``certificates_section()``)."""
    allocations = {k.address.hex(): FUNDS for k in (*TRADERS, AUTHORITY)}
    allocations[ERIN.address.hex()] = ERIN_FUNDS
    return market_params(
        markets,
        allocations=allocations,
        certificates=certificates_section() if certificates is None else certificates,
        **overrides,
    )


# --- transactions -------------------------------------------------------------


def register_device_tx(
    sender: KeyPair,
    meter: KeyPair | bytes,
    *,
    nonce: int,
    kind: str = "generation",
    source: str | None = None,
    capacity_w: int = DEVICE_CAPACITY_W,
    location: str = "Beijing",
    carbon_intensity: int = 50,
    fee: int = FEE,
) -> Transaction:
    """``device.register``; the device's id is the returned tx's txid.
    ``source`` defaults to solar, or "none" for a consumption device."""
    if source is None:
        source = "none" if kind == "consumption" else "solar"
    pub = meter if isinstance(meter, bytes) else meter.pubkey
    payload = [kind, source, capacity_w, location, carbon_intensity, pub]
    return market_tx(sender, "device.register", payload, nonce=nonce, fee=fee)


def approve_tx(sender: KeyPair, device_id: bytes, *, nonce: int, fee: int = FEE) -> Transaction:
    return market_tx(sender, "device.approve", [device_id], nonce=nonce, fee=fee)


def retire_device_tx(
    sender: KeyPair, device_id: bytes, *, nonce: int, fee: int = FEE
) -> Transaction:
    return market_tx(sender, "device.retire", [device_id], nonce=nonce, fee=fee)


def report_payload(
    meter: KeyPair,
    device_id: bytes,
    interval_start: int,
    produced: int = 0,
    consumed: int = 0,
    *,
    chain_id: str = CHAIN_ID,
    signer: KeyPair | None = None,
) -> list[Any]:
    """A ``meter.report`` payload naming ``meter``'s key, signed by ``signer``
    (default: the meter itself) over the reading message of ``chain_id``."""
    msg = reading_message(chain_id, device_id, interval_start, produced, consumed)
    sig = (meter if signer is None else signer).sign(msg)
    return [device_id, interval_start, produced, consumed, meter.pubkey, sig]


def report_tx(
    relayer: KeyPair,
    meter: KeyPair,
    device_id: bytes,
    interval_start: int,
    produced: int = 0,
    consumed: int = 0,
    *,
    nonce: int,
    fee: int = FEE,
    payload: list[Any] | None = None,
) -> Transaction:
    """A reading relayed by ``relayer`` (who pays the fee); ``payload``
    replaces the signed one (for tampering tests)."""
    if payload is None:
        payload = report_payload(meter, device_id, interval_start, produced, consumed)
    return market_tx(relayer, "meter.report", payload, nonce=nonce, fee=fee)


def batch_entry(
    meter: KeyPair,
    device_id: bytes,
    interval_start: int,
    produced: int = 0,
    consumed: int = 0,
    *,
    chain_id: str = CHAIN_ID,
    signer: KeyPair | None = None,
) -> list[Any]:
    """A ``meter.batch`` entry: the meter signs exactly what it would sign for
    a ``meter.report`` of the reading."""
    did, _, p, c, pub, sig = report_payload(
        meter, device_id, interval_start, produced, consumed, chain_id=chain_id, signer=signer
    )
    return [did, p, c, pub, sig]


def batch_tx(
    relayer: KeyPair,
    interval_start: int,
    entries: list[list[Any]],
    *,
    nonce: int,
    fee: int = FEE,
    ordered: bool = True,
) -> Transaction:
    """A ``meter.batch`` of ``entries`` (put in ascending device order unless
    ``ordered`` is off, for the ordering tests)."""
    readings = sorted(entries, key=lambda e: e[0]) if ordered else entries
    return market_tx(relayer, "meter.batch", [interval_start, readings], nonce=nonce, fee=fee)


# --- the driver ---------------------------------------------------------------


class Metering(Market):
    """The market driver with device and reading steps (each queues a tx
    for the next ``mine``, with the sender's next nonce)."""

    def register_device(self, sender: KeyPair, meter: KeyPair | bytes, **kw: Any) -> Transaction:
        return self.queue(register_device_tx(sender, meter, nonce=self.nonce(sender), **kw))

    def approve(self, device_id: bytes, by: KeyPair = AUTHORITY, **kw: Any) -> Transaction:
        return self.queue(approve_tx(by, device_id, nonce=self.nonce(by), **kw))

    def retire_device(self, sender: KeyPair, device_id: bytes, **kw: Any) -> Transaction:
        return self.queue(retire_device_tx(sender, device_id, nonce=self.nonce(sender), **kw))

    def report(
        self,
        relayer: KeyPair,
        meter: KeyPair,
        device_id: bytes,
        interval_start: int,
        produced: int = 0,
        consumed: int = 0,
        **kw: Any,
    ) -> Transaction:
        return self.queue(
            report_tx(
                relayer, meter, device_id, interval_start, produced, consumed,
                nonce=self.nonce(relayer), **kw,
            )
        )  # fmt: skip

    def batch(
        self, relayer: KeyPair, interval_start: int, entries: list[list[Any]], **kw: Any
    ) -> Transaction:
        return self.queue(
            batch_tx(relayer, interval_start, entries, nonce=self.nonce(relayer), **kw)
        )

    def active_device(self, owner: KeyPair, meter: KeyPair | bytes, **kw: Any) -> bytes:
        """Register a device of ``owner`` (``kw``: register_device_tx's),
        have AUTHORITY approve it, two blocks; its id."""
        reg = self.register_device(owner, meter, **kw)
        self.mine()
        self.ok(reg)
        app = self.approve(reg.txid)
        self.mine()
        self.ok(app)
        return reg.txid


def open_metering(
    factory: LedgerFactory,
    certificates: dict[str, Any] | None = None,
    markets: dict[str, Any] | None = None,
    *,
    register: bool = True,
    roles: dict[KeyPair, str] | None = None,
    **overrides: Any,
) -> Metering:
    """A fresh ledger (``metering_params``) whose first block, at genesis +
    5 s, registers the market cast as participants (AUTHORITY and ERIN stay
    unregistered)."""
    m = Metering(factory.open(metering_params(certificates, markets, **overrides)))
    if register:
        for k, role in (ROLES if roles is None else roles).items():
            m.register(k, role)
        regs = list(m.queued)
        m.mine()
        m.ok(*regs)
    return m
