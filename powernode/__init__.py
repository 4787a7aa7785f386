"""powernode: a peer-to-peer proof-of-work node for electricity trading."""

# The one place the version is written; pyproject.toml's must match
# (tests/unit/test_cli_parser.py checks it).
__version__ = "0.1.0"
