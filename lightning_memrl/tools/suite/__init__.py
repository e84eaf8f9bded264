"""`memrl suite`: grids of `memrl fit` runs (run), their results file (records), tables (compare), plots (plot)."""
