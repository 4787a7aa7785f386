"""The engine interface's newer parts: flat genesis sections, sections that
build on earlier engines' params, and the worker framing of txs that carry
more than one signature (a meter's co-signature)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from powernode.core.crypto import KeyPair
from powernode.core.errors import GenesisError
from powernode.core.params import GenesisSection, parse_params
from powernode.node.sigworker import check_request, decode_reply, signature_frame
from powernode.state.registry import ENGINES
from tests.unit.helpers import genesis_doc


@dataclass(frozen=True)
class FakeEngine:
    name: str
    genesis: GenesisSection | None


def _base(**extra: Any) -> dict[str, Any]:
    doc = genesis_doc()
    doc.pop("markets", None)
    return {**doc, **extra}


def test_flat_section_items_are_sorted_without_comments() -> None:
    seen: list[Any] = []
    eng = FakeEngine(
        "a",
        GenesisSection("alpha", lambda raw: seen.append(raw) or raw, flat=True),  # type: ignore[func-returns-value]
    )
    params = parse_params(_base(alpha={"z": 1, "_note": "x", "b": ["p", "q"]}), [eng])
    assert seen == [(("b", ("p", "q")), ("z", 1))]
    assert params.sections == (("alpha", (("b", ("p", "q")), ("z", 1))),)


def test_flat_section_refuses_floats_and_non_objects() -> None:
    eng = FakeEngine("a", GenesisSection("alpha", lambda raw: raw, flat=True))
    with pytest.raises(GenesisError, match=r"alpha\.k"):
        parse_params(_base(alpha={"k": 1.5}), [eng])
    with pytest.raises(GenesisError, match="alpha"):
        parse_params(_base(alpha=[1]), [eng])


def test_section_after_gets_earlier_params() -> None:
    first = FakeEngine("first", GenesisSection("one", lambda raw: {"slot": 900}, flat=True))
    second = FakeEngine(
        "second",
        GenesisSection("two", lambda raw, earlier: earlier["first"]["slot"] // 2, after=("first",)),
    )
    params = parse_params(_base(), [first, second])
    assert params.engine_params("second") == 450
    with pytest.raises(GenesisError, match="needs engines"):
        parse_params(_base(), [second, first])


def _sig(key: KeyPair, msg: bytes, *, good: bool = True) -> bytes:
    return signature_frame(key.pubkey, key.sign(msg if good else msg + b"x"), msg)


def test_worker_flags_a_tx_whose_cosignature_fails() -> None:
    k1, k2 = KeyPair.from_seed(b"\x01" * 32), KeyPair.from_seed(b"\x02" * 32)
    body = b"".join(
        [
            b"\x01" + _sig(k1, b"one"),  # tx 0: one good signature
            b"\x02" + _sig(k1, b"two") + _sig(k2, b"meter", good=False),  # tx 1: bad cosig
            b"\x02" + _sig(k1, b"three", good=False) + _sig(k2, b"m"),  # tx 2: bad own sig
            b"\x02" + _sig(k1, b"four") + _sig(k2, b"m4"),  # tx 3: both good
        ]
    )
    assert decode_reply(check_request(body)) == [1, 2]


def test_every_engine_hooking_meter_report_hooks_meter_batch_too() -> None:
    # A batch entry is a reading as if a meter.report had carried it: an
    # engine acting on readings that hooked only one of the two would see
    # some readings and miss the others (and the other way round).
    report = [e.name for e in ENGINES if "meter.report" in e.after_tx]
    batch = [e.name for e in ENGINES if "meter.batch" in e.after_tx]
    assert report == batch
    assert report  # certificates and contracts act on readings
