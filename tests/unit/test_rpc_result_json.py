"""README, RPC: an integer past 2^53 - 1 in a result is sent as a decimal
string; the WebSocket's notices (``result_json``) keep the rule as answers do."""

from __future__ import annotations

import json

from powernode.node.rpc import result_json
from powernode.node.rpc_ws import _json_pair

BIG = 2**53


def test_big_integers_become_strings_and_small_ones_stay_numbers() -> None:
    obj = {"fee": BIG, "amount": BIG - 1, "events": [{"wh": -BIG}], "name": "1234567890123456"}
    assert json.loads(result_json(obj)) == {
        "fee": str(BIG),
        "amount": BIG - 1,
        "events": [{"wh": str(-BIG)}],
        "name": "1234567890123456",
    }


def test_a_notice_text_keeps_the_rule() -> None:
    notice, text = _json_pair({"value": 10**17, "height": 5})
    assert notice == {"value": 10**17, "height": 5}
    assert json.loads(text) == {"value": str(10**17), "height": 5}
