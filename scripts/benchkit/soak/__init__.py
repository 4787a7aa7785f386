"""soak.py's parts: ``load`` (the mixed workload it keeps sending and the
tracking of every tx it sent), ``checks`` (supply plus escrows, confirmed txs
on the common chain, duplicate txs, RSS growth) and ``cluster`` (the four
node processes, kill -9 and restart, partitions cut and healed over RPC)."""
