"""Periodic store compaction, coordinated between API servers.

Every ``interval`` each API server tries to advance a shared key with a compare on its
version; the one that wins compacts the store to the revision it recorded one interval
earlier. So history is kept for at least one interval (watches and paginated lists that
old still work), and several API servers compact once per interval between them.
"""

from __future__ import annotations

import asyncio

import structlog

from .storage import Compare, Get, Put, Store, StoreError

__all__ = ["COMPACT_KEY", "Compactor"]

log = structlog.get_logger("navarch.apiserver.compactor")

COMPACT_KEY = b"/registry/compact_rev_key"


class Compactor:
    """Compacts the store every ``interval`` seconds (0 disables it)."""

    def __init__(self, store: Store, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._seen_version = 0
        self._recorded = 0

    async def run(self) -> None:
        """Loop until cancelled."""
        if self.interval <= 0:
            return
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.step()
            except StoreError as exc:
                log.warning("compaction round failed", error=str(exc))

    async def step(self) -> int:
        """One round; returns the revision compacted to (0 when this server did not)."""
        current = await self.store.current_revision()
        result = await self.store.txn(
            [Compare(COMPACT_KEY, "version", "=", self._seen_version)],
            [Put(COMPACT_KEY, str(current).encode())],
            [Get(COMPACT_KEY)],
        )
        compacted = 0
        if result.succeeded:
            self._seen_version += 1
            if self._recorded:
                await self.store.compact(self._recorded)
                compacted = self._recorded
                log.info("compacted the store", revision=compacted)
        else:
            kv = result.kvs[0] if result.kvs else None
            self._seen_version = kv.version if kv is not None else 0
        self._recorded = current
        return compacted
