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

Nodes are separate processes reached over RPC (``powernode.client``); nothing
here imports the node shell or runs an event loop.
"""
