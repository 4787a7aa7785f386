"""A signature worker process: ``python -m powernode.node.sigworker``.

It reads requests from stdin and writes one reply per request to stdout, in
order, until stdin closes (the node stopped, or died: a ``kill -9`` of the
node leaves no worker behind). Frames are a 4-byte big-endian length and a
body:

- request body: per tx, the number of signatures it carries (1 byte, so up
  to 255: its sender's, then co-signatures such as a meter's over its
  reading), then per signature ``pubkey (32) || message length (2,
  big-endian) || signature (64) || message``: the signature and the message
  are contiguous, the signed message libsodium checks in place (``SpanVerifier``);
- reply body: the indexes (4 bytes each, big-endian) of the txs in the
  request with a signature that does not verify; empty when all do.

The node's side is ``verify.py`` (it encodes the requests). The worker imports nothing but the
signature check, so it starts in a fraction of a second.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from powernode.core.crypto import PUBKEY_SIZE, SIG_SIZE, SpanVerifier

_SIG_AT = PUBKEY_SIZE + 2
_READ_BYTES = 1 << 20
# The longest a worker holds answers it could send (see main).
_ANSWER_EVERY_S = 0.002
MAX_SIGNATURES = 255  # per tx: the count is one byte
MAX_MESSAGE = 2**16 - 1  # the length is two bytes
_verifier = SpanVerifier()


def signature_frame(pubkey: bytes, signature: bytes, message: bytes) -> bytes:
    """One signature's part of a request body (after its tx's count byte)."""
    return pubkey + len(message).to_bytes(2, "big") + signature + message


def check_request(body: bytes) -> bytes:
    """The reply body for a request body."""
    bad: list[int] = []
    ok_at = _verifier.ok
    pos = 0
    i = 0
    while pos < len(body):
        count = body[pos]
        pos += 1
        ok = True
        for _ in range(count):
            sig_at = pos + _SIG_AT
            end = sig_at + SIG_SIZE + int.from_bytes(body[sig_at - 2 : sig_at], "big")
            # Every signature is read to find the next tx; once one fails
            # the rest of this tx's need no check.
            if ok and not ok_at(body, pos, sig_at, end):
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


def main() -> None:
    # Ctrl-C at a terminal reaches the whole process group; the node stops
    # its workers itself (by closing their stdin).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    rfd, wfd = sys.stdin.fileno(), sys.stdout.fileno()
    # Read whatever has come (one system call for a burst of requests, not
    # two per request), and answer the requests it held in one write (one
    # wake-up of the node), unless they take long: then every
    # ``_ANSWER_EVERY_S``, so the node gets the first answers while later
    # requests are checked.
    buf = bytearray()
    answers = bytearray()
    while data := os.read(rfd, _READ_BYTES):
        buf += data
        pos = 0
        since = time.monotonic()
        while len(buf) - pos >= 4:
            end = pos + 4 + int.from_bytes(buf[pos : pos + 4], "big")
            if end > len(buf):
                break
            answers += frame(check_request(bytes(buf[pos + 4 : end])))
            pos = end
            if time.monotonic() - since >= _ANSWER_EVERY_S:
                if not _send(wfd, answers):
                    return
                since = time.monotonic()
        del buf[:pos]
        if answers and not _send(wfd, answers):
            return


def _send(fd: int, answers: bytearray) -> bool:
    """Write and clear ``answers``; False if the node is gone."""
    data = bytes(answers)
    answers.clear()
    try:
        while data:
            data = data[os.write(fd, data) :]
    except BrokenPipeError:
        return False
    return True


if __name__ == "__main__":
    main()
