"""The miner thread's CPU cap is counted in its own CPU time."""

from __future__ import annotations

import asyncio
import threading
from itertools import count

from powernode.core.block import Block, make_block, make_header
from powernode.node.miner import Miner


def _unsolvable_block() -> Block:
    # Target 0: no nonce meets it, so the thread hashes until stopped.
    header = make_header(
        1, 1, bytes(32), 1_700_000_000, bytes(32), 0, bytes(32), bytes(32), bytes(20)
    )
    return make_block(header, [])


class _RecordedRests(threading.Event):
    """The miner's stop event: records every rest, and stops the thread
    after ``stop_after`` of them."""

    def __init__(self, stop_after: int) -> None:
        super().__init__()
        self.stop_after = stop_after
        self.rests: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None:
            self.rests.append(timeout)
            if len(self.rests) >= self.stop_after:
                self.set()
        return self.is_set()


async def test_rest_follows_cpu_time_not_wall_time() -> None:
    async def template() -> Block:
        return _unsolvable_block()

    # A CPU clock that says each batch of hashes took 2 ms of CPU, whatever
    # the wall clock says (256 PBKDF2 hashes take far longer than 2 ms).
    ticks = count()
    miner = Miner(
        loop=asyncio.get_running_loop(),
        make_template=template,
        on_found=lambda _: None,
        refresh=3600.0,
        state_key=lambda: 0,
        cpu_share=0.2,
        cpu_clock=lambda: next(ticks) * 0.002,
    )
    stop = _RecordedRests(stop_after=3)
    miner._stop = stop
    thread = threading.Thread(target=miner._run, daemon=True)
    thread.start()
    await asyncio.to_thread(thread.join, 30)
    assert not thread.is_alive()
    # 20% of a core: 2 ms of CPU, then 8 ms of rest.
    assert stop.rests == [0.002 * 4] * 3
    assert miner.hashes == 3 * 256
