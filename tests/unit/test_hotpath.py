"""The per-tx hot path's shortcuts give exactly what the plain path gives:
the node's fast decoder (chain/txdecode.py) against the core's ``decode_tx``,
its address cache, the builder's single payload decode, admission without a
precheck for tx types that have none, and the account a ``Checked`` carries."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import msgpack
import pytest

from powernode.chain.ledger import Ledger
from powernode.chain.txdecode import TxDecoder
from powernode.core.crypto import address_of, sha256
from powernode.core.errors import InsufficientFunds, InvalidBlock, PowernodeError
from powernode.core.execution import ExecContext
from powernode.core.merkle import merkle_root
from powernode.core.tx import Transaction, decode_tx
from powernode.engines.accounts import ACCOUNT_NS, Account, TransferHandler
from powernode.node.rpc import _Answers
from powernode.state.apply import BodyBuilder, apply_tx
from powernode.state.registry import HANDLERS
from powernode.state.view import StateView
from tests.unit.helpers import (
    ALICE,
    BOB,
    CAROL,
    GENESIS_TIME,
    MINER,
    MONO,
    key,
    template,
    transfer,
)
from tests.unit.market_helpers import cancel_tx, place_tx, register_tx

T = GENESIS_TIME + 10


def _samples() -> list[Transaction]:
    return [
        transfer(ALICE, BOB, 5, nonce=3),
        transfer(BOB, CAROL, 10**12, nonce=0, fee=0),
        register_tx(BOB, "consumer", nonce=0),
        place_tx(ALICE, "buy", nonce=1),
        cancel_tx(CAROL, b"\x01" * 32, nonce=2),
    ]


def _outcome(fn: Any, raw: Any) -> Any:
    try:
        t = fn(raw)
    except PowernodeError as exc:
        return (type(exc), exc.code, exc.message)
    return (repr(t), t.raw, t.txid, t.sender_address)


def _malformed(raw: bytes) -> list[bytes]:
    obj = msgpack.unpackb(raw)
    out = [raw[:i] for i in range(0, len(raw), 7)] + [raw + b"\x00", raw * 120]
    odd: list[Any] = [1.5, True, None, {}, [], -1, 2**64 - 1, "x" * 70, b"x" * 31, [1.5]]
    for i in range(7):
        for v in odd:
            out.append(msgpack.packb([*obj[:i], v, *obj[i + 1 :]], use_bin_type=True))
    deep: list[Any] = []
    for _ in range(18):
        deep = [deep]
        out.append(msgpack.packb([*obj[:5], deep, obj[6]], use_bin_type=True))
    payloads: list[list[Any]] = [[1.0], [{}], [True], [None], [b"a", [1, [2, [3.5]]]], []]
    for payload in payloads:
        out.append(msgpack.packb([*obj[:5], payload, obj[6]], use_bin_type=True))
    out.append(raw.replace(bytes([obj[3]]), b"\xcd\x00" + bytes([obj[3]]), 1))  # wide int
    out.append(msgpack.packb(obj[:6], use_bin_type=True))
    out.append(msgpack.packb([*obj, 1], use_bin_type=True))
    return out


def test_fast_decode_builds_the_dataclass_the_constructor_builds() -> None:
    fast = TxDecoder()
    for t in _samples():
        got = fast.decode(t.raw)
        want = Transaction(
            *(getattr(got, f.name) for f in dataclasses.fields(Transaction) if f.init)
        )
        assert type(got) is Transaction
        assert got == want and repr(got) == repr(want)
        assert got == decode_tx(t.raw)
        for f in dataclasses.fields(Transaction):
            assert getattr(got, f.name) == getattr(want, f.name)
        assert got.txid == sha256(t.raw) and got.sender_address == address_of(got.sender)
        with pytest.raises(dataclasses.FrozenInstanceError):
            got.fee = 1  # type: ignore[misc]


def test_fast_decode_accepts_and_refuses_as_the_core_decoder_does() -> None:
    fast = TxDecoder()
    corpus: list[Any] = [b"", b"\xc1", bytearray(b"\x97"), msgpack.packb(5)]
    for t in _samples():
        corpus += [t.raw, *_malformed(t.raw)]
    kinds = set()
    for raw in corpus:
        got = _outcome(fast.decode, raw)
        assert got == _outcome(decode_tx, raw), raw
        kinds.add(got[0])
    assert len(kinds) > 4  # the corpus reaches several kinds of refusal


def test_address_cache_is_bounded_and_per_decoder() -> None:
    fast = TxDecoder(max_addresses=3)
    for i in range(8):
        k = key(20 + i)
        t = fast.decode(transfer(k, BOB, 1, nonce=0).raw)
        assert t.sender_address == k.address
        assert 1 <= len(fast._addresses) <= 3  # white-box: the bound itself


def _ctx(params: Any) -> ExecContext:
    return ExecContext(height=1, timestamp=T, miner=MINER.address, params=params)


def test_builder_decodes_each_payload_once(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    plain = TransferHandler.decode

    def counting(self: TransferHandler, payload: list[Any]) -> Any:
        calls.append(1)
        return plain(self, payload)

    monkeypatch.setattr(TransferHandler, "decode", counting)
    txs = [transfer(ALICE, BOB, 1, nonce=n) for n in range(5)]
    b = BodyBuilder(ledger.chain.state, bytes(32), _ctx(ledger.params), max_bytes=10**6)
    b.add(txs)
    assert len(b.finish().txs) == 5 and len(calls) == 5


def test_block_builder_and_mempool_refuse_in_one_order(ledger: Ledger) -> None:
    # One envelope check serves all three: a tx with a wrong chain and a bad
    # payload is refused for its chain everywhere.
    both = transfer(ALICE, b"short", 1, nonce=0, chain_id="other")
    ctx = _ctx(ledger.params)
    with pytest.raises(PowernodeError) as info:
        apply_tx(StateView(ledger.chain.state), ctx, both)
    assert info.value.code == "wrong_chain"
    with pytest.raises(PowernodeError) as info:
        ledger.check_tx(both, now=T)
    assert info.value.code == "wrong_chain"
    bad_payload = transfer(ALICE, b"short", 1, nonce=0)
    b = BodyBuilder(ledger.chain.state, bytes(32), ctx, max_bytes=10**6)
    b.add([both, bad_payload, transfer(ALICE, BOB, 1, nonce=5), transfer(ALICE, BOB, 1, nonce=0)])
    tmpl = b.finish()
    assert [exc.code for _, exc in tmpl.rejected] == [
        "wrong_chain",
        "bad_payload",
        "nonce_too_high",
    ]
    assert len(tmpl.txs) == 1


def test_which_tx_types_have_admission_checks() -> None:
    with_precheck = {t for t, h in HANDLERS.items() if h.precheck is not None}
    assert with_precheck == {
        "order.place",
        "order.cancel",
        "device.register",
        "device.approve",
        "device.retire",
        "meter.report",
        "meter.batch",
        "cert.issue",
        "cert.transfer",
        "cert.retire",
        "ppa.propose",
        "ppa.accept",
        "ppa.reject",
        "ppa.fund",
        "ppa.deliver",
        "ppa.confirm",
        "ppa.terminate",
        "contract.create",
        "contract.approve",
        "contract.execute",
        "contract.cancel",
    }


def test_admission_skips_a_missing_precheck(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(now: int) -> ExecContext:
        raise AssertionError("a no-op precheck needs no context")

    monkeypatch.setattr(ledger, "_admission_context", boom)
    ledger.submit_tx(transfer(ALICE, BOB, 1, nonce=0), now=T)
    assert len(ledger.mempool) == 1


def test_a_block_that_fails_after_moving_the_tip_voids_checked_accounts(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = ledger.check_tx(transfer(ALICE, BOB, 5, nonce=0), now=T)
    assert checked.account == ledger.account(ALICE.address)

    def moved_then_failed(block: Any, *, now: int, mono: float, source: str = "") -> Any:
        # As a reorg onto a branch found invalid can: the tip state moved.
        ledger.chain.state.apply_values({(ACCOUNT_NS, ALICE.address): Account(3, 0)})
        raise InvalidBlock("bad branch")

    block = template(ledger, T)
    monkeypatch.setattr(ledger.chain, "submit_block", moved_then_failed)
    with pytest.raises(InvalidBlock):
        ledger.submit_block(block, now=T, mono=MONO)
    with pytest.raises(InsufficientFunds):  # checked again, against the new state
        ledger.add_checked(checked, now=T)


def test_the_pool_rules_run_again_on_add(ledger: Ledger) -> None:
    # Each is affordable alone, checked against an empty pool; the second
    # must be refused once the first is in.
    half = ledger.account(ALICE.address).balance // 2
    a = ledger.check_tx(transfer(ALICE, BOB, half, nonce=0), now=T)
    b = ledger.check_tx(transfer(ALICE, BOB, half, nonce=1), now=T)
    ledger.add_checked(a, now=T)
    with pytest.raises(InsufficientFunds):
        ledger.add_checked(b, now=T)
    assert len(ledger.mempool) == 1


@pytest.mark.parametrize(
    "id_",
    [0, 7, -3, 10**20, "a", "", 'q"uo\\te', "é ☃ \x00", "\ud800"],
)
@pytest.mark.parametrize("result", ["ab" * 32, "", 'x"y\\z', "é\n☃", "12345678901234567"])
def test_a_string_answer_is_the_bytes_json_dumps_gives(id_: Any, result: str) -> None:
    """The RPC's shortcut for tx.submit's answers (a string result each)."""
    response = {"jsonrpc": "2.0", "id": id_, "result": result}
    answers = _Answers(1, None)
    answers.put(0, response)
    assert answers.parts[0] == json.dumps(response).encode()
    assert answers.size == 2 + len(json.dumps(response)) + 2


def test_a_kept_template_is_offered_only_the_new_txs(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A refresh extends the kept builder: the pool's walk starts after what it
    # holds, so the txs already in are not offered (and skipped) again.
    offered: list[list[bytes]] = []
    plain = BodyBuilder.add

    def recording(self: BodyBuilder, candidates: Any) -> None:
        txs = list(candidates)
        offered.append([tx.txid for tx in txs])
        plain(self, txs)

    monkeypatch.setattr(BodyBuilder, "add", recording)
    first = [transfer(ALICE, BOB, 1, nonce=n) for n in range(3)] + [
        transfer(BOB, CAROL, 1, nonce=0)
    ]
    for tx in first:
        ledger.submit_tx(tx, now=T)
    assert len(template(ledger, T).txs) == 4
    later = [transfer(ALICE, BOB, 1, nonce=3), transfer(CAROL, BOB, 1, nonce=0)]
    for tx in later:
        ledger.submit_tx(tx, now=T)
    block = template(ledger, T)
    assert sorted(offered[-1]) == sorted(tx.txid for tx in later)
    assert [tx.txid for tx in block.txs[:4]] == [tx.txid for tx in template(ledger, T).txs[:4]]
    assert {tx.txid for tx in block.txs} == {tx.txid for tx in first + later}
    # Its tx root, extended from the first template's, is the whole tree's.
    assert block.header.tx_root == merkle_root([tx.txid for tx in block.txs])
