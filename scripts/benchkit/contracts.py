"""bench_contracts' workloads: PPAs bound to a fleet's devices and delivered
from their readings, and declarative contracts executed, all through
``apply_block`` on a ``MemoryState`` (benchkit.certs' chain and fleet).

Txs are signed before anything is timed; ``apply_block`` checks no
signature (the node checks them ahead, in worker processes), so the figures
are the state machine's.
"""

from __future__ import annotations

from typing import Any

from benchkit.certs import CHAIN_ID, INTERVAL, T0, Chain, Fleet, reading_message
from benchkit.guard import progress
from powernode.core.tx import Transaction, sign_tx
from powernode.engines.contracts.ppa_records import ppa

DAY = 86_400
PPA_SHARE_BPS = 5_000  # each PPA takes half of its device's production
PPA_PRICE = 100_000  # 0.10 per kWh
PPA_DAYS = 30
CONTRACT_PAY = 1_000  # micro-units each executed contract pays
TERM_FEE = 1_000  # engines/contracts: per condition and action, create and execute


def produced_wh(d: int, t: int) -> int:
    """A deterministic spread of readings, 1..901 kWh (the fleet's devices
    meter up to 1,000 kWh per interval)."""
    return 1000 + (d * 7919 + t * 104_729) % 900_000


def ppa_total(intervals: int) -> int:
    """Each PPA's total: more than its share of every reading the run makes,
    so every reading delivers (a PPA never completes mid-run)."""
    return intervals * 1_000_000


def buyer_of(fleet: Fleet, d: int) -> int:
    """The owner that buys device ``d``'s PPA: the next owner after its seller."""
    per_owner = len(fleet.devices) // len(fleet.owners)
    return (d // per_owner + 1) % len(fleet.owners)


def setup_ppas(chain: Chain, fleet: Fleet, intervals: int, block_txs: int) -> list[bytes]:
    """One PPA per device, proposed by its owner to the next owner, accepted
    and funded with what every delivery of the run will cost (untimed)."""
    per_owner = len(fleet.devices) // len(fleet.owners)
    total = ppa_total(intervals)
    proposals = []
    for d, device in enumerate(fleet.devices):
        seller = fleet.owners[d // per_owner]
        buyer = fleet.owners[buyer_of(fleet, d)]
        payload = [buyer.address, device, PPA_SHARE_BPS, total, PPA_PRICE, T0, PPA_DAYS, DAY,
                   T0 + DAY]  # fmt: skip
        proposals.append(fleet.sign(seller, "ppa.propose", payload))
    ids = [tx.txid for tx in proposals]
    cost = total * PPA_PRICE // 1000
    accepts: list[Transaction] = []
    for d, pid in enumerate(ids):
        buyer = fleet.owners[buyer_of(fleet, d)]
        accepts.append(fleet.sign(buyer, "ppa.accept", [pid]))
        accepts.append(fleet.sign(buyer, "ppa.fund", [pid, cost]))
    for txs in (proposals, accepts):
        for i in range(0, len(txs), block_txs):
            chain.connect(txs[i : i + block_txs], T0 + 3)
    if chain.failed:
        raise RuntimeError(f"PPA setup: {chain.failed} failed receipts: {chain.failures[:3]}")
    progress(f"setup: {len(ids):,} PPAs proposed, accepted and funded")
    return ids


def sign_ppa_readings(fleet: Fleet, intervals: int, first: int = 0) -> list[Transaction]:
    """One reading per device per interval (from interval ``first``), each
    delivering to the device's PPA."""
    per_owner = len(fleet.devices) // len(fleet.owners)
    txs: list[Transaction] = []
    for t in range(first, first + intervals):
        start = T0 + t * INTERVAL
        for d, (device, meter) in enumerate(zip(fleet.devices, fleet.meters, strict=True)):
            produced = produced_wh(d, t)
            msg = reading_message(device, start, produced, 0)
            payload = [device, start, produced, 0, meter.pubkey, meter.sign(msg)]
            txs.append(fleet.sign(fleet.owners[d // per_owner], "meter.report", payload))
    return txs


def check_ppas(chain: Chain, ppa_ids: list[bytes], readings: list[Transaction]) -> dict[str, Any]:
    """Every reading delivered its share to its PPA, paid at the contract
    price; escrow plus payments equal what was funded."""
    by_device = {chain.state.get(("ppa.ppa", pid)).device: pid for pid in ppa_ids}
    expected: dict[bytes, int] = dict.fromkeys(ppa_ids, 0)
    for tx in readings:
        expected[by_device[tx.payload[0]]] += tx.payload[2] * PPA_SHARE_BPS // 10_000
    problems = []
    delivered = paid = 0
    for pid in ppa_ids:
        p = ppa(chain.state, pid)
        assert p is not None
        delivered += p.delivered_wh
        paid += p.paid
        if p.delivered_wh != expected[pid]:
            problems.append(
                f"PPA {pid.hex()[:12]} delivered {p.delivered_wh}, expected {expected[pid]}"
            )
        if p.paid != p.delivered_wh * p.price // 1000 or p.owed:
            problems.append(f"PPA {pid.hex()[:12]} paid {p.paid} for {p.delivered_wh} Wh")
        if p.paid + p.escrow != p.total_wh * p.price // 1000 + first_escrow(p.total_wh):
            problems.append(f"PPA {pid.hex()[:12]}: escrow + paid is not what was funded")
    return {
        "deliveries_expected": sum(1 for _ in readings),
        "delivered_wh": delivered,
        "expected_wh": sum(expected.values()),
        "paid": paid,
        "problems": problems[:10],
    }


def first_escrow(total_wh: int) -> int:
    """What accepting escrowed: a day's share of the total at the price."""
    return min(total_wh, total_wh * DAY // (PPA_DAYS * DAY)) * PPA_PRICE // 1000


def sign_contracts(
    fleet: Fleet, n: int, readings_interval: int
) -> tuple[list[Transaction], list[Transaction]]:
    """``n`` contracts, each a demand-response-like template over one device:
    after a time, the device produced at least 1 Wh and at most its capacity
    in an interval that has a reading, then pay the next owner. Returns
    (creates, executes); each contract is executed by its payee."""
    per_owner = len(fleet.devices) // len(fleet.owners)
    span = [T0 + readings_interval * INTERVAL, T0 + (readings_interval + 1) * INTERVAL]
    creates: list[Transaction] = []
    payees: list[int] = []
    for i in range(n):
        d = i % len(fleet.devices)
        creator = fleet.owners[d // per_owner]
        payee = buyer_of(fleet, d)
        device = fleet.devices[d]
        conditions = [
            ["after", T0],
            ["produced_at_least", device, *span, 1],
            ["produced_at_most", device, *span, 1_000_000],
        ]
        actions = [["pay", fleet.owners[payee].address, CONTRACT_PAY]]
        payload = [[creator.address, fleet.owners[payee].address], CONTRACT_PAY,
                   T0 + 365 * DAY, conditions, actions]  # fmt: skip
        creates.append(fleet_sign_fee(fleet, creator, "contract.create", payload, 4 * TERM_FEE))
        payees.append(payee)
    executes = [
        fleet_sign_fee(fleet, fleet.owners[payee], "contract.execute", [tx.txid], 4 * TERM_FEE)
        for tx, payee in zip(creates, payees, strict=True)
    ]
    return creates, executes


def fleet_sign_fee(
    fleet: Fleet, key: Any, tx_type: str, payload: list[Any], fee: int
) -> Transaction:
    """``Fleet.sign`` with a fee other than the default (contract txs pay per term)."""
    nonce = fleet.nonces.get(key.address, 0)
    fleet.nonces[key.address] = nonce + 1
    return sign_tx(key, chain_id=CHAIN_ID, tx_type=tx_type, nonce=nonce, fee=fee, payload=payload)


def check_contracts(chain: Chain, creates: list[Transaction]) -> dict[str, Any]:
    executed = sum(1 for tx in creates if chain.state.get(("ctr.c", tx.txid)).status == "executed")
    problems = [] if executed == len(creates) else [f"{len(creates) - executed} not executed"]
    return {"contracts": len(creates), "executed": executed, "problems": problems}
