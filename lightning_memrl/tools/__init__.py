"""The top floor: the `memrl` command and the tools it runs (suite, bench, tune).

Nothing in the library below imports this package; the tools drive the library and its CLI.
"""
