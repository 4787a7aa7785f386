"""The close frame a peer gets is the first one asked for: a fault's 4001
and its ban's 4003 may both be asked for, and on a socket we dialled the
later close could otherwise reach the wire first (its reader is woken
before the first close sends its frame)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from powernode.node.peer import Peer


class _SlowWs:
    """A WebSocket whose first close waits (as aiohttp's client-side close
    does while it wakes the reader), so the second close runs meanwhile."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []
        self.closed = False
        self._calls = 0

    async def close(self, *, code: int, message: bytes) -> bool:
        self._calls += 1
        if self._calls == 1:
            await asyncio.sleep(0.01)
        if self.closed:
            return False
        self.closed = True
        self.frames.append((code, message))
        return True


def test_the_first_close_asked_for_is_the_frame_sent() -> None:
    async def run() -> list[tuple[int, bytes]]:
        ws = _SlowWs()
        peer = Peer(ws=cast(Any, ws), proto=cast(Any, None), addr="127.0.0.1:1", direction="out")
        first = asyncio.create_task(peer.close(code=4001, why="bad_signature"))
        second = asyncio.create_task(peer.close(code=4003, why="banned: bad_signature"))
        await asyncio.gather(first, second)
        return ws.frames

    assert asyncio.run(run()) == [(4001, b"bad_signature")]
