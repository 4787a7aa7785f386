"""bench_scale's rows: each a cost measured at three work sizes (see
scripts/bench_scale.py)."""
