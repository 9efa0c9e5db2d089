"""Back-off per key, as kubelet's ``flowcontrol.Backoff``: CrashLoopBackOff of containers
(key ``(pod uid, container name)``) and ImagePullBackOff of images.

    failure ─ record_failure(key, now) ─▶ delay: initial, doubling up to cap
    may it start again? ─ in_backoff(key, now, since) ─▶ seconds still to wait (0: go)

Semantics (kubelet's, without jitter):

- ``since`` is the time of the event being judged: for a crash, the exited attempt's
  ``finishedAt`` (kubelet's ``IsInBackOffSince``), so the wait is counted from the crash.
  Left out, it is the key's last update (kubelet's ``IsInBackOffSinceUpdate``, as for
  image pulls).
- The first restart is immediate (no entry yet); each later one waits the current delay,
  which doubles from ``initial`` up to ``cap``: 0, 10, 20, 40 … 300, 300 s.
- Forgiveness: when the event comes more than ``reset_after`` seconds after the last
  update (kubelet: twice the cap, 600 s), the key starts over from ``initial``; for a
  crash that means the container ran over 10 minutes since its last restart.
- ``gc(now)`` drops keys not updated for more than ``reset_after`` seconds (kubelet's
  ``Backoff.GC``): they would start over anyway.

Pure: the caller passes the time. Not thread-safe; one event loop uses it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass

__all__ = ["CrashBackoff"]


@dataclass
class _Entry:
    delay: float  # the wait after the next failure
    last: float  # when the key was last updated (the last restart or pull attempt)


class CrashBackoff:
    """Back-off state of many keys."""

    def __init__(self, initial: float = 10.0, cap: float = 300.0,
                 reset_after: float = 600.0) -> None:
        self.initial, self.cap, self.reset_after = initial, cap, reset_after
        self._entries: dict[Hashable, _Entry] = {}

    def _live(self, key: Hashable, event: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None or event - entry.last > self.reset_after:
            return None
        return entry

    def in_backoff(self, key: Hashable, now: float, since: float | None = None) -> float:
        """Seconds ``key`` must still wait at ``now`` before its next attempt (0: go
        ahead), counted from ``since`` (the crash's finish time; default: the key's last
        update)."""
        entry = self._live(key, now if since is None else since)
        if entry is None:
            return 0.0
        start = entry.last if since is None else since
        return max(0.0, start + entry.delay - now)

    def record_failure(self, key: Hashable, now: float, since: float | None = None) -> float:
        """A new attempt of ``key`` starts at ``now`` after a failure at ``since`` (default
        ``now``); returns the delay the next failure will wait."""
        entry = self._live(key, now if since is None else since)
        if entry is None:
            entry = self._entries[key] = _Entry(self.initial, now)
        else:
            entry.delay, entry.last = min(self.cap, entry.delay * 2), now
        return entry.delay

    def delay(self, key: Hashable) -> float:
        """The key's current back-off (kubelet's ``Get``: the "back-off 20s" of the
        CrashLoopBackOff message); 0 for an unknown key."""
        entry = self._entries.get(key)
        return entry.delay if entry is not None else 0.0

    def forget(self, key: Hashable) -> None:
        """Drop ``key`` (its pod is gone): its next failure starts from ``initial``."""
        self._entries.pop(key, None)

    def keys(self) -> Iterator[Hashable]:
        """The keys with back-off state (a snapshot: safe to ``forget`` while iterating)."""
        return iter(list(self._entries))

    def gc(self, now: float) -> None:
        """Drop keys not updated for more than ``reset_after`` seconds."""
        for key in [k for k, e in self._entries.items() if now - e.last > self.reset_after]:
            del self._entries[key]
