"""Real node processes, started as the README starts them, killed and restarted."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from powernode.client import build_transfer
from powernode.core.crypto import KeyPair
from powernode.devnet.crash import Replay, ReplayMismatch, TransferLoad
from powernode.devnet.datadir import free_port, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.process import ProcessNode
from powernode.devnet.wait import wait_until
from tests.harness import TEST_CHAIN

pytestmark = pytest.mark.e2e

FUNDS = 10_000 * 1_000_000
# About one block per 4,000 PBKDF2 hashes: a few blocks a second from one miner.
MODERATE_TARGET = format((1 << 256) // 4000, "064x")


def cli_init(datadir: Path, genesis: Path, *extra: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "powernode.cli",
            "init",
            "--datadir",
            str(datadir),
            "--genesis",
            str(genesis),
            "--rpc-port",
            str(free_port()),
            *extra,
        ],
        check=True,
        capture_output=True,
    )


def replay_matches(datadir: Path) -> int:
    """Check the stopped node's store against a replay from genesis (tip, every
    state record, supply); its height."""
    replay = Replay(datadir / "genesis.json", datadir.parent / f"replay-{datadir.name}.db")
    try:
        return replay.check(datadir / "chain.db").height
    finally:
        replay.close()


def test_kill9_under_load_restarts_at_last_block(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    print(f"random seed {seed}")
    rng = random.Random(seed)
    senders = [KeyPair.generate() for _ in range(6)]
    genesis = write_genesis(
        tmp_path / "genesis.json",
        dev_genesis(
            {s.address: FUNDS for s in senders},
            chain_id=TEST_CHAIN,
            target=MODERATE_TARGET,
            block_time=1,
        ),
    )
    datadir = tmp_path / "node"
    cli_init(datadir, genesis, "--mine")
    node = ProcessNode(datadir)
    node.start()
    confirmed_total = 0
    try:
        for round_ in range(3):
            load = TransferLoad(node, senders, TEST_CHAIN)
            load.start()
            start_height = node.call("node.info")["height"]

            def grown(h: int = start_height) -> bool:
                return node.call("node.info")["height"] >= h + 3

            wait_until(
                grown,
                timeout=60,
                what="blocks under load",
            )
            time.sleep(
                rng.uniform(0.0, 1.0)
            )  # a random moment to kill at, not a wait for a condition
            seen = node.call("node.info")
            confirmed = {}
            for txid in rng.sample(load.accepted, min(20, len(load.accepted))):
                st = node.call("tx.get", {"id": txid})
                if st["status"] == "confirmed":
                    confirmed[txid] = st["block"]
            nonces = {
                s.address: node.call("account.get", {"address": s.address.hex()})["nonce"]
                for s in senders
            }
            confirmed_total += len(confirmed)
            node.kill()
            load.halt.set()
            load.join(15)

            node.start()
            info = node.call("node.info")
            assert info["height"] >= seen["height"], (
                f"round {round_}: restarted below the last seen tip"
            )
            assert node.call("chain.block", {"height": seen["height"]})["hash"] == seen["tip"]
            for txid, block_hash in confirmed.items():
                st = node.call("tx.get", {"id": txid})
                assert st["status"] == "confirmed" and st["block"] == block_hash
            for s in senders:
                assert (
                    node.call("account.get", {"address": s.address.hex()})["nonce"]
                    >= nonces[s.address]
                )
            assert "node.started" in node.log_text()
        assert confirmed_total > 0, "the load never got a tx confirmed"
        assert node.stop() == 0
        height = replay_matches(datadir)
        assert height >= 9
    finally:
        node.stop()


def test_clean_stop_keeps_mempool(tmp_path: Path) -> None:
    alice, bob = KeyPair.generate(), KeyPair.generate()
    genesis = write_genesis(
        tmp_path / "genesis.json", dev_genesis({alice.address: FUNDS}, chain_id=TEST_CHAIN)
    )
    datadir = tmp_path / "node"
    cli_init(datadir, genesis)
    node = ProcessNode(datadir)
    node.start()
    try:
        node.call("dev.mine", {"blocks": 5})
        txs = [
            build_transfer(alice, chain_id=TEST_CHAIN, nonce=n, to=bob.address, amount=10)
            for n in range(10)
        ]
        for tx in txs:
            node.rpc.submit(tx)
        tip = node.call("node.info")["tip"]
        assert node.stop() == 0
        assert not (datadir / ".cookie").exists(), "the cookie is removed on a clean stop"
        assert "node.stopped" in node.log_text()

        node.start()
        info = node.call("node.info")
        assert info["tip"] == tip and info["mempool_size"] == 10
        assert all(node.call("tx.get", {"id": tx.txid.hex()})["status"] == "pending" for tx in txs)
        node.call("dev.mine", {"blocks": 1})
        assert node.call("account.get", {"address": bob.address.hex()})["balance"] == 100
    finally:
        node.stop()


def test_bench_crash_runs_trials_and_its_replay_check_can_fail(tmp_path: Path) -> None:
    """scripts/bench_crash.py at two trials, run as a user runs it; then its
    replay check, handed a store of another chain, refuses it."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "bench_crash.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--trials", "2", "--seed", "3", "--wait-quiet", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert re.search(r"^failures\s+0\s", proc.stdout, re.MULTILINE), proc.stdout
    assert re.search(r"^trials \(kill -9 under load\)\s+2\s", proc.stdout, re.MULTILINE)
    assert "trial 2/2" in proc.stderr and "Traceback" not in proc.stderr

    alice = KeyPair.generate()
    genesis = write_genesis(
        tmp_path / "genesis.json", dev_genesis({alice.address: FUNDS}, chain_id=TEST_CHAIN)
    )
    datadir = tmp_path / "node"
    cli_init(datadir, genesis)
    with ProcessNode(datadir) as node:
        node.start()
        node.call("dev.mine", {"blocks": 3})
    other = write_genesis(
        tmp_path / "other.json", dev_genesis({alice.address: FUNDS + 1}, chain_id=TEST_CHAIN)
    )
    replay = Replay(other, tmp_path / "replay.db")
    try:
        with pytest.raises(ReplayMismatch):
            replay.check(datadir / "chain.db")
    finally:
        replay.close()
    assert replay_matches(datadir) == 3
