"""Benchmarks: each starts what it measures and prints ratios against its peers."""
