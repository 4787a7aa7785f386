"""scripts/bench_rpc_limits.py's requests are what they say (so the figures
it prints measure what its table names), and its answer summary reads
every shape of answer. No node is started here."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from powernode.devnet.datadir import render_config

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    if str(SCRIPTS) not in sys.path:
        sys.path.append(str(SCRIPTS))  # the scripts import their siblings
    return importlib.import_module("bench_rpc_limits")


@pytest.fixture(scope="module")
def kit() -> ModuleType:
    if str(SCRIPTS) not in sys.path:
        sys.path.append(str(SCRIPTS))
    return importlib.import_module("benchkit.node.rpc_limits")


def test_flood_bodies_fill_their_size_and_have_their_shape(kit: ModuleType) -> None:
    size = 100_000
    ints = kit.int_batch(size)
    assert size - 2 <= len(ints) <= size and set(json.loads(ints)) == {0}
    objects = json.loads(kit.object_batch(size))
    assert len(objects) > size // 4 and objects[0] == {}
    for build, item in ((kit.object_params, {}), (kit.string_params, "ab")):
        body = build(size)
        call = json.loads(body)
        assert len(body) <= size and call["method"] == "node.info"
        assert set(map(json.dumps, call["params"])) == {json.dumps(item)}
    ids = json.loads(kit.long_id_batch(size, 10))
    assert len(ids) == 10 and len({c["id"] for c in ids}) == 10
    assert len(kit.long_id_batch(size, 10)) <= size + 1000
    assert kit.deep(b"[", 5) == b"[[[[["


def test_every_case_has_its_own_name(bench: ModuleType) -> None:
    cases = bench.cases(bench.parse_sizes("1,2", 10_000_000), block=1, txs=5)
    names = [name for name, _ in cases]
    assert len(names) == len(set(names)) == 4 * 2 + 6
    assert bench.parse_sizes("4,max", 1_000_000) == [4_000_000, 1_000_000 - bench.MAX_SLACK]


def test_the_summary_reads_every_answer(kit: ModuleType) -> None:
    def summary(status: int, reply: bytes) -> str:
        out = kit.Outcome(status=status, reply_bytes=len(reply), reply=reply)
        return str(kit.summarise(out))

    err = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batch too large"}}
    ok = {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert summary(200, json.dumps(err).encode()) == "HTTP 200, -32600 batch too large"
    assert summary(200, json.dumps([ok, ok, err]).encode()) == (
        "HTTP 200, batch of 3: 2 x result; 1 x -32600 batch too large"
    )
    assert "not JSON" in summary(200, b'{"id": NaN}')
    assert "not JSON" in summary(500, b"500 Internal Server Error")
    assert summary(200, b"") == "HTTP 200, 0 bytes (not parsed)"


def test_rpc_overrides_replace_or_add_a_key(bench: ModuleType) -> None:
    text = render_config(rpc_port=1, p2p_port=2)
    text = bench.set_rpc_keys(text, ["batch_limit=5", "max_depth = 9"])
    assert text.count("batch_limit =") == 1 and "batch_limit = 5" in text
    assert "max_depth = 9" in text
    old = "[rpc]\nport = 1\n"  # a file that does not show the key yet
    assert bench.set_rpc_keys(old, ["max_values=3"]) == "[rpc]\nmax_values = 3\nport = 1\n"
