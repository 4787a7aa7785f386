"""The genesis block and state: a pure function of the genesis file.

The genesis header's ``tx_root`` holds the commitment to every chain
parameter, so two files that differ anywhere give different genesis hashes
and their nodes refuse each other at the handshake.
"""

from __future__ import annotations

import json
from typing import Any

from powernode.core.block import BLOCK_VERSION, Block, make_block, make_header
from powernode.core.crypto import ZERO_ADDRESS, ZERO_HASH
from powernode.core.errors import GenesisError
from powernode.core.params import ChainParams, parse_params
from powernode.core.pow import target_to_bytes
from powernode.engines.accounts import credit
from powernode.state.apply import BlockResult, seal
from powernode.state.registry import ENGINES
from powernode.state.view import MemoryState, StateView


class _Float:
    """A float as the JSON text had it: kept only until the parse names its
    key and refuses it (never reaches the params)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _float_path(value: Any, path: str) -> tuple[str, str] | None:
    """The key path and text of the first float in ``value``, in document
    order, or None."""
    if isinstance(value, _Float):
        return path, value.text
    if isinstance(value, dict):
        items: Any = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for sub_path, sub in items:
        found = _float_path(sub, sub_path)
        if found is not None:
            return found
    return None


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are each given once: JSON parsers differ on a
    repeated key (Python's keeps the last), so two nodes reading one file
    must not have to agree on which."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def parse_genesis_json(text: str | bytes) -> ChainParams:
    try:
        doc = json.loads(
            text, parse_float=_Float, parse_constant=_Float, object_pairs_hook=_unique_keys
        )
    except _DuplicateKey as exc:
        raise GenesisError(f"genesis: key {exc.key!r} is given twice in one object") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GenesisError(f"genesis is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise GenesisError("genesis is nested too deeply") from exc
    try:
        found = _float_path(doc, "")
    except RecursionError as exc:
        raise GenesisError("genesis is nested too deeply") from exc
    if found is not None:
        where, number = found
        raise GenesisError(
            f"genesis{' ' + where if where else ''}: floats are not allowed ({number})"
        )
    return parse_genesis(doc)


def parse_genesis(doc: Any) -> ChainParams:
    """ChainParams from a parsed genesis document: the chain's own keys, and
    each registered engine's section parsed by that engine into its typed
    params (once, here). GenesisError names the offending key."""
    return parse_params(doc, ENGINES)


def genesis_result(params: ChainParams) -> BlockResult:
    view = StateView(MemoryState())
    for addr, amount in params.allocations:
        credit(view, addr, amount)
    return seal(view, ZERO_HASH, ())


def genesis_block(params: ChainParams) -> Block:
    header = make_header(
        BLOCK_VERSION,
        0,
        ZERO_HASH,
        params.timestamp,
        target_to_bytes(params.initial_target),
        0,
        params.commitment(),
        genesis_result(params).state_root,
        ZERO_ADDRESS,
    )
    return make_block(header, ())
