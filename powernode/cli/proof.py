"""``powernode verify-proof FILE --genesis genesis.json``: check a certificate
proof offline, with no node (``state/certproof``; README "Certificate
proofs"). Exit 0 only for a valid proof; otherwise one line naming the
reason's code, exit 1.

Its twin, ``powernode cert proof ID --out FILE``, asks a node for the file
(``cli/certs.py``).
"""

from __future__ import annotations

import argparse
import json
import string
import time
from pathlib import Path
from typing import Any

from powernode.cli.common import Subparsers, UserError, add_command, read_genesis, whole_number
from powernode.client import read_bytes
from powernode.core.errors import BadProof
from powernode.core.units import U63, clip
from powernode.state.certproof import MAX_PROOF_BYTES, ProofResult, verify_proof


def work_arg(text: str) -> int:
    """``--min-work``: chain work can pass the 30 digits ``whole_number``
    allows (it sums 2^256 / (target + 1) over blocks), so up to 2^256;
    decimal, or hex with ``0x`` as ``node.info``'s ``total_work`` gives it."""
    s = text.strip()
    digits, base = (s[2:], 16) if s[:2].lower() == "0x" else (s, 10)
    ok = digits.isascii() and (
        digits.isdigit() if base == 10 else all(c in string.hexdigits for c in digits)
    )
    if not ok or not digits or len(digits) > 78 or int(digits, base) > 2**256:
        raise UserError(
            f"--min-work: expected a whole number 0..2^256 (decimal, or hex with 0x), "
            f"not {clip(text)!r}"
        )
    return int(digits, base)


def summary(r: ProofResult) -> str:
    lines = ["valid proof", "proved:"]
    lines += [f"  - {x}" for x in r.proved()]
    if r.unchecked:
        lines.append("not decided (a clock the file cannot pin):")
        lines += [f"  - {x}" for x in r.unchecked]
    lines.append("cannot prove:")
    lines += [f"  - {x}" for x in r.cannot_prove]
    return "\n".join(lines)


def cmd_verify_proof(a: argparse.Namespace) -> int:
    _, params = read_genesis(Path(a.genesis))
    raw = read_bytes(Path(a.file), "proof file", max_bytes=MAX_PROOF_BYTES)
    try:
        # The clock only refuses headers from beyond the chain's max_future,
        # as a node would; everything else is a pure function of the files.
        r = verify_proof(
            raw,
            params,
            now=int(time.time()),
            min_work=a.min_work,
            min_confirmations=a.min_confirmations,
        )
    except BadProof as exc:
        raise UserError(f"invalid proof ({exc.code}): {exc.message}") from None
    out: Any = r.to_json()
    print(json.dumps(out, indent=2) if a.json else summary(r))
    return 0


def add_commands(sub: Subparsers) -> None:
    sp = add_command(
        sub,
        "verify-proof",
        cmd_verify_proof,
        "check a certificate proof offline against a genesis file (no node)",
    )
    sp.add_argument("file", metavar="FILE", help="the proof (from `powernode cert proof`)")
    sp.add_argument("--genesis", required=True, help="the chain's genesis.json")
    sp.add_argument(
        "--min-work",
        type=work_arg,
        default=0,
        help="refuse a header chain with less chain work than this",
    )
    sp.add_argument(
        "--min-confirmations",
        type=whole_number("--min-confirmations", hi=U63),
        default=0,
        help="refuse unless the last lineage block has this many confirmations",
    )
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
