"""`memrl bench NAME`: benchmarks that print figures (never asserted in tests)."""

BENCHMARKS = (
    "throughput",
    "controllers",
    "envs",
    "memory",
    "episodic",
    "mamba2_paths",
    "learning",
    "versus_sb3",
    "soak",
)
