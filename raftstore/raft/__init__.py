"""Navarch's Raft: a pure protocol core (``core``), its durable storage (``storage``) and
an authenticated, encrypted peer transport (``transport``). See raftstore/README.md."""
