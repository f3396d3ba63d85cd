"""Benchmarks: each prints its figures. Run with `make bench` (needs PostgreSQL; see README)."""
