"""Node config: what ``powernode init`` writes loads back, and bad values are
refused with the key named."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import TypedDict

import pytest

from powernode.core.errors import ConfigError
from powernode.devnet.datadir import render_config
from powernode.node.config import (
    _SECTIONS,
    DEFAULT_P2P_PORT,
    DEFAULT_RPC_PORT,
    RANGES,
    RPC_LIMITS,
    NodeConfig,
    load_config,
)


class _Ports(TypedDict):
    rpc_port: int
    p2p_port: int


# What ``powernode init`` writes without port options.
INIT_PORTS: _Ports = {"rpc_port": DEFAULT_RPC_PORT, "p2p_port": DEFAULT_P2P_PORT}


def _write(d: Path, text: str) -> Path:
    d.mkdir(exist_ok=True)
    (d / "config.toml").write_text(text)
    return d


def test_rendered_config_loads_back(tmp_path: Path) -> None:
    text = render_config(
        rpc_port=1234, p2p_port=2345, mining=True, peers=("127.0.0.1:9",), p2p=True, miner_cpu=25
    )
    cfg = load_config(_write(tmp_path / "n", text))
    assert cfg.rpc.port == 1234 and cfg.p2p.port == 2345 and cfg.p2p.peers == ("127.0.0.1:9",)
    assert cfg.mining.enabled and cfg.mining.cpu_percent == 25


def test_rendered_defaults_are_the_loaders_defaults(tmp_path: Path) -> None:
    # The writer (powernode.devnet) and the loader (powernode.node) keep the
    # file format in two places; every key shown must say what a missing key means.
    d = _write(tmp_path / "n", render_config(**INIT_PORTS))
    assert load_config(d) == NodeConfig(datadir=d)


@pytest.mark.parametrize("pct", [0, 101, -5])
def test_miner_cpu_share_out_of_range_is_refused(tmp_path: Path, pct: int) -> None:
    text = render_config(**INIT_PORTS).replace("cpu_percent = 100", f"cpu_percent = {pct}")
    with pytest.raises(ConfigError, match="cpu_percent"):
        load_config(_write(tmp_path / "n", text))


@pytest.mark.parametrize("level", ["debug", "INFO", "Warning", "error"])
def test_log_levels_load_in_any_case(tmp_path: Path, level: str) -> None:
    text = render_config(**INIT_PORTS).replace('level = "info"', f'level = "{level}"')
    assert load_config(_write(tmp_path / "n", text)).log.level == level


@pytest.mark.parametrize("level", ["loud", "", "critical", "notset", "warn"])
def test_unknown_log_level_is_refused_naming_the_key(tmp_path: Path, level: str) -> None:
    # logging.setLevel would raise a bare ValueError at start (or take
    # "warn"/"notset"); the loader names the key and the levels instead.
    text = render_config(**INIT_PORTS).replace('level = "info"', f'level = "{level}"')
    with pytest.raises(ConfigError, match=r"^config \[log\] level: expected debug, info"):
        load_config(_write(tmp_path / "n", text))


def test_unknown_mining_key_is_refused(tmp_path: Path) -> None:
    text = render_config(**INIT_PORTS).replace("[mining]\n", "[mining]\nthreads = 4\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        load_config(_write(tmp_path / "n", text))


def test_verify_processes_is_read(tmp_path: Path) -> None:
    text = render_config(**INIT_PORTS).replace("verify_processes = 2", "verify_processes = 3")
    cfg = load_config(_write(tmp_path / "n", text))
    assert cfg.verify_processes == 3 and cfg.deprecated == ()


def test_verify_threads_is_an_old_name_for_verify_processes(tmp_path: Path) -> None:
    text = render_config(**INIT_PORTS).replace("verify_processes = 2", "verify_threads = 3")
    assert "verify_threads = 3" in text
    cfg = load_config(_write(tmp_path / "n", text))
    assert cfg.verify_processes == 3
    assert cfg.deprecated == (("verify_threads", "verify_processes"),)


def test_old_and_new_name_together_are_refused(tmp_path: Path) -> None:
    text = render_config(**INIT_PORTS).replace(
        "verify_processes = 2", "verify_processes = 2\nverify_threads = 3"
    )
    with pytest.raises(ConfigError, match="both verify_threads and verify_processes"):
        load_config(_write(tmp_path / "n", text))


@pytest.mark.parametrize("key", ["verify_processes", "verify_threads"])
def test_bad_worker_count_names_the_key_written(tmp_path: Path, key: str) -> None:
    text = render_config(**INIT_PORTS).replace("verify_processes = 2", f"{key} = 0")
    with pytest.raises(ConfigError, match=f"config {key}: expected an integer 1..64, not 0"):
        load_config(_write(tmp_path / "n", text))


def test_the_example_config_loads_with_current_names(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "configs" / "node.example.toml"
    cfg = load_config(_write(tmp_path / "n", example.read_text()))
    assert cfg.deprecated == () and cfg.verify_processes == 2


def test_the_example_config_shows_the_rpc_bounds_at_their_defaults(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "configs" / "node.example.toml"
    text = example.read_text()
    for key in RPC_LIMITS:
        assert re.search(rf"(?m)^{key} = \d+", text), f"the example config has no {key}"
    assert load_config(_write(tmp_path / "n", text)).rpc == NodeConfig(datadir=tmp_path).rpc


@pytest.mark.parametrize("key", RPC_LIMITS)
@pytest.mark.parametrize("value", ["0", "-5", "true", '"1000"', "1.5"])
def test_rpc_bounds_must_be_positive_integers(tmp_path: Path, key: str, value: str) -> None:
    text, n = re.subn(rf"(?m)^{key} = \d+", f"{key} = {value}", render_config(**INIT_PORTS))
    assert n == 1, f"render_config shows no {key}"
    with pytest.raises(ConfigError, match=rf"config \[rpc\] {key}: expected"):
        load_config(_write(tmp_path / "n", text))


def test_rpc_bounds_are_read(tmp_path: Path) -> None:
    text = render_config(**INIT_PORTS)
    for key in RPC_LIMITS:
        text = re.sub(rf"(?m)^{key} = \d+", f"{key} = 7", text)
    rpc = load_config(_write(tmp_path / "n", text)).rpc
    assert [getattr(rpc, key) for key in RPC_LIMITS] == [7] * len(RPC_LIMITS)


def test_log_categories_rotation_and_metrics_are_read(tmp_path: Path) -> None:
    text = (
        render_config(**INIT_PORTS)
        .replace("levels = []", 'levels = ["net=debug", "rpc=WARNING"]')
        .replace("max_bytes = 0", "max_bytes = 1048576")
        .replace("backups = 5", "backups = 3")
        .replace("[metrics]\nenabled = false", "[metrics]\nenabled = true")
        .replace("port = 8647", "port = 9100")
    )
    cfg = load_config(_write(tmp_path / "n", text))
    assert cfg.log.category_levels == {"net": "debug", "rpc": "WARNING"}
    assert (cfg.log.max_bytes, cfg.log.backups) == (1048576, 3)
    assert cfg.metrics.enabled and cfg.metrics.port == 9100 and cfg.metrics.host == "127.0.0.1"


@pytest.mark.parametrize(
    "old, new, match",
    [
        ("levels = []", 'levels = ["net"]', r"\[log\] levels: 'net' is not category=level"),
        ("levels = []", 'levels = ["gossip=debug"]', r"\[log\] levels: 'gossip=debug'"),
        ("levels = []", 'levels = ["net=loud"]', r"\[log\] levels: 'net=loud'"),
        ("levels = []", "levels = [1]", r"\[log\] levels: 1 is not category=level"),
        ("levels = []", 'levels = "net=debug"', r"\[log\] levels: expected a list"),
        ("max_bytes = 0", "max_bytes = -1", r"\[log\] max_bytes: expected an integer 0\.\."),
        ("backups = 5", "backups = 0", r"\[log\] backups: expected an integer 1\.\.1000, not 0"),
        ("[metrics]\nenabled = false", '[metrics]\nenabled = "yes"', r"\[metrics\] enabled"),
    ],
)
def test_bad_log_and_metrics_values_name_the_key(
    tmp_path: Path, old: str, new: str, match: str
) -> None:
    text = render_config(**INIT_PORTS)
    assert old in text
    with pytest.raises(ConfigError, match=match):
        load_config(_write(tmp_path / "n", text.replace(old, new)))


# --- every value checked at load ---------------------------------------------------


def _with(tmp: Path, section: str, key: str, value: str) -> Path:
    """A data dir whose config sets ``[section] key = value`` (top level for
    section "") on top of what init writes."""
    text = render_config(**INIT_PORTS)
    lines = text.splitlines()
    if section:
        start = lines.index(f"[{section}]")
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines)
        )
        body = [ln for ln in lines[start + 1 : end] if not ln.startswith(f"{key} =")]
        lines = [*lines[: start + 1], f"{key} = {value}", *body, *lines[end:]]
    else:
        first = next(i for i, ln in enumerate(lines) if ln.startswith("["))
        top = [ln for ln in lines[:first] if not ln.startswith(f"{key} =")]
        lines = [*top, f"{key} = {value}", *lines[first:]]
    return _write(tmp, "\n".join(lines) + "\n")


RANGE_CASES = [(s, k, lo, hi) for (s, k), (lo, hi) in RANGES.items()]


@pytest.mark.parametrize(
    ("section", "key", "lo", "hi"),
    RANGE_CASES,
    ids=[f"{s or 'top'}.{k}" for s, k, _, _ in RANGE_CASES],
)
def test_every_number_is_checked_against_its_range(
    tmp_path: Path, section: str, key: str, lo: int, hi: int
) -> None:
    name = rf"\[{section}\] {key}" if section else key
    for bad in (lo - 1, hi + 1):
        with pytest.raises(
            ConfigError, match=rf"^config {name}: expected an integer {lo}\.\.{hi}, not {bad}$"
        ):
            load_config(_with(tmp_path / f"bad{bad}", section, key, str(bad)))
    for good in (lo, hi):
        cfg = load_config(_with(tmp_path / f"good{good}", section, key, str(good)))
        assert getattr(getattr(cfg, section) if section else cfg, key) == good


@pytest.mark.parametrize(
    ("section", "key", "value", "match"),
    [
        ("rpc", "host", '""', r"^config \[rpc\] host: expected a host name or IP"),
        ("p2p", "host", '"a b"', r"^config \[p2p\] host"),
        ("metrics", "host", '" "', r"^config \[metrics\] host"),
        ("p2p", "peers", '["127.0.0.1"]', r"^config \[p2p\] peers: '127.0.0.1' is not 'host:port'"),
        ("p2p", "peers", '["127.0.0.1:0"]', r"peers: '127.0.0.1:0'"),
        ("p2p", "peers", '["127.0.0.1:70000"]', r"peers: '127.0.0.1:70000'"),
        ("p2p", "peers", '[":8646"]', r"peers: ':8646'"),
        ("p2p", "peers", '["h:x"]', r"peers: 'h:x'"),
        ("p2p", "peers", "[5]", r"peers: 5 is not"),
        ("mining", "address", '"xyz"', r"^config \[mining\] address: address is not hex"),
        ("mining", "address", '"abcd"', r"^config \[mining\] address: address must be 20 bytes"),
        (
            "mining",
            "address",
            '"' + "a" * 39 + '"',
            r"^config \[mining\] address: address must be 20 bytes \(40 hex digits\), got 39 hex",
        ),
        ("", "genesis", '""', r"^config genesis: expected a path"),
        ("rpc", "port", "true", r"^config \[rpc\] port: expected an integer, not true$"),
        ("rpc", "port", '"8645"', r"^config \[rpc\] port: expected an integer, not '8645'$"),
        ("log", "level", "3", r"^config \[log\] level: expected a string, not 3$"),
        ("mining", "enabled", '"yes"', r"^config \[mining\] enabled: expected true or false"),
        ("rpc", "port", "[1]", r"^config \[rpc\] port: expected an integer, not a list$"),
        # A Host is compared without its port and IPv6 brackets: such an
        # entry would never match.
        ("explorer", "hosts", '["node.example:8645"]', r"hosts: 'node.example:8645' is not"),
        ("explorer", "hosts", '["[fe80::1]"]', r"hosts: '\[fe80::1\]' is not"),
        ("explorer", "hosts", '["a b"]', r"^config \[explorer\] hosts: 'a b'"),
    ],
)
def test_strings_that_must_parse_are_checked_at_load(
    tmp_path: Path, section: str, key: str, value: str, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(_with(tmp_path / "n", section, key, value))


def test_good_strings_load(tmp_path: Path) -> None:
    d = _with(tmp_path / "a", "p2p", "peers", '["127.0.0.1:8646", "node.example:1", "[::1]:9"]')
    assert load_config(d).p2p.peers == ("127.0.0.1:8646", "node.example:1", "[::1]:9")
    d = _with(tmp_path / "c", "explorer", "hosts", '["node.example", "fe80::1", "10.0.0.5", "*"]')
    assert load_config(d).explorer.hosts == ("node.example", "fe80::1", "10.0.0.5", "*")
    d = _with(tmp_path / "b", "mining", "address", '"0x' + "ab" * 20 + '"')
    assert load_config(d).mining.address == "0x" + "ab" * 20


def test_the_readme_gives_every_range() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    text = " ".join(readme.split())  # wrapped lines joined
    for (section, key), (lo, hi) in RANGES.items():
        name = f"[{section}] {key}" if section else key
        assert f"`{name}` {lo}..{hi}" in text, name


@pytest.mark.parametrize(
    ("value", "dev", "on"),
    [
        ('"auto"', True, True),
        ('"auto"', False, False),
        ("true", False, True),
        ("true", True, True),
        ("false", True, False),
        ("false", False, False),
    ],
)
def test_the_explorer_is_auto_on_for_dev_chains_or_as_set(
    tmp_path: Path, value: str, dev: bool, on: bool
) -> None:
    cfg = load_config(_with(tmp_path / "n", "explorer", "enabled", value))
    assert cfg.explorer.on(dev=dev) is on


@pytest.mark.parametrize("value", ['"yes"', '"AUTO"', "1", '""', "[]"])
def test_a_bad_explorer_setting_names_the_key(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r'^config \[explorer\] enabled: expected "auto", true'):
        load_config(_with(tmp_path / "n", "explorer", "enabled", value))


def test_the_example_config_shows_every_key(tmp_path: Path) -> None:
    """README, Config keys: configs/node.example.toml shows every key (set,
    or commented out as `# key =`); six [p2p] keys were missing."""
    example = Path(__file__).resolve().parents[2] / "configs" / "node.example.toml"
    text = example.read_text()
    data = tomllib.loads(text)
    for f in fields(NodeConfig):
        if f.name in ("datadir", "deprecated"):
            continue
        section = _SECTIONS.get(f.name)
        if section is None:
            assert f.name in data, f"the example config has no {f.name}"
            continue
        for key in (g.name for g in fields(section)):
            shown = key in data.get(f.name, {}) or re.search(rf"(?m)^# {key} =", text)
            assert shown, f"the example config has no [{f.name}] {key}"


@pytest.mark.parametrize(
    "old, new, message",
    [
        # every key's type error in the one form, in TOML's words
        ("verify_processes = 2", "verify_processes = true", "config verify_processes: expected an integer, not true"),
        ("verify_processes = 2", 'verify_threads = "5"', "config verify_threads: expected an integer, not '5'"),
        ('genesis = "genesis.json"', "genesis = 5", "config genesis: expected a string (a path), not 5"),
        ("check_db = true", "check_db = 1", "config check_db: expected true or false, not 1"),
        ("levels = []", 'levels = "net=debug"', "config [log] levels: expected a list, not 'net=debug'"),
        ('format = "text"', 'format = "yaml"', "config [log] format: expected 'text' or 'json', not 'yaml'"),
    ],
)  # fmt: skip
def test_type_errors_name_the_value_as_written(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    text = render_config(**INIT_PORTS)
    assert old in text
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path / "n", text.replace(old, new)))
    assert info.value.message == message


def test_the_log_format_is_any_case(tmp_path: Path) -> None:
    text = render_config(**INIT_PORTS).replace('format = "text"', 'format = "JSON"')
    assert load_config(_write(tmp_path / "n", text)).log.format == "JSON"


def test_two_listeners_on_one_port_are_named(tmp_path: Path) -> None:
    text = render_config(**INIT_PORTS)
    rpc_port = re.search(r"(?ms)^\[rpc\].*?^port = (\d+)", text)
    assert rpc_port is not None
    clash = re.sub(
        r"(?ms)^(\[metrics\]\nenabled = )false(.*?^port = )\d+",
        rf"\g<1>true\g<2>{rpc_port.group(1)}",
        text,
    )
    assert clash != text
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path / "n", clash))
    assert info.value.message == (
        f"config [metrics] port: {rpc_port.group(1)} is also [rpc] port on 127.0.0.1; "
        "each listener needs a port of its own"
    )
    # off, the metrics port may be anything
    off = clash.replace("[metrics]\nenabled = true", "[metrics]\nenabled = false")
    assert load_config(_write(tmp_path / "m", off)).metrics.enabled is False
