"""Benchmarks run by `memrl bench NAME` (figures printed, never asserted in tests)."""
