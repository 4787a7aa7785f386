"""Operating a real node process: SIGHUP after a logrotate-style move, and
``/health`` and ``/metrics`` scraped from the outside while it mines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from powernode.client import build_transfer
from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import free_port, init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.process import ProcessNode
from powernode.devnet.wait import wait_until
from powernode.node.logging_setup import CATEGORIES
from tests.harness import TEST_CHAIN
from tests.harness.procnet import ProcessNetwork

pytestmark = pytest.mark.e2e


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def scrape(url: str) -> dict[str, float]:
    """The unlabelled samples of a scrape: name -> value."""
    return {k: v for k, v in scrape_all(url).items() if "{" not in k}


def scrape_all(url: str) -> dict[str, float]:
    """Every sample of a scrape: name{label="v",...} -> value."""
    status, body = get(url)
    assert status == 200
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


@pytest.fixture
def datadir(tmp_path: Path) -> Path:
    genesis = write_genesis(
        tmp_path / "genesis.json",
        dev_genesis({KeyPair.generate().address: 10**12}, chain_id=TEST_CHAIN),
    )
    datadir = tmp_path / "node"
    init_datadir(datadir, genesis)
    cfg = datadir / "config.toml"
    cfg.write_text(cfg.read_text().replace("port = 8647", f"port = {free_port()}"))
    return datadir


def test_sighup_reopens_node_log_after_a_move(datadir: Path) -> None:
    with ProcessNode(datadir) as node:
        node.start()
        node.call("dev.mine", {"blocks": 1})
        log = datadir / "node.log"
        wait_until(lambda: "block.connected height=1 " in log.read_text(), what="block 1 logged")
        moved = datadir / "node.log.1"
        log.rename(moved)  # logrotate's default: move, then signal
        os.kill(node.pid, signal.SIGHUP)
        wait_until(
            lambda: log.exists() and "log.reopened" in log.read_text(), what="a new node.log"
        )
        node.call("dev.mine", {"blocks": 1})
        wait_until(lambda: "block.connected height=2 " in log.read_text(), what="block 2 logged")
        assert "block.connected height=2 " not in moved.read_text()
        assert "block.connected height=1 " in moved.read_text()
        # Still serving, and SIGHUP again with nothing moved is harmless.
        os.kill(node.pid, signal.SIGHUP)
        assert node.call("node.info")["height"] == 2
        assert node.is_running()
        assert node.stop() == 0
    assert "node.stopped" in log.read_text()


def test_health_and_metrics_of_a_mining_process(datadir: Path) -> None:
    with ProcessNode(datadir) as node:
        node.start("--metrics", "--mine")
        runtime: dict[str, Any] = json.loads((datadir / "node.json").read_text())
        metrics_url = runtime["metrics"]
        health_url = runtime["rpc"].removesuffix("/rpc") + "/health"
        wait_until(lambda: node.call("node.info")["height"] >= 3, what="3 blocks mined")
        node.call("miner.stop")
        info = node.call("node.info")
        m = scrape(metrics_url)
        assert m["powernode_height"] == info["height"]
        assert m["powernode_mempool_txs"] == info["mempool_size"]
        assert m["powernode_blocks_connected_total"] == info["height"]
        assert m["powernode_block_connect_seconds_count"] == info["height"]
        assert m["powernode_miner_hashes_total"] > 0 and m["powernode_mining"] == 0
        status, body = get(health_url)  # no credentials
        assert status == 200, body
        doc = json.loads(body)
        assert doc["status"] == "ok" and doc["height"] == info["height"]
        assert doc["syncing"] is False and info["syncing"] is False


def enable_metrics(node: ProcessNode) -> None:
    cfg = node.datadir / "config.toml"
    head, _, _ = cfg.read_text().partition("[metrics]")
    cfg.write_text(head + f'[metrics]\nenabled = true\nhost = "127.0.0.1"\nport = {free_port()}\n')


def test_three_processes_health_and_metrics_agree_with_node_info(tmp_path: Path) -> None:
    alice, bob = KeyPair.generate(), KeyPair.generate()
    genesis = dev_genesis({alice.address: 10**12}, chain_id=TEST_CHAIN)
    with ProcessNetwork(tmp_path, genesis, 3) as net:
        nodes = net.start()
        # Restarted with metrics on, each on a port of its own.
        for node in nodes:
            node.stop()
            enable_metrics(node)
            node.start()
        wait_until(net.meshed, what="3 nodes meshed again")
        nodes[0].call("dev.mine", {"blocks": 4})
        wait_until(lambda: all(n.call("node.info")["height"] == 4 for n in nodes), what="all at 4")
        tx = build_transfer(alice, chain_id=TEST_CHAIN, nonce=0, to=bob.address, amount=5)
        nodes[1].call("tx.submit", {"raw": tx.raw.hex()})
        wait_until(
            lambda: all(n.call("node.info")["mempool_size"] == 1 for n in nodes),
            what="the tx in every mempool",
        )
        for node in nodes:
            runtime = json.loads((node.datadir / "node.json").read_text())
            info = node.call("node.info")
            status, body = get(runtime["rpc"].removesuffix("/rpc") + "/health")
            doc = json.loads(body)
            assert status == 200 and doc["height"] == info["height"] == 4, doc
            assert doc["peers"] == info["peers"] == 2
            m = scrape_all(runtime["metrics"])
            assert m["powernode_height"] == 4 and m["powernode_syncing"] == 0
            # What a peer has shown: nodes 1 and 2 got the blocks from node 0;
            # node 0 may have been sent none (a peer's height only grows with
            # its handshake and what it sends).
            assert m["powernode_best_peer_height"] == info["best_peer_height"]
            assert info["best_peer_height"] == 4 or node is nodes[0]
            assert m['powernode_peers{direction="in"}'] + m['powernode_peers{direction="out"}'] == 2
            assert m["powernode_mempool_txs"] == info["mempool_size"] == 1
            assert m["powernode_txs_accepted_total"] == 1
            # Blocks connected since this process started: all 4 (node 0 mined them).
            assert m["powernode_blocks_connected_total"] == 4
        # Node 1 had the tx over RPC; the others from a peer, with no RPC call.
        calls = [
            scrape_all(json.loads((n.datadir / "node.json").read_text())["metrics"]).get(
                'powernode_rpc_calls_total{method="tx.submit"}', 0
            )
            for n in nodes
        ]
        assert calls == [0, 1, 0]


def test_run_debug_category_flag(datadir: Path) -> None:
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "powernode.cli",
            "run",
            "--datadir",
            str(datadir),
            "--debug",
            "nope",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == [
        "powernode run: error: --debug nope: not a log category; one of " + ", ".join(CATEGORIES)
    ]
    assert "net" in CATEGORIES and "market" in CATEGORIES
    with ProcessNode(datadir) as node:
        node.start("--debug", "rpc")
        node.call("node.info")
        log = datadir / "node.log"
        wait_until(lambda: "rpc.call method=node.info " in log.read_text(), what="rpc debug")
        # Only the category asked for: the chain's debug lines stay off.
        levels = node.call("node.loglevel")
        assert levels["level"] == "info" and levels["categories"]["rpc"] == "debug"
        assert levels["categories"]["chain"] is None
