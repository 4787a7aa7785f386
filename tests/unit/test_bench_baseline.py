"""scripts/benchkit/node/baseline.py at a tiny size, so the verifier
comparison cannot rot: every candidate verifies the same signatures it is
timed on, and the baseline is the chosen verifier's figure. Timings are not
asserted."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

from powernode.client import build_transfer
from powernode.core.crypto import KeyPair, sha256
from powernode.core.tx import Transaction

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def bl() -> ModuleType:
    if str(SCRIPTS) not in sys.path:
        sys.path.append(str(SCRIPTS))  # the scripts import their siblings
    return importlib.import_module("benchkit.node.baseline")


def _sample() -> list[Transaction]:
    key = KeyPair.from_seed(sha256(b"test-baseline"))
    return [
        build_transfer(key, chain_id="t", nonce=n, to=bytes(20), amount=1, fee=1) for n in range(4)
    ]


def test_the_baseline_alone(bl: ModuleType) -> None:
    out = bl.bench_baseline(20, 1, 140, _sample())
    assert "candidates" not in out and "verify_per_s_2p" not in out
    assert out["verify_per_s_1t"] > 0 and out["verify_per_s_2t"] > 0


def test_the_candidates(bl: ModuleType) -> None:
    out = bl.bench_baseline(20, 1, 140, _sample(), candidates=True)
    c = out["candidates"]
    # cryptography comes with the test extra; coincurve only if installed by hand.
    assert {"pynacl", "pynacl_node_rules", "cryptography"} <= set(c)
    assert set(c) <= {"pynacl", "pynacl_node_rules", "cryptography", "coincurve"}
    # The baseline is timed over whole passes, the candidates over slices.
    assert out["verify_per_s_1t"] > 0 and c["pynacl"]["per_s_1t"] > 0
    assert out["candidate_slice"] == bl.SLICE
    assert c["cryptography"]["ratio_to_cryptography_1t"] == 1.0
    assert out["verify_per_s_2p"] > 0


def test_a_candidate_that_rejects_fails_the_run(bl: ModuleType) -> None:
    key = KeyPair.from_seed(bytes(32))
    good = (key.pubkey, key.sign(b"m"), b"m")
    bl._node_rules([good])
    with pytest.raises(RuntimeError):
        bl._node_rules([(key.pubkey, good[1], b"other")])
    with pytest.raises(Exception, match="forged"):
        bl._sodium([(key.pubkey, good[1], b"other")])
