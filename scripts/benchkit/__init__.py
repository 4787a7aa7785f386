"""What the benchmark and load scripts in ``scripts/`` share (they put this
directory's parent on ``sys.path`` by being run from it). Node processes,
testnet directories, genesis documents and waiting come from
``powernode.devnet``; here:

- ``runner``: the frame of every benchmark main (common arguments, machine
  description, quiet-machine wait, work dir, guarded run, table and JSON
  output, exit status); ``guard``: progress lines, the time budget, small
  statistics; ``cpu``: other processes' load and a node's CPU by thread;
  ``rpc``: a raw keep-alive JSON-RPC connection.
- ``node``: bench_node's phases (baseline, ingest, block connect, latency)
  and its keys and txs; the baseline is every benchmark's.
- ``net``: bench_network's testnets and phases (propagation, sync, load)
  and its table.
- ``market``: bench_market's order stream and its runs through the engine,
  the handlers and blocks.
- ``load``: loadgen's signing, funding and sending, tracking and summary.
- ``soak``: soak.py's testnet (kill -9, partitions, settling), its mixed
  load with the record of every tx sent, and its checks.
"""
