"""Verify a certificate proof against a genesis file, offline and pure.

``verify_proof(raw, params)`` checks, in this order, and raises the typed
error of the first check that fails:

1. the file: magic, version, canonical encoding, bounds (``bad_proof``);
2. the chain: its chain id and genesis hash are the genesis file's
   (``proof_wrong_chain``);
3. the headers: heights 1..tip linked by hash (``proof_broken_link``), each
   target the ASERT schedule's, PoW met, time above the median of the
   eleven before, and with ``now`` not beyond ``max_future`` ahead
   (``proof_bad_header``);
4. every lineage tx: in chain order at a height the headers cover
   (``proof_broken_link``), of this chain (``proof_wrong_chain``), its
   Merkle branch leading to its block's ``tx_root`` (``proof_bad_branch``),
   its signature and meter co-signature (``state.registry.verify_tx``;
   ``proof_bad_signature``);
5. the replay of the lineage (``replay.py``; ``proof_bad_lineage``);
6. the caller's bars: ``min_work`` (chain work to the tip, genesis
   included) and ``min_confirmations`` (blocks from the last lineage tx's
   block to the tip, that block included) (``proof_too_little_work``).

The result says what was proven and, as plainly, what a proof cannot prove.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from powernode.core.errors import (
    BadProof,
    BadSignature,
    PowernodeError,
    ProofBadBranch,
    ProofBadLineage,
    ProofBadSignature,
    ProofBrokenLink,
    ProofTooLittleWork,
    ProofWrongChain,
)
from powernode.core.merkle import verify_inclusion
from powernode.core.params import ChainParams
from powernode.core.tx import decode_tx
from powernode.engines.certificates.records import ACTIVE, SPLIT
from powernode.state.certproof.format import CertProof, parse_proof
from powernode.state.certproof.headers import check_headers
from powernode.state.certproof.replay import Cert, Device, Placed, Step, replay
from powernode.state.genesis import genesis_block
from powernode.state.registry import verify_tx

# Said of every proof: no file can show what is not in it.
CANNOT_PROVE = (
    "that no other tx touched the certificate after the file's last lineage tx, up to the"
    " tip or later (a later transfer, split or retirement, or its expiry, would not be in it)",
    "that these headers are the chain the network follows: only that they carry the work"
    " shown; compare the tip and work with a node or explorer you trust, or require"
    " --min-work / --min-confirmations",
    "that each lineage tx succeeded: headers commit to txs, not to receipts; the replay"
    " re-checks every rule that needs only the lineage, not those that need other state",
    "for a root issued from a meter.batch, that the batch recorded the device's entry"
    " rather than skipping it (meter.skipped, e.g. an earlier reading of the interval in"
    " its block): receipts are not in the file either",
    "that the registering tx succeeded (its sender a market participant, its meter key"
    " unused by another device) and that the device was not retired before the issuance",
    "that no tx left out of the file (a split of an ancestor off this lineage) changed"
    " an ancestor's remaining Wh",
    "that no settlement or PPA delivery (made by a block hook, in no tx) split energy off"
    " the certificate or an ancestor before a lineage tx: a file that leaves such a step"
    " out can still verify, with the remaining Wh it would have had without it",
    "that the (device, interval) had no earlier certificate or reading that took its"
    " claim (one issuance per interval is enforced by consensus, from state)",
    "anything about the device's real output: only that its registered meter key"
    " signed the reading",
)


def _counted(n: int, noun: str) -> str:
    # The CLI prints these lines, and its counts agree with their noun
    # (README, "Using the CLI"); cli.common.counted is a layer above.
    return f"{n} {noun if n == 1 else noun + 's'}"


@dataclass(frozen=True, slots=True)
class ProofResult:
    chain_id: str
    genesis_hash: bytes
    tip_height: int
    tip_hash: bytes
    tip_time: int
    latest_time: int  # the highest header time up to the tip
    chain_work: int
    confirmations: int  # blocks from the last lineage tx's block to the tip
    cert: Cert
    root: bytes
    device: Device
    steps: tuple[Step, ...]
    lineage_txs: int
    headers: int
    # Rules that depended on a clock the file cannot pin (see replay.py).
    unchecked: tuple[str, ...]
    cannot_prove: tuple[str, ...] = CANNOT_PROVE

    @property
    def status_at_tip(self) -> str:
        """The certificate's status at the tip (expiry is computed, as the
        engine's queries compute it, never stored), by the latest header
        time: the market clock once the market has seen a tx."""
        if self.cert.status == ACTIVE and self.latest_time >= self.cert.expires:
            return "expired"
        return self.cert.status

    @property
    def _from_reading(self) -> bool:
        """Whether the root was issued from a meter reading (else by an
        authority's cert.issue, which no meter signed)."""
        return any(st.kind == "reading" for st in self.steps)

    def proved(self) -> list[str]:
        c, d = self.cert, self.device
        kwh = f"{c.wh / 1000:g}"  # display only; every check above is in integer Wh
        out = [
            f"chain {self.chain_id}, genesis {self.genesis_hash.hex()}",
            f"{_counted(self.headers, 'header')} from genesis to tip {self.tip_height}"
            f" ({self.tip_hash.hex()}), linked, PoW and ASERT targets checked;"
            f" chain work {self.chain_work}",
            f"{_counted(self.lineage_txs, 'lineage tx')}, each in its block (Merkle branch to the"
            f" header's tx root) and signed"
            + (" (the reading by the device's meter key)" if self._from_reading else ""),
            f"device {d.id.hex()} registered by {d.owner.hex()} at height"
            f" {d.registered_height} ({d.source}, {d.location}, {d.carbon_intensity} gCO2/kWh,"
            f" {d.capacity_w} W), approved by authority {d.approved_by.hex()} at height"
            f" {d.approved_height}",
            f"certificate {c.id.hex()}: {c.ctype} {c.source}, {c.location},"
            f" {c.carbon_intensity} gCO2/kWh, interval {c.interval_start}+{c.interval_seconds}s,"
            f" {c.wh} Wh ({kwh} kWh), root {self.root.hex()}",
            f"owner {c.owner.hex()}, remaining {c.remaining_wh} Wh, status {self.status_at_tip}"
            f" at the tip (expires {c.expires})",
        ]
        if c.claim is not None:
            cl = c.claim
            out.append(
                f"retired for {cl.beneficiary!r} ({cl.purpose!r}), period {cl.period_start}.."
                f"{cl.period_end}, by {cl.retired_by.hex()}"
            )
        out.append(
            f"the lineage replays ({_counted(len(self.steps), 'step')}); last lineage block has"
            f" {_counted(self.confirmations, 'confirmation')}"
        )
        return out

    def to_json(self) -> dict[str, Any]:
        c = self.cert
        claim = None
        if c.claim is not None:
            claim = {
                "beneficiary": c.claim.beneficiary,
                "purpose": c.claim.purpose,
                "period_start": c.claim.period_start,
                "period_end": c.claim.period_end,
                "retired_by": c.claim.retired_by.hex(),
            }
        return {
            "valid": True,
            "chain_id": self.chain_id,
            "genesis": self.genesis_hash.hex(),
            "tip": {"height": self.tip_height, "hash": self.tip_hash.hex(), "time": self.tip_time},
            "chain_work": self.chain_work,
            "confirmations": self.confirmations,
            # The fields of the engine's cert.get and cert.trace answers
            # (less the issue time, which the replay cannot pin).
            "cert": {
                "id": c.id.hex(),
                "root": self.root.hex(),
                "owner": c.owner.hex(),
                "producer": c.producer.hex(),
                "device": c.device.hex(),
                "source": c.source,
                "location": c.location,
                "carbon_intensity": c.carbon_intensity,
                "type": c.ctype,
                "interval_start": c.interval_start,
                "interval_end": c.interval_start + c.interval_seconds,
                "interval_seconds": c.interval_seconds,
                "wh": c.wh,
                "remaining_wh": c.remaining_wh,
                "status": self.status_at_tip,
                "parent": c.parent.hex() or None,
                "issued_txid": c.issued_txid.hex(),
                "issued_height": c.issued_height,
                "expires": c.expires,
                "claim": claim,
            },
            "steps": [
                {
                    "cert": s.cert.hex(),
                    "kind": s.kind,
                    "txid": s.txid.hex(),
                    "height": s.height,
                    "from": s.frm.hex() or None,
                    "to": s.to.hex() or None,
                    "wh": s.wh,
                    "other": s.other.hex() or None,
                    "note": s.note,
                }
                for s in self.steps
            ],
            "proved": self.proved(),
            "unchecked": list(self.unchecked),
            "cannot_prove": list(self.cannot_prove),
        }


def _placed(proof: CertProof, params: ChainParams) -> list[Placed]:
    headers = proof.headers
    out: list[Placed] = []
    last = (0, -1)
    seen: set[bytes] = set()
    nonces: dict[bytes, int] = {}
    for i, lt in enumerate(proof.txs):
        if (lt.height, lt.index) <= last:
            raise ProofBrokenLink(f"lineage tx {i} is not after the one before it in chain order")
        last = (lt.height, lt.index)
        if not 1 <= lt.height <= len(headers):
            raise ProofBrokenLink(f"lineage tx {i} is at height {lt.height}, no header has it")
        try:
            tx = decode_tx(lt.raw)
        except PowernodeError as exc:
            raise BadProof(f"lineage tx {i}: {exc.code}: {exc.message}") from exc
        if tx.chain_id != params.chain_id:
            raise ProofWrongChain(f"lineage tx {i} is signed for chain {tx.chain_id!r}")
        root = headers[lt.height - 1].tx_root
        if not verify_inclusion(tx.txid, lt.index, lt.tx_count, lt.branch, root):
            raise ProofBadBranch(
                f"lineage tx {i} ({tx.txid.hex()[:16]}): branch does not lead to the tx root"
                f" of block {lt.height}"
            )
        try:
            verify_tx(tx)
        except BadSignature as exc:
            raise ProofBadSignature(
                f"lineage tx {i} ({tx.txid.hex()[:16]}): {exc.code}: {exc.message}"
            ) from exc
        # What a chain's nonces guarantee, checked from the lineage alone: a
        # tx counts once, and a sender's txs come in nonce order.
        if tx.txid in seen:
            raise ProofBadLineage(f"lineage tx {i} ({tx.txid.hex()[:16]}) is in the file twice")
        seen.add(tx.txid)
        if nonces.get(tx.sender, -1) >= tx.nonce:
            raise ProofBadLineage(f"lineage tx {i}: its sender's nonces do not increase")
        nonces[tx.sender] = tx.nonce
        out.append(Placed(tx, lt.height, lt.index))
    return out


def _trace(steps: list[Step], ancestry: list[bytes]) -> tuple[Step, ...]:
    """The steps in ``cert.trace``'s shape: each ancestor's steps up to the
    split that made the next certificate of the path (that split shown once,
    as the child's first step), then every step of the certificate."""
    path = ancestry[::-1]  # root first
    out: list[Step] = []
    for cid, nxt in zip(path, [*path[1:], None], strict=True):
        for s in steps:
            if s.cert != cid:
                continue
            if nxt is not None and s.kind == SPLIT and s.other == nxt:
                break
            out.append(s)
    return tuple(out)


def verify_proof(
    raw: bytes,
    params: ChainParams,
    *,
    now: int | None = None,
    min_work: int = 0,
    min_confirmations: int = 0,
) -> ProofResult:
    """What the proof in ``raw`` proves under the chain ``params`` (see the
    module doc); a typed BadProof error naming the first failure otherwise.
    ``now`` (unix seconds) also refuses headers from beyond the node's
    ``max_future``; without it no clock is read."""
    proof = parse_proof(raw)
    genesis = genesis_block(params).header
    if proof.chain_id != params.chain_id:
        raise ProofWrongChain(
            f"proof is for chain {proof.chain_id!r}, the genesis file for {params.chain_id!r}"
        )
    if proof.genesis_hash != genesis.hash:
        raise ProofWrongChain(
            f"proof is from genesis {proof.genesis_hash.hex()[:16]}, the genesis file gives"
            f" {genesis.hash.hex()[:16]}"
        )
    chain = check_headers(genesis, proof.headers, params, now=now)
    lineage = _placed(proof, params)
    done = replay(params, lineage, proof.cert_id, proof.headers, chain.max_times)
    tip = chain.tip
    confirmations = tip.height - lineage[-1].height + 1
    if chain.work < min_work:
        raise ProofTooLittleWork(f"chain work {chain.work} is below the {min_work} asked for")
    if confirmations < min_confirmations:
        raise ProofTooLittleWork(
            f"{_counted(confirmations, 'confirmation')}, {min_confirmations} asked for"
        )
    return ProofResult(
        chain_id=params.chain_id,
        genesis_hash=genesis.hash,
        tip_height=tip.height,
        tip_hash=tip.hash,
        tip_time=tip.timestamp,
        latest_time=chain.max_times[-1],
        chain_work=chain.work,
        confirmations=confirmations,
        cert=done.certs[proof.cert_id],
        root=done.root,
        device=done.device,
        steps=_trace(done.steps, done.ancestry(proof.cert_id)),
        lineage_txs=len(lineage),
        headers=len(proof.headers),
        unchecked=tuple(done.unchecked),
    )
