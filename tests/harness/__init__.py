"""Test harness, on top of ``powernode.devnet`` (genesis, data dirs, node
processes, ``wait_until``): ``procnet`` (networks of real node processes),
``network`` (in-process nodes: connect, cut, heal, sync; the async twin of
``wait_until``), ``p2pnet`` (single in-process P2P nodes and log events),
``testpeer`` (a scriptable peer), ``builder`` (blocks built off-line),
``arpc`` (an asyncio RPC client), ``netnsnet`` (testnets whose nodes are
hosts of their own, in network namespaces) and ``hostile_peer`` (a hostile
client process for them)."""

# The chain id of the harness's genesis documents (what tests sign for).
TEST_CHAIN = "powernode-test"
