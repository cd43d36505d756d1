"""Benchmarks: `python -m bench [NAME ...]` runs them, prints a table, writes JSON to artifacts/bench/.

Each benchmark is a module with `NAME`, a one-line `TITLE` and `run() -> list[dict]`, one dict a row
(`metric`, `value`, `unit`, and any context). Benchmarks measure; tests check behaviour.
"""
