"""The error tree's public side: the README's list of codes, the codes of the
node's own errors, and which errors ban the peer that caused them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from powernode.core.errors import (
    BadHeaders,
    BadInput,
    BadSignature,
    InvalidBlock,
    InvalidParams,
    InvalidTransaction,
    KnownInvalid,
    Malformed,
    MiningFailed,
    NonceTooLow,
    NotDevMode,
    OversizeFrame,
    P2pDisabled,
    PowernodeError,
    ProtocolError,
    TimeTooNew,
    TxFlood,
    UnconnectingHeaders,
    WrongNetwork,
    all_codes,
    proves_misbehaviour,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_codes(text: str) -> list[str]:
    """The codes listed in the README's "Error codes" section: its bullets
    are ``- group: `code`, `code` (a note), ...``; notes in parentheses and
    the group names are not codes."""
    heading = re.search(r"^#+ Error codes[ \t]*$", text, re.M)
    assert heading is not None, "README has no 'Error codes' section"
    body = text[heading.end() :]
    following = re.search(r"^#", body, re.M)
    if following is not None:
        body = body[: following.start()]
    codes: list[str] = []
    for item in re.split(r"^- ", body, flags=re.M)[1:]:
        _, _, listed = item.partition(":")
        codes += re.findall(r"`([a-z][a-z0-9_]*)`", re.sub(r"\([^)]*\)", "", listed))
    return codes


def test_the_readme_lists_every_code_once_and_no_other() -> None:
    listed = readme_codes(README.read_text())
    assert len(listed) == len(set(listed)), sorted(c for c in listed if listed.count(c) > 1)
    tree = set(all_codes())
    assert sorted(tree - set(listed)) == [], "codes missing from the README"
    assert sorted(set(listed) - tree) == [], "codes in the README that no class has"


def test_the_readme_parser_sees_groups_and_skips_notes() -> None:
    text = (
        "### Error codes\n\nIntro with `not_a_code`.\n\n"
        "- one: `a_code`, `b_code` (a note on `c_code`),\n  `d_code`\n"
        "- two (with a note): `e_code`\n\n## Next\n\n- three: `f_code`\n"
    )
    assert readme_codes(text) == ["a_code", "b_code", "d_code", "e_code"]


@pytest.mark.parametrize(
    ("cls", "code", "base"),
    [
        (InvalidParams, "invalid_params", PowernodeError),
        (MiningFailed, "mining_failed", PowernodeError),
        (NotDevMode, "not_dev_mode", PowernodeError),
        (P2pDisabled, "p2p_disabled", PowernodeError),
        (BadInput, "bad_input", PowernodeError),
        (KnownInvalid, "known_invalid", InvalidBlock),
        (ProtocolError, "protocol_error", PowernodeError),
        (Malformed, "malformed_frame", ProtocolError),
        (OversizeFrame, "oversize_frame", ProtocolError),
        (WrongNetwork, "wrong_network", ProtocolError),
        (BadHeaders, "bad_headers", ProtocolError),
        (UnconnectingHeaders, "unconnecting_headers", ProtocolError),
        (TxFlood, "tx_flood", ProtocolError),
    ],
)
def test_each_code_is_a_class_of_the_tree(
    cls: type[PowernodeError], code: str, base: type[PowernodeError]
) -> None:
    assert all_codes()[code] is cls
    assert issubclass(cls, base)
    assert cls().code == code and cls("why").to_dict() == {"code": code, "message": "why"}


# What banned a peer when this was a set of codes in p2p_gossip.py: the
# classes must say the same (protocol errors aside, which all ban but one).
BANNING = {
    "malformed", "float_not_allowed", "oversize", "oversize_tx", "bad_signature",
    "bad_meter_signature",
    # malformed contract payloads (kinds of bad_payload)
    "contract_too_large", "bad_contract_term", "contract_overdrawn",
    "wrong_chain", "unknown_tx_type", "bad_payload", "bad_amount", "bad_pow",
    "bad_target", "bad_merkle_root", "bad_state_root", "bad_height", "oversize_block",
    "duplicate_tx", "bad_tx_in_block", "time_too_old", "parent_invalid", "known_invalid",
}  # fmt: skip


def test_which_codes_ban_a_peer() -> None:
    codes = all_codes()
    banning = {c for c, cls in codes.items() if cls.bans_peer}
    protocol = {c for c, cls in codes.items() if issubclass(cls, ProtocolError)}
    assert banning - protocol == BANNING
    # Another network (or protocol version) is not misbehaviour; a tx flood
    # is disconnected, not banned (an honest node with a lower fee floor
    # relays cheap txs too), and a peer stalling on its claimed height is
    # dropped (an honest node may be slow).
    assert protocol - banning == {"wrong_network", "version_mismatch", "tx_flood", "stalling"}
    assert "bad_auth" in banning
    # Stale or early data, the node's own faults and RPC mistakes never ban.
    for code in ("nonce_too_low", "time_too_new", "internal_error", "invalid_params", "error"):
        assert not codes[code].bans_peer, code


@pytest.mark.parametrize(
    ("exc", "bans"),
    [
        (BadSignature(), True),
        (NonceTooLow(), False),
        (TimeTooNew(), False),
        (KnownInvalid(), True),
        (InvalidBlock("no rule named"), False),
        (InvalidTransaction("no rule named"), False),
        # A wrapper is judged by the code it carries, not by its own class.
        (InvalidBlock("tx 3: bad_signature", code="bad_signature"), True),
        (InvalidBlock("tx 3: nonce_too_low", code="nonce_too_low"), False),
        (InvalidBlock("a second genesis block", code="bad_genesis"), False),
        (ProtocolError("invalid tx", code="bad_amount"), True),
    ],
)
def test_proves_misbehaviour(exc: PowernodeError, bans: bool) -> None:
    assert proves_misbehaviour(exc) is bans


def test_every_error_class_of_the_node_lives_in_core_errors() -> None:
    # A code defined elsewhere (an engine's own package) would reach RPC
    # clients without being in the README's list or all_codes(); "Adding an
    # engine" says a new code goes in core/errors.py.
    import powernode.node.node  # noqa: F401  (every engine, the node and its shell)

    stack: list[type[PowernodeError]] = [PowernodeError]
    outside: list[str] = []
    while stack:
        cls = stack.pop()
        mod = cls.__module__
        if mod.startswith("powernode.") and mod != "powernode.core.errors":
            outside.append(f"{mod}.{cls.__qualname__}")
        stack.extend(cls.__subclasses__())
    assert outside == []
