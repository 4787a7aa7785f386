"""A signature worker process: ``python -m powernode.node.sigworker``.

It reads requests from stdin and writes one reply per request to stdout, in
order, until stdin closes (the node stopped, or died: a ``kill -9`` of the
node leaves no worker behind). Frames are a 4-byte big-endian length and a
body:

- request body: per signature ``pubkey (32) || signature (64) || message
  length (2, big-endian) || message``;
- reply body: the indexes (4 bytes each, big-endian) of the signatures in the
  request that do not verify; empty when all do.

The node's side is ``verify.py``. The worker imports nothing but the
signature check, so it starts in a fraction of a second.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

from powernode.core.crypto import PUBKEY_SIZE, SIG_SIZE, signature_ok

if TYPE_CHECKING:
    from powernode.core.tx import Transaction

_MSG_AT = PUBKEY_SIZE + SIG_SIZE + 2


def encode_request(txs: Sequence[Transaction]) -> bytes:
    parts: list[bytes] = []
    for tx in txs:
        msg = tx.signing_bytes()
        parts += (tx.sender, tx.signature, len(msg).to_bytes(2, "big"), msg)
    return b"".join(parts)


def check_request(body: bytes) -> bytes:
    """The reply body for a request body."""
    bad: list[int] = []
    pos = 0
    i = 0
    while pos < len(body):
        start = pos + _MSG_AT
        end = start + int.from_bytes(body[start - 2 : start], "big")
        if not signature_ok(
            body[pos : pos + PUBKEY_SIZE], body[pos + PUBKEY_SIZE : start - 2], body[start:end]
        ):
            bad.append(i)
        pos = end
        i += 1
    return b"".join(j.to_bytes(4, "big") for j in bad)


def decode_reply(body: bytes) -> list[int]:
    return [int.from_bytes(body[k : k + 4], "big") for k in range(0, len(body), 4)]


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def read_frame(stream: IO[bytes]) -> bytes | None:
    """The next frame's body; None at end of stream."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    n = int.from_bytes(head, "big")
    body = stream.read(n)
    return body if len(body) == n else None


def main() -> None:
    # Ctrl-C at a terminal reaches the whole process group; the node stops
    # its workers itself (by closing their stdin).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while (body := read_frame(inp)) is not None:
        out.write(frame(check_request(body)))
        out.flush()


if __name__ == "__main__":
    main()
