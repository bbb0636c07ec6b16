"""Training-run analysis in plain Python, no Django: log parsing, scaling fits and the cost planner.

The CLI, benchmarks and tests use these modules without Django settings, like the probe engine.
"""
