"""Benchmarks run by hand (`python -m tests.bench.bench_api`); never collected by pytest."""
