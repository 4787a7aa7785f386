"""The RPC pre-parse scan (node/rpc.py ``Scan``): on JSON it finds the depth
exactly and bounds the values from above, however the body is cut into
pieces; on text that is not JSON it never lets through what would make
Python's parser nest deeper than allowed."""

from __future__ import annotations

import contextlib
import json
import json.decoder
import json.scanner
import random
from collections.abc import Callable
from typing import Any

import pytest

from powernode.node.rpc_body import PARSE_ERROR, Refused, Scan, scan

UNLIMITED = 10**9


def run(body: bytes, *, max_depth: int, max_values: int = UNLIMITED, piece: int = 7) -> Scan:
    s = Scan(max_values=max_values, max_depth=max_depth)
    for i in range(0, len(body), piece):
        s.feed(body[i : i + piece])
    s.finish()
    return s


def depth(doc: Any) -> int:
    if isinstance(doc, list):
        return 1 + max((depth(x) for x in doc), default=0)
    if isinstance(doc, dict):
        return 1 + max((depth(x) for x in doc.values()), default=0)
    return 0


def values(doc: Any) -> int:
    """JSON values in ``doc``, keys included."""
    if isinstance(doc, list):
        return 1 + sum(values(x) for x in doc)
    if isinstance(doc, dict):
        return 1 + sum(1 + values(x) for x in doc.values())
    return 1


# Strings full of what the scan must not take for structure.
NASTY = ['"', "\\", "[", "]", "{", "}", ",", ":", "é", "\u2028", "\n", "\\u0022", "x"]


def random_doc(r: random.Random, level: int = 0) -> Any:
    def text() -> str:
        return "".join(r.choice(NASTY) for _ in range(r.randint(0, 6)))

    k = r.random()
    if level > 7 or k < 0.3:
        return r.choice([0, -7, 1.5, None, True, text()])
    if k < 0.65:
        return [random_doc(r, level + 1) for _ in range(r.randint(0, 4))]
    return {text(): random_doc(r, level + 1) for _ in range(r.randint(0, 4))}


def test_depth_is_exact_and_values_bounded_on_json_cut_anywhere() -> None:
    r = random.Random(12)
    for _ in range(3000):
        doc = random_doc(r)
        body = json.dumps(doc, ensure_ascii=r.random() < 0.5).encode()
        limit, piece = r.randint(0, 8), r.randint(1, 9)
        try:
            s = run(body, max_depth=limit, piece=piece)
        except Refused as exc:
            assert exc.code == PARSE_ERROR
            assert depth(doc) > limit, (body, limit)
            continue
        assert depth(doc) <= limit, (body, limit)
        assert s.values >= values(doc), body


@pytest.mark.parametrize("piece", [1, 2, 3, 5, 64 * 1024])
def test_escapes_cut_between_pieces(piece: int) -> None:
    # An escaped backslash before a closing quote, and an escaped quote,
    # wherever a piece ends: the brackets after them are structure or not.
    for body, nests in (
        (rb'["\\", [[1]]]', 3),
        (rb'["\"", [[1]]]', 3),
        (rb'["\\\"[[[[", 1]', 1),
        (rb'["\\\\", [[[1]]]]', 4),
        (rb'{"a\":[": [1]}', 2),
    ):
        assert depth(json.loads(body)) == nests
        run(body, max_depth=nests, piece=piece)
        with pytest.raises(Refused, match="nested deeper"):
            run(body, max_depth=nests - 1, piece=piece)


def test_values_bound_refuses_before_the_depth_pass() -> None:
    with pytest.raises(Refused, match="more than 100 JSON values") as info:
        scan(b"[" + b",".join([b"0"] * 100) + b"]", max_values=100, max_depth=64)
    assert info.value.code == -32600
    scan(b"[" + b",".join([b"0"] * 99) + b"]", max_values=100, max_depth=64)
    # Strings count too, and are refused before they are cut out one by one.
    with pytest.raises(Refused, match="JSON values"):
        scan(b"[" + b'""' * 200 + b"]", max_values=100, max_depth=64)


@pytest.mark.parametrize(
    "body",
    [b"]", b"[[1]]]", b"[" * 100, b"}{", b"[1]]["],
    ids=["closer", "extra closer", "unclosed", "backwards", "closed then opened"],
)
def test_unbalanced_brackets_are_a_parse_error(body: bytes) -> None:
    with pytest.raises(Refused) as info:
        run(body, max_depth=64)
    assert info.value.code == PARSE_ERROR


def test_only_utf8_passes() -> None:
    doc = '{"a": ["é"]}'
    for enc in ("utf-16", "utf-16-le", "utf-32-be"):
        with pytest.raises(Refused, match="not UTF-8"):
            run(doc.encode(enc), max_depth=64)
    run(doc.encode(), max_depth=64, piece=1)
    run(b"\xef\xbb\xbf" + doc.encode(), max_depth=64)
    run(b"1", max_depth=0)  # shorter than the 4 bytes that tell the encoding


def nesting_parser() -> tuple[json.JSONDecoder, Callable[[], int]]:
    """Python's pure-Python JSON parser, reporting the deepest it nested
    (the C parser nests the same way, one call per level)."""
    level, deepest = [0], [0]

    def counted(parse: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kw: Any) -> Any:
            level[0] += 1
            deepest[0] = max(deepest[0], level[0])
            try:
                return parse(*args, **kw)
            finally:
                level[0] -= 1

        return wrapper

    dec = json.JSONDecoder()
    dec.parse_array = counted(json.decoder.JSONArray)  # type: ignore[attr-defined]
    dec.parse_object = counted(json.decoder.JSONObject)  # type: ignore[attr-defined]
    dec.memo = {}  # type: ignore[attr-defined]
    dec.scan_once = json.scanner.py_make_scanner(dec)  # type: ignore[attr-defined]

    def reset() -> int:
        d = deepest[0]
        level[0] = deepest[0] = 0
        return d

    return dec, reset


def test_text_that_is_not_json_never_nests_deeper_than_allowed() -> None:
    # Mutated JSON: whatever the scan lets through, the parser (which stops
    # at the first error) nests at most max_depth deep on its way.
    dec, deepest = nesting_parser()
    r = random.Random(13)
    passed = 0
    for _ in range(3000):
        body = bytearray(json.dumps(random_doc(r)).encode())
        for _ in range(r.randint(1, 4)):
            i = r.randint(0, len(body))
            c = r.choice(b'"\\[]{},: a')
            op = r.random()
            if op < 0.4 and i < len(body):
                del body[i]
            elif op < 0.8:
                body.insert(i, c)
            elif i < len(body):
                body[i] = c
        limit = r.randint(0, 6)
        try:
            run(bytes(body), max_depth=limit, piece=r.randint(1, 9))
        except Refused:
            continue
        deepest()
        # It stops at the first error; how deep it got before that counts.
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            dec.decode(body.decode("utf-8", "surrogatepass"))
        passed += 1
        assert deepest() <= limit, (bytes(body), limit)
    assert passed > 500  # the check above ran often enough to mean something
