"""The README's "Adding an engine" steps, followed once with a throwaway engine.

A copy of the ``powernode`` package gets one new package,
``engines/toy/`` (a counter that senders bump, with its own state namespace,
a begin-block hook and a genesis section), and its line in
``state/registry.py``; nothing else is edited. A child process then runs a
chain on that copy: the genesis section is parsed into typed params (and a
bad one refused, naming its key), toy txs go through the mempool, the
miner's template and block execution, a failing one is a failed receipt, the
hook runs every block, and a replay and a reopened store give the same state.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import powernode

ROOT = Path(__file__).parents[2]

TOY_ENGINE = '''
"""A toy engine: per-sender counters, bumped by ``toy.bump [amount]``."""

from __future__ import annotations

from typing import Any, NamedTuple

from powernode.core import encoding
from powernode.core.errors import BadAmount, BadPayload, GenesisError
from powernode.core.execution import Engine, Event, ExecContext, StateAccess
from powernode.core.params import ChainParams, GenesisSection
from powernode.core.tx import Transaction

NS = "toy"
BLOCKS = (NS, b"")  # how many blocks the hook has seen


class Count(NamedTuple):
    n: int

    def to_obj(self) -> list[int]:
        return [self.n]

    @classmethod
    def from_obj(cls, obj: Any) -> Count:
        return cls(encoding.as_uint(encoding.as_list(obj, 1, "toy count")[0], "toy count"))


class ToyParams(NamedTuple):
    max_bump: int


def parse(raw: Any) -> ToyParams:
    sections = dict(raw)
    if set(sections) - {"bump"}:
        raise GenesisError(f"genesis toy: unknown sections {sorted(set(sections) - {'bump'})}")
    items = dict(sections.get("bump", ()))
    if set(items) - {"max"}:
        raise GenesisError("genesis toy.bump: unknown keys")
    mx = items.get("max", 1)
    if type(mx) is not int or mx < 1:
        raise GenesisError("genesis toy.bump.max: expected a positive integer")
    return ToyParams(mx)


class BumpHandler:
    tx_type = "toy.bump"
    precheck = None

    def decode(self, payload: list[Any]) -> int:
        if len(payload) != 1 or type(payload[0]) is not int or payload[0] < 1:
            raise BadPayload("toy.bump payload is [amount]")
        return payload[0]

    def max_debit(self, payload: int, params: ChainParams) -> int:
        return 0

    def apply(self, view: StateAccess, ctx: ExecContext, tx: Transaction, amount: int) -> list[Event]:
        limit = ctx.params.engine_params("toy").max_bump
        if amount > limit:
            raise BadAmount(f"bump of {amount} above {limit}")
        key = (NS, tx.sender_address)
        old = view.get(key) or Count(0)
        view.put(key, Count(old.n + amount))
        return [{"event": "bumped", "by": amount}]


def begin_block(view: StateAccess, ctx: ExecContext) -> None:
    old = view.get(BLOCKS) or Count(0)
    view.put(BLOCKS, Count(old.n + 1))


ENGINE = Engine(
    name="toy",
    handlers=(BumpHandler(),),
    state_codecs={NS: Count.from_obj},
    begin_block=begin_block,
    genesis=GenesisSection(key="toy", parse=parse),
)
'''

SCENARIO = """
import sys
import tempfile
from pathlib import Path

import powernode
assert powernode.__file__.startswith(sys.argv[1]), powernode.__file__

from powernode.core.errors import GenesisError
from powernode.core.tx import sign_tx
from powernode.state.genesis import parse_genesis
from tests.unit.helpers import (
    ALICE, CHAIN_ID, GENESIS_TIME, LedgerFactory, active_blocks, genesis_doc, mine, replay,
)

params = parse_genesis(genesis_doc(toy={"bump": {"max": 5}}))
assert params.engine_params("toy").max_bump == 5
assert parse_genesis(genesis_doc()).engine_params("toy").max_bump == 1  # section left out
assert params.commitment() != parse_genesis(genesis_doc()).commitment()
try:
    parse_genesis(genesis_doc(toy={"bump": {"max": 0}}))
    raise SystemExit("a bad toy section was accepted")
except GenesisError as exc:
    assert "toy.bump.max" in exc.message, exc.message

T = GENESIS_TIME + 10
def bump(nonce, amount):
    return sign_tx(ALICE, chain_id=CHAIN_ID, tx_type="toy.bump", nonce=nonce, fee=10, payload=[amount])

with tempfile.TemporaryDirectory() as d:
    f = LedgerFactory(Path(d))
    try:
        led = f.open(params)
        ok, too_big = bump(0, 3), bump(1, 9)
        led.submit_tx(ok, now=T)
        led.submit_tx(too_big, now=T)
        block = mine(led, T + 5)
        assert [tx.txid for tx in block.txs] == [ok.txid, too_big.txid]
        r = led.tx_status(ok.txid)["receipt"]
        assert r["status"] == "ok" and r["events"] == [{"event": "bumped", "by": 3}], r
        r = led.tx_status(too_big.txid)["receipt"]
        assert r["status"] == "failed" and r["error"]["code"] == "bad_amount", r
        mine(led, T + 10)
        assert led.chain.state.get(("toy", ALICE.address)).n == 3
        assert led.chain.state.get(("toy", b"")).n == 2  # the hook ran in both blocks
        root = led.chain.tip.header.state_root
        assert replay(f, params, active_blocks(led), T + 20).chain.tip.header.state_root == root
        reopened = f.open(params, path=led.chain.store.path)
        assert reopened.chain.state.snapshot() == led.chain.state.snapshot()
    finally:
        f.close_all()
print("toy engine ok")
"""


def test_an_engine_is_one_package_and_its_registry_line(tmp_path: Path) -> None:
    pkg = tmp_path / "powernode"
    shutil.copytree(
        Path(powernode.__file__).parent, pkg, ignore=shutil.ignore_patterns("__pycache__")
    )
    (pkg / "engines" / "toy").mkdir()
    (pkg / "engines" / "toy" / "__init__.py").write_text(TOY_ENGINE)
    registry = pkg / "state" / "registry.py"
    text = registry.read_text()
    # The README's two edits, whatever engines are registered already: the
    # package joins the import line, its ENGINE goes at the end of ENGINES.
    edits = (
        (r"^(from powernode\.engines import [a-z_, ]+)$", r"\1, toy"),
        (r"^(ENGINES: tuple\[Engine, \.\.\.\] = \(\n(?:    [a-z_]+\.ENGINE,\n)+)\)$", "\\1    toy.ENGINE,\n)"),
    )  # fmt: skip
    for pattern, new in edits:
        text, n = re.subn(pattern, new, text, flags=re.M)
        assert n == 1, f"registry.py no longer matches {pattern!r}: update the README's steps"
    registry.write_text(text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-c", SCENARIO, str(pkg)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "toy engine ok" in proc.stdout
