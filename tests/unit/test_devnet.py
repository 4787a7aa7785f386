"""powernode.devnet's pieces without a node: free ports, the one wait rule
(and the harness's async twin of it), the dev genesis builder against the
chain's genesis parser, the PoW solver, the testnet layout on disk, and
stopping processes by pid."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from powernode.client import Endpoint, RpcUnavailable, read_key
from powernode.core.block import BlockHeader
from powernode.core.crypto import KeyPair
from powernode.core.pow import block_work, pow_hash
from powernode.devnet import (
    devchain,  # not its testnet_target: pytest would collect it
    netns,
)
from powernode.devnet.datadir import free_port, init_datadir, write_genesis
from powernode.devnet.devchain import (
    ALWAYS_OPEN_MARKETS,
    DEV_TARGET,
    MINER_HASHES_PER_S_PER_PCT,
    dev_genesis,
    solve,
)
from powernode.devnet.netns import MAX_NODES, NetnsError, NetnsPlan
from powernode.devnet.process import pid_alive, stop_pids
from powernode.devnet.testnet import NoTestnet, TestnetLayout
from powernode.devnet.wait import Deadline, WaitAbort, WaitTimeout, wait_until
from powernode.engines.market.params import PRODUCTS, markets
from powernode.node.config import load_config
from powernode.state.genesis import parse_genesis_json
from tests.harness.network import async_wait_until

# --- free ports ---------------------------------------------------------------------


def test_free_port_can_be_bound_on_loopback() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # raises if it was not free


# --- waiting ------------------------------------------------------------------------

Waiter = Callable[..., Any]


def sync_wait(cond: Callable[[], Any], **kw: Any) -> Any:
    return wait_until(cond, **kw)


def async_wait(cond: Callable[[], Any], **kw: Any) -> Any:
    import asyncio

    return asyncio.run(async_wait_until(cond, **kw))


# The harness's asyncio twin must keep the same rule: every test runs on both.
WAITERS = pytest.mark.parametrize("wait", [sync_wait, async_wait], ids=["sync", "async"])


class Counter:
    """A condition that is false (or raises ``errors``) for ``falsy`` tries."""

    def __init__(self, falsy: int, *, errors: list[Exception] | None = None) -> None:
        self.calls = 0
        self.falsy = falsy
        self.errors = errors or []

    def __call__(self) -> int:
        self.calls += 1
        if self.calls <= len(self.errors):
            raise self.errors[self.calls - 1]
        return self.calls if self.calls > self.falsy else 0


@WAITERS
def test_wait_returns_the_first_truthy_value(wait: Waiter) -> None:
    cond = Counter(3)
    assert wait(cond, timeout=5, interval=0.001, what="three tries") == 4
    assert cond.calls == 4


@WAITERS
def test_wait_retries_through_errors_and_names_the_last_on_timeout(wait: Waiter) -> None:
    first, last = ConnectionRefusedError("starting"), ValueError("half-written node.json")
    cond = Counter(10**9, errors=[first, last])
    with pytest.raises(WaitTimeout) as info:
        wait(cond, timeout=0.2, interval=0.01, what="node0 to serve RPC")
    msg = str(info.value)
    assert msg.startswith("timed out after 0.2s waiting for node0 to serve RPC")
    assert "half-written node.json" in msg and "starting" not in msg
    assert info.value.__cause__ is last and info.value.what == "node0 to serve RPC"
    assert cond.calls > 2  # it kept trying after the errors


@WAITERS
def test_wait_timeout_without_errors_names_no_error(wait: Waiter) -> None:
    with pytest.raises(WaitTimeout) as info:
        wait(lambda: False, timeout=0.05, interval=0.01, what="never")
    assert str(info.value) == "timed out after 0.05s waiting for never"


@WAITERS
@pytest.mark.parametrize(
    "fatal",
    [AssertionError("a check failed"), WaitAbort("the node exited"), WaitTimeout("inner", 1.0)],
    ids=["assertion", "abort", "inner-timeout"],
)
def test_wait_ends_at_once_on_assertions_aborts_and_inner_timeouts(
    wait: Waiter, fatal: Exception
) -> None:
    cond = Counter(10**9, errors=[fatal])
    t0 = time.monotonic()
    with pytest.raises(type(fatal)) as info:
        wait(cond, timeout=30, interval=0.01, what="x")
    assert info.value is fatal and cond.calls == 1
    assert time.monotonic() - t0 < 5


@WAITERS
def test_wait_tries_at_once_and_again_at_the_deadline(wait: Waiter) -> None:
    # The pause is cut short at the deadline: with an interval far past the
    # timeout, there is one try at the start and one at the deadline (a timer
    # firing a hair early may add one right after it).
    cond = Counter(10**9)
    t0 = time.monotonic()
    with pytest.raises(WaitTimeout):
        wait(cond, timeout=0.2, interval=60, what="x")
    assert cond.calls in (2, 3)
    assert 0.2 <= time.monotonic() - t0 < 5


@WAITERS
def test_wait_with_no_time_still_tries_once(wait: Waiter) -> None:
    assert wait(lambda: "ready", timeout=0, what="x") == "ready"


def test_async_wait_awaits_coroutine_conditions() -> None:
    import asyncio

    async def ready() -> str:
        await asyncio.sleep(0)
        return "yes"

    cond: Callable[[], Awaitable[str]] = ready
    assert asyncio.run(async_wait_until(cond, timeout=1, what="x")) == "yes"


def test_deadline_counts_down() -> None:
    d = Deadline(0.05)
    assert not d.expired() and 0 < d.remaining() <= 0.05
    assert wait_until(d.expired, timeout=5, interval=0.01, what="the deadline")
    assert d.remaining() == 0.0


# --- dev genesis --------------------------------------------------------------------


def test_dev_genesis_parses_into_the_chain_params_asked_for() -> None:
    a, b = KeyPair.generate(), KeyPair.generate()
    doc = dev_genesis(
        {a.address: 5, b.address: 7},
        chain_id="devnet-unit",
        timestamp=1_767_225_600,
        block_time=3,
        target=devchain.testnet_target(50),
        pow_limit=DEV_TARGET,
        asert_halflife=600,
        comment="a test chain",
        max_block_txs=123,
    )
    assert doc["_comment"] == "a test chain"
    params = parse_genesis_json(json.dumps(doc).encode())
    assert params.chain_id == "devnet-unit" and params.timestamp == 1_767_225_600
    assert params.block_time == 3 and params.asert_halflife == 600
    assert params.max_future == 7200 and params.min_fee == 0 and params.dev
    assert params.max_block_txs == 123
    assert dict(params.allocations) == {a.address: 5, b.address: 7}
    assert params.initial_target == int(devchain.testnet_target(50), 16)
    assert params.pow_limit == int(DEV_TARGET, 16)
    # Dev chains trade around the clock in every product.
    products = markets(params)
    assert set(products) == set(PRODUCTS)
    assert all((m.open_hour, m.close_hour) == (0, 24) for m in products.values())


def test_dev_genesis_defaults_are_a_fresh_trivial_dev_chain() -> None:
    before = int(time.time())
    doc = dev_genesis({})
    assert "_comment" not in doc
    assert before - 61 <= doc["timestamp"] <= before - 59  # blocks mined at once come later
    assert doc["initial_target"] == doc["pow_limit"] == DEV_TARGET
    assert doc["markets"] == {p: dict(m) for p, m in ALWAYS_OPEN_MARKETS.items()}
    params = parse_genesis_json(json.dumps(doc).encode())
    assert params.dev and params.chain_id == "powernode-dev-7"


def test_genesis_file_round_trips(tmp_path: Path) -> None:
    doc = dev_genesis({KeyPair.generate().address: 1}, timestamp=1_000_000)
    path = write_genesis(tmp_path / "genesis.json", doc)
    assert json.loads(path.read_text()) == doc
    assert parse_genesis_json(path.read_bytes()) == parse_genesis_json(json.dumps(doc).encode())


def test_testnet_target_gives_the_block_time_at_the_measured_hash_rate() -> None:
    def work(target: str) -> int:
        return block_work(int(target, 16))

    # 4 miners at 10%: 4,000 hashes a second, so a 2 s block takes 8,000.
    assert work(devchain.testnet_target(10, miners=4, block_time=2)) == 8_000
    assert MINER_HASHES_PER_S_PER_PCT * 10 * 4 * 2 == 8_000
    # Each of cap, miners and block time scales the work a block takes.
    base = work(devchain.testnet_target(10))
    assert work(devchain.testnet_target(20)) == 2 * base
    assert work(devchain.testnet_target(10, miners=2)) * 2 == base
    assert work(devchain.testnet_target(10, block_time=6)) == 3 * base


def test_testnet_target_is_never_easier_than_dev() -> None:
    assert int(devchain.testnet_target(1, miners=1, block_time=1), 16) <= int(DEV_TARGET, 16)


# --- the PoW solver -----------------------------------------------------------------


def header(target: bytes) -> BlockHeader:
    return BlockHeader(
        version=1,
        height=1,
        prev_hash=bytes(32),
        timestamp=1_000,
        target=target,
        nonce=0,
        tx_root=bytes(32),
        state_root=bytes(32),
        miner=bytes(20),
    )


def test_solve_finds_the_first_nonce_that_meets_or_misses_the_target() -> None:
    h = header(bytes.fromhex(DEV_TARGET))
    c, target = h.pow_commitment(), h.target_int
    good = solve(h)
    assert pow_hash(c, good.nonce) <= target
    assert all(pow_hash(c, n) > target for n in range(good.nonce))
    bad = solve(h, want_valid=False)
    assert pow_hash(c, bad.nonce) > target
    later = solve(h, start=good.nonce + 1)
    assert later.nonce > good.nonce and pow_hash(c, later.nonce) <= target


# --- the testnet layout ---------------------------------------------------------------


def test_testnet_layout_on_disk(tmp_path: Path) -> None:
    d = tmp_path / "tn"
    demo = [KeyPair.generate() for _ in range(2)]
    genesis = dev_genesis({k.address: 10 for k in demo}, chain_id="layout-test")
    tn = TestnetLayout.create(d, genesis, nodes=3, demo=demo)

    assert json.loads((d / "genesis.json").read_text()) == genesis
    assert [read_key(d / p).address for p in tn.demo_keys] == [k.address for k in demo]
    assert [n.name for n in tn.nodes] == ["node0", "node1", "node2"]
    for n in tn.nodes:
        datadir = d / n.name
        assert read_key(datadir / "node.key").address.hex() == n.address
        assert (datadir / "genesis.json").read_bytes() == (d / "genesis.json").read_bytes()
        assert not (datadir / "config.toml").exists()  # ports come with write_configs
        assert n.pid is None
    assert TestnetLayout.load(d) == tn

    tn.write_configs(mining=True, miner_cpu=30)
    ports = [p for n in tn.nodes for p in (n.rpc_port, n.p2p_port)]
    assert len(set(ports)) == 6 and all(ports)
    for n in tn.nodes:
        cfg = load_config(d / n.name)  # the node's own loader accepts it
        assert (cfg.rpc.port, cfg.p2p.port) == (n.rpc_port, n.p2p_port)
        assert cfg.p2p.enabled and cfg.mining.enabled and cfg.mining.cpu_percent == 30
        others = {f"127.0.0.1:{m.p2p_port}" for m in tn.nodes if m is not n}
        assert set(cfg.p2p.peers) == others

    tn.nodes[1].pid = 4242
    tn.save()
    saved = json.loads((d / "testnet.json").read_text())
    assert saved["chain_id"] == "layout-test" and saved["dir"] == str(d)
    assert saved["nodes"][1] == {
        "name": "node1",
        "pid": 4242,
        "address": tn.nodes[1].address,
        "rpc_port": tn.nodes[1].rpc_port,
        "p2p_port": tn.nodes[1].p2p_port,
        "host": "127.0.0.1",
        "netns": "",
    }
    assert saved["netns"] is None and saved["partition"] == []
    assert saved["demo_keys"] == ["keys/demo0.key", "keys/demo1.key"]
    assert TestnetLayout.load(d).node("1").pid == 4242
    assert tn.node("node2").name == "node2"
    with pytest.raises(KeyError):
        tn.node("7")


def test_netns_testnet_layout_gives_each_node_its_own_ip(tmp_path: Path) -> None:
    d = tmp_path / "tn"
    genesis = dev_genesis({KeyPair.generate().address: 10}, chain_id="netns-layout")
    tn = TestnetLayout.create(d, genesis, nodes=3, netns=True)
    plan = NetnsPlan.for_dir(d)
    assert tn.netns == plan
    assert [(n.netns, n.host) for n in tn.nodes] == [
        (plan.node(i).netns, f"127.77.{plan.subnet}.{10 + i}") for i in range(3)
    ]
    tn.write_configs(mining=False)
    for n in tn.nodes:
        cfg = load_config(d / n.name)
        # Each node has a host of its own: the default ports, on its own IP.
        assert (cfg.rpc.host, cfg.rpc.port) == ("127.0.0.1", 8645)
        assert (cfg.p2p.host, cfg.p2p.port) == (n.host, 8646)
        assert set(cfg.p2p.peers) == {f"{m.host}:8646" for m in tn.nodes if m is not n}
    tn.partition = [["node0"], ["node1", "node2"]]
    tn.save()
    assert TestnetLayout.load(d) == tn


def test_netns_names_are_per_directory_and_fit_the_kernel(tmp_path: Path) -> None:
    a, b = NetnsPlan.for_dir(tmp_path / "a"), NetnsPlan.for_dir(tmp_path / "b")
    assert a == NetnsPlan.for_dir(tmp_path / "x" / ".." / "a")  # the same directory
    assert a.prefix != b.prefix
    for plan in (a, b):
        hosts = [plan.node(i) for i in range(MAX_NODES)] + [plan.guest(0)]
        assert len({h.ip for h in hosts}) == len(hosts)
        assert all(h.ip.startswith(f"127.77.{plan.subnet}.") for h in hosts)
        # Interface names are at most 15 bytes (IFNAMSIZ - 1).
        assert max(len(h.link) for h in hosts) <= 15
        assert plan.mine([plan.hub, hosts[0].netns, "other-n0", "pn-n0"]) == [
            plan.hub,
            hosts[0].netns,
        ]
    with pytest.raises(NetnsError):
        a.node(MAX_NODES)


def test_netns_says_why_it_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert netns.unavailable() == "network namespaces need root"
    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)
    monkeypatch.setattr(netns.shutil, "which", lambda name: None)
    assert netns.unavailable() == "the 'ip' command (iproute2) is not installed"


def test_netns_client_for_a_missing_namespace_is_unavailable() -> None:
    c = netns.NetnsRpcClient(Endpoint("http://127.0.0.1:1/rpc", "Basic x"), netns="pn-none-n0")
    with pytest.raises(RpcUnavailable, match="network namespace pn-none-n0 does not exist"):
        c.call("node.info")
    c.close()


def test_no_testnet_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NoTestnet, match="no testnet in"):
        TestnetLayout.load(tmp_path)


def test_init_datadir_writes_what_the_node_loads(tmp_path: Path) -> None:
    genesis = write_genesis(tmp_path / "genesis.json", dev_genesis({}))
    key = init_datadir(tmp_path / "n", genesis, p2p=True, peers=["127.0.0.1:9"])
    assert read_key(tmp_path / "n" / "node.key").address == key.address
    cfg = load_config(tmp_path / "n")
    assert cfg.p2p.enabled and cfg.p2p.peers == ("127.0.0.1:9",) and not cfg.mining.enabled
    assert cfg.rpc.port != cfg.p2p.port


# --- processes by pid -----------------------------------------------------------------


def child(code: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import signal, sys, time\n{code}\nprint('up', flush=True)\n"
         "time.sleep(60)"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"  # handlers installed
    return proc


def test_stop_pids_stops_kills_and_reports() -> None:
    polite = child("")
    stubborn = child("signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    gone = child("")
    gone.kill()
    gone.wait()
    try:
        out = stop_pids([polite.pid, stubborn.pid, gone.pid], timeout=2)
        assert out == {
            polite.pid: "stopped",
            stubborn.pid: "killed after timeout",
            gone.pid: "not running",
        }
        assert not pid_alive(polite.pid) and not pid_alive(stubborn.pid)
    finally:
        for p in (polite, stubborn):
            p.kill()
            p.wait()
            assert p.stdout is not None
            p.stdout.close()
        assert gone.stdout is not None
        gone.stdout.close()


def test_pid_alive() -> None:
    proc = child("")
    try:
        assert pid_alive(proc.pid)
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    assert not pid_alive(proc.pid) and not pid_alive(None) and not pid_alive(0)


def test_testnet_target_of_a_refused_block_time_is_left_to_the_genesis_check() -> None:
    """README, Local testnet: a --block-time of 0 stops ``up`` with the node's
    one-line error, not a ZeroDivisionError while the target is computed."""
    assert devchain.testnet_target(100, miners=3, block_time=0) == devchain.testnet_target(
        100, miners=3, block_time=1
    )
