"""Chain parameters from the genesis file, and the genesis block they fix."""

from __future__ import annotations

import json
from typing import Any

import pytest

from powernode.core.block import check_block
from powernode.core.crypto import ZERO_ADDRESS, ZERO_HASH
from powernode.core.errors import BadMerkleRoot, GenesisError
from powernode.core.merkle import merkle_root
from powernode.core.params import MAX_BLOCK_REWARD, MAX_GENESIS_SUPPLY
from powernode.core.units import MAX_MONEY
from powernode.engines.accounts import Account
from powernode.state.genesis import genesis_block, genesis_result, parse_genesis, parse_genesis_json
from powernode.state.registry import ENGINES, STATE_CODECS
from powernode.state.view import MemoryState
from tests.unit.helpers import ALICE, BOB, COIN, genesis_doc, make_params


def test_defaults() -> None:
    p = parse_genesis(
        {"chain_id": "c", "timestamp": 5, "initial_target": "ff", "pow_limit": "ffff"}
    )
    assert p.block_time == 10 and p.max_future == 120 and p.asert_halflife == 3600
    assert p.block_reward == 50 * COIN and p.min_fee == 0 and p.dev is False
    assert p.allocations == () and p.initial_target == 0xFF and p.pow_limit == 0xFFFF
    assert parse_genesis({**genesis_doc(), "block_time": 7}).max_future == 84
    assert parse_genesis({**genesis_doc(), "max_future": 9}).max_future == 9


def test_comment_keys_are_ignored() -> None:
    assert parse_genesis({**genesis_doc(), "_comment": "hi"}) == make_params()
    # in allocations too (the README: keys starting with _ are comments)
    doc = genesis_doc()
    doc["allocations"] = {"_note": "the two test users", **doc["allocations"]}
    assert parse_genesis(doc) == make_params()


def test_an_allocation_address_is_hex_digits_only() -> None:
    doc = genesis_doc()
    addr = next(iter(doc["allocations"]))
    spaced = " ".join(addr[i : i + 2] for i in range(0, len(addr), 2))
    doc["allocations"] = {spaced: 1}
    with pytest.raises(GenesisError, match="bad address"):
        parse_genesis(doc)


def test_genesis_is_deterministic() -> None:
    a, b = genesis_block(make_params()), genesis_block(make_params())
    assert a.hash == b.hash and a.raw == b.raw
    assert a.height == 0 and a.txs == ()
    assert a.header.prev_hash == ZERO_HASH and a.header.miner == ZERO_ADDRESS
    assert a.header.tx_root == make_params().commitment()
    assert a.header.state_root == genesis_result(make_params()).state_root


def test_genesis_is_a_valid_block_apart_from_tx_root() -> None:
    g = genesis_block(make_params())
    g.header.check_pow()  # dev target
    assert merkle_root([]) != g.header.tx_root  # the tx root holds the params commitment
    with pytest.raises(BadMerkleRoot):
        check_block(g, max_txs=1, max_bytes=10_000)


def test_allocation_order_does_not_matter() -> None:
    allocs = genesis_doc()["allocations"]
    reversed_allocs = dict(reversed(list(allocs.items())))
    assert list(reversed_allocs) != list(allocs)
    a = genesis_block(make_params(allocations=allocs))
    b = genesis_block(make_params(allocations=reversed_allocs))
    assert a.hash == b.hash


_CHANGES: dict[str, Any] = {
    "chain_id": "unit2",
    "timestamp": 1_001,
    "block_time": 6,
    "initial_target": "3f" + "ff" * 31,
    "pow_limit": "ff" * 31 + "fe",
    "asert_halflife": 3601,
    "max_future": 61,
    "block_reward": 50 * COIN + 1,
    "min_fee": 1,
    "max_block_bytes": 1024 * 1024,
    "max_block_txs": 9_999,
    "dev": False,
    "allocations": {ALICE.address.hex(): 100 * COIN},
    "markets": {"spot": {"price_rule": "maker"}},
    "certificates": {"validity": 3601},
}


@pytest.mark.parametrize("key", sorted(_CHANGES))
def test_genesis_hash_changes_with_any_param(key: str) -> None:
    half = {"initial_target": "7f" + "ff" * 31}  # below pow_limit, so both can move
    base = make_params(**half)
    changed = make_params(**{**half, key: _CHANGES[key]})
    assert changed != base
    assert changed.commitment() != base.commitment()
    assert genesis_block(changed).hash != genesis_block(base).hash


def test_genesis_hash_changes_with_an_allocation_amount() -> None:
    allocs = dict(genesis_doc()["allocations"])
    allocs[BOB.address.hex()] += 1
    assert genesis_block(make_params(allocations=allocs)).hash != genesis_block(make_params()).hash


def test_every_param_is_committed() -> None:
    # the chain's own fields, and each engine's genesis section in place of
    # the derived ``sections``/``engines``
    own = set(make_params().__dataclass_fields__) - {"sections", "engines"}
    sections = {e.genesis.key for e in ENGINES if e.genesis is not None}
    assert set(_CHANGES) == own | sections


def test_genesis_state_holds_the_allocations() -> None:
    p = make_params()
    result = genesis_result(p)
    state = MemoryState()
    state.apply_entries(result.diff, STATE_CODECS)
    assert state.snapshot() == {
        ("acct", addr): Account(amount, 0) for addr, amount in p.allocations
    }
    assert result.receipts == () and result.undo == [(ns, k, None) for ns, k, _ in result.diff]


def test_parse_genesis_json_round_trip() -> None:
    assert parse_genesis_json(json.dumps(genesis_doc())) == make_params()
    assert parse_genesis_json(json.dumps(genesis_doc()).encode()) == make_params()


# --- refusals, each with a message that names the problem --------------------------


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({**genesis_doc(), "blocktime": 5}, "blocktime"),
        ({**genesis_doc(), "block_reward": 1.5}, "float"),
        ({**genesis_doc(), "timestamp": 1000.0}, "float"),
        ({k: v for k, v in genesis_doc().items() if k != "chain_id"}, "chain_id"),
        ({k: v for k, v in genesis_doc().items() if k != "pow_limit"}, "pow_limit"),
        ({**genesis_doc(), "chain_id": ""}, "chain_id"),
        ({**genesis_doc(), "chain_id": "c" * 65}, "chain_id"),
        ({**genesis_doc(), "chain_id": 5}, "chain_id"),
        ({**genesis_doc(), "block_time": 0}, "block_time"),
        ({**genesis_doc(), "block_time": "5"}, "block_time"),
        ({**genesis_doc(), "timestamp": -1}, "timestamp"),
        ({**genesis_doc(), "timestamp": True}, "timestamp"),
        ({**genesis_doc(), "asert_halflife": 0}, "asert_halflife"),
        ({**genesis_doc(), "max_future": 0}, "max_future"),
        ({**genesis_doc(), "block_reward": MAX_MONEY + 1}, "block_reward"),
        ({**genesis_doc(), "block_reward": MAX_BLOCK_REWARD + 1}, "block_reward"),
        ({**genesis_doc(), "max_block_bytes": 100}, "max_block_bytes"),
        ({**genesis_doc(), "max_block_txs": 0}, "max_block_txs"),
        ({**genesis_doc(), "dev": 1}, "dev"),
        ({**genesis_doc(), "initial_target": "zz"}, "initial_target"),
        ({**genesis_doc(), "initial_target": 255}, "initial_target"),
        ({**genesis_doc(), "pow_limit": "00"}, "pow_limit"),
        ({**genesis_doc(), "pow_limit": "1" + "00" * 32}, "pow_limit"),
        ({**genesis_doc(), "initial_target": "ff" * 32, "pow_limit": "7f"}, "above pow_limit"),
        ({**genesis_doc(), "allocations": []}, "allocations"),
        ({**genesis_doc(), "allocations": {"zz": 1}}, "zz"),
        ({**genesis_doc(), "allocations": {"aa" * 19: 1}}, "aa"),
        ({**genesis_doc(), "allocations": {"aa" * 20: -1}}, f"allocations.{'aa' * 20}: expected"),
        ({**genesis_doc(), "allocations": {"aa" * 20: 1.0}}, "float"),
        ({**genesis_doc(), "allocations": {"aa" * 20: MAX_MONEY + 1}}, f"allocations.{'aa' * 20}"),
        ({**genesis_doc(), "allocations": {"aa" * 20: None}}, f"allocations.{'aa' * 20}"),
        # A written null is a value of the wrong type, not the default.
        ({**genesis_doc(), "max_future": None}, "max_future: expected an integer"),
        (
            {**genesis_doc(), "allocations": {"aa" * 20: MAX_GENESIS_SUPPLY, "bb" * 20: 1}},
            "supply cap",
        ),
        ([], "object"),
        ("x", "object"),
    ],
)
def test_bad_params(doc: Any, needle: str) -> None:
    with pytest.raises(GenesisError) as ei:
        parse_genesis(doc)
    assert ei.value.code == "bad_genesis"
    assert needle in ei.value.message


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{", "not valid JSON"),
        (
            '{"chain_id": "x", "timestamp": 1e3, "initial_target": "ff", "pow_limit": "ff"}',
            "genesis timestamp: floats are not allowed (1e3)",
        ),
        (
            '{"chain_id": "x", "certificates": {"authorities": ["ab", 2.5]}}',
            "genesis certificates.authorities[1]: floats are not allowed (2.5)",
        ),
        ('{"chain_id": "x", "markets": {"energy": {"tick": -Infinity}}}', "markets.energy.tick:"),
        (
            '{"chain_id": "x", "timestamp": 10.0, "initial_target": "ff", "pow_limit": "ff"}',
            "float",
        ),
        (
            '{"chain_id": "x", "timestamp": NaN, "initial_target": "ff", "pow_limit": "ff"}',
            "genesis timestamp: floats are not allowed (NaN)",
        ),
        ("[1, 2]", "object"),
        ("", "not valid JSON"),
        # JSON parsers differ on a repeated key: refused, at any depth.
        ('{"chain_id": "x", "chain_id": "y"}', "genesis: key 'chain_id' is given twice"),
        ('{"allocations": {"' + "ab" * 20 + '": 1, "' + "ab" * 20 + '": 2}}', "given twice"),
    ],
)
def test_bad_genesis_json(text: str, needle: str) -> None:
    with pytest.raises(GenesisError) as ei:
        parse_genesis_json(text)
    assert needle in ei.value.message


@pytest.mark.parametrize("text", [b"\xff\xfe{", "[" * 100_000 + "]" * 100_000])
def test_genesis_json_garbage_is_a_genesis_error(text: str | bytes) -> None:
    with pytest.raises(GenesisError):
        parse_genesis_json(text)


@pytest.mark.parametrize("other", ["0x" + "aa" * 20, "AA" * 20])
def test_duplicate_allocation_address_refused(other: str) -> None:
    with pytest.raises(GenesisError):
        parse_genesis({**genesis_doc(), "allocations": {"aa" * 20: 5, other: 7}})


@pytest.mark.parametrize("target", ["f f", " ff", "f_f", "ff\n", "", "0x", "xyz"])
def test_a_target_is_hex_digits_only(target: str) -> None:
    with pytest.raises(GenesisError, match="initial_target: not hex"):
        parse_genesis({**genesis_doc(), "initial_target": target})
