"""Certificate proofs (state/certproof, chain/certproof): genuine proofs are
accepted and prove what the node's state says; every tampering is refused
with its reason.

The chain is a real ledger (the metering driver): a solar device of ALICE
approved by AUTHORITY, a 100 kWh reading that issues the root, then
transfers, splits and retirements. Tampering comes in two kinds: bytes of
the file changed (the forger has no PoW to spend), and forged chains (the
forger re-mines every header after the block it changed: the dev targets
make that free, so these tests show that what PoW cannot stop, the
signatures and the replay do).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from powernode.chain.certproof import build_proof, lineage_txids
from powernode.cli.common import UserError
from powernode.cli.proof import work_arg
from powernode.core import encoding
from powernode.core.block import Block, make_block
from powernode.core.crypto import KeyPair
from powernode.core.errors import (
    BadProof,
    ProofBadHeader,
    ProofBadLineage,
    ProofTooLittleWork,
    ProofWrongChain,
)
from powernode.core.merkle import inclusion_path, merkle_root
from powernode.core.params import ChainParams
from powernode.core.tx import Transaction, decode_tx
from powernode.devnet.devchain import solve
from powernode.engines.certificates import queries as cert_queries
from powernode.engines.certificates.records import child_id, root_id
from powernode.state.certproof import (
    MAGIC,
    VERSION,
    CertProof,
    LineageTx,
    parse_proof,
    verify_proof,
)
from powernode.state.certproof import format as proof_format
from powernode.state.certproof.format import MAX_PROOF_BYTES
from powernode.state.genesis import genesis_block
from tests.unit.helpers import ALICE, BOB, CAROL, LedgerFactory, active_blocks, transfer
from tests.unit.market_helpers import market_tx
from tests.unit.metering_helpers import (
    AUTHORITY,
    INTERVAL,
    INTERVAL_END,
    KWH,
    METER,
    METER_B,
    T0,
    Metering,
    batch_entry,
    batch_tx,
    certificates_section,
    meter_key,
    open_metering,
    report_payload,
)

# A target 2^12 times harder than the trivial dev one: a changed header
# meets it by chance once in 4,096 tries, so the byte-flip test can tell a
# header that still meets its target (and must then prove the same) from
# one that does not. ~4,096 hashes a block: a fraction of a second.
OTHER_METER = meter_key(7)
HARD: dict[str, Any] = {"initial_target": "000" + "f" * 61, "pow_limit": "f" * 64}


def transfer_tx(m: Metering, sender: KeyPair, cid: bytes, to: KeyPair, wh: int) -> Transaction:
    return m.queue(market_tx(sender, "cert.transfer", [cid, to.address, wh], nonce=m.nonce(sender)))


def retire_tx(
    m: Metering, sender: KeyPair, cid: bytes, wh: int, beneficiary: str = "consumer_001"
) -> Transaction:
    payload = [cid, wh, beneficiary, "Shanghai office", T0, T0 + 3600]
    return m.queue(market_tx(sender, "cert.retire", payload, nonce=m.nonce(sender)))


class Story:
    """The ledger and the ids the tests prove."""

    def __init__(self, factory: LedgerFactory, *, batch: bool = False, **overrides: Any) -> None:
        self.m = m = open_metering(factory, **overrides)
        self.device = m.active_device(ALICE, METER)
        # With ``batch``, the reading is one entry of a meter.batch that
        # also carries another device's.
        self.other = m.active_device(CAROL, OTHER_METER) if batch else b""
        m.mine(INTERVAL_END)
        # Coin transfers around the reading: its branch is not empty.
        filler(self, 2)
        if batch:
            entries = [
                batch_entry(METER, self.device, T0, 100 * KWH),
                batch_entry(OTHER_METER, self.other, T0, 7 * KWH),
            ]
            self.reading = m.batch(BOB, T0, entries)
        else:
            self.reading = m.report(ALICE, METER, self.device, T0, produced=100 * KWH)
        filler(self, 1)
        m.mine()
        m.ok(self.reading)
        self.root = root_id(self.device, T0)

    def mine_ok(self, *txs: Transaction) -> None:
        self.m.mine()
        self.m.ok(*txs)

    @property
    def params(self) -> ChainParams:
        return self.m.params

    def proof(self, cid: bytes) -> bytes:
        return build_proof(self.m.ledger.chain, cid).encode()


def filler(s: Story, n: int) -> None:
    """``n`` coin transfers in the next block, so lineage txs share it."""
    for _ in range(n):
        s.m.queue(transfer(CAROL, ALICE, 1, nonce=s.m.nonce(CAROL)))


def the_demo(s: Story) -> bytes:
    """ALICE splits 40 kWh to BOB, who retires them: the child's id. Two
    coin transfers go before each, so their branches are not empty."""
    filler(s, 2)
    t = transfer_tx(s.m, ALICE, s.root, BOB, 40 * KWH)
    s.mine_ok(t)
    child = child_id(s.root, t.txid)
    filler(s, 2)
    r = retire_tx(s.m, BOB, child, 40 * KWH)
    filler(s, 2)
    s.mine_ok(r)
    s.m.mine()
    return child


def assert_proves_the_node_state(s: Story, cid: bytes, raw: bytes) -> dict[str, Any]:
    """The proof's certificate and trace are the node's (less the times the
    replay cannot pin)."""
    got = verify_proof(raw, s.params).to_json()
    tip_time = s.m.ledger.chain.tip.header.timestamp
    node = cert_queries.cert(s.m.state, cid, tip_time)
    assert node is not None
    for k in ("issued_time", "steps"):
        del node[k]
    traced = cert_queries.trace(s.m.state, cid)
    assert traced is not None
    mine = dict(got["cert"])
    assert mine.pop("root") == traced["root"]
    assert mine == node
    trace = traced["steps"]
    for st in trace:
        del st["time"]
    assert got["steps"] == trace
    assert got["valid"] is True
    assert got["tip"]["height"] == s.m.ledger.chain.height
    return got


# --- genuine proofs ---------------------------------------------------------------------


def test_root_only(factory: LedgerFactory) -> None:
    s = Story(factory)
    got = assert_proves_the_node_state(s, s.root, s.proof(s.root))
    c = got["cert"]
    assert (c["wh"], c["remaining_wh"], c["owner"], c["status"]) == (
        100 * KWH,
        100 * KWH,
        ALICE.address.hex(),
        "active",
    )
    assert (c["type"], c["source"], c["location"], c["carbon_intensity"]) == (
        "green",
        "solar",
        "Beijing",
        50,
    )
    assert [st["kind"] for st in got["steps"]] == ["reading"]
    assert got["confirmations"] == 1
    assert got["unchecked"] == []
    assert any("after the file's last lineage tx" in x for x in got["cannot_prove"])


def test_after_the_demo_split_and_retirement(factory: LedgerFactory) -> None:
    s = Story(factory)
    child = the_demo(s)
    got = assert_proves_the_node_state(s, child, s.proof(child))
    c = got["cert"]
    assert (c["wh"], c["owner"], c["status"]) == (40 * KWH, BOB.address.hex(), "retired")
    assert c["claim"]["beneficiary"] == "consumer_001"
    assert c["claim"]["retired_by"] == BOB.address.hex()
    assert [st["kind"] for st in got["steps"]] == ["reading", "split", "transfer", "retire"]
    assert got["confirmations"] == 2
    # The parent's proof shows it after the split: 60 kWh left, ALICE's.
    parent = assert_proves_the_node_state(s, s.root, s.proof(s.root))["cert"]
    assert (parent["remaining_wh"], parent["owner"], parent["status"]) == (
        60 * KWH,
        ALICE.address.hex(),
        "active",
    )


def test_after_splits_of_splits_whole_transfers_and_part_retirements(
    factory: LedgerFactory,
) -> None:
    s = Story(factory)
    m = s.m
    # The root splits twice (the first split is a sibling, not an ancestor,
    # of what is proven below) ...
    a = transfer_tx(m, ALICE, s.root, CAROL, 10 * KWH)
    b = transfer_tx(m, ALICE, s.root, BOB, 50 * KWH)
    s.mine_ok(a, b)
    cb = child_id(s.root, b.txid)
    # ... BOB's part moves whole to CAROL and back, then splits again ...
    w1 = transfer_tx(m, BOB, cb, CAROL, 50 * KWH)
    s.mine_ok(w1)
    w2 = transfer_tx(m, CAROL, cb, BOB, 50 * KWH)
    s.mine_ok(w2)
    g = transfer_tx(m, BOB, cb, CAROL, 20 * KWH)
    s.mine_ok(g)
    grand = child_id(cb, g.txid)
    # ... and CAROL retires part of the grandchild, then the rest of it.
    r1 = retire_tx(m, CAROL, grand, 5 * KWH, "first")
    s.mine_ok(r1)
    r2 = retire_tx(m, CAROL, grand, 15 * KWH, "rest")
    s.mine_ok(r2)
    part = child_id(grand, r1.txid)
    for cid in (s.root, cb, grand, part, child_id(s.root, a.txid)):
        assert_proves_the_node_state(s, cid, s.proof(cid))
    got = verify_proof(s.proof(grand), s.params).to_json()["cert"]
    assert (got["wh"], got["remaining_wh"], got["status"]) == (20 * KWH, 15 * KWH, "retired")
    assert got["claim"]["beneficiary"] == "rest"
    # The grandchild's lineage holds each ancestor's txs up to the split
    # that made the next one: the sibling split (a) took from the root
    # before b did, so it is in; what happens to the root after b is not.
    later = transfer_tx(m, ALICE, s.root, CAROL, 1 * KWH)
    s.mine_ok(later)
    ids = lineage_txids(s.m.ledger.chain, grand)
    assert ids == [
        s.device,
        ids[1],
        s.reading.txid,
        a.txid,
        b.txid,
        w1.txid,
        w2.txid,
        g.txid,
        r1.txid,
        r2.txid,
    ]
    assert later.txid not in ids and later.txid in lineage_txids(s.m.ledger.chain, s.root)


def test_a_certificate_from_a_batch_entry(factory: LedgerFactory) -> None:
    s = Story(factory, batch=True)
    got = assert_proves_the_node_state(s, s.root, s.proof(s.root))
    assert [st["kind"] for st in got["steps"]] == ["reading"]
    assert got["steps"][0]["txid"] == s.reading.txid.hex()
    assert got["cert"]["wh"] == 100 * KWH and got["unchecked"] == []
    # what the file cannot show of a batch: its entry was recorded, not skipped
    assert any("meter.batch" in x and "rather than skipping it" in x for x in got["cannot_prove"])
    # the other entry's certificate has its own proof from the same tx
    other = root_id(s.other, T0)
    assert assert_proves_the_node_state(s, other, s.proof(other))["cert"]["wh"] == 7 * KWH
    child = the_demo(s)
    got = assert_proves_the_node_state(s, child, s.proof(child))
    assert [st["kind"] for st in got["steps"]] == ["reading", "split", "transfer", "retire"]


def test_a_forged_batch_is_refused(factory: LedgerFactory) -> None:
    s = Story(factory, batch=True)
    blocks = active_blocks(s.m.ledger)
    txids = lineage_txids(s.m.ledger.chain, s.root)
    assert verify_proof(assemble(s.params, blocks, s.root, txids), s.params)
    reading = s.reading

    def forged(entries: list[list[Any]]) -> str:
        new = batch_tx(BOB, T0, entries, nonce=reading.nonce)
        ids = [new.txid if t == reading.txid else t for t in txids]
        with pytest.raises(BadProof) as info:
            verify_proof(assemble(s.params, forge(blocks, reading, new), s.root, ids), s.params)
        return info.value.code

    other = batch_entry(OTHER_METER, s.other, T0, 7 * KWH)
    # the device's entry signed by another key
    wrong = batch_entry(METER, s.device, T0, 100 * KWH, signer=METER_B)
    assert forged([wrong, other]) == "proof_bad_signature"
    # correctly signed by a meter that is not the device's
    assert forged([batch_entry(METER_B, s.device, T0, 100 * KWH), other]) == "proof_bad_lineage"
    # no entry of the device at all
    assert forged([other]) == "proof_bad_lineage"


def test_manual_issue(factory: LedgerFactory) -> None:
    s = Story(factory)
    m = s.m
    issue = m.queue(
        market_tx(
            AUTHORITY, "cert.issue", [s.device, T0 + INTERVAL, 30 * KWH], nonce=m.nonce(AUTHORITY)
        )
    )
    m.mine(INTERVAL_END + INTERVAL)
    m.ok(issue)
    cid = root_id(s.device, T0 + INTERVAL)
    got = assert_proves_the_node_state(s, cid, s.proof(cid))
    assert [st["kind"] for st in got["steps"]] == ["issue"]
    assert got["cert"]["wh"] == 30 * KWH
    # no meter signed this root: the proof does not say one did
    assert not any("meter key)" in x for x in verify_proof(s.proof(cid), s.params).proved())


def test_work_and_confirmation_bars(factory: LedgerFactory) -> None:
    s = Story(factory, **HARD)
    child = the_demo(s)
    raw = s.proof(child)
    r = verify_proof(raw, s.params)
    assert r.chain_work == s.m.ledger.chain.tip.work
    assert verify_proof(raw, s.params, min_work=r.chain_work, min_confirmations=r.confirmations)
    with pytest.raises(ProofTooLittleWork):
        verify_proof(raw, s.params, min_work=r.chain_work + 1)
    with pytest.raises(ProofTooLittleWork):
        verify_proof(raw, s.params, min_confirmations=r.confirmations + 1)
    # A proof cut at the last lineage block: the same lineage, less work on top.
    proof = parse_proof(raw)
    last = proof.txs[-1].height
    short = replace(proof, headers=proof.headers[:last]).encode()
    cut = verify_proof(short, s.params)
    assert cut.confirmations == 1 and cut.chain_work < r.chain_work
    with pytest.raises(ProofTooLittleWork, match=r"^1 confirmation, 2 asked for$"):
        verify_proof(short, s.params, min_confirmations=2)


def test_clock_rule_only_with_now(factory: LedgerFactory) -> None:
    s = Story(factory)
    raw = s.proof(s.root)
    tip = s.m.ledger.chain.tip.header.timestamp
    verify_proof(raw, s.params, now=tip - s.params.max_future)
    with pytest.raises(ProofBadHeader, match="ahead of now"):
        verify_proof(raw, s.params, now=tip - s.params.max_future - 1)


# --- tampering: bytes of the file ----------------------------------------------------------


def flips(raw: bytes) -> list[tuple[int, int, bytes]]:
    out = []
    for i in range(len(raw)):
        for bit in (0x01, 0x80):
            b = bytearray(raw)
            b[i] ^= bit
            out.append((i, bit, bytes(b)))
    return out


def test_every_flipped_byte_is_refused_or_proves_the_same(factory: LedgerFactory) -> None:
    """Flip each byte of a small proof (two ways): the verifier refuses it,
    or it proves exactly the same certificate from the same lineage. The
    second happens only where the file has slack no rule can see: a block's
    tx count that gives the same audit-path shape, or the tip header
    changed so that it still meets its target (then only the tip's hash and
    time differ)."""
    s = Story(factory, **HARD)
    raw = s.proof(s.root)
    genuine = verify_proof(raw, s.params).to_json()
    proof = parse_proof(raw)
    tip_obj = encoding.encode(proof.headers[-1].to_obj())
    tip_at = raw.rindex(tip_obj)
    reasons: dict[str, int] = {}
    same: list[tuple[int, str]] = []
    for i, bit, bad in flips(raw):
        try:
            got = verify_proof(bad, s.params).to_json()
        except BadProof as exc:
            reasons[exc.code] = reasons.get(exc.code, 0) + 1
            continue
        if tip_at <= i < tip_at + len(tip_obj):
            # The tip header changed and still meets its target: only the
            # tip (its hash and time, and the "proved" line naming the hash)
            # may differ; the certificate, its lineage and the work may not.
            def but_tip(r: dict[str, Any]) -> dict[str, Any]:
                return {**r, "tip": None, "proved": r["proved"][:1] + r["proved"][2:]}

            assert but_tip(got) == but_tip(genuine), (i, bit)
            same.append((i, "tip header"))
        else:
            assert got == genuine, (i, bit)
            same.append((i, "tx count"))
    # Every way the file can be wrong showed up.
    assert {"bad_proof", "proof_broken_link", "proof_bad_header", "proof_bad_branch"} <= set(
        reasons
    ), reasons
    assert "proof_wrong_chain" in reasons and "proof_bad_lineage" in reasons, reasons
    # The slack is small: a few of thousands of flips.
    assert len(same) <= 8, same


def test_flipped_bytes_in_each_part_give_their_reason(factory: LedgerFactory) -> None:
    s = Story(factory, **HARD)
    child = the_demo(s)
    raw = s.proof(child)
    proof = parse_proof(raw)

    def refused(p: CertProof) -> str:
        with pytest.raises(BadProof) as info:
            verify_proof(p.encode(), s.params)
        return info.value.code

    # A tx's bytes: its id changes, so its branch no longer leads to the root.
    lt = proof.txs[3]
    bad_raw = bytearray(lt.raw)
    bad_raw[-5] ^= 1  # inside the signature: still a well-formed tx
    txs = list(proof.txs)
    txs[3] = replace(lt, raw=bytes(bad_raw))
    assert refused(replace(proof, txs=tuple(txs))) == "proof_bad_branch"
    # A branch hash.
    sib = bytearray(lt.branch[0])
    sib[0] ^= 1
    txs[3] = replace(lt, branch=(bytes(sib), *lt.branch[1:]))
    assert refused(replace(proof, txs=tuple(txs))) == "proof_bad_branch"
    # Another position in the block.
    txs[3] = replace(lt, index=lt.index + 1, tx_count=lt.tx_count + 1)
    assert refused(replace(proof, txs=tuple(txs))) == "proof_bad_branch"
    # A header in the middle: it misses its target; re-mined, the next
    # header no longer links to it.
    headers = list(proof.headers)
    headers[2] = headers[2].replace(miner=b"\x01" * 20)
    assert refused(replace(proof, headers=tuple(headers))) == "proof_bad_header"
    headers[2] = solve(headers[2])
    assert refused(replace(proof, headers=tuple(headers))) == "proof_broken_link"
    # A header re-mined with its time at the median of those before it.
    headers = list(proof.headers)
    headers[-1] = solve(headers[-1].replace(timestamp=headers[-2].timestamp - 100))
    assert refused(replace(proof, headers=tuple(headers))) == "proof_bad_header"
    # A header missing, or two swapped.
    assert refused(replace(proof, headers=proof.headers[:2] + proof.headers[3:])) == (
        "proof_broken_link"
    )
    # A tx at a height past the tip; txs out of chain order.
    assert refused(replace(proof, headers=proof.headers[: proof.txs[-1].height - 1])) == (
        "proof_broken_link"
    )
    assert refused(replace(proof, txs=(proof.txs[1], proof.txs[0], *proof.txs[2:]))) == (
        "proof_broken_link"
    )
    # A tx left out: the lineage no longer replays.
    assert refused(replace(proof, txs=proof.txs[:3] + proof.txs[4:])) == "proof_bad_lineage"
    # ... but the last one left out is a valid proof of the certificate as
    # it was before that tx: what "cannot prove" says first.
    older = verify_proof(replace(proof, txs=proof.txs[:-1]).encode(), s.params)
    assert (older.cert.status, older.cert.owner) == ("active", BOB.address)
    assert "after the file's last lineage tx" in older.cannot_prove[0]
    # Another certificate id.
    assert refused(replace(proof, cert_id=bytes(32))) == "proof_bad_lineage"


def test_another_genesis_is_refused(factory: LedgerFactory) -> None:
    s = Story(factory)
    raw = s.proof(s.root)
    for other in (
        replace(s.params, chain_id="other"),
        replace(s.params, timestamp=s.params.timestamp + 1),
        replace(s.params, allocations=s.params.allocations[1:]),
    ):
        with pytest.raises(ProofWrongChain):
            verify_proof(raw, other)
    # The proof's own chain id claim must match too.
    proof = parse_proof(raw)
    with pytest.raises(ProofWrongChain):
        verify_proof(replace(proof, chain_id="other").encode(), s.params)


def test_a_chain_of_too_little_work_is_refused(factory: LedgerFactory) -> None:
    """The same lineage on a chain of easier headers: the headers' targets
    are not the schedule's for the genesis (the forger cannot just lower
    the work), and re-mined at the genesis's target it carries no more work
    than the forger spent."""
    s = Story(factory, **HARD)
    raw = s.proof(s.root)
    proof = parse_proof(raw)
    easy = (1 << 256) - 1
    headers = []
    prev = proof.genesis_hash
    for h in proof.headers:
        h2 = solve(h.replace(prev_hash=prev, target=easy.to_bytes(32, "big")))
        headers.append(h2)
        prev = h2.hash
    with pytest.raises(ProofBadHeader, match="target"):
        verify_proof(replace(proof, headers=tuple(headers)).encode(), s.params)
    genuine = verify_proof(raw, s.params)
    with pytest.raises(ProofTooLittleWork):
        verify_proof(raw, s.params, min_work=genuine.chain_work * 2)


def test_not_a_proof(factory: LedgerFactory) -> None:
    s = Story(factory)
    raw = s.proof(s.root)
    for bad, why in (
        (b"", "msgpack"),
        (raw[:-1], "msgpack"),
        (raw + b"\x00", "trailing"),
        (encoding.encode(["other", VERSION]), "magic"),
        (encoding.encode([MAGIC, VERSION + 1]), "version"),
        (encoding.encode([MAGIC, VERSION, "x"]), "7 fields"),
        (b"\x00" * (MAX_PROOF_BYTES + 1), "limit"),
    ):
        with pytest.raises(BadProof, match=why) as info:
            verify_proof(bad, s.params)
        assert info.value.code == "bad_proof"


# --- tampering: forged chains, re-mined (PoW is free on the dev target) --------------------


def assemble(params: ChainParams, blocks: Sequence[Block], cid: bytes, txids: list[bytes]) -> bytes:
    """A proof from whole blocks (the builder's job, for forged chains)."""
    txs = []
    for b in blocks:
        ids = b.txids()
        for pos, t in enumerate(ids):
            if t in txids:
                txs.append(
                    LineageTx(b.height, pos, len(ids), b.txs[pos].raw, inclusion_path(ids, pos))
                )
    return CertProof(
        params.chain_id,
        genesis_block(params).hash,
        cid,
        tuple(b.header for b in blocks),
        tuple(txs),
    ).encode()


def forge(blocks: Sequence[Block], old: Transaction, new: Transaction) -> list[Block]:
    """``blocks`` with ``old`` replaced by ``new`` and every header from there
    on re-mined (tx root, links, PoW)."""
    out: list[Block] = []
    prev = None
    for b in blocks:
        txs = [new if t.txid == old.txid else t for t in b.txs]
        changed = prev is not None or any(t.txid == old.txid for t in b.txs)
        if not changed:
            out.append(b)
            continue
        h = b.header.replace(tx_root=merkle_root([t.txid for t in txs]))
        if prev is not None:
            h = h.replace(prev_hash=prev)
        h = solve(h)
        out.append(make_block(h, txs))
        prev = h.hash
    return out


def test_forged_chains_are_refused_by_signatures_and_replay(factory: LedgerFactory) -> None:
    s = Story(factory)
    child = the_demo(s)
    blocks = active_blocks(s.m.ledger)
    txids = lineage_txids(s.m.ledger.chain, child)
    # The genuine blocks assemble into an accepted proof.
    assert verify_proof(assemble(s.params, blocks, child, txids), s.params)
    by_id = {t.txid: t for b in blocks for t in b.txs}
    reading = by_id[s.reading.txid]
    retire = by_id[txids[-1]]

    def forged(old: Transaction, new: Transaction) -> str:
        ids = [new.txid if t == old.txid else t for t in txids]
        with pytest.raises(BadProof) as info:
            verify_proof(assemble(s.params, forge(blocks, old, new), child, ids), s.params)
        return info.value.code

    # A reading whose meter signature is another key's.
    p = report_payload(METER, s.device, T0, 100 * KWH, signer=METER_B)
    bad = market_tx(ALICE, "meter.report", p, nonce=reading.nonce)
    assert forged(reading, bad) == "proof_bad_signature"
    # More energy than was metered, re-signed by the relayer only.
    p = report_payload(METER, s.device, T0, 100 * KWH)
    p[2] = 200 * KWH
    assert forged(reading, market_tx(ALICE, "meter.report", p, nonce=reading.nonce)) == (
        "proof_bad_signature"
    )
    # A reading correctly signed by a meter that is not the device's.
    p = report_payload(METER_B, s.device, T0, 100 * KWH)
    assert forged(reading, market_tx(ALICE, "meter.report", p, nonce=reading.nonce)) == (
        "proof_bad_lineage"
    )
    # The retirement signed by someone who does not own the certificate.
    payload = list(retire.payload)
    assert forged(retire, market_tx(CAROL, "cert.retire", payload, nonce=0)) == (
        "proof_bad_lineage"
    )
    # Retiring more than the certificate holds.
    payload[1] = 41 * KWH
    assert forged(retire, market_tx(BOB, "cert.retire", payload, nonce=retire.nonce)) == (
        "proof_bad_lineage"
    )
    # An envelope signature that does not verify.
    raw = bytearray(retire.raw)
    raw[-1] ^= 1
    assert forged(retire, decode_tx(bytes(raw))) == "proof_bad_signature"


def test_a_tx_that_failed_in_its_block_is_refused_when_the_file_can_tell(
    factory: LedgerFactory,
) -> None:
    """Headers commit to txs, not receipts: a tx that failed is still in its
    block. A forger adding one to the lineage is refused where the rules
    that failed it can be replayed: here a transfer after the certificate
    expired (by its block's own time)."""
    s = Story(factory, certificates=certificates_section(validity=3600))
    expires = T0 + INTERVAL + 3600
    late = transfer_tx(s.m, ALICE, s.root, BOB, 10 * KWH)
    s.m.mine(expires)
    assert s.m.failed(late) == "cert_expired"
    # The node's proof leaves it out, and shows the certificate expired.
    genuine = verify_proof(s.proof(s.root), s.params)
    assert genuine.status_at_tip == "expired"
    assert late.txid not in lineage_txids(s.m.ledger.chain, s.root)
    assert genuine.cert.owner == ALICE.address
    # Put in, it is refused: no clock at that block lets it succeed.
    blocks = active_blocks(s.m.ledger)
    ids = [*lineage_txids(s.m.ledger.chain, s.root), late.txid]
    with pytest.raises(ProofBadLineage, match="not expired"):
        verify_proof(assemble(s.params, blocks, s.root, ids), s.params)


def test_the_same_tx_twice_is_refused(factory: LedgerFactory) -> None:
    s = Story(factory)
    child = the_demo(s)
    blocks = active_blocks(s.m.ledger)
    txids = lineage_txids(s.m.ledger.chain, child)
    by_id = {t.txid: t for b in blocks for t in b.txs}
    split = by_id[txids[3]]
    # A filler of the retirement's block replaced by a copy of the split.
    (retire_block,) = [b for b in blocks if txids[-1] in b.txids()]
    filler_tx = retire_block.txs[0]
    assert filler_tx.type == "transfer"
    forged = forge(blocks, filler_tx, split)
    with pytest.raises(ProofBadLineage, match="twice"):
        verify_proof(assemble(s.params, forged, child, txids), s.params)


def test_version_must_be_the_integer(factory: LedgerFactory) -> None:
    s = Story(factory)
    obj = parse_proof(s.proof(s.root)).to_obj()
    obj[1] = True  # msgpack true == 1 in Python; not a version
    with pytest.raises(BadProof, match="version"):
        verify_proof(encoding.encode(obj), s.params)


def test_min_work_option_parses_big_numbers() -> None:
    assert work_arg(str(2**200)) == 2**200
    # node.info's total_work is hex with 0x: the same number is taken as given.
    assert work_arg("0x180") == work_arg("0X180") == 384
    assert work_arg(hex(2**256)) == 2**256
    for bad in ("-1", "1e9", "0x", "0x-1", "0xg", hex(2**256 + 1), str(2**256 + 1), "", "\u0661"):
        with pytest.raises(UserError):
            work_arg(bad)


def test_proved_lines_count_with_their_noun(factory: LedgerFactory) -> None:
    # README, "Using the CLI": counts in text output agree with their noun.
    s = Story(factory)
    child = the_demo(s)
    raw = s.proof(child)
    proof = parse_proof(raw)
    last = proof.txs[-1].height
    cut = verify_proof(replace(proof, headers=proof.headers[:last]).encode(), s.params)
    assert cut.confirmations == 1
    lines = cut.proved()
    assert lines[-1].endswith("last lineage block has 1 confirmation")
    assert f"{cut.headers} headers from genesis" in lines[1]
    assert f"{cut.lineage_txs} lineage txs, each in its block" in lines[2]
    assert "the lineage replays (4 steps)" in lines[-1]


def test_the_json_answer_has_the_readme_fields(factory: LedgerFactory) -> None:
    # README, Certificate proofs: what `verify-proof --json` prints.
    s = Story(factory)
    got = verify_proof(s.proof(s.root), s.params).to_json()
    assert list(got) == [
        "valid", "chain_id", "genesis", "tip", "chain_work", "confirmations", "cert", "steps",
        "proved", "unchecked", "cannot_prove",
    ]  # fmt: skip
    assert set(got["tip"]) == {"height", "hash", "time"}
    node = cert_queries.cert(s.m.state, s.root, s.m.ledger.chain.tip.header.timestamp)
    assert node is not None
    assert set(got["cert"]) == set(node) - {"issued_time", "steps"} | {"root"}
    assert set(got["steps"][0]) == {
        "cert", "kind", "txid", "height", "from", "to", "wh", "other", "note",
    }  # fmt: skip


def test_magic_and_version_are_read_before_the_body(factory: LedgerFactory) -> None:
    # A later version's body need not decode as this one's: the reader says
    # which version it met, not that the body is malformed.
    s = Story(factory)
    later_with_a_map = (
        b"\x93" + encoding.encode(MAGIC) + encoding.encode(VERSION + 1) + b"\x81\x01\x02"
    )
    with pytest.raises(BadProof, match=f"proof version {VERSION + 1} is not supported"):
        verify_proof(later_with_a_map, s.params)
    # a non-canonical body (a 1 written in 9 bytes) of a later version, too
    noncanonical = (
        b"\x93"
        + encoding.encode(MAGIC)
        + encoding.encode(VERSION + 1)
        + b"\xcf"
        + (1).to_bytes(8, "big")
    )
    with pytest.raises(BadProof, match="version"):
        verify_proof(noncanonical, s.params)
    with pytest.raises(BadProof, match="no magic"):
        verify_proof(
            b"\x92" + encoding.encode("other") + b"\xcf" + (1).to_bytes(8, "big"), s.params
        )


def test_a_lineage_txs_bounds_are_checked_before_any_header_is_hashed(
    factory: LedgerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Story(factory)
    obj = parse_proof(s.proof(s.root)).to_obj()
    obj[6][0][4] = [b"\x00" * 32] * 18  # an audit path of 18 hashes
    hashed: list[object] = []
    monkeypatch.setattr(proof_format, "header_from_obj", lambda o: hashed.append(o))
    with pytest.raises(BadProof, match="branch of 18 hashes"):
        verify_proof(encoding.encode(obj), s.params)
    assert hashed == []


def test_a_root_no_meter_signed_is_not_said_to_be_signed_by_one(factory: LedgerFactory) -> None:
    s = Story(factory)
    read = verify_proof(s.proof(s.root), s.params)
    assert any("(the reading by the device's meter key)" in x for x in read.proved())
