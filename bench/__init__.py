"""Benchmarks: each prints medians and p99s against a baseline measured in the same run."""
