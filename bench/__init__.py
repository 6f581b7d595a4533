"""Benchmarks: each module prints one JSON object with what it measured."""
