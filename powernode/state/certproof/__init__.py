"""Certificate proofs a third party checks without trusting a node.

Pure: no I/O, no clock (a caller may pass ``now``). ``format`` is the file
(``CertProof``, ``parse_proof``), ``headers`` the header chain checks,
``replay`` the lineage replay, ``verify`` the whole check
(``verify_proof`` -> ``ProofResult``). The builder, which reads a node's
store, is ``chain/certproof.py``.
"""

from powernode.state.certproof.format import (
    MAGIC,
    MAX_PROOF_BYTES,
    VERSION,
    CertProof,
    LineageTx,
    parse_proof,
)
from powernode.state.certproof.verify import CANNOT_PROVE, ProofResult, verify_proof

__all__ = [
    "CANNOT_PROVE",
    "MAGIC",
    "MAX_PROOF_BYTES",
    "VERSION",
    "CertProof",
    "LineageTx",
    "ProofResult",
    "parse_proof",
    "verify_proof",
]
