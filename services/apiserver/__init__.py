"""Navarch's API server: the only door to the store (see README.md)."""
