"""A late joiner killed (kill -9) in the middle of its sync, and restarted.

Real node processes, started as the README starts them. While syncing, the
joiner commits runs of blocks, each in one SQLite transaction: killed in the
middle, its store must be at the end of a run it committed (consistent: a
replay from genesis matches it record for record), and once restarted it
must resume from there and reach the source's tip with the same state.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from powernode.client import build_transfer
from powernode.core.crypto import KeyPair
from powernode.devnet.crash import Replay, snapshot_store
from powernode.devnet.datadir import init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.process import ProcessNode
from powernode.devnet.wait import wait_until
from tests.harness import TEST_CHAIN

pytestmark = pytest.mark.e2e

FUNDS = 10_000 * 1_000_000
TX_BLOCKS = 40
EMPTY_BLOCKS = 1_500


def _run_heights(log: str) -> list[int]:
    """Heights of the runs the log says were committed, in order."""
    return [int(m) for m in re.findall(r"sync\.run height=(\d+)", log)]


def test_kill9_during_sync_resumes_from_the_last_run(tmp_path: Path) -> None:
    users = [KeyPair.generate() for _ in range(4)]
    genesis = write_genesis(
        tmp_path / "genesis.json",
        dev_genesis({u.address: FUNDS for u in users}, chain_id=TEST_CHAIN),
    )
    src_dir = tmp_path / "source"
    init_datadir(src_dir, genesis, p2p=True)
    with ProcessNode(src_dir) as source:
        source.start()
        for n in range(TX_BLOCKS):
            for i, u in enumerate(users):
                to = users[(i + 1) % len(users)].address
                source.rpc.submit(
                    build_transfer(u, chain_id=TEST_CHAIN, nonce=n, to=to, amount=n + 1)
                )
            source.call("dev.mine", {"blocks": 1})
        source.call("dev.mine", {"blocks": EMPTY_BLOCKS})
        top = source.call("node.info")
        assert top["height"] == TX_BLOCKS + EMPTY_BLOCKS

        joiner_dir = tmp_path / "joiner"
        init_datadir(joiner_dir, genesis, p2p=True, peers=[top["p2p"]])
        with ProcessNode(joiner_dir) as joiner:
            joiner.start()

            def in_a_run() -> bool:
                """A few runs committed, and blocks logged connected since
                the last: most likely inside a run (not asserted: the kill
                may still land between two)."""
                log = joiner.log_text()
                runs = _run_heights(log)
                last = re.findall(r"block\.connected height=(\d+)", log[-2000:])
                return len(runs) >= 3 and bool(last) and int(last[-1]) > runs[-1]

            # Killed well before the tip.
            wait_until(in_a_run, timeout=120, interval=0.005, what="the joiner inside a run")
            joiner.kill()
            log = joiner.log_text()
            runs = _run_heights(log)
            connected = [int(h) for h in re.findall(r"block\.connected height=(\d+)", log)]
            killed = snapshot_store(joiner_dir, tmp_path / "killed")
            replay = Replay(genesis, tmp_path / "replay.db")
            try:
                # Consistent: tip, every state record and the supply match a
                # replay of its own main chain from genesis.
                at = replay.check(killed).height
            finally:
                replay.close()
            print(
                f"killed at {at}: last run logged at {runs[-1]}, last block logged {max(connected)}"
            )
            assert 0 < at < top["height"], "not killed in the middle of the sync"
            # At a run's end: the last one logged (committed before its log
            # line), or one committed just before the kill cut its log line.
            assert at >= runs[-1]
            assert at in runs or at > runs[-1]
            # No block is durable that was not logged connected first.
            assert at <= max(connected)

            joiner.start()
            # It resumes from there (loaded at that height; it may have
            # synced on by the time its RPC answers).
            loaded = re.findall(r"chain\.loaded chain=\S+ height=(\d+)", joiner.log_text())
            assert [int(h) for h in loaded] == [0, at]
            wait_until(
                lambda: joiner.call("node.info")["height"] >= top["height"],
                timeout=180,
                what="the restarted joiner at the source's tip",
            )
            info = joiner.call("node.info")
            assert info["tip"] == top["tip"]
            assert info["state_root"] == top["state_root"]
            for u in users:
                addr = u.address.hex()
                assert joiner.call("account.get", {"address": addr}) == source.call(
                    "account.get", {"address": addr}
                )
            assert joiner.stop() == 0
        replay = Replay(genesis, tmp_path / "replay-end.db")
        try:
            assert replay.check(joiner_dir / "chain.db").height == top["height"]
        finally:
            replay.close()
