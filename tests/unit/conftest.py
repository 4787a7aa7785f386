from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.helpers import LedgerFactory, make_params


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[LedgerFactory]:
    f = LedgerFactory(tmp_path)
    try:
        yield f
    finally:
        f.close_all()


@pytest.fixture
def params():
    return make_params()


@pytest.fixture
def ledger(factory: LedgerFactory, params):
    return factory.open(params)
