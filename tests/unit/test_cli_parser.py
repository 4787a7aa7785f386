"""The ``powernode`` parser, built without a node: the market, device and
cert commands take their choices from the engines' vocabulary, and every
command keeps ``--datadir``."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from powernode.cli import build_parser
from powernode.cli.common import DEFAULT_DATADIR, event_line
from powernode.engines.certificates.records import STATUSES as CERT_STATUSES
from powernode.engines.market.level import ANY_SOURCE
from powernode.engines.market.params import PRODUCTS
from powernode.engines.market.records import (
    ORDER_STATUSES,
    ROLES,
    SIDES,
    SOURCES,
    TIFS,
    TRADE_STATUSES,
)
from powernode.engines.metering.params import NO_SOURCE
from powernode.engines.metering.params import SOURCES as METER_SOURCES
from powernode.engines.metering.records import KINDS
from powernode.engines.metering.records import STATUSES as DEVICE_STATUSES


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    p = build_parser()
    action = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _choices(command: str, dest: str) -> tuple[str, ...]:
    sp = _subcommands()[command]
    return tuple(next(a for a in sp._actions if a.dest == dest).choices or ())


def test_every_command_is_registered_in_order() -> None:
    assert list(_subcommands()) == [
        *("init", "run", "keygen", "status", "balance", "transfer", "stop", "mine"),
        *("backup", "restore", "export", "import"),
        *("register", "order", "cancel", "book", "trades", "position", "orders", "stats"),
        "participant",
        *("device", "meter", "cert", "ppa", "contract", "verify-proof"),
        *("rpc", "completion"),
    ]


def _action_choices(group: str, action: str, dest: str) -> tuple[str, ...]:
    sub = next(
        a for a in _subcommands()[group]._actions if isinstance(a, argparse._SubParsersAction)
    )
    sp = sub.choices[action]
    return tuple(next(a for a in sp._actions if a.dest == dest).choices or ())


def test_ppa_and_contract_statuses_are_the_engines() -> None:
    from powernode.engines.contracts.contract_records import STATUSES as CONTRACT_STATUSES
    from powernode.engines.contracts.ppa_records import STATUSES as PPA_STATUSES

    assert _action_choices("ppa", "list", "status") == PPA_STATUSES
    assert _action_choices("contract", "list", "status") == CONTRACT_STATUSES
    ppa = next(
        a for a in _subcommands()["ppa"]._actions if isinstance(a, argparse._SubParsersAction)
    )
    assert list(ppa.choices) == [
        *("propose", "accept", "reject", "terminate", "fund", "deliver", "confirm"),
        *("show", "list"),
    ]


@pytest.mark.parametrize(
    ("command", "dest", "expected"),
    [
        ("register", "role", ROLES),
        ("order", "side", SIDES),
        ("order", "product", PRODUCTS),
        ("order", "source", (*SOURCES, ANY_SOURCE)),
        ("order", "tif", TIFS),
        ("orders", "status", ORDER_STATUSES),
        ("book", "product", PRODUCTS),
        ("trades", "product", PRODUCTS),
        ("trades", "status", TRADE_STATUSES),
        ("stats", "product", PRODUCTS),
    ],
)
def test_market_choices_are_the_engines(command: str, dest: str, expected: tuple[str, ...]) -> None:
    assert _choices(command, dest) == expected


def test_order_defaults_and_datadir() -> None:
    a = build_parser().parse_args(["order", "--side", "buy", "--energy-kwh", "1", "--price", "1"])
    assert (a.product, a.slot, a.source, a.tif, a.fee, a.wait) == (
        "spot",
        "next",
        None,
        "GTC",
        "0.001",
        0,
    )
    assert a.datadir == DEFAULT_DATADIR
    b = build_parser().parse_args(["status", "--datadir", "/tmp/x"])
    assert b.datadir == Path("/tmp/x") and b.command == "status"


def _action(group: str, action: str) -> argparse.ArgumentParser:
    sp = _subcommands()[group]
    sub = next(a for a in sp._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)[action]


@pytest.mark.parametrize(
    ("group", "action", "dest", "expected"),
    [
        ("device", "register", "kind", KINDS),
        ("device", "register", "source", (*METER_SOURCES, NO_SOURCE)),
        ("device", "list", "status", DEVICE_STATUSES),
        ("cert", "list", "status", CERT_STATUSES),
        ("cert", "list", "source", METER_SOURCES),
    ],
)
def test_certificate_choices_are_the_engines(
    group: str, action: str, dest: str, expected: tuple[str, ...]
) -> None:
    sp = _action(group, action)
    assert tuple(next(a for a in sp._actions if a.dest == dest).choices or ()) == expected


def test_certificate_groups_and_their_actions() -> None:
    want = {
        "device": ["register", "approve", "retire", "list", "get"],
        "meter": ["report", "readings"],
        "cert": ["issue", "transfer", "retire", "list", "get", "trace", "verify", "cfe"],
    }
    for group, actions in want.items():
        sp = _subcommands()[group]
        sub = next(a for a in sp._actions if isinstance(a, argparse._SubParsersAction))
        assert list(sub.choices)[: len(actions)] == actions
    a = build_parser().parse_args(
        ["meter", "report", "--device", "ab" * 32, "--interval", "last", "--produced", "1.5",
         "--meter-key", "m.key"]
    )  # fmt: skip
    assert (a.command, a.action, a.interval, a.produced, a.consumed) == (
        "meter",
        "report",
        "last",
        1500,
        0,
    )
    assert a.device == bytes.fromhex("ab" * 32) and a.datadir == DEFAULT_DATADIR


def test_order_expiry_in_minutes_counts_from_the_commands_now() -> None:
    """README, order --expiry +MINUTES: counted from the start of the minute
    of the command's now (the later of this machine's clock and the tip's
    time), not from the wall clock at parse time, which a dev chain mined
    fast runs ahead of (the expiry was then already past there)."""
    from powernode.cli.market import MinutesFromNow

    args = ["order", "--side", "buy", "--energy-kwh", "1", "--price", "1", "--expiry", "+10"]
    parsed = build_parser().parse_args(args).expiry
    assert parsed == MinutesFromNow(10)
    chain_ahead = 2_000_000_000 + 7_199  # two hours ahead of any wall clock of the test
    assert parsed.at(chain_ahead) == (chain_ahead // 60 + 10) * 60
    assert parsed.at(chain_ahead) > chain_ahead


@pytest.mark.parametrize(
    "argv",
    [
        ["--dat", "/tmp/x", "status"],
        ["status", "--data", "/tmp/x"],
        ["order", "--side", "buy", "--energy", "1", "--price", "0.5"],
        ["order", "--side", "buy", "--energy-kwh", "1", "--pri", "0.5"],
        ["cert", "list", "--own", "ab" * 20],
        ["contract", "list", "--part", "ab" * 20],
    ],
)
def test_an_option_is_spelt_out_in_full(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """README: an unknown option is a usage error, exit 2; argparse would
    take any unique prefix of a long option unless told not to."""
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_receipt_events_show_money_in_units_and_energy_in_kwh() -> None:
    line = event_line(
        {"event": "ppa.funded", "ppa": "ab", "amount": 1_000_000, "escrow": 5_000_000, "seq": 3}
    )
    assert line == "  ppa.funded  ppa ab  amount 1.00  escrow 5.00  seq 3"
    assert event_line({"event": "cert.transferred", "cert": "cd", "to": "ef", "wh": 40_000}) == (
        "  cert.transferred  cert cd  to ef  wh 40 kWh"
    )
