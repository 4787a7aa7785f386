"""What the engine registry refuses (README, "Adding an engine"): two
engines claiming one name, tx type, namespace or genesis key, a tx type no
tx can carry, and a genesis key that is the chain's own."""

from __future__ import annotations

from dataclasses import replace

import pytest

from powernode.core.execution import GenesisSection
from powernode.state.registry import ENGINES, check_engines

ACCOUNTS = ENGINES[0]
MARKET = ENGINES[1]


def _parse(items: object) -> None:
    return None


def test_the_chains_engines_pass() -> None:
    check_engines(ENGINES)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (replace(MARKET, name="accounts"), "two engines claim the engine name 'accounts'"),
        (replace(MARKET, name="m2"), "two engines claim the tx type"),
        (
            replace(MARKET, name="m2", handlers=(), genesis=None),
            "two engines claim the state namespace",
        ),
    ],
)
def test_two_engines_may_not_claim_one_thing(extra: object, message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        check_engines((*ENGINES, extra))  # type: ignore[arg-type]


def test_a_tx_type_longer_than_a_tx_carries_is_refused() -> None:
    (h, *_) = MARKET.handlers

    class Long:
        tx_type = "x" * 33

    toy = replace(ACCOUNTS, name="toy", handlers=(Long(),), state_codecs={}, genesis=None)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match=r"tx type 'x{33}' is not 1\.\.32 characters"):
        check_engines((*ENGINES, toy))
    assert h.tx_type  # the chain's own are fine


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("block_time", "is the chain's own"),
        ("chain_id", "is the chain's own"),
        ("allocations", "is the chain's own"),
        ("_comment", "is a comment's"),
    ],
)
def test_a_genesis_key_of_the_chain_is_refused(key: str, why: str) -> None:
    toy = replace(
        ACCOUNTS, name="toy", handlers=(), state_codecs={}, genesis=GenesisSection(key, _parse)
    )
    with pytest.raises(RuntimeError, match=f"genesis key '{key}' {why}"):
        check_engines((*ENGINES, toy))
