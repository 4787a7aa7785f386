"""A signature worker process: ``python -m powernode.node.sigworker``.

It reads requests from stdin and writes one reply per request to stdout, in
order, until stdin closes (the node stopped, or died: a ``kill -9`` of the
node leaves no worker behind). Frames are a 4-byte big-endian length and a
body:

- request body: per tx, the number of signatures it carries (1 byte: its
  sender's, then co-signatures such as a meter's over its reading), then per
  signature ``pubkey (32) || signature (64) || message length (2,
  big-endian) || message``;
- reply body: the indexes (4 bytes each, big-endian) of the txs in the
  request with a signature that does not verify; empty when all do.

The node's side is ``verify.py`` (it encodes the requests). The worker imports nothing but the
signature check, so it starts in a fraction of a second.
"""

from __future__ import annotations

import signal
import sys
from typing import IO

from powernode.core.crypto import PUBKEY_SIZE, SIG_SIZE, signature_ok

_MSG_AT = PUBKEY_SIZE + SIG_SIZE + 2


def check_request(body: bytes) -> bytes:
    """The reply body for a request body."""
    bad: list[int] = []
    pos = 0
    i = 0
    while pos < len(body):
        count = body[pos]
        pos += 1
        ok = True
        for _ in range(count):
            start = pos + _MSG_AT
            end = start + int.from_bytes(body[start - 2 : start], "big")
            # Every signature is read to find the next tx; once one fails
            # the rest of this tx's need no check.
            if ok and not signature_ok(
                body[pos : pos + PUBKEY_SIZE], body[pos + PUBKEY_SIZE : start - 2], body[start:end]
            ):
                ok = False
            pos = end
        if not ok:
            bad.append(i)
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
