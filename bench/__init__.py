"""Navarch benchmarks: each measures a component against its reference in the same run."""
