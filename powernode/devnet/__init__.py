"""Dev networks: what ``powernode init --dev``, ``scripts/testnet.py``, the
benchmarks and the tests use to make chains, data dirs and node processes.

- ``devchain``: the genesis builder for dev chains, their difficulty presets,
  the PoW nonce search for dev targets.
- ``datadir``: a node's data dir as ``powernode init`` writes it (key,
  genesis, config), free loopback ports.
- ``process``: ``ProcessNode``, a real ``powernode run`` process; stopping
  nodes known only by pid.
- ``testnet``: a testnet's directory (``testnet.json``) and starting its nodes.
- ``netns``: a testnet of separate hosts on one machine (a network namespace
  and IP per node on a bridge; partitions cut links), and RPC into them.
- ``wait``: ``wait_until``, the one way to wait for a condition with a deadline.
- ``workload``: the phases of a mixed workload of every engine's tx types
  (the all-engines e2e test runs one round, ``scripts/soak.py`` many).
- ``crash``: the kill -9 transfer load, crash images of a store and their
  check against a replay from genesis (the crash e2e test, ``bench_crash``).

Nodes are separate processes reached over RPC (``powernode.client``); only
``crash`` opens a store, that of a node killed beforehand. Nothing here
imports the node shell or runs an event loop.
"""
