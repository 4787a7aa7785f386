"""bench_network's testnets (started with ``scripts/testnet.py up``) and its
phases: block propagation, a late joiner's sync, sustained load; its table."""
