"""Chain parameters: everything the genesis file fixes for the life of a chain.

The genesis file is JSON (like geth's). Every value is an integer or a hex
string; a float anywhere is refused, and so is an unknown key (a typo in a
consensus parameter must not silently fall back to a default). Keys starting
with ``_`` are comments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from powernode.core import encoding
from powernode.core.crypto import ADDRESS_SIZE, sha256
from powernode.core.errors import GenesisError
from powernode.core.hextext import from_hex, is_hex
from powernode.core.pow import MAX_TARGET
from powernode.core.units import MAX_MONEY

# Genesis may hand out at most half the supply cap, and a block may mint at
# most MAX_MONEY / 10^10 (100 units): the total supply then stays below
# MAX_MONEY for 5 billion blocks, so no balance can reach the cap and a
# credit never fails. Engines rely on that: they credit sellers after they
# have changed a book in place, where a failing tx could not be reverted.
MAX_GENESIS_SUPPLY = MAX_MONEY // 2
MAX_BLOCK_REWARD = MAX_MONEY // 10**10


@dataclass(frozen=True, slots=True)
class ChainParams:
    chain_id: str
    timestamp: int
    block_time: int
    initial_target: int
    pow_limit: int
    asert_halflife: int
    max_future: int
    block_reward: int
    min_fee: int
    max_block_bytes: int
    max_block_txs: int
    dev: bool
    allocations: tuple[tuple[bytes, int], ...]
    # Engine sections of the genesis file (the market's ``markets``), as
    # (genesis key, canonical raw form) in the registry's engine order: what
    # the genesis commits to. Core cannot know their schema (engines sit
    # above it); each engine's parser reads its own section.
    sections: tuple[tuple[str, Any], ...] = ()
    # Each engine's typed params by engine name, parsed once from
    # ``sections`` when the genesis is loaded (``engine_params``). Derived,
    # so left out of equality.
    engines: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_obj(self) -> list[Any]:
        return [
            self.chain_id,
            self.timestamp,
            self.block_time,
            self.initial_target.to_bytes(32, "big"),
            self.pow_limit.to_bytes(32, "big"),
            self.asert_halflife,
            self.max_future,
            self.block_reward,
            self.min_fee,
            self.max_block_bytes,
            self.max_block_txs,
            self.dev,
            [[addr, amount] for addr, amount in self.allocations],
            *(_listed(raw) for _, raw in self.sections),
        ]

    def engine_params(self, engine: str) -> Any:
        """The typed params ``engine`` parsed from its genesis section."""
        try:
            return self.engines[engine]
        except KeyError:
            raise GenesisError(f"no genesis params for engine {engine!r}") from None

    def commitment(self) -> bytes:
        """Hash of every parameter; the genesis block commits to it."""
        return sha256(encoding.encode(self.to_obj()))


@dataclass(frozen=True, slots=True)
class GenesisSection:
    """An engine's section of the genesis file: the key it sits under and the
    parser that turns its canonical raw form into the engine's typed params,
    raising GenesisError naming the bad key.

    The raw form is sorted ``(name, items)`` tuples for a section of named
    objects (``{"spot": {...}}``), or, with ``flat``, the sorted ``(key,
    value)`` items of one object (``{"authorities": [...]}``); comment keys
    dropped, ``()`` when absent. ``after`` names engines earlier in the
    registry whose typed params the parser needs (a default derived from
    another engine's setting): then it is called as ``parse(raw, earlier)``
    with ``earlier`` mapping those names to their params."""

    key: str
    parse: Callable[..., Any]
    flat: bool = False
    after: tuple[str, ...] = ()


class SectionOwner(Protocol):
    """What ``parse_params`` needs of an engine (``core.execution.Engine``)."""

    @property
    def name(self) -> str: ...

    @property
    def genesis(self) -> GenesisSection | None: ...


_DEFAULTS: dict[str, Any] = {
    "block_time": 10,
    "asert_halflife": 3600,
    "max_future": None,  # None: 12 block intervals
    "block_reward": 50 * 1_000_000,
    "min_fee": 0,
    "max_block_bytes": 2 * 1024 * 1024,
    "max_block_txs": 10_000,
    "dev": False,
    "allocations": {},
}
_REQUIRED = ("chain_id", "timestamp", "initial_target", "pow_limit")
# The chain's own genesis keys: no engine's section may take one of them.
CHAIN_KEYS: frozenset[str] = frozenset(_DEFAULTS) | frozenset(_REQUIRED)


def _int(d: dict[str, Any], key: str, *, lo: int = 0, hi: int = 2**63 - 1) -> int:
    v = d[key]
    if type(v) is float:
        raise GenesisError(f"genesis {key}: floats are not allowed")
    if type(v) is not int or not lo <= v <= hi:
        raise GenesisError(f"genesis {key}: expected an integer in {lo}..{hi}, got {v!r}")
    return v


def _target(d: dict[str, Any], key: str) -> int:
    v = d[key]
    if type(v) is not str:
        raise GenesisError(f"genesis {key}: expected a hex string")
    digits = v.removeprefix("0x")
    # Hex digits only: int(..., 16) would also take spaces and underscores.
    if not digits or not is_hex(digits):
        raise GenesisError(f"genesis {key}: not hex: {v!r}")
    t = int(digits, 16)
    if not 1 <= t <= MAX_TARGET:
        raise GenesisError(f"genesis {key}: out of range")
    return t


def _listed(obj: Any) -> Any:
    return [_listed(x) for x in obj] if isinstance(obj, tuple) else obj


def _section_value(path: str, v: Any, depth: int = 0) -> Any:
    """A JSON value as a hashable canonical form: ints, strings, bools and
    lists of those; objects and floats are refused (the engine decides what
    the value means)."""
    if type(v) in (int, str, bool):
        if type(v) is int and not -(2**63) <= v < 2**63:
            raise GenesisError(f"genesis {path}: integer out of range")
        return v
    if type(v) is list and depth < 2:
        return tuple(_section_value(path, x, depth + 1) for x in v)
    raise GenesisError(f"genesis {path}: expected an integer, string, boolean or list, got {v!r}")


def _flat_section(d: Any, key: str) -> tuple[tuple[str, Any], ...]:
    """``{"param": value}`` as sorted items, comment keys dropped."""
    if not isinstance(d, dict):
        raise GenesisError(f"genesis {key}: expected an object of key: value")
    return tuple(
        (k, _section_value(f"{key}.{k}", v)) for k, v in sorted(d.items()) if not k.startswith("_")
    )


def _parse_sections(
    owned: list[tuple[str, GenesisSection]], raws: tuple[tuple[str, Any], ...]
) -> dict[str, Any]:
    """Each engine's typed params, in registry order, so a section may build
    on the params of engines before it (``GenesisSection.after``)."""
    parsed: dict[str, Any] = {}
    for (name, g), (_, raw) in zip(owned, raws, strict=True):
        if g.after:
            missing = [a for a in g.after if a not in parsed]
            if missing:
                raise GenesisError(f"genesis {g.key}: needs engines {missing} registered before it")
            parsed[name] = g.parse(raw, {a: parsed[a] for a in g.after})
        else:
            parsed[name] = g.parse(raw)
    return parsed


def _sections(d: Any, key: str) -> tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]:
    """``{"name": {"param": value}}`` as sorted tuples, comment keys dropped."""
    if not isinstance(d, dict):
        raise GenesisError(f"genesis {key}: expected an object of name: {{params}}")
    out = []
    for name, section in sorted(d.items()):
        if name.startswith("_"):
            continue
        if not isinstance(section, dict):
            raise GenesisError(f"genesis {key}.{name}: expected an object")
        items = tuple(
            (k, _section_value(f"{key}.{name}.{k}", v))
            for k, v in sorted(section.items())
            if not k.startswith("_")
        )
        out.append((name, items))
    return tuple(out)


def parse_params(doc: Any, engines: Sequence[SectionOwner]) -> ChainParams:
    """ChainParams from a parsed genesis document, or a GenesisError naming the
    key. ``engines`` (the registry's, in its order) say which engine sections
    the file may hold and parse them."""
    if not isinstance(doc, dict):
        raise GenesisError("genesis must be a JSON object")
    owned = [(e.name, e.genesis) for e in engines if e.genesis is not None]
    known = set(_DEFAULTS) | set(_REQUIRED) | {g.key for _, g in owned}
    unknown = sorted(k for k in doc if k not in known and not k.startswith("_"))
    if unknown:
        raise GenesisError(f"genesis: unknown keys {unknown}")
    missing = [k for k in _REQUIRED if k not in doc]
    if missing:
        raise GenesisError(f"genesis: missing keys {missing}")
    d = {**_DEFAULTS, **doc}
    chain_id = d["chain_id"]
    if type(chain_id) is not str or not 1 <= len(chain_id) <= 64:
        raise GenesisError("genesis chain_id: expected a string of 1..64 characters")
    block_time = _int(d, "block_time", lo=1, hi=86400)
    if "max_future" not in doc:  # a written null is a wrong type, not the default
        d["max_future"] = 12 * block_time
    allocs = d["allocations"]
    if not isinstance(allocs, dict):
        raise GenesisError("genesis allocations: expected an object of address: amount")
    parsed: dict[bytes, int] = {}
    for addr_hex, amount in allocs.items():
        if addr_hex.startswith("_"):
            continue  # a comment, as at the top level
        try:
            addr = from_hex(addr_hex.removeprefix("0x"))
        except ValueError as exc:
            raise GenesisError(f"genesis allocation: bad address {addr_hex!r}") from exc
        if len(addr) != ADDRESS_SIZE:
            raise GenesisError(f"genesis allocation: bad address {addr_hex!r}")
        if addr in parsed:
            raise GenesisError(f"genesis allocation: address {addr.hex()} listed twice")
        key = f"allocations.{addr_hex}"
        parsed[addr] = _int({key: amount}, key, hi=MAX_GENESIS_SUPPLY)
    if sum(parsed.values()) > MAX_GENESIS_SUPPLY:
        raise GenesisError(
            f"genesis allocations exceed half the supply cap ({MAX_GENESIS_SUPPLY} micro-units)"
        )
    dev = d["dev"]
    if type(dev) is not bool:
        raise GenesisError("genesis dev: expected true or false")
    pow_limit = _target(d, "pow_limit")
    initial = _target(d, "initial_target")
    if initial > pow_limit:
        raise GenesisError("genesis initial_target is above pow_limit")
    sections = tuple(
        (g.key, (_flat_section if g.flat else _sections)(doc.get(g.key, {}), g.key))
        for _, g in owned
    )
    return ChainParams(
        chain_id=chain_id,
        timestamp=_int(d, "timestamp"),
        block_time=block_time,
        initial_target=initial,
        pow_limit=pow_limit,
        asert_halflife=_int(d, "asert_halflife", lo=1),
        max_future=_int(d, "max_future", lo=1),
        block_reward=_int(d, "block_reward", hi=MAX_BLOCK_REWARD),
        min_fee=_int(d, "min_fee", hi=MAX_MONEY),
        max_block_bytes=_int(d, "max_block_bytes", lo=1024, hi=8 * 1024 * 1024),
        max_block_txs=_int(d, "max_block_txs", lo=1, hi=100_000),
        dev=dev,
        allocations=tuple(sorted(parsed.items())),
        sections=sections,
        engines=_parse_sections(owned, sections),
    )
