"""Back-off per key, as kubelet's ``flowcontrol.Backoff``: CrashLoopBackOff of containers
and ImagePullBackOff of images.

After a failure the key waits ``initial`` seconds, doubling with each further failure up
to ``cap``; a key whose last failure is older than ``reset_after`` starts from ``initial``
again (kubelet: a container that ran 10 minutes without crashing is forgiven). Pure: the
caller passes the time.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass

__all__ = ["CrashBackoff"]


@dataclass
class _Entry:
    delay: float
    last: float


class CrashBackoff:
    """Back-off state of many keys (not thread-safe; one event loop uses it)."""

    def __init__(self, initial: float = 10.0, cap: float = 300.0,
                 reset_after: float = 600.0) -> None:
        self.initial, self.cap, self.reset_after = initial, cap, reset_after
        self._entries: dict[Hashable, _Entry] = {}

    def in_backoff(self, key: Hashable, now: float) -> float:
        """Seconds ``key`` must still wait before its next attempt (0: go ahead)."""
        entry = self._entries.get(key)
        if entry is None or now - entry.last >= self.reset_after:
            return 0.0
        return max(0.0, entry.last + entry.delay - now)

    def record_failure(self, key: Hashable, now: float) -> float:
        """A new attempt after a failure starts now; returns the wait before the next one."""
        entry = self._entries.get(key)
        if entry is None or now - entry.last >= self.reset_after:
            entry = self._entries[key] = _Entry(self.initial, now)
        else:
            entry.delay, entry.last = min(self.cap, entry.delay * 2), now
        return entry.delay

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def keys(self) -> Iterator[Hashable]:
        return iter(list(self._entries))

    def gc(self, now: float) -> None:
        """Drop keys idle for longer than ``reset_after`` (they would start over anyway)."""
        for key in [k for k, e in self._entries.items() if now - e.last >= self.reset_after]:
            del self._entries[key]
