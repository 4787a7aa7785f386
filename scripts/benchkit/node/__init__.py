"""bench_node's phases: the signature baseline, RPC ingest, block connect,
RPC latency; and its keys, pre-signed transfers and chains."""
