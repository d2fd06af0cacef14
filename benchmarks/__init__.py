"""Benchmarks for semscale (``make bench`` / ``python -m benchmarks``).

Each benchmark measures ratios inside one run on the same machine and writes them to
``benchmarks/results.md``; none of them is a test and none asserts a timing.
"""
