"""What the new-operator pass found in the CLI and client (issue 13 item 8):
help on every command and option, counts that agree with their noun, one way
to name an account everywhere, capacity shown in the unit typed, and a
datadir given as a str."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from powernode.cli import build_parser
from powernode.cli.common import UserError, chosen_address, counted
from powernode.cli.market import participant_text
from powernode.cli.ops import import_text
from powernode.client import RpcClient, endpoint_from_datadir
from powernode.core.crypto import KeyPair


def _undocumented(p: argparse.ArgumentParser, path: tuple[str, ...]) -> list[str]:
    missing = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {c.dest: c.help for c in action._choices_actions}
            for name, sp in action.choices.items():
                where = " ".join((*path, name))
                if not sp.description:
                    missing.append(f"{where}: no description")
                if not listed.get(name):
                    missing.append(f"{where}: no help line in its parent's list")
                missing += _undocumented(sp, (*path, name))
        elif not action.help:
            name = "/".join(action.option_strings) or action.dest
            missing.append(f"{' '.join(path) or 'powernode'} {name}: no help")
    return missing


def test_every_subcommand_has_a_description_and_every_option_a_help() -> None:
    assert _undocumented(build_parser(), ()) == []


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0 blocks"), (1, "1 block"), (2, "2 blocks"), (1, "1 block")]
)
def test_counted_agrees_with_its_noun(n: int, text: str) -> None:
    assert counted(n, "block") == text


def test_counted_takes_an_irregular_plural() -> None:
    assert counted(3, "entry", "entries") == "3 entries"
    assert counted(1, "entry", "entries") == "1 entry"


ADDRESS_COMMANDS = (["balance"], ["position"], ["participant"], ["orders"], ["cert", "cfe"])


def _cfe(argv: list[str]) -> list[str]:
    return [*argv, "--start", "0", "--end", "3600"] if argv[-1] == "cfe" else argv


@pytest.mark.parametrize("command", ADDRESS_COMMANDS)
def test_an_address_is_taken_positionally_or_as_participant(command: list[str]) -> None:
    addr = KeyPair.generate().address
    p = build_parser()
    base = _cfe(command)
    positional = p.parse_args([*base, addr.hex()])
    option = p.parse_args([*base, "--participant", addr.hex()])
    alias = p.parse_args([*base, "--address", addr.hex()])
    both = p.parse_args([*base, addr.hex(), "--participant", addr.hex()])
    assert {chosen_address(x) for x in (positional, option, alias, both)} == {addr}


def test_two_different_addresses_are_refused() -> None:
    a, b = KeyPair.generate().address, KeyPair.generate().address
    ns = build_parser().parse_args(["balance", a.hex(), "--participant", b.hex()])
    with pytest.raises(UserError, match="different accounts"):
        chosen_address(ns)


def test_a_bad_address_is_a_user_error_naming_the_form() -> None:
    with pytest.raises(UserError, match="--participant"):
        build_parser().parse_args(["balance", "--participant", "zz"])


def test_participant_shows_capacity_in_kw_as_register_takes_it() -> None:
    text = participant_text(
        {
            "address": "ab" * 20,
            "role": "producer",
            "location": "Beijing",
            "capacity_w": 2_500,
            "registered_height": 7,
        }
    )
    assert "capacity 2.5 kW" in text
    assert "2500" not in text


def _runtime(d: Path) -> None:
    (d / "node.json").write_text(json.dumps({"rpc": "http://127.0.0.1:8645/rpc"}))
    (d / ".cookie").write_text("__cookie__:secret\n")


def test_from_datadir_takes_a_str_and_a_path(tmp_path: Path) -> None:
    _runtime(tmp_path)
    from_str = RpcClient.from_datadir(str(tmp_path))
    from_path = RpcClient.from_datadir(tmp_path)
    assert from_str.endpoint == from_path.endpoint == endpoint_from_datadir(str(tmp_path))
    assert from_str.endpoint.url == "http://127.0.0.1:8645/rpc"


def test_import_summary_counts_agree_with_their_noun() -> None:
    # README, Using the CLI: counts agree with their noun ("imported 1 blocks" was printed)
    one = {"blocks": 1, "outcomes": {"connected": 1}, "height": 3}
    assert import_text(one) == "imported 1 block (1 connected), node height 3"
    two = {"blocks": 2, "outcomes": {"duplicate": 1, "connected": 1}, "height": 4}
    assert import_text(two) == "imported 2 blocks (1 connected, 1 duplicate), node height 4"
