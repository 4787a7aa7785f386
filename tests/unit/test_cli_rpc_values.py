"""``powernode rpc``'s KEY=VALUE values (README, "Using the CLI"): JSON when
the text parses as JSON, else the text as typed."""

from __future__ import annotations

import pytest

from powernode.cli.rpc_call import parse_value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("true", True),
        ("null", None),
        ('"text"', "text"),
        ("[1,2]", [1, 2]),
        ("ab12", "ab12"),
        ("NaN", "NaN"),
        # Past a float's range: infinity, which no JSON request can carry (it
        # went out as `Infinity` and the node answered parse_error).
        ("1e999", "1e999"),
        ("[1e999]", "[1e999]"),
        ('{"a": -1e999}', '{"a": -1e999}'),
    ],
)
def test_values(text: str, value: object) -> None:
    assert parse_value(text) == value
