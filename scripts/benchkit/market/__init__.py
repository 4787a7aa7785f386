"""bench_market's seeded order stream and its three runs: the order book
alone, the market handlers on state, full block application."""
