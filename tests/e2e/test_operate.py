"""Operating a real node process: SIGHUP after a logrotate-style move, and
``/health`` and ``/metrics`` scraped from the outside while it mines."""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import free_port, init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.process import ProcessNode
from powernode.devnet.wait import wait_until
from tests.harness import TEST_CHAIN

pytestmark = pytest.mark.e2e


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def scrape(url: str) -> dict[str, float]:
    status, body = get(url)
    assert status == 200
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if not s.labels:
                out[s.name] = s.value
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
