"""The CLI's ways to reach a node, as a user types them: ``powernode rpc``,
global options before the command, ``POWERNODE_DATADIR``, ``--rpc-url`` /
``--rpc-cookie``, ``--rpcwait``, ``--version`` and shell completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

import powernode
from powernode.devnet.datadir import free_port
from powernode.devnet.process import ProcessNode

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def pn(
    *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "powernode.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    if check and r.returncode != 0:
        raise AssertionError(f"powernode {' '.join(args)} failed: {r.stderr}")
    return r


def one_line_error(r: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    d = tmp_path_factory.mktemp("cli_rpc") / "node"
    pn("init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port()))
    proc = ProcessNode(d)
    proc.start()
    try:
        yield d
    finally:
        proc.stop()


def test_version_is_the_package_version_and_pyproject_agrees() -> None:
    assert pn("--version").stdout.strip() == f"powernode {powernode.__version__}"
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["version"] == powernode.__version__


def test_rpc_calls_any_method_by_name_or_position(node: Path) -> None:
    d = str(node)
    mined = json.loads(pn("rpc", "--datadir", d, "dev.mine", "blocks=2").stdout)
    assert len(mined["hashes"]) == 2
    by_name = json.loads(pn("rpc", "--datadir", d, "chain.block", "height=2").stdout)
    by_pos = json.loads(pn("rpc", "--datadir", d, "chain.block", "2").stdout)
    assert by_name == by_pos and by_name["hash"] == mined["hashes"][1]
    # JSON values: a boolean; the block nonce comes back a string.
    raw = json.loads(pn("rpc", "--datadir", d, "chain.block", "height=1", "raw=true").stdout)
    assert len(raw["raw"]) == 2 * raw["size"] and isinstance(raw["nonce"], str)
    # A string result is printed as it is.
    info = json.loads(pn("rpc", "--datadir", d, "node.info").stdout)
    assert info["height"] == 2


def test_a_param_declared_a_string_keeps_the_text_typed(node: Path) -> None:
    # 64 decimal digits parse as a JSON number, but tx.get's id is a string:
    # the node looks it up (not found) instead of refusing its type.
    r = pn("rpc", "--datadir", str(node), "tx.get", "id=" + "1" * 64, check=False)
    one_line_error(r, "powernode rpc: error: not_found")
    # The same whatever the other values are: a quoted address for a string
    # param stays as typed (quotes and all), alone or beside a number.
    quoted = '"' + "ab" * 20 + '"'
    for extra in ((), ("limit=5",)):
        r = pn("rpc", "--datadir", str(node), "market.trades", f"participant={quoted}", *extra,
               check=False)  # fmt: skip
        one_line_error(r, "powernode rpc: error: invalid_params")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("node.info", "bogus=1"), ("invalid_params", "bogus")),
        (("no.such.method",), ("method_not_found",)),
        (("chain.block", "height=1", "2"), ("KEY=VALUE",)),
        (("chain.block", "height=1", "height=2"), ("twice",)),
        (("account.get", "address=zz"), ("invalid_params",)),
    ],
)
def test_rpc_mistakes_are_one_line(
    node: Path, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    one_line_error(pn("rpc", "--datadir", str(node), *args, check=False), *needles)


def test_global_options_before_the_command_and_the_env_var(node: Path, tmp_path: Path) -> None:
    height = json.loads(pn("--datadir", str(node), "status", "--json").stdout)["height"]
    env = {"POWERNODE_DATADIR": str(node)}
    assert json.loads(pn("status", "--json", env=env).stdout)["height"] == height
    # --datadir wins over the variable, before or after the command.
    empty = str(tmp_path / "none")
    one_line_error(pn("--datadir", empty, "status", env=env, check=False), "no running node")
    one_line_error(pn("status", "--datadir", empty, env=env, check=False), "no running node")
    # A bad value for a global option before the command names the command.
    line = one_line_error(pn("--rpcwait-timeout", "x", "status", check=False))
    assert line.startswith("powernode status: error:")


def test_rpc_url_and_cookie_reach_a_node_outside_the_datadir(node: Path, tmp_path: Path) -> None:
    url = json.loads((node / "node.json").read_text())["rpc"]
    cookie = str(node / ".cookie")
    other = str(tmp_path / "elsewhere")
    args = ("--datadir", other, "--rpc-url", url, "--rpc-cookie", cookie)
    assert json.loads(pn(*args, "status", "--json").stdout)["rpc"] == url
    # The node's address alone, with or without a slash, means its /rpc.
    base = url.removesuffix("rpc")
    for given in (base, base.rstrip("/")):
        got = pn("--datadir", other, "--rpc-url", given, "--rpc-cookie", cookie, "status", "--json")
        assert json.loads(got.stdout)["rpc"] == url
    # Without --rpc-cookie the cookie is looked for in the data dir.
    one_line_error(pn("--datadir", other, "--rpc-url", url, "status", check=False), "--rpc-cookie")
    one_line_error(pn(*args[:2], "--rpc-url", "ftp://x", "status", check=False), "--rpc-url")
    bad = tmp_path / "bad.cookie"
    bad.write_text("__cookie__:nope")
    one_line_error(
        pn("--rpc-url", url, "--rpc-cookie", str(bad), "status", check=False), "unauthorized"
    )


WAIT_ARGS = ("--rpcwait-timeout", "120", "status", "--json")


def test_rpcwait_waits_for_a_starting_node_and_gives_up_at_its_timeout(tmp_path: Path) -> None:
    d = tmp_path / "late"
    pn("init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port()))
    one_line_error(
        pn("--datadir", str(d), "--rpcwait", "--rpcwait-timeout", "0.5", "status", check=False),
        "no running node",
        "waited 0.5 s",
    )
    waiting = subprocess.Popen(
        [sys.executable, "-m", "powernode.cli", "--datadir", str(d), "--rpcwait", *WAIT_ARGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc = ProcessNode(d)
    try:
        proc.start()
        out, err = waiting.communicate(timeout=120)
        assert waiting.returncode == 0, err
        assert json.loads(out)["height"] == 0
    finally:
        waiting.kill()
        proc.stop()


def test_bash_completion_is_generated_from_the_parser(tmp_path: Path) -> None:
    script = tmp_path / "powernode.bash"
    script.write_text(pn("completion", "bash").stdout)

    def complete(*words: str) -> list[str]:
        quoted = " ".join(f"'{w}'" for w in words)
        prog = (
            f"source {script}; COMP_WORDS=(powernode {quoted}); "
            f"COMP_CWORD={len(words)}; _powernode; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        )
        r = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    assert {"init", "run", "rpc", "completion", "device"} <= set(complete(""))
    assert sorted(complete("--datadir", "/tmp", "sta")) == ["stats", "status"]
    assert sorted(complete("order", "--side", "")) == ["buy", "sell"]
    assert "register" in complete("device", "")
    assert "--rpcwait" in complete("status", "--rpc")
    # A path option completes file names, restore --from as well.
    (tmp_path / "chain-copy.db").write_bytes(b"")
    assert complete("restore", "--from", str(tmp_path / "chain-c")) == [
        str(tmp_path / "chain-copy.db")
    ]
    # So does a positional path (import FILE, verify-proof FILE), and a
    # positional's choices are offered (completion bash).
    assert complete("import", str(tmp_path / "chain-c")) == [str(tmp_path / "chain-copy.db")]
    assert complete("verify-proof", str(tmp_path / "chain-c")) == [str(tmp_path / "chain-copy.db")]
    assert complete("completion", "b") == ["bash"]
