"""``powernode keygen`` never loses the key it makes: ``--json`` needs
``--out`` (a private key is not printed as JSON), and says where it went."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from powernode.client import read_key

pytestmark = pytest.mark.e2e


def pn(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "powernode.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_keygen_json_without_out_is_refused_before_a_key_is_made() -> None:
    r = pn("keygen", "--json")
    assert r.returncode == 1 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        "powernode keygen: error: --json needs --out FILE: the key is written there, "
        "never printed as JSON"
    ]


def test_keygen_json_names_the_file_it_wrote_as_an_absolute_path(tmp_path: Path) -> None:
    r = pn("keygen", "--json", "--out", "k.key", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["file"] == str(tmp_path / "k.key")
    assert read_key(Path(out["file"])).address.hex() == out["address"]
    assert "private" not in r.stdout


def test_keygen_text_without_out_prints_the_key_once(tmp_path: Path) -> None:
    r = pn("keygen")
    assert r.returncode == 0
    private = next(line for line in r.stdout.splitlines() if line.startswith("private"))
    assert len(private.split()[1]) == 64


def test_an_empty_out_is_refused_not_taken_as_no_out() -> None:
    """`--out "$F"` with F unset: refused, and no key printed."""
    for args in (("keygen", "--out", ""), ("keygen", "--json", "--out", "")):
        r = pn(*args)
        assert r.returncode == 1 and r.stdout == "", (args, r.stdout)
        assert r.stderr.strip().splitlines() == [
            "powernode keygen: error: --out: give a file name (an empty one would print the "
            "key instead)"
        ]
