"""A JSON-RPC request body read within bounds: ``Scan`` checks the bytes as
they arrive (value count, UTF-8, nesting depth) before anything parses them,
then ``decode`` and ``loads`` turn them into values. ``rpc.py`` serves what
comes out; the bounds and why they exist are described there.
"""

from __future__ import annotations

import json
from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


class Refused(Exception):
    """A request turned away whole, with the JSON-RPC error that says why."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        status: int = 200,
        reason: str | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status  # HTTP
        # The connection cannot carry another request (its body broke HTTP).
        self.close = close
        # The stable code in error.data.code, when not the number's own.
        self.reason = reason


# Every byte but quotes and those that open, close or separate JSON values.
_NOT_SYNTAX = bytes(b for b in range(256) if b not in b'"[]{},:')
# Depth does not care which kind of bracket: both become [ and ].
_SQUARE = bytes.maketrans(b"{}", b"[]")


def _too_many(max_values: int) -> Refused:
    return Refused(
        INVALID_REQUEST,
        f"request too large: more than {max_values} JSON values",
        reason="request_too_large",
    )


class Scan:
    """Checks a request body piece by piece as it arrives, before it is
    parsed: ``feed`` refuses it once it holds more than ``max_values`` JSON
    values (keys included) or is not UTF-8, ``finish`` if it nests deeper
    than ``max_depth``. Python objects cost up to ~30 times the JSON bytes
    they come from (``{}`` is 2 bytes, a dict 64), so this is what bounds
    the parse; a body refused here is not even read to its end.

    Only bytes outside strings count, and every step is a C loop over the
    piece (no recursion, no Python object per byte): escaped backslashes and
    then escaped quotes are deleted, left to right as a JSON parser reads
    escapes, so every quote left delimits a string; then every byte but
    quotes, commas, colons and brackets; the pieces between quotes,
    alternately outside and inside a string, give the structure. Every value but the first follows a comma, a colon
    or an opener, which bounds the values (a string is one too). Depth:
    the running count of openers minus closers at the end of each piece,
    and at the end how many times the innermost pairs ``[]`` of the
    brackets can be deleted before none are left.

    Text that is not JSON may pass or be refused here; ``json.loads`` then
    finds its error. What matters is the direction that could hurt: up to
    where it fails, an invalid text splits into strings exactly as here, so
    ``json.loads`` never nests deeper, nor makes more values, than allowed.
    """

    def __init__(self, *, max_values: int, max_depth: int) -> None:
        self.max_values = max_values
        self.max_depth = max_depth
        self.values = 1
        self.quotes = 0
        self.depth = 0  # openers minus closers so far
        self.in_string = False
        self.head = b""  # the first bytes, which tell the encoding
        self.carry = b""  # a backslash whose escaped byte is in the next piece
        # Every bracket outside strings as [ or ]: at most one per value and
        # one closer each, so up to 2 * max_values bytes.
        self.brackets = bytearray()

    def feed(self, piece: bytes) -> None:
        if len(self.head) < 4:
            self.head += piece[: 4 - len(self.head)]
            if len(self.head) == 4:
                self._check_encoding()
        data = self.carry + piece if self.carry else piece
        self.carry = b""
        if b"\\" in data:  # rare in requests, so the common case skips two passes
            data = data.replace(b"\\\\", b"")
            # A backslash left at the end escapes the next piece's first byte.
            if data.endswith(b"\\"):
                self.carry, data = b"\\", data[:-1]
            data = data.replace(b'\\"', b"")
        # Quotes and structure only: what is left of a string is what it
        # holds of these, mostly nothing.
        data = data.translate(None, _NOT_SYNTAX)
        quotes = data.count(b'"')
        self.quotes += quotes
        # Every string is a value or a key: refuse before cutting out a huge
        # number of them (the split costs a Python object each).
        if self.quotes // 2 > self.max_values:
            raise _too_many(self.max_values)
        structure = b"".join(data.split(b'"')[1 if self.in_string else 0 :: 2])
        del data
        self.in_string ^= bool(quotes & 1)
        closers = structure.count(b"]") + structure.count(b"}")
        opened = structure.count(b"[") + structure.count(b"{")
        self.depth += opened - closers
        if self.depth < 0:
            raise Refused(PARSE_ERROR, "parse error: brackets do not balance")
        if self.depth > self.max_depth:
            raise Refused(PARSE_ERROR, f"parse error: nested deeper than {self.max_depth}")
        self.values += len(structure) - closers
        if self.values > self.max_values:
            raise _too_many(self.max_values)
        self.brackets += structure.translate(_SQUARE, b",:")

    def _check_encoding(self) -> None:
        # JSON between systems is UTF-8 (RFC 8259); json.loads would also
        # take UTF-16 and UTF-32, whose bytes this scan cannot read.
        if json.detect_encoding(self.head) not in ("utf-8", "utf-8-sig"):
            raise Refused(PARSE_ERROR, "parse error: not UTF-8")

    def finish(self) -> None:
        if len(self.head) < 4:
            self._check_encoding()
        brackets = bytes(self.brackets)
        self.brackets = bytearray()
        # A pass deletes every innermost pair, so a balanced text of depth d
        # is gone after d passes; a pass that deletes nothing means the
        # brackets do not balance. Each pass is a C loop over at most
        # 2 * max_values bytes.
        for _ in range(self.max_depth):
            if not brackets:
                return
            shorter = brackets.replace(b"[]", b"")
            if len(shorter) == len(brackets):
                raise Refused(PARSE_ERROR, "parse error: brackets do not balance")
            brackets = shorter
        if brackets:
            raise Refused(PARSE_ERROR, f"parse error: nested deeper than {self.max_depth}")


def scan(body: bytes, *, max_values: int, max_depth: int, piece: int = 64 * 1024) -> None:
    """``Scan`` over all of ``body``, in pieces of ``piece`` bytes."""
    s = Scan(max_values=max_values, max_depth=max_depth)
    for i in range(0, len(body), piece):
        s.feed(body[i : i + piece])
    s.finish()


def decode(body: bytes | bytearray) -> str:
    """The text of ``body``: strict UTF-8 (RFC 8259), a leading BOM
    skipped, as over HTTP so over the WebSocket. ``Scan`` let through only
    bytes that look like UTF-8; an encoded surrogate (``ED A0 80``), which
    UTF-8 does not allow, is refused here."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Refused(PARSE_ERROR, "parse error: not UTF-8") from exc


def loads(text: str) -> Any:
    """The JSON document in ``text`` (which ``scan`` let through)."""
    try:
        # Python's json reads NaN and Infinity, which JSON does not have.
        return json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError) as exc:
        # RecursionError: only if max_depth is set above what Python's
        # parser can nest (about 900 levels).
        raise Refused(PARSE_ERROR, "parse error") from exc
