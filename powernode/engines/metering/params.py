"""Metering and certificate parameters: the genesis ``certificates`` section.

One flat object (not one section per name, as ``markets`` is):

    "certificates": {"authorities": ["<40-hex address>", ...], "interval_seconds": 900,
                     "reading_window": 172800, "validity": 31536000,
                     "green_threshold": 100, "sources": ["solar", "wind", "hydro"]}

Every key is optional (defaults below); an unknown key, a float or a value
of the wrong type is refused with a GenesisError naming ``certificates.<key>``.
The section is parsed here, in the metering engine, and the certificates
engine reads the same typed params (``cert_params``): the metering interval
and the authorities are shared by both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from powernode.core.crypto import ADDRESS_SIZE
from powernode.core.errors import GenesisError
from powernode.core.hextext import is_hex
from powernode.core.params import ChainParams, GenesisSection
from powernode.engines.market.params import ENGINE_NAME as MARKET_ENGINE
from powernode.engines.market.params import MarketParams

ENGINE_NAME = "metering"
SECTION = "certificates"

# Energy sources a device may declare (the market's); a consumption-only
# device declares NO_SOURCE instead.
SOURCES = ("solar", "wind", "hydro", "thermal")
NO_SOURCE = "none"

MAX_INTERVAL = 3600  # EnergyTag: granular certificates cover at most an hour
MIN_READING_WINDOW, MAX_READING_WINDOW = 60, 31_536_000
MIN_VALIDITY, MAX_VALIDITY = 3600, 3_153_600_000
MAX_GREEN_THRESHOLD = 100_000  # gCO2/kWh

DEFAULT_READING_WINDOW = 172_800  # 2 days
DEFAULT_VALIDITY = 31_536_000  # 365 days
DEFAULT_GREEN_THRESHOLD = 100
DEFAULT_SOURCES = ("solar", "wind", "hydro")

_KEYS = (
    "authorities",
    "green_threshold",
    "interval_seconds",
    "reading_window",
    "sources",
    "validity",
)


@dataclass(frozen=True, slots=True)
class CertParams:
    authorities: tuple[bytes, ...] = ()
    interval_seconds: int = 900
    reading_window: int = DEFAULT_READING_WINDOW
    validity: int = DEFAULT_VALIDITY
    green_threshold: int = DEFAULT_GREEN_THRESHOLD
    sources: tuple[str, ...] = DEFAULT_SOURCES

    def is_authority(self, addr: bytes) -> bool:
        return addr in self.authorities

    def interval_capacity_wh(self, capacity_w: int) -> int:
        """Most energy a device of ``capacity_w`` can meter in one interval."""
        return capacity_w * self.interval_seconds // 3600


def cert_params(params: ChainParams) -> CertParams:
    """The chain's metering and certificate params, parsed once at genesis load."""
    parsed: CertParams = params.engine_params(ENGINE_NAME)
    return parsed


def default_interval(slot_seconds: int) -> int:
    """The market's slot if it is at most an hour, else the largest whole
    number of minutes up to an hour that divides it (always found: 60 divides
    every slot length the market accepts)."""
    if slot_seconds <= MAX_INTERVAL:
        return slot_seconds
    for d in range(MAX_INTERVAL, 59, -60):
        if slot_seconds % d == 0:
            return d
    raise GenesisError(f"genesis {SECTION}: no interval divides slot_seconds {slot_seconds}")


def _bad(key: str, msg: str) -> GenesisError:
    return GenesisError(f"genesis {SECTION}.{key}: {msg}")


def _int(values: Mapping[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    v = values.get(key, default)
    if type(v) is not int or not lo <= v <= hi:
        raise _bad(key, f"expected an integer in {lo}..{hi}, got {v!r}")
    return v


def _authorities(raw: Any) -> tuple[bytes, ...]:
    if type(raw) is not tuple:
        raise _bad("authorities", "expected a list of addresses")
    out: list[bytes] = []
    for item in raw:
        if type(item) is not str:
            raise _bad("authorities", f"expected a hex address, got {item!r}")
        digits = item.removeprefix("0x")
        if len(digits) != 2 * ADDRESS_SIZE or not is_hex(digits):
            raise _bad("authorities", f"expected {2 * ADDRESS_SIZE} hex characters, got {item!r}")
        addr = bytes.fromhex(digits)
        if addr in out:
            raise _bad("authorities", f"address {addr.hex()} listed twice")
        out.append(addr)
    return tuple(out)


def _sources(raw: Any) -> tuple[str, ...]:
    if type(raw) is not tuple or not raw:
        raise _bad("sources", f"expected a non-empty list of {list(SOURCES)}")
    for s in raw:
        if type(s) is not str or s not in SOURCES:
            raise _bad("sources", f"expected one of {list(SOURCES)}, got {s!r}")
    if len(set(raw)) != len(raw):
        raise _bad("sources", "a source is listed twice")
    # Kept in the canonical order: only membership means anything.
    return tuple(s for s in SOURCES if s in raw)


def parse_certificates(raw: Any, earlier: Mapping[str, Any]) -> CertParams:
    """CertParams from the section's canonical raw form (sorted ``(key,
    value)`` pairs, lists as tuples; ``()`` when absent). ``earlier`` holds
    the market's params: the interval must tile its slot grid."""
    values = dict(raw)
    unknown = sorted(k for k in values if k not in _KEYS)
    if unknown:
        raise GenesisError(f"genesis {SECTION}: unknown keys {unknown}, known {list(_KEYS)}")
    markets: Mapping[str, MarketParams] = earlier[MARKET_ENGINE]
    slot = markets["spot"].slot_seconds
    interval = _int(values, "interval_seconds", default_interval(slot), 60, MAX_INTERVAL)
    if interval % 60:
        raise _bad("interval_seconds", f"must be whole minutes, got {interval}")
    if slot % interval:
        raise _bad(
            "interval_seconds",
            f"{interval} must divide the market's slot_seconds {slot} (intervals tile its slots)",
        )
    return CertParams(
        authorities=_authorities(values.get("authorities", ())),
        interval_seconds=interval,
        reading_window=_int(
            values, "reading_window", DEFAULT_READING_WINDOW, MIN_READING_WINDOW, MAX_READING_WINDOW
        ),
        validity=_int(values, "validity", DEFAULT_VALIDITY, MIN_VALIDITY, MAX_VALIDITY),
        green_threshold=_int(
            values, "green_threshold", DEFAULT_GREEN_THRESHOLD, 0, MAX_GREEN_THRESHOLD
        ),
        sources=_sources(values.get("sources", DEFAULT_SOURCES)),
    )


GENESIS = GenesisSection(key=SECTION, parse=parse_certificates, flat=True, after=(MARKET_ENGINE,))
