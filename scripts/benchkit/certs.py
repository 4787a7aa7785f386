"""bench_certs' workload and passes: a fleet of approved meters, their signed
readings (each issuing a certificate), certificate transfers and
retirements, and one certificate with a deep lineage, all through
``apply_block`` on a ``MemoryState``.

Txs are signed before anything is timed; ``apply_block`` checks no
signature (the node checks them ahead, in worker processes), so the figures
are the state machine's. The signatures are measured on their own in the
same run: a reading carries two (the relayer's and the meter's).
"""

from __future__ import annotations

import gc
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchkit.guard import percentile, progress
from powernode.chain.certproof import build_proof
from powernode.chain.chain import Chain as RealChain
from powernode.chain.store import BlockStore
from powernode.core import encoding
from powernode.core.block import Block, make_block
from powernode.core.crypto import KeyPair, sha256
from powernode.core.execution import ExecContext
from powernode.core.merkle import merkle_root
from powernode.core.params import ChainParams
from powernode.core.pow import asert_target, target_to_bytes
from powernode.core.tx import Transaction, sign_tx
from powernode.devnet.devchain import dev_genesis, solve
from powernode.state.apply import apply_block, build_body
from powernode.state.certproof import verify_proof
from powernode.state.genesis import genesis_block, genesis_result, parse_genesis
from powernode.state.registry import verify_tx
from powernode.state.view import MemoryState

CHAIN_ID = "bench-certs"
INTERVAL = 900
T0 = 1_767_225_600  # 2026-01-01 00:00 UTC: genesis; intervals start here
FEE = 1000
MINER = sha256(b"bench-certs-miner")[:20]
CAPACITY_W = 4_000_000  # 1,000 kWh per interval
SOURCES = ("solar", "wind", "hydro", "thermal")
READING_NAMESPACES = ("met.read", "met.sum", "crt.cert", "crt.claimed", "crt.step", "crt.meta")


def reading_message(device: bytes, interval: int, produced: int, consumed: int) -> bytes:
    return encoding.encode(["powernode-reading", CHAIN_ID, device, interval, produced, consumed])


def child_id(parent: bytes, txid: bytes) -> bytes:
    return sha256(b"powernode-cert-split" + parent + txid)


def root_id(device: bytes, interval: int) -> bytes:
    return sha256(b"powernode-cert" + device + interval.to_bytes(8, "big"))


@dataclass
class Chain:
    """A chain applied block by block on one MemoryState, timing apply_block."""

    params: ChainParams
    state: MemoryState = field(default_factory=MemoryState)
    root: bytes = b""
    prev: bytes = b""
    height: int = 0
    time: int = T0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    keep: bool = False  # keep the blocks, to connect them to a real chain later
    cpu: float = 0.0  # this thread's CPU seconds in apply_block: robust to a busy machine
    blocks: list[Block] = field(default_factory=list, repr=False)

    @classmethod
    def start(cls, params: ChainParams, *, keep: bool = False) -> Chain:
        g = genesis_result(params)
        c = cls(params, keep=keep)
        c.state.apply_values(g.changed)
        c.root, c.prev = g.state_root, genesis_block(params).hash
        return c

    def connect(self, body: Sequence[Transaction], at: int) -> float:
        """Build the block untimed (for its state root), then time apply_block."""
        parent_height, parent_time = self.height, self.time
        self.height += 1
        self.time = max(self.time + 1, at)
        ctx = ExecContext(self.height, self.time, MINER, self.params)
        tmpl = build_body(self.state, self.root, ctx, body, max_bytes=self.params.max_block_bytes)
        if tmpl.rejected:
            raise RuntimeError(
                f"block {self.height}: {[(e.code, e.message) for _, e in tmpl.rejected[:3]]}"
            )
        header = genesis_block(self.params).header.replace(
            height=self.height,
            prev_hash=self.prev,
            timestamp=self.time,
            miner=MINER,
            tx_root=merkle_root([tx.txid for tx in body]),
            state_root=tmpl.result.state_root,
        )
        if self.keep:  # a real chain checks the ASERT target and the PoW
            p = self.params
            target = asert_target(
                anchor_target=p.initial_target,
                anchor_timestamp=p.timestamp,
                parent_height=parent_height,
                parent_timestamp=parent_time,
                block_time=p.block_time,
                halflife=p.asert_halflife,
                pow_limit=p.pow_limit,
            )
            header = solve(header.replace(target=target_to_bytes(target)))
        block = make_block(header, tuple(body))
        del tmpl
        c0, t0 = time.thread_time(), time.perf_counter()
        result = apply_block(self.state, self.root, block, self.params)
        dt = time.perf_counter() - t0
        self.cpu += time.thread_time() - c0
        self.state.apply_values(result.changed)
        self.root, self.prev = result.state_root, block.hash
        if self.keep:
            self.blocks.append(block)
        bad = [r for r in result.receipts if not r.ok]
        self.failed += len(bad)
        self.failures += [f"{r.code}: {r.message}" for r in bad[:3]]
        return dt


@dataclass
class Fleet:
    """Participants owning approved devices, each with its meter key."""

    owners: list[KeyPair]
    meters: list[KeyPair]
    devices: list[bytes]
    authority: KeyPair
    nonces: dict[bytes, int]
    params: ChainParams

    def sign(self, key: KeyPair, tx_type: str, payload: list[Any]) -> Transaction:
        nonce = self.nonces.get(key.address, 0)
        self.nonces[key.address] = nonce + 1
        return sign_tx(
            key, chain_id=CHAIN_ID, tx_type=tx_type, nonce=nonce, fee=FEE, payload=payload
        )


def make_params(owners: int, *, max_block_txs: int = 10_000) -> tuple[ChainParams, list[KeyPair]]:
    keys = [KeyPair.from_seed(sha256(b"bench-certs-owner-%d" % i)) for i in range(owners)]
    authority = KeyPair.from_seed(sha256(b"bench-certs-authority"))
    doc = dev_genesis(
        {k.address: 10**12 for k in [authority, *keys]},
        chain_id=CHAIN_ID,
        timestamp=T0,
        target="ff" * 32,
        max_block_txs=max_block_txs,
        max_block_bytes=8 * 1024 * 1024,
        certificates={
            "authorities": [authority.address.hex()],
            "interval_seconds": INTERVAL,
            "reading_window": 365 * 86_400,
            "validity": 3 * 365 * 86_400,
        },
    )
    return parse_genesis(doc), [authority, *keys]


def setup_fleet(owners: int, devices_per_owner: int, *, keep: bool = False) -> tuple[Chain, Fleet]:
    """Genesis, then a block of registrations and one of approvals (untimed)."""
    params, keys = make_params(owners)
    authority, owner_keys = keys[0], keys[1:]
    chain = Chain.start(params, keep=keep)
    fleet = Fleet(owner_keys, [], [], authority, {}, params)
    regs: list[Transaction] = []
    for i, k in enumerate(owner_keys):
        regs.append(fleet.sign(k, "participant.register", ["producer", f"zone-{i % 50}", 10**9]))
        for j in range(devices_per_owner):
            meter = KeyPair.from_seed(sha256(b"bench-certs-meter-%d-%d" % (i, j)))
            source = SOURCES[(i + j) % len(SOURCES)]
            payload = ["generation", source, CAPACITY_W, f"zone-{i % 50}", 40, meter.pubkey]
            tx = fleet.sign(k, "device.register", payload)
            regs.append(tx)
            fleet.meters.append(meter)
            fleet.devices.append(tx.txid)
    for start in range(0, len(regs), 5000):
        chain.connect(regs[start : start + 5000], T0 + 1)
    approvals = [fleet.sign(authority, "device.approve", [d]) for d in fleet.devices]
    for start in range(0, len(approvals), 5000):
        chain.connect(approvals[start : start + 5000], T0 + 2)
    if chain.failed:
        raise RuntimeError(f"setup: {chain.failed} failed receipts: {chain.failures}")
    return chain, fleet


def sign_readings(fleet: Fleet, intervals: int) -> list[Transaction]:
    """One reading per device per interval, interval by interval (a fleet
    reporting), relayed by the device's owner."""
    per_owner = len(fleet.devices) // len(fleet.owners)
    txs: list[Transaction] = []
    total = intervals * len(fleet.devices)
    for t in range(intervals):
        start = T0 + t * INTERVAL
        for d, (device, meter) in enumerate(zip(fleet.devices, fleet.meters, strict=True)):
            produced = 1000 + (d * 7919 + t * 104_729) % 900_000  # Wh, deterministic spread
            msg = reading_message(device, start, produced, 0)
            payload = [device, start, produced, 0, meter.pubkey, meter.sign(msg)]
            txs.append(fleet.sign(fleet.owners[d // per_owner], "meter.report", payload))
            if len(txs) % 20_000 == 0:
                progress(f"signed {len(txs):,} of {total:,} readings")
    return txs


def run_blocks(
    chain: Chain, txs: Sequence[Transaction], block_txs: int, at: Callable[[int], int], what: str
) -> dict[str, Any]:
    chunks = [txs[i : i + block_txs] for i in range(0, len(txs), block_txs)]
    times: list[float] = []
    failed0, cpu0 = chain.failed, chain.cpu
    gc.collect()
    for b, chunk in enumerate(chunks):
        times.append(chain.connect(chunk, at(b)))
        if len(chunks) >= 8 and (b + 1) % max(1, len(chunks) // 4) == 0:
            progress(f"{what}: {b + 1} of {len(chunks)} blocks applied")
    ms = [t * 1000 for t in times]
    fig: dict[str, Any] = {"txs": len(txs), "blocks": len(chunks), "block_txs": block_txs}
    fig |= {"seconds": sum(times), "per_s": len(txs) / sum(times)}
    fig |= {"failed": chain.failed - failed0, "cpu_s": chain.cpu - cpu0}
    fig |= {"block_ms_p50": percentile(ms, 50), "block_ms_p99": percentile(ms, 99)}
    progress(f"{what}: {fig['per_s']:,.0f} txs/s through block application")
    return fig


def reading_signatures(txs: Sequence[Transaction], n: int) -> dict[str, Any]:
    """Both signatures of a reading (``verify_tx``), serially, on this thread."""
    sample = [txs[i % len(txs)] for i in range(n)]
    t0 = time.perf_counter()
    for tx in sample:
        verify_tx(tx)
    dt = time.perf_counter() - t0
    return {"readings": n, "seconds": dt, "readings_per_s_1t": n / dt}


def state_bytes(state: MemoryState, namespaces: Sequence[str]) -> dict[str, int]:
    """Bytes of the stored form (namespace, key, packed value) per namespace."""
    out = dict.fromkeys(namespaces, 0)
    for ns in out:
        for key, value in state.namespace(ns).items():
            obj = value.to_obj() if hasattr(value, "to_obj") else value
            out[ns] += len(ns) + len(key) + len(encoding.encode(obj))
    return out


def deep_lineage(chain: Chain, fleet: Fleet, depth: int) -> tuple[bytes, list[Transaction]]:
    """A certificate ``depth`` splits deep: two owners hand a shrinking part
    back and forth, each block one split. Returns the last child's id."""
    a, b = fleet.owners[0], fleet.owners[1]
    device, meter = fleet.devices[0], fleet.meters[0]
    # A fresh interval far after the readings' ones, so the root is new.
    start = T0 + 10_000 * INTERVAL
    produced = depth * 2 + 10
    msg = reading_message(device, start, produced, 0)
    tx = fleet.sign(a, "meter.report", [device, start, produced, 0, meter.pubkey, meter.sign(msg)])
    when = start + INTERVAL + 1
    chain.connect([tx], when)
    cert = root_id(device, start)
    owner, other = a, b
    remaining = produced
    txs: list[Transaction] = [tx]
    for i in range(depth):
        part = remaining - 1
        t = fleet.sign(owner, "cert.transfer", [cert, other.address, part])
        chain.connect([t], when + 1 + i)
        txs.append(t)
        cert, remaining = child_id(cert, t.txid), part
        owner, other = other, owner
        if (i + 1) % 250 == 0:
            progress(f"lineage: {i + 1} of {depth} splits")
    if chain.failed:
        raise RuntimeError(f"lineage: failed receipts {chain.failures}")
    return cert, txs


def proof_figures(workdir: Path, depth: int) -> dict[str, Any]:
    """``cert.proof`` of a certificate ``depth`` splits deep, built from a
    chain store (as the node's RPC builds it) and verified offline."""
    chain, fleet = setup_fleet(2, 1, keep=True)
    leaf, _ = deep_lineage(chain, fleet, depth)
    store = BlockStore(workdir / "proof-chain.db")
    store.open()
    try:
        real = RealChain(params=chain.params, store=store)
        real.load()
        for i, block in enumerate(chain.blocks):
            status, _ = real.submit_block(block, now=block.header.timestamp, mono=0.0)
            if real.height != i + 1:
                raise RuntimeError(f"block {i + 1} not connected: {status}")
        progress(f"proof: {len(chain.blocks):,} blocks in a chain store")
        builds, checks = [], []
        raw = b""
        for _ in range(3):
            t0 = time.perf_counter()
            raw = build_proof(real, leaf).encode()
            t1 = time.perf_counter()
            result = verify_proof(raw, chain.params)
            t2 = time.perf_counter()
            builds.append(t1 - t0)
            checks.append(t2 - t1)
        proved = result.to_json()["cert"]
        if proved["remaining_wh"] != chain.state.get(("crt.cert", leaf)).remaining_wh:
            raise RuntimeError("the proof proves another amount than the state holds")
    finally:
        store.close()
    return {
        "proof_ms": min(builds) * 1000,
        "verify_ms": min(checks) * 1000,
        "proof_bytes": len(raw),
        "proof_txs": depth + 3,
        "proof_headers": len(chain.blocks),
    }


def stored_growth(chain: Chain, setup_blocks: int, workdir: Path, label: str) -> int:
    """Bytes ``chain``'s blocks after its first ``setup_blocks`` add to a real
    chain store: its blocks connected into ``workdir/chain.db``, measured as
    SQLite backups (so no free pages) after the setup and at the end."""
    workdir.mkdir(parents=True, exist_ok=True)
    store = BlockStore(workdir / "chain.db")
    store.open()
    try:
        real = RealChain(params=chain.params, store=store)
        real.load()
        before = 0
        for i, block in enumerate(chain.blocks):
            real.submit_block(block, now=block.header.timestamp, mono=0.0)
            if real.height != i + 1:
                raise RuntimeError(f"{label}: block {i + 1} not connected")
            if i + 1 == setup_blocks:
                before = _backup_bytes(store, workdir / "before.db")
        return _backup_bytes(store, workdir / "after.db") - before
    finally:
        store.close()


def _backup_bytes(store: BlockStore, path: Path) -> int:
    with sqlite3.connect(path) as dst:
        store.db.backup(dst)
    dst.close()
    return path.stat().st_size
