"""Shared parts of the benchmark and load scripts in ``scripts/`` (which put
this directory's parent on ``sys.path`` by being run from it)."""
