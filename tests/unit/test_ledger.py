"""The ledger: mempool admission, block submission and their typed errors."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from powernode.chain.index import IndexEntry
from powernode.chain.ledger import Ledger
from powernode.chain.templates import TEMPLATE_MAX_AGE_S
from powernode.core.block import Block, decode_block, make_block
from powernode.core.errors import (
    AlreadyKnown,
    BadMerkleRoot,
    BadPow,
    BadSignature,
    BadStateRoot,
    BadTarget,
    InsufficientFunds,
    InvalidBlock,
    MempoolFull,
    NonceTooHigh,
    NonceTooLow,
    NotFound,
    Oversize,
    OversizeTx,
    PowernodeError,
    ReplacementUnderpriced,
    TimeTooNew,
    TimeTooOld,
    UnknownTxType,
    WrongChain,
)
from powernode.core.params import ChainParams
from powernode.core.pow import target_to_bytes
from powernode.core.tx import sign_tx
from powernode.state.apply import BlockResult
from powernode.state.genesis import genesis_block
from tests.harness.p2pnet import events
from tests.unit.helpers import (
    ALICE,
    BOB,
    CAROL,
    COIN,
    DAVE,
    GENESIS_TIME,
    MINER,
    MINER_B,
    MONO,
    LedgerFactory,
    make_params,
    mine,
    rebuild,
    solve,
    tamper_signature,
    template,
    total_supply,
    transfer,
)

ALLOC = 100 * COIN
REWARD = 50 * COIN
T = GENESIS_TIME + 10  # a "now" shortly after genesis


def four_funded(**kw: object) -> ChainParams:
    return make_params(
        allocations={k.address.hex(): ALLOC for k in (ALICE, BOB, CAROL, DAVE)}, **kw
    )


# --- admission -------------------------------------------------------------------


def test_submit_tx_then_mine(ledger: Ledger) -> None:
    tx = transfer(ALICE, DAVE, 1_000, nonce=0, fee=10)
    assert ledger.submit_tx(tx, now=T) == tx.txid
    assert tx.txid in ledger.mempool
    assert ledger.tx_status(tx.txid) == {"status": "pending"}
    assert ledger.next_nonce(ALICE.address) == 1
    block = mine(ledger, T + 5)
    assert block.txs == (tx,)
    assert tx.txid not in ledger.mempool
    st = ledger.tx_status(tx.txid)
    assert st["status"] == "confirmed" and st["height"] == 1 and st["index"] == 0
    assert st["confirmations"] == 1 and st["block"] == block.hash.hex()
    assert st["receipt"]["status"] == "ok"
    mine(ledger, T + 10)
    assert ledger.tx_status(tx.txid)["confirmations"] == 2
    assert ledger.account(DAVE.address).balance == 1_000
    assert ledger.account(ALICE.address).balance == ALLOC - 1_010
    assert ledger.account(MINER.address).balance == 2 * REWARD + 10
    assert ledger.next_nonce(ALICE.address) == 1


def test_unknown_tx_status(ledger: Ledger) -> None:
    with pytest.raises(NotFound) as ei:
        ledger.tx_status(b"\x00" * 32)
    assert ei.value.code == "not_found"


def test_bad_signature(ledger: Ledger) -> None:
    good = transfer(ALICE, DAVE, 1_000, nonce=0)
    bad = tamper_signature(good)
    with pytest.raises(BadSignature) as ei:
        ledger.submit_tx(bad, now=T)
    assert ei.value.code == "bad_signature"
    assert bad.txid not in ledger.mempool and bad.txid not in ledger.sigcache
    assert len(ledger.mempool) == 0
    ledger.submit_tx(good, now=T)  # the real one is still welcome


def test_wrong_chain(ledger: Ledger) -> None:
    with pytest.raises(WrongChain) as ei:
        ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=0, chain_id="mainnet"), now=T)
    assert ei.value.code == "wrong_chain"


def test_unknown_tx_type(ledger: Ledger) -> None:
    tx = sign_tx(ALICE, chain_id="unit", tx_type="mint", nonce=0, fee=1, payload=[])
    with pytest.raises(UnknownTxType) as ei:
        ledger.submit_tx(tx, now=T)
    assert ei.value.code == "unknown_tx_type"


def test_bad_payloads_are_typed(ledger: Ledger) -> None:
    cases = {
        "bad_amount": [DAVE.address, -1],
        "bad_payload": [DAVE.address[:10], 1],
    }
    for code, payload in cases.items():
        tx = sign_tx(ALICE, chain_id="unit", tx_type="transfer", nonce=0, fee=1, payload=payload)
        with pytest.raises(PowernodeError) as ei:
            ledger.submit_tx(tx, now=T)
        assert ei.value.code == code


def test_fee_too_low(factory: LedgerFactory) -> None:
    ledger = factory.open(make_params(min_fee=50))
    with pytest.raises(PowernodeError) as ei:
        ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=0, fee=49), now=T)
    assert ei.value.code == "fee_too_low"
    ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=0, fee=50), now=T)


def test_replayed_nonce_after_confirmation(ledger: Ledger) -> None:
    tx = transfer(ALICE, DAVE, 1_000, nonce=0)
    ledger.submit_tx(tx, now=T)
    mine(ledger, T + 5)
    with pytest.raises(NonceTooLow) as ei:
        ledger.submit_tx(tx, now=T + 6)  # the very same tx, replayed
    assert ei.value.code == "nonce_too_low"
    with pytest.raises(NonceTooLow):
        ledger.submit_tx(transfer(ALICE, DAVE, 7, nonce=0, fee=99), now=T + 6)


def test_nonce_window(factory: LedgerFactory, params: ChainParams) -> None:
    ledger = factory.open(params, max_per_sender=4)
    with pytest.raises(NonceTooHigh) as ei:
        ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=4), now=T)
    assert ei.value.code == "nonce_too_high"
    # max_per_sender nonces may wait, the account's own first: 0..3, not 4
    assert "nonces 0..3 may wait" in ei.value.message
    ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=3), now=T)  # a gap is allowed
    assert ledger.next_nonce(ALICE.address) == 0
    ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=0), now=T)
    mine(ledger, T + 5)
    # the window moves with the account nonce
    ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=4), now=T + 6)
    with pytest.raises(NonceTooHigh):
        ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=5), now=T + 6)


def test_gap_tx_waits_in_the_pool(ledger: Ledger) -> None:
    gap = transfer(ALICE, DAVE, 1, nonce=1)
    ledger.submit_tx(gap, now=T)
    assert mine(ledger, T + 5).txs == ()
    assert gap.txid in ledger.mempool
    first = transfer(ALICE, DAVE, 1, nonce=0)
    ledger.submit_tx(first, now=T + 6)
    assert mine(ledger, T + 10).txs == (first, gap)
    assert len(ledger.mempool) == 0


def test_insufficient_funds(ledger: Ledger) -> None:
    with pytest.raises(InsufficientFunds) as ei:
        ledger.submit_tx(transfer(ALICE, DAVE, ALLOC, nonce=0, fee=1), now=T)
    assert ei.value.code == "insufficient_funds"
    ledger.submit_tx(transfer(ALICE, DAVE, ALLOC - 1, nonce=0, fee=1), now=T)
    with pytest.raises(InsufficientFunds):
        ledger.submit_tx(transfer(DAVE, ALICE, 1, nonce=0, fee=0), now=T)


def test_insufficient_funds_counts_pending_txs(ledger: Ledger) -> None:
    ledger.submit_tx(transfer(ALICE, DAVE, 60 * COIN, nonce=0, fee=10), now=T)
    with pytest.raises(InsufficientFunds) as ei:
        ledger.submit_tx(transfer(ALICE, DAVE, 40 * COIN, nonce=1, fee=10), now=T)
    assert "pending" in ei.value.message
    ledger.submit_tx(transfer(ALICE, DAVE, 40 * COIN - 20, nonce=1, fee=10), now=T)
    with pytest.raises(InsufficientFunds):
        ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=2, fee=0), now=T)


def test_insufficient_funds_counts_pending_txs_in_any_order(ledger: Ledger) -> None:
    ledger.submit_tx(transfer(ALICE, DAVE, 60 * COIN, nonce=1, fee=10), now=T)
    with pytest.raises(InsufficientFunds):
        ledger.submit_tx(transfer(ALICE, DAVE, 60 * COIN, nonce=0, fee=10), now=T)


def test_already_known(ledger: Ledger) -> None:
    tx = transfer(ALICE, DAVE, 1, nonce=0)
    ledger.submit_tx(tx, now=T)
    with pytest.raises(AlreadyKnown) as ei:
        ledger.submit_tx(tx, now=T)
    assert ei.value.code == "already_known"
    assert len(ledger.mempool) == 1


def test_replacement(ledger: Ledger) -> None:
    old = transfer(ALICE, DAVE, 1, nonce=0, fee=1_000)
    ledger.submit_tx(old, now=T)
    for fee in (1_000, 1_050, 1_099, 999):
        with pytest.raises(ReplacementUnderpriced) as ei:
            ledger.submit_tx(transfer(ALICE, DAVE, 2, nonce=0, fee=fee), now=T)
        assert ei.value.code == "replacement_underpriced"
    assert ledger.mempool.entry_at(ALICE.address, 0).tx == old  # type: ignore[union-attr]
    new = transfer(ALICE, BOB, 5, nonce=0, fee=1_100)
    ledger.submit_tx(new, now=T)
    assert new.txid in ledger.mempool and old.txid not in ledger.mempool
    assert len(ledger.mempool) == 1
    # The replaced tx is told as dropped, naming why (tx.get, subscriptions).
    status = ledger.tx_status(old.txid)
    assert status["status"] == "dropped" and status["error"]["code"] == "replaced"
    assert new.txid.hex() in status["error"]["message"]
    assert mine(ledger, T + 5).txs == (new,)
    assert ledger.account(BOB.address).balance == ALLOC + 5


def test_replacement_must_stay_affordable(ledger: Ledger) -> None:
    ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=0, fee=100), now=T)
    with pytest.raises(InsufficientFunds):
        ledger.submit_tx(transfer(ALICE, DAVE, ALLOC, nonce=0, fee=200), now=T)


def test_eviction_of_the_cheapest(factory: LedgerFactory) -> None:
    probe = transfer(ALICE, DAVE, 1, nonce=0, fee=1_000)
    size = probe.size
    ledger = factory.open(four_funded(), mempool_bytes=2 * size + size // 2)
    cheap = transfer(ALICE, DAVE, 1, nonce=0, fee=1_000)
    rich = transfer(BOB, DAVE, 1, nonce=0, fee=3_000)
    mid = transfer(CAROL, DAVE, 1, nonce=0, fee=2_000)
    assert cheap.size == rich.size == mid.size == size
    ledger.submit_tx(cheap, now=T)
    ledger.submit_tx(rich, now=T)
    told: list[tuple[bytes, str]] = []
    ledger.on_dropped = lambda txid, exc: told.append((txid, exc.code))
    ledger.submit_tx(mid, now=T)  # over the limit: the cheapest goes
    assert cheap.txid not in ledger.mempool
    # The evicted tx is told as dropped, to tx.get and to the node's hook.
    assert told == [(cheap.txid, "mempool_full")]
    assert ledger.tx_status(cheap.txid)["error"]["code"] == "mempool_full"
    assert rich.txid in ledger.mempool and mid.txid in ledger.mempool
    assert ledger.mempool.total_bytes <= ledger.mempool.max_bytes
    poor = transfer(DAVE, ALICE, 1, nonce=0, fee=1_500)
    with pytest.raises(MempoolFull) as ei:
        ledger.submit_tx(poor, now=T)
    assert ei.value.code == "mempool_full"
    assert poor.txid not in ledger.mempool and len(ledger.mempool) == 2


def test_a_pending_tx_whose_nonce_another_block_used_is_dropped(
    factory: LedgerFactory,
) -> None:
    ours = factory.open(four_funded())
    theirs = factory.open(four_funded())
    pending = transfer(ALICE, DAVE, 1, nonce=0, fee=1_000)
    other = transfer(ALICE, BOB, 2, nonce=0, fee=1_000)
    ours.submit_tx(pending, now=T)
    theirs.submit_tx(other, now=T)
    told: list[tuple[bytes, str]] = []
    ours.on_dropped = lambda txid, exc: told.append((txid, exc.code))
    block = mine(theirs, T + 5)
    assert ours.submit_block(block, now=T + 5, mono=MONO)[0] == "connected"
    assert told == [(pending.txid, "nonce_too_low")]
    assert ours.tx_status(pending.txid)["status"] == "dropped"
    assert ours.tx_status(other.txid)["status"] == "confirmed"


def test_refused_replacement_keeps_the_original(factory: LedgerFactory) -> None:
    size = transfer(ALICE, DAVE, 1, nonce=0, fee=1_000).size
    ledger = factory.open(four_funded(), mempool_bytes=2 * size + 1)
    old = transfer(ALICE, DAVE, 1, nonce=0, fee=1_000)
    ledger.submit_tx(old, now=T)
    ledger.submit_tx(transfer(BOB, DAVE, 1, nonce=0, fee=5_000), now=T)
    bigger = transfer(ALICE, DAVE, 2**25, nonce=0, fee=1_100)  # a few bytes longer
    assert bigger.size > size
    with pytest.raises(MempoolFull):
        ledger.submit_tx(bigger, now=T)
    assert old.txid in ledger.mempool


def test_eviction_takes_a_sender_tail_not_a_head(factory: LedgerFactory) -> None:
    size = transfer(ALICE, DAVE, 1, nonce=0, fee=1_000).size
    ledger = factory.open(four_funded(), mempool_bytes=3 * size)
    head = transfer(ALICE, DAVE, 1, nonce=0, fee=1_000)
    tail = transfer(ALICE, DAVE, 1, nonce=1, fee=2_000)
    other = transfer(BOB, DAVE, 1, nonce=0, fee=1_500)
    for tx in (head, tail, other):
        ledger.submit_tx(tx, now=T)
    ledger.submit_tx(transfer(CAROL, DAVE, 1, nonce=0, fee=3_000), now=T)
    # alice's head is cheapest but evicting it would strand her tail
    assert head.txid in ledger.mempool
    assert len(ledger.mempool) == 3
    assert ledger.mempool.total_bytes <= 3 * size


def test_template_orders_by_fee_and_nonce(ledger: Ledger) -> None:
    a0 = transfer(ALICE, DAVE, 1, nonce=0, fee=1_000)
    a1 = transfer(ALICE, DAVE, 1, nonce=1, fee=9_000)
    b0 = transfer(BOB, DAVE, 1, nonce=0, fee=5_000)
    c0 = transfer(CAROL, DAVE, 1, nonce=0, fee=500)
    for tx in (c0, a1, a0, b0):
        ledger.submit_tx(tx, now=T)
    assert mine(ledger, T + 5).txs == (b0, a0, a1, c0)


def test_mempool_save_load_round_trip(
    factory: LedgerFactory, params: ChainParams, tmp_path: Path
) -> None:
    ledger = factory.open(params)
    txs = [
        transfer(ALICE, DAVE, 1, nonce=0),
        transfer(ALICE, DAVE, 2, nonce=1),
        transfer(BOB, DAVE, 3, nonce=0),
        transfer(CAROL, DAVE, 4, nonce=2),  # a gap survives too
    ]
    for tx in txs:
        ledger.submit_tx(tx, now=T)
    path = tmp_path / "mempool.dat"
    assert ledger.save_mempool(path) == 4
    assert not path.with_suffix(".tmp").exists()
    other = factory.open(params)
    assert other.load_mempool(path, now=T) == 4
    assert set(other.mempool.by_id) == {tx.txid for tx in txs}
    assert other.mempool.total_bytes == ledger.mempool.total_bytes
    # loading the same file again adds nothing: the pool holds the same 4
    assert other.load_mempool(path, now=T) == 4
    assert len(other.mempool) == 4


def test_mempool_load_skips_and_tells_entries_that_are_not_txs(
    factory: LedgerFactory,
    params: ChainParams,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tx = transfer(ALICE, DAVE, 1, nonce=0)
    path = tmp_path / "mempool.dat"
    path.write_bytes(msgpack.packb([b"not a tx", tx.raw]))
    ledger = factory.open(params)
    caplog.set_level("WARNING")
    assert ledger.load_mempool(path, now=T) == 1
    assert events(caplog, "mempool.load_skipped", skipped=1, reason="malformed")
    assert path.exists() and not path.with_name("mempool.dat.corrupt").exists()


def test_mempool_load_revalidates(
    factory: LedgerFactory, params: ChainParams, tmp_path: Path
) -> None:
    ledger = factory.open(params)
    tx = transfer(ALICE, DAVE, 1, nonce=0)
    ledger.submit_tx(tx, now=T)
    path = tmp_path / "mempool.dat"
    ledger.save_mempool(path)
    mine(ledger, T + 5)  # now the saved tx is confirmed
    assert ledger.load_mempool(path, now=T + 6) == 0
    assert len(ledger.mempool) == 0


@pytest.mark.parametrize(
    "content", [b"", b"\xff\xff", b"\x93\x01\x02\x03", b"\x81\x01\x02", b"\x91\xc4\x01x"]
)
def test_mempool_load_damaged_file(ledger: Ledger, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "mempool.dat"
    path.write_bytes(content)
    assert ledger.load_mempool(path, now=T) == 0
    assert ledger.load_mempool(tmp_path / "missing.dat", now=T) == 0
    assert len(ledger.mempool) == 0


# --- blocks ----------------------------------------------------------------------


def test_duplicate_block(ledger: Ledger) -> None:
    b = mine(ledger, T)
    outcome, update = ledger.submit_block(b, now=T, mono=MONO)
    assert outcome == "duplicate" and not update
    assert ledger.chain.height == 1


def test_bad_pow(factory: LedgerFactory) -> None:
    hard = "00000fff" + "ff" * 28
    ledger = factory.open(make_params(initial_target=hard, pow_limit=hard))
    b = ledger.template(MINER.address, now=T)
    bad = make_block(solve(b.header, want_valid=False), b.txs)
    with pytest.raises(BadPow) as ei:
        ledger.submit_block(bad, now=T, mono=MONO)
    assert ei.value.code == "bad_pow"
    assert ledger.chain.height == 0 and bad.hash not in ledger.chain.index


def test_bad_merkle_root(ledger: Ledger) -> None:
    ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=0), now=T)
    b = template(ledger, T)
    with pytest.raises(BadMerkleRoot) as ei:
        ledger.submit_block(rebuild(b, tx_root=b"\x00" * 32), now=T, mono=MONO)
    assert ei.value.code == "bad_merkle_root"
    with pytest.raises(BadMerkleRoot):
        ledger.submit_block(make_block(b.header, ()), now=T, mono=MONO)
    assert ledger.chain.height == 0
    ledger.submit_block(b, now=T, mono=MONO)
    assert ledger.chain.height == 1


def test_bad_state_root(ledger: Ledger) -> None:
    ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=0), now=T)
    good = template(ledger, T)
    bad = rebuild(good, state_root=b"\x00" * 32)
    before = ledger.chain.state.snapshot()
    with pytest.raises(BadStateRoot) as ei:
        ledger.submit_block(bad, now=T, mono=MONO)
    assert ei.value.code == "bad_state_root"
    assert ledger.chain.height == 0 and ledger.chain.state.snapshot() == before
    assert ledger.chain.index.get(bad.hash).failed  # type: ignore[union-attr]
    # submitting it again is refused without re-executing it
    with pytest.raises(InvalidBlock) as ei2:
        ledger.submit_block(bad, now=T, mono=MONO)
    assert ei2.value.code == "known_invalid"
    # and so is anything built on it
    child = rebuild(good, prev_hash=bad.hash, height=2, txs=[], timestamp=T + 5)
    with pytest.raises(InvalidBlock) as ei3:
        ledger.submit_block(child, now=T + 5, mono=MONO)
    assert ei3.value.code == "parent_invalid"
    # the honest block still connects, and the tx left the pool
    assert ledger.submit_block(good, now=T, mono=MONO)[0] == "connected"
    assert len(ledger.mempool) == 0


def test_bad_signature_in_block(ledger: Ledger) -> None:
    empty = template(ledger, T)
    forged = tamper_signature(transfer(ALICE, DAVE, 1, nonce=0))
    b = rebuild(empty, txs=[forged])
    with pytest.raises(InvalidBlock) as ei:
        ledger.submit_block(b, now=T, mono=MONO)
    assert ei.value.code == "bad_signature"
    assert ledger.chain.height == 0


def test_invalid_tx_in_block(ledger: Ledger) -> None:
    empty = template(ledger, T)
    b = rebuild(empty, txs=[transfer(ALICE, DAVE, 1, nonce=1)])
    with pytest.raises(PowernodeError) as ei:
        ledger.submit_block(b, now=T, mono=MONO)
    assert ei.value.code == "bad_tx_in_block"
    assert "nonce_too_high" in ei.value.message


def test_time_too_new(ledger: Ledger, params: ChainParams) -> None:
    future = T + params.max_future + 1
    b = template(ledger, future)
    assert b.header.timestamp == future
    with pytest.raises(TimeTooNew) as ei:
        ledger.submit_block(b, now=T, mono=MONO)
    assert ei.value.code == "time_too_new"
    assert ledger.chain.height == 0
    # not marked invalid: once the clock catches up it is fine
    assert ledger.submit_block(b, now=T + 1, mono=MONO)[0] == "connected"


def test_time_too_old(ledger: Ledger) -> None:
    mine(ledger, GENESIS_TIME + 100)
    # median of (1000, 1100) is 1100 (upper median), so the next block needs 1101
    assert ledger.chain.min_timestamp(ledger.chain.tip) == GENESIS_TIME + 101
    b = template(ledger, GENESIS_TIME + 200)
    for ts in (GENESIS_TIME + 100, GENESIS_TIME + 50, GENESIS_TIME):
        with pytest.raises(TimeTooOld) as ei:
            ledger.submit_block(rebuild(b, timestamp=ts), now=GENESIS_TIME + 200, mono=MONO)
        assert ei.value.code == "time_too_old"
    ok = rebuild(b, timestamp=GENESIS_TIME + 101)
    assert ledger.submit_block(ok, now=GENESIS_TIME + 200, mono=MONO)[0] == "connected"


def test_median_time_past_over_many_blocks(ledger: Ledger) -> None:
    times = [1_010, 1_020, 1_030, 1_500, 1_040, 1_050, 1_060, 1_070, 1_080, 1_090, 1_100, 1_110]
    for ts in times:
        ledger.submit_block(rebuild(template(ledger, ts), timestamp=ts), now=ts, mono=MONO)
    assert ledger.chain.height == len(times)
    # the last 11 timestamps (blocks 2..12) sorted have 1_070 in the middle; the
    # outlier 1_500 does not drag the median up
    assert ledger.chain.min_timestamp(ledger.chain.tip) == 1_071
    with pytest.raises(TimeTooOld):
        ledger.submit_block(rebuild(template(ledger, 1_200), timestamp=1_070), now=1_200, mono=MONO)
    ok = rebuild(template(ledger, 1_200), timestamp=1_071)
    assert ledger.submit_block(ok, now=1_200, mono=MONO)[0] == "connected"


def test_template_never_goes_below_median_time_past(ledger: Ledger) -> None:
    mine(ledger, GENESIS_TIME + 100)
    b = mine(ledger, GENESIS_TIME + 90)  # the local clock is a little behind the chain
    assert b.header.timestamp == GENESIS_TIME + 101


def test_bad_target(ledger: Ledger) -> None:
    b = template(ledger, T)
    harder = target_to_bytes(b.header.target_int // 2)
    with pytest.raises(BadTarget) as ei:
        ledger.submit_block(rebuild(b, target=harder), now=T, mono=MONO)
    assert ei.value.code == "bad_target"


def test_bad_target_easier_than_schedule(factory: LedgerFactory) -> None:
    ledger = factory.open(make_params(initial_target="7f" + "ff" * 31))
    b = template(ledger, T)
    easy = rebuild(b, target=b"\xff" * 32)
    with pytest.raises(BadTarget):
        ledger.submit_block(easy, now=T, mono=MONO)


def test_targets_follow_asert(factory: LedgerFactory) -> None:
    half = "7f" + "ff" * 31
    ledger = factory.open(make_params(initial_target=half))
    # the first block always gets the genesis target, whatever the clock says
    for now in (GENESIS_TIME, T, T + 10_000):
        assert ledger.template(MINER.address, now=now).header.target_int == int(half, 16)
    targets = []
    for i in range(1, 4):  # 1 s apart against a 5 s schedule: too fast
        targets.append(mine(ledger, GENESIS_TIME + i).header.target_int)
    assert targets[0] == int(half, 16)
    assert targets[2] < targets[1] < targets[0]
    # the target depends on the parent only, so a late block cannot ease its own target ...
    late = ledger.template(MINER.address, now=GENESIS_TIME + 5_000)
    assert late.header.target_int < targets[2]
    # ... but it eases the next one: back on schedule gives the genesis target again
    mine(ledger, GENESIS_TIME + 20)
    assert ledger.template(MINER.address, now=GENESIS_TIME + 30).header.target_int == int(half, 16)


def test_bad_height(ledger: Ledger) -> None:
    b = template(ledger, T)
    with pytest.raises(InvalidBlock) as ei:
        ledger.submit_block(rebuild(b, height=2), now=T, mono=MONO)
    assert ei.value.code == "bad_height"


def test_second_genesis_refused(ledger: Ledger) -> None:
    b = template(ledger, T)
    fake = rebuild(b, height=0, prev_hash=b"\x00" * 32)
    with pytest.raises(InvalidBlock) as ei:
        ledger.submit_block(fake, now=T, mono=MONO)
    assert ei.value.code == "bad_genesis"


def test_any_height_0_block_but_ours_is_bad_genesis(ledger: Ledger) -> None:
    # Another chain's genesis fails PoW or the tx root as often as not (its
    # tx root is a params commitment): it is still told as a genesis.
    other = genesis_block(make_params(chain_id="another-chain"))
    assert other.hash != genesis_block(ledger.params).hash
    for block in (other, rebuild(template(ledger, T), height=0)):  # a known parent too
        with pytest.raises(InvalidBlock) as ei:
            ledger.submit_block(block, now=T, mono=MONO)
        assert ei.value.code == "bad_genesis"
    assert ledger.submit_block(genesis_block(ledger.params), now=T, mono=MONO)[0] == "duplicate"


def test_a_header_over_512_bytes_in_a_block_is_oversize(ledger: Ledger) -> None:
    b = template(ledger, T)
    obj = b.header.to_obj()
    obj.append(b"\x00" * 600)  # a tenth field, past the bound
    raw = msgpack.packb([obj, [tx.raw for tx in b.txs]])
    with pytest.raises(Oversize):
        decode_block(raw)


def test_a_small_block_still_takes_txs(factory: LedgerFactory) -> None:
    # max_block_bytes at its least (1,024): a template still holds a transfer,
    # and a tx too large for any block is refused at admission, not left to
    # hold back the txs after it.
    small = factory.open(make_params(max_block_bytes=1024))
    small.submit_tx(transfer(ALICE, BOB, 1, nonce=0), now=T)
    b = mine(small, T)
    assert len(b.txs) == 1 and len(b.raw) <= 1024
    big = sign_tx(
        ALICE, chain_id=small.params.chain_id, tx_type="transfer", nonce=1, fee=10,
        payload=[BOB.address, 1, "x" * 600],
    )  # fmt: skip
    with pytest.raises(OversizeTx, match="holds"):
        small.submit_tx(big, now=T)


def test_a_tx_heavier_than_a_block_is_refused_at_admission(factory: LedgerFactory) -> None:
    # A meter.batch weighs its entries toward max_block_txs; one heavier than
    # a whole block could never be mined, and the template stops at the
    # first tx that does not fit: the pool refuses it instead.
    light = factory.open(make_params(max_block_txs=3))
    batch = sign_tx(
        ALICE, chain_id=light.params.chain_id, tx_type="meter.batch", nonce=0, fee=10,
        payload=[1_767_268_800, [[b"", 0, 0, b"", b""]] * 4],
    )  # fmt: skip
    with pytest.raises(OversizeTx, match=r"weighs 4 toward max_block_txs \(3\)"):
        light.submit_tx(batch, now=T)
    # a transfer behind it is mined as ever
    light.submit_tx(transfer(BOB, ALICE, 1, nonce=0), now=T)
    assert len(mine(light, T).txs) == 1


def test_orphan_then_parent(factory: LedgerFactory, params: ChainParams) -> None:
    src = factory.open(params)
    src.submit_tx(transfer(ALICE, DAVE, 5, nonce=0), now=T)
    b1 = mine(src, T + 5)
    src.submit_tx(transfer(ALICE, DAVE, 6, nonce=1), now=T + 5)
    b2 = mine(src, T + 10)
    b3 = mine(src, T + 15)
    dst = factory.open(params)
    assert dst.submit_block(b3, now=T + 15, mono=MONO)[0] == "orphan"
    assert dst.submit_block(b2, now=T + 15, mono=MONO)[0] == "orphan"
    assert len(dst.chain.orphans) == 2
    assert b1.hash not in dst.chain.index.entries  # what the orphans wait for
    outcome, update = dst.submit_block(b1, now=T + 15, mono=MONO)
    assert outcome == "connected"
    assert [b.hash for b, _ in update.connected] == [b1.hash, b2.hash, b3.hash]
    assert dst.chain.tip.hash == b3.hash and len(dst.chain.orphans) == 0
    assert dst.chain.state.snapshot() == src.chain.state.snapshot()


def test_invalid_orphan_is_dropped_when_parent_arrives(
    factory: LedgerFactory, params: ChainParams
) -> None:
    src = factory.open(params)
    b1 = mine(src, T)
    b2 = template(src, T + 5)
    bad2 = rebuild(b2, state_root=b"\x00" * 32)
    dst = factory.open(params)
    assert dst.submit_block(bad2, now=T + 5, mono=MONO)[0] == "orphan"
    outcome, update = dst.submit_block(b1, now=T + 5, mono=MONO)
    assert outcome == "connected" and dst.chain.tip.hash == b1.hash
    assert bad2.hash in update.invalid
    assert update.invalid[bad2.hash].code == "bad_state_root"


def test_side_branch_and_first_seen_tie(factory: LedgerFactory, params: ChainParams) -> None:
    a = factory.open(params)
    b = factory.open(params)
    a1 = mine(a, T)
    b1 = mine(b, T, miner=MINER_B)
    assert a1.hash != b1.hash and a1.header.target == b1.header.target
    # equal work: the first seen stays
    assert a.submit_block(b1, now=T, mono=MONO)[0] == "side"
    assert a.chain.tip.hash == a1.hash
    # more work wins
    b2 = mine(b, T + 5, miner=MINER_B)
    outcome, update = a.submit_block(b2, now=T + 5, mono=MONO)
    assert outcome == "connected" and a.chain.tip.hash == b2.hash
    assert [x.hash for x in update.disconnected] == [a1.hash]


def test_sigcache_skips_reverification(ledger: Ledger) -> None:
    txs = [transfer(ALICE, DAVE, 1, nonce=0), transfer(BOB, DAVE, 1, nonce=0)]
    for tx in txs:
        ledger.submit_tx(tx, now=T)
    assert ledger.sigcache.misses == 2 and ledger.sigcache.hits == 0
    mine(ledger, T + 5)
    assert ledger.sigcache.misses == 2
    assert ledger.sigcache.hits == 2


def test_sigcache_checks_unseen_block_txs(factory: LedgerFactory, params: ChainParams) -> None:
    src = factory.open(params)
    src.submit_tx(transfer(ALICE, DAVE, 1, nonce=0), now=T)
    b = mine(src, T + 5)
    dst = factory.open(params)
    dst.submit_block(b, now=T + 5, mono=MONO)
    assert dst.sigcache.misses == 1 and dst.sigcache.hits == 0
    assert b.txs[0].txid in dst.sigcache


def test_connected_block_clears_pool_of_used_nonces(
    factory: LedgerFactory, params: ChainParams
) -> None:
    # a competing tx with the same nonce confirmed elsewhere makes ours stale
    src = factory.open(params)
    dst = factory.open(params)
    theirs = transfer(ALICE, BOB, 7, nonce=0)
    ours = transfer(ALICE, DAVE, 9, nonce=0)
    src.submit_tx(theirs, now=T)
    dst.submit_tx(ours, now=T)
    b = mine(src, T + 5)
    dst.submit_block(b, now=T + 5, mono=MONO)
    assert ours.txid not in dst.mempool and len(dst.mempool) == 0


def test_supply_through_the_ledger(ledger: Ledger) -> None:
    ledger.submit_tx(transfer(ALICE, DAVE, 3 * COIN, nonce=0, fee=100), now=T)
    mine(ledger, T + 5)
    ledger.submit_tx(transfer(DAVE, BOB, 1 * COIN, nonce=0, fee=100), now=T + 5)
    with pytest.raises(InsufficientFunds):
        ledger.submit_tx(transfer(BOB, CAROL, 200 * COIN, nonce=0, fee=100), now=T + 5)
    assert len(mine(ledger, T + 10).txs) == 1
    mine(ledger, T + 15)
    assert total_supply(ledger) == 3 * ALLOC + 3 * REWARD


def test_template_is_extended_while_the_tip_stays(ledger: Ledger) -> None:
    first = transfer(ALICE, DAVE, 1, nonce=0, fee=100)
    ledger.submit_tx(first, now=T)
    a = ledger.template(MINER.address, now=T)
    second = transfer(BOB, DAVE, 2, nonce=0, fee=100)
    ledger.submit_tx(second, now=T + 3)
    b = ledger.template(MINER.address, now=T + 3)
    # The same body with the new tx on top, on the first template's time.
    assert b.txs == (first, second) and b.header.timestamp == a.header.timestamp
    assert a.header.state_root != b.header.state_root
    solved = make_block(solve(b.header), b.txs)
    outcome, _ = ledger.submit_block(solved, now=T + 3, mono=MONO)
    assert outcome == "connected"  # the extended template is a valid block
    assert ledger.account(DAVE.address).balance == 3


def test_template_starts_afresh_when_a_tx_left_the_pool_or_it_aged(ledger: Ledger) -> None:
    old = transfer(ALICE, DAVE, 1, nonce=0, fee=1_000)
    ledger.submit_tx(old, now=T)
    assert ledger.template(MINER.address, now=T).txs == (old,)
    new = transfer(ALICE, BOB, 5, nonce=0, fee=1_100)  # replaces ``old``
    ledger.submit_tx(new, now=T + 1)
    assert ledger.template(MINER.address, now=T + 1).txs == (new,)
    later = T + 1 + TEMPLATE_MAX_AGE_S + 1
    assert ledger.template(MINER.address, now=later).header.timestamp == later


def _spy_prepared(ledger: Ledger) -> list[object]:
    seen: list[object] = []
    inner = ledger.chain.prepared
    assert inner is not None

    def spy(block: Block, parent: IndexEntry) -> BlockResult | None:
        out = inner(block, parent)
        seen.append(out)
        return out

    ledger.chain.prepared = spy
    return seen


def test_own_block_connects_from_the_template_result(ledger: Ledger) -> None:
    from powernode.state.apply import apply_block

    ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=0, fee=100), now=T)
    ledger.submit_tx(transfer(BOB, CAROL, 2, nonce=0, fee=120), now=T)
    ledger.submit_tx(transfer(ALICE, BOB, 3, nonce=1, fee=100), now=T)
    tmpl = ledger.template(MINER.address, now=T)
    block = make_block(solve(tmpl.header), tmpl.txs)
    tip = ledger.chain.tip
    expected = apply_block(ledger.chain.state, tip.header.state_root, block, ledger.params)
    seen = _spy_prepared(ledger)
    before = ledger.chain.state.snapshot()

    outcome, update = ledger.submit_block(block, now=T, mono=MONO)

    assert outcome == "connected" and len(seen) == 1
    got = seen[0]
    assert got is not None and got is update.connected[0][1]
    assert got.state_root == expected.state_root == block.header.state_root
    assert got.diff == expected.diff and got.undo == expected.undo
    assert got.receipts == expected.receipts
    # The stored undo takes the state back exactly.
    ledger.chain._disconnect_tip()
    assert ledger.chain.state.snapshot() == before


def test_a_block_other_than_the_builders_body_is_executed(ledger: Ledger) -> None:
    ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=0, fee=100), now=T)
    first = ledger.template(MINER.address, now=T)
    ledger.submit_tx(transfer(BOB, DAVE, 2, nonce=0, fee=100), now=T + 1)
    ledger.template(MINER.address, now=T + 1)  # the builder grew past ``first``
    seen = _spy_prepared(ledger)
    outcome, _ = ledger.submit_block(
        make_block(solve(first.header), first.txs), now=T + 1, mono=MONO
    )
    assert outcome == "connected" and seen == [None]
    assert ledger.account(DAVE.address).balance == 1
    # The next template starts afresh on the new tip, with what is left.
    assert len(ledger.template(MINER.address, now=T + 2).txs) == 1


def test_a_sampled_own_block_is_executed_and_a_mismatch_is_logged(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import dataclasses

    from powernode.chain import templates as templates_mod
    from powernode.state.apply import BodyBuilder

    monkeypatch.setattr(templates_mod, "SELF_CHECK_EVERY", 1)
    real = BodyBuilder.seal_block

    def drifted(self: BodyBuilder) -> object:  # a builder that drifted from execution
        return dataclasses.replace(real(self), receipts=())

    monkeypatch.setattr(BodyBuilder, "seal_block", drifted)
    ledger.submit_tx(transfer(ALICE, DAVE, 1, nonce=0, fee=100), now=T)
    tmpl = ledger.template(MINER.address, now=T)
    seen = _spy_prepared(ledger)
    outcome, update = ledger.submit_block(
        make_block(solve(tmpl.header), tmpl.txs), now=T, mono=MONO
    )
    assert outcome == "connected"
    got = update.connected[0][1]
    assert seen == [got] and len(got.receipts) == 1  # the executed result, not the drifted one
    assert "template.mismatch" in caplog.text
