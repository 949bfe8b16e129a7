"""Benchmarks: each module has a ``main()``."""
