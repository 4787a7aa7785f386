"""``scripts/testnet.py up`` replaces its ``--dir``: it refuses a folder it
did not make (unless ``--force``) and a testnet of no nodes, and
``scripts/quickstart`` caps its miners' CPU."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "testnet.py"


def up(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "up", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("testnet_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    "contents",
    [
        {"notes.txt": "mine"},
        {"testnet.json": "not json"},
        {"testnet.json": '{"chain_id": "x"}'},  # no nodes: not what up writes
    ],
)
def test_up_refuses_a_folder_it_did_not_make_and_leaves_it_alone(
    tmp_path: Path, contents: dict[str, str]
) -> None:
    d = tmp_path / "work"
    d.mkdir()
    for name, text in contents.items():
        (d / name).write_text(text)
    r = up("--dir", str(d), "--nodes", "1")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--force" in lines[0] and str(d) in lines[0]
    assert {p.name: p.read_text() for p in d.iterdir()} == contents


def test_up_refuses_a_file_for_a_folder(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    r = up("--dir", str(f))
    assert r.returncode == 1 and "not a directory" in r.stderr and f.read_text() == "x"


@pytest.mark.parametrize("nodes", ["0", "-1", "x", "1.5"])
def test_up_refuses_fewer_than_one_node(tmp_path: Path, nodes: str) -> None:
    r = up("--dir", str(tmp_path / "t"), "--nodes", nodes)
    assert r.returncode == 2 and "--nodes" in r.stderr and "1 or more" in r.stderr
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--accounts", "-1", "a whole number"),
        ("--accounts", "x", "a whole number"),
        ("--miner-cpu", "0", "1..100"),
        ("--miner-cpu", "101", "1..100"),
    ],
)
def test_up_refuses_a_bad_count_in_one_line(
    tmp_path: Path, flag: str, value: str, expected: str
) -> None:
    r = up("--dir", str(tmp_path / "t"), flag, value)
    assert r.returncode == 2 and flag in r.stderr and expected in r.stderr
    assert len(r.stderr.splitlines()[-1]) < 200  # not argparse's list of 100 choices
    assert not (tmp_path / "t").exists()


def test_up_takes_easy_only_without_miners(tmp_path: Path) -> None:
    r = up("--dir", str(tmp_path / "t"), "--easy")
    assert r.returncode == 2 and "--easy needs --no-mine" in r.stderr
    assert not (tmp_path / "t").exists()


def test_what_up_may_replace(tmp_path: Path) -> None:
    refuse = load_script().refuse_foreign_dir
    refuse(tmp_path / "missing", force=False)
    (tmp_path / "empty").mkdir()
    refuse(tmp_path / "empty", force=False)
    made = tmp_path / "made"
    made.mkdir()
    (made / "testnet.json").write_text(
        json.dumps({"chain_id": "c", "nodes": [{"name": "node0", "address": "00" * 20}]})
    )
    (made / "node0").mkdir()
    refuse(made, force=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "x").write_text("x")
    with pytest.raises(SystemExit):
        refuse(other, force=False)
    refuse(other, force=True)


def test_quickstart_caps_the_miners_cpu() -> None:
    text = (ROOT / "scripts" / "quickstart").read_text()
    up_line = next(line for line in text.splitlines() if "testnet.py up" in line)
    assert '--miner-cpu "${MINER_CPU:-25}"' in up_line


def test_logs_refuses_a_negative_line_count(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "logs", "--dir", str(tmp_path), "--no-follow", "-n", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "a whole number" in r.stderr, r.stderr
