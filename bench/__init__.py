"""Benchmarks against the lab: `python -m bench` runs them all and prints one table.

Each module measures one thing the issue names and returns rows for the table; numbers that
depend on the machine are compared side by side in the same run (ratios), never asserted on.
"""
