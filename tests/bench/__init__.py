"""A small run of the benchmark, checked for correctness only."""
