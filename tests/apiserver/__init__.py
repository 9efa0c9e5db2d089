"""Tests of the API server components that need no API server process (its storage)."""
