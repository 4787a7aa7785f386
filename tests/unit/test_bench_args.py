"""The benchmarks' shared argument rules (scripts/benchkit/runner.py):
``--quick`` gives small sizes as defaults, and an option given on the
command line keeps its value."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def runner() -> ModuleType:
    if str(SCRIPTS) not in sys.path:
        sys.path.append(str(SCRIPTS))  # the scripts import their siblings
    return importlib.import_module("benchkit.runner")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--owners", type=int, default=20)
    ap.add_argument("--sizes", type=lambda t: [int(x) for x in t.split(",")], default="1,2")
    return ap


QUICK = {"devices": 200, "owners": 4, "sizes": "5,6"}


def test_quick_sets_the_small_sizes(runner: ModuleType) -> None:
    a = runner.parse_args(_parser(), ["--quick"], quick=QUICK)
    assert (a.devices, a.owners, a.sizes) == (200, 4, [5, 6])


def test_an_option_given_keeps_its_value_under_quick(runner: ModuleType) -> None:
    a = runner.parse_args(_parser(), ["--quick", "--devices", "0", "--sizes", "7,8"], quick=QUICK)
    assert (a.devices, a.owners, a.sizes) == (0, 4, [7, 8])
    # even when the value given is the option's own default
    a = runner.parse_args(_parser(), ["--devices", "10000", "--quick"], quick=QUICK)
    assert a.devices == 10_000


def test_without_quick_the_defaults_stay(runner: ModuleType) -> None:
    a = runner.parse_args(_parser(), [], quick=QUICK)
    assert (a.devices, a.owners, a.sizes) == (10_000, 20, [1, 2])
