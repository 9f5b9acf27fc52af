"""Benchmarks: stage timings per scale, incremental cost, and the gold transformations
on the embedded engine, classic local Spark and DuckDB side by side (``lakehouse bench``)."""
