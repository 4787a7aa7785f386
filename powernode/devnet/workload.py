"""A mixed workload of every engine's tx types, built in phases where each
phase needs the one before it at the tip: participants, devices and a
transfer; device approvals, device-bound PPAs and contracts; PPA
acceptances and orders for a slot; the slot's meter readings and contract
executions; then certificate moves on what the readings issued.

Shared by ``tests/e2e/test_all_engines_determinism.py`` (one round, then
every node must agree) and ``scripts/soak.py`` (rounds over and over, while
nodes are killed and partitioned). Only tx building lives here: sending,
waiting and checking stay with the callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from powernode.core import encoding
from powernode.core.crypto import KeyPair, sha256
from powernode.core.tx import Transaction, sign_tx

FEE = 1000
KWH = 1000
PRICE = 500_000  # 0.50 per kWh
CONTRACT_FEE = 10_000  # above the contracts' minimum for one condition and one action
CAPACITY_W = 6_000_000  # 100 kWh a minute


class Signer:
    """Signs txs in phases, each sender's nonces in order across phases."""

    def __init__(self, chain_id: str) -> None:
        self.chain_id = chain_id
        self.nonces: dict[bytes, int] = {}
        self.phase: list[Transaction] = []

    def add(self, key: KeyPair, tx_type: str, payload: list[Any], *, fee: int = FEE) -> Transaction:
        nonce = self.nonces.get(key.address, 0)
        tx = sign_tx(
            key, chain_id=self.chain_id, tx_type=tx_type, nonce=nonce, fee=fee, payload=payload
        )
        self.nonces[key.address] = nonce + 1
        self.phase.append(tx)
        return tx

    def take(self) -> list[Transaction]:
        txs, self.phase = self.phase, []
        return txs


def reading(
    chain_id: str, device: bytes, meter: KeyPair, start: int, produced: int, consumed: int
) -> list[Any]:
    """A ``meter.report`` payload, co-signed by the device's meter key."""
    msg = encoding.encode(["powernode-reading", chain_id, device, start, produced, consumed])
    return [device, start, produced, consumed, meter.pubkey, meter.sign(msg)]


def root_cert_id(device: bytes, interval: int) -> bytes:
    """The id of the certificate a device's reading for ``interval`` issues."""
    return sha256(b"powernode-cert" + device + interval.to_bytes(8, "big"))


def next_slot(now: int, lead: int, slot_seconds: int = 60) -> int:
    """The first slot starting at least ``lead`` seconds after ``now``."""
    return -(-(now + lead) // slot_seconds) * slot_seconds


@dataclass(frozen=True)
class Parties:
    """Who trades: producer i sells to consumer i; each has a device per round
    whose meter key is ``meters[i]`` (production) or ``cmeters[i]``
    (consumption); the authority approves devices."""

    authority: KeyPair
    producers: Sequence[KeyPair]
    consumers: Sequence[KeyPair]
    meters: Sequence[KeyPair]
    cmeters: Sequence[KeyPair]

    def pairs(self) -> list[tuple[int, KeyPair, KeyPair]]:
        return [
            (i, p, k) for i, (p, k) in enumerate(zip(self.producers, self.consumers, strict=True))
        ]


@dataclass(frozen=True)
class Devices:
    production: list[bytes]  # one per producer (the registering tx ids)
    consumption: list[bytes]  # one per consumer

    def all(self) -> list[bytes]:
        return self.production + self.consumption


def register(
    w: Signer, ps: Parties, *, participants: bool = True, capacity_w: int = CAPACITY_W
) -> Devices:
    """Phase 1: participants (once per key), a solar device per producer and a
    consumption device per consumer, a transfer from each producer to its consumer."""
    devices, cdevices = [], []
    for i, p, k in ps.pairs():
        if participants:
            w.add(p, "participant.register", ["producer", f"zone-{i}", capacity_w])
            w.add(k, "participant.register", ["consumer", f"zone-{i}", capacity_w])
        d = w.add(
            p,
            "device.register",
            ["generation", "solar", capacity_w, f"zone-{i}", 40, ps.meters[i].pubkey],
        )
        cd = w.add(
            k,
            "device.register",
            ["consumption", "none", capacity_w, f"zone-{i}", 0, ps.cmeters[i].pubkey],
        )
        devices.append(d.txid)
        cdevices.append(cd.txid)
        w.add(p, "transfer", [k.address, 1_000_000])
    return Devices(production=devices, consumption=cdevices)


def agree(w: Signer, ps: Parties, devs: Devices, now: int) -> tuple[list[bytes], list[bytes]]:
    """Phase 2: the authority approves every device; each producer proposes
    its consumer a PPA on its device (30% of production, 1,000 kWh over 30
    days) and creates a contract paying the consumer 2.00 once ``now + 30``
    has passed. Returns (PPA ids, contract ids)."""
    for dev_id in devs.all():
        w.add(ps.authority, "device.approve", [dev_id])
    ppas, contracts = [], []
    for i, p, k in ps.pairs():
        tx = w.add(
            p,
            "ppa.propose",
            [k.address, devs.production[i], 3000, 1000 * KWH, PRICE, now, 30, 86_400, now + 900],
        )
        ppas.append(tx.txid)
        # A demand-response style reward: pays the consumer once a time has passed.
        terms = [[k.address, p.address], 5_000_000, now + 3600]
        terms += [[["after", now + 30]], [["pay", k.address, 2_000_000]]]
        ctx = w.add(p, "contract.create", terms, fee=CONTRACT_FEE)
        contracts.append(ctx.txid)
    return ppas, contracts


def accept_and_order(w: Signer, ps: Parties, ppas: Sequence[bytes], slot: int) -> None:
    """Phase 3: each consumer accepts its PPA; producer i offers 20 kWh at
    0.40 in ``slot``, consumer i bids for 10 + 5i kWh at 0.60."""
    for k, ppa in zip(ps.consumers, ppas, strict=True):
        w.add(k, "ppa.accept", [ppa])
    for i, p, k in ps.pairs():
        w.add(p, "order.place", ["spot", "sell", slot, 20 * KWH, 400_000, "solar", 0, "GTC"])
        w.add(k, "order.place", ["spot", "buy", slot, (10 + 5 * i) * KWH, 600_000, "any", 0, "GTC"])


def report(
    w: Signer,
    ps: Parties,
    devs: Devices,
    slot: int,
    contracts: Sequence[bytes],
    executor: KeyPair,
    *,
    batched: bool = False,
) -> None:
    """Phase 4 (once the slot's interval has ended): producer i's meter reports
    20 + 10i kWh produced, each consumer's 15 kWh consumed; ``executor`` runs
    every contract. ``batched``: the production readings travel in one
    ``meter.batch`` that ``executor`` relays, instead of one ``meter.report``
    each."""
    entries = []
    for i, p, k in ps.pairs():
        r = reading(w.chain_id, devs.production[i], ps.meters[i], slot, (20 + 10 * i) * KWH, 0)
        if batched:
            device, _, produced, consumed, pubkey, sig = r
            entries.append([device, produced, consumed, pubkey, sig])
        else:
            w.add(p, "meter.report", r)
        w.add(
            k,
            "meter.report",
            reading(w.chain_id, devs.consumption[i], ps.cmeters[i], slot, 0, 15 * KWH),
        )
    if entries:
        w.add(executor, "meter.batch", [slot, sorted(entries)])
    for x in contracts:
        w.add(executor, "contract.execute", [x], fee=CONTRACT_FEE)


def retire(w: Signer, owner: KeyPair, cert: bytes, wh: int, beneficiary: str, slot: int) -> None:
    """Phase 5: ``owner`` retires ``wh`` of ``cert`` for ``beneficiary``, claiming ``slot``'s minute."""
    w.add(owner, "cert.retire", [cert, wh, beneficiary, "", slot, slot + 60])
