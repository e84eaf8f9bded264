"""Benchmark tools run by `memrl bench NAME` and `memrl suite` (suite runner, comparison, plots)."""
