"""Build a certificate proof (``state/certproof``) from a node's chain.

The lineage txs are found from state, as ``cert.trace`` finds them: the
device's registration (its id is that tx's id) and approval, then each
ancestor's steps up to the split that made the next certificate on the path
to this one, then every step of the certificate itself. Each tx is located
with the store's tx index, taken from its block with its RFC 6962 audit
path, and the file carries every main-chain header from height 1 to the tip.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from powernode.chain.chain import Chain
from powernode.core.block import Block
from powernode.core.errors import NotFound, ProofBadLineage, UnknownCert
from powernode.core.merkle import inclusion_paths
from powernode.engines.certificates import records as cert_records
from powernode.engines.certificates.moves import KINDS as HOOK_STEP_KINDS
from powernode.engines.metering import records as meter_records
from powernode.state.certproof import CertProof, LineageTx

_APPROVE = "device.approve"
# Said when a lineage has a step a block hook made (a trade settlement's or
# a PPA delivery's bundle): no tx did it, so no proof can carry or replay it.
HOOK_STEP_REASON = "lineage includes a settlement step, which a proof cannot replay"


def lineage_txids(chain: Chain, cert_id: bytes) -> list[bytes]:
    """The ids of the txs that made ``cert_id`` what it is, in chain order."""
    state = chain.state
    target = cert_records.cert(state, cert_id)
    if target is None:
        raise UnknownCert(f"no certificate {cert_id.hex()}")
    path = [(cert_id, target)]
    while path[-1][1].parent:
        pid = path[-1][1].parent
        parent = cert_records.cert(state, pid)
        if parent is None:
            raise NotFound(f"certificate {pid.hex()} of a lineage is missing")
        path.append((pid, parent))
    path.reverse()
    device = meter_records.device(state, target.device)
    if device is None or not device.approved_height:
        raise NotFound(f"device {target.device.hex()} of the certificate is not approved")
    out = [target.device, _approve_txid(chain, target.device, device.approved_height)]
    for i, (cid, c) in enumerate(path):
        nxt = path[i + 1][0] if i + 1 < len(path) else None
        for seq in range(c.steps):
            s = cert_records.step(state, cid, seq)
            if s is None:
                raise NotFound(f"step {seq} of certificate {cid.hex()} is missing")
            if s.kind in HOOK_STEP_KINDS or _hook_split(state, cid, s):
                raise ProofBadLineage(
                    f"{HOOK_STEP_REASON} ({s.kind} at height {s.height} on {cid.hex()[:16]})"
                )
            out.append(s.txid)
            if nxt is not None and s.kind == cert_records.SPLIT and s.other == nxt:
                break
    return _unique(out)


def _hook_split(state: Any, cid: bytes, s: cert_records.Step) -> bool:
    """True for the split step of a bundle: the split a settlement or PPA
    delivery made (the child's next step is the bundle itself)."""
    if s.kind != cert_records.SPLIT:
        return False
    other = cert_records.cert(state, s.other)
    child = s.other if other is not None and other.parent == cid else cid
    nxt = cert_records.step(state, child, 1)
    return nxt is not None and nxt.kind in HOOK_STEP_KINDS


def _unique(ids: Iterable[bytes]) -> list[bytes]:
    # A split shows on both sides, and a partial retirement is a split and a
    # retire step of one tx: each tx goes in the file once.
    seen: set[bytes] = set()
    out = []
    for t in ids:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def _approve_txid(chain: Chain, device_id: bytes, height: int) -> bytes:
    """The ``device.approve`` of ``device_id`` in the block at ``height`` (the
    device record keeps the height, not the tx)."""
    entry = chain.entry_at(height)
    if entry is None:
        raise NotFound(f"no block at height {height}")
    # The one that succeeded: a failed approval (a non-authority's) may
    # come earlier in the same block.
    receipts = chain.store.get_receipts(entry.hash) or []
    for tx, receipt in zip(chain.get_block(entry.hash).txs, receipts, strict=False):
        if tx.type == _APPROVE and tx.payload[:1] == [device_id] and receipt[0]:
            return tx.txid
    raise NotFound(f"no approval of device {device_id.hex()} at height {height}")


def build_proof(chain: Chain, cert_id: bytes) -> CertProof:
    """The proof of ``cert_id`` as of the chain's tip. UnknownCert if there is
    no such certificate; NotFound if the store lacks a lineage tx."""
    placed: list[tuple[int, int, bytes]] = []
    for txid in lineage_txids(chain, cert_id):
        loc = chain.store.find_tx(txid)
        if loc is None:
            raise NotFound(f"lineage tx {txid.hex()} is not in the tx index")
        block_hash, pos = loc
        entry = chain.index.get(block_hash)
        if entry is None or not chain.in_active(entry):
            raise NotFound(f"lineage tx {txid.hex()} is not on the main chain")
        placed.append((entry.height, pos, block_hash))
    placed.sort()
    # Per block, the tree's levels are built once for all its lineage txs.
    by_block: dict[bytes, list[int]] = {}
    for _, pos, block_hash in placed:
        by_block.setdefault(block_hash, []).append(pos)
    paths: dict[tuple[bytes, int], tuple[bytes, ...]] = {}
    blocks: dict[bytes, Block] = {}
    for block_hash, positions in by_block.items():
        block = blocks[block_hash] = chain.get_block(block_hash)
        found = inclusion_paths(block.txids(), positions)
        for pos, path in zip(positions, found, strict=True):
            paths[(block_hash, pos)] = path
    txs = []
    for height, pos, block_hash in placed:
        block = blocks[block_hash]
        raw = block.txs[pos].raw
        txs.append(LineageTx(height, pos, len(block.txs), raw, paths[(block_hash, pos)]))
    return CertProof(
        chain_id=chain.params.chain_id,
        genesis_hash=chain.genesis.hash,
        cert_id=cert_id,
        headers=tuple(e.header for e in chain.active[1:]),
        txs=tuple(txs),
    )
