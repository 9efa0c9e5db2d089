"""Where a store watch stands across its streams, and which progress answers it trusts.

Pure: it reads etcd ``WatchResponse`` messages and says what to deliver; the caller does
the I/O (storage.EtcdStore.watch).

Progress comes from two places:

- A member's own notification (our watch id, no events). etcd and raftstore send it only
  to a watcher that has caught up with history, after every event queued before it: it is
  always trusted.
- An answer to a progress request (watch id -1). etcd before 3.4.24 (etcd-io/etcd#15220)
  can send it ahead of events already queued for the watcher, and raftstore answers it
  for a watcher still replaying history. It is trusted only when (1) the watcher has shown
  it caught up: it started after its creation revision, or delivered an event at or after
  that revision, or received a member notification; (2) the stream was silent for a
  progress interval before asking (the caller only asks then); (3) a second answer, asked
  for once the first arrived, came with nothing in between. The first answer's revision
  is then delivered: whatever the member had queued before it has been sent by then.

Hence a watch resumed behind the head of history on a range that stays quiet reports
progress only from the member's periodic notifications (raftstore
``--watch-progress-notify-interval``, etcd ``--experimental-watch-progress-notify-interval``)
or from its next event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["PROGRESS_WATCH_ID", "Step", "WatchProgress"]

PROGRESS_WATCH_ID = -1
"""The watch id of an answer to a progress request (etcd before 3.4.24, raftstore)."""


@dataclass(frozen=True, slots=True)
class Step:
    """What one response means. ``revision`` > 0: deliver ``events`` (possibly none: a
    progress notification) as a batch ending at ``revision``."""

    created: bool = False
    events: tuple[Any, ...] = ()
    revision: int = 0
    ask_progress: bool = False
    compact_revision: int = 0
    cancel_reason: str | None = None


class WatchProgress:
    """The next revision to deliver, and the state of one stream's progress requests."""

    def __init__(self, next_revision: int) -> None:
        self.next_revision = next_revision
        self.restart()

    def restart(self) -> None:
        """A new stream is being opened from ``next_revision``."""
        self.created = False
        self.watch_id: int | None = None
        self.created_revision = 0
        self.caught_up = False
        self.phase: Literal["quiet", "asked", "confirming", "discard"] = "quiet"
        self.candidate = 0

    def on_idle(self) -> bool:
        """The stream was silent for a progress interval: whether to ask for progress."""
        if not self.created or self.phase != "quiet":
            return False
        self.phase = "asked"
        return True

    def on_response(self, resp: Any) -> Step:
        """Account for one WatchResponse."""
        if resp.created and not self.created:
            if resp.canceled:
                return Step(cancel_reason=resp.cancel_reason or "watch refused")
            self.created, self.watch_id = True, resp.watch_id
            self.created_revision = resp.header.revision
            self.caught_up = self.next_revision > self.created_revision
            return Step(created=True)
        if resp.watch_id == PROGRESS_WATCH_ID and not resp.events:
            return self._on_answer(resp.header.revision)
        if resp.watch_id != self.watch_id:
            return Step()
        if resp.compact_revision:
            return Step(compact_revision=resp.compact_revision)
        if resp.canceled:
            return Step(cancel_reason=resp.cancel_reason or "cancelled by the store")
        if self.phase == "confirming":
            self.phase = "discard"  # something arrived between the two answers
        if resp.events:
            return self._events(resp.events)
        self.caught_up = True
        if self.phase == "asked":  # a member that answers on the watch itself (etcd 3.5)
            self.phase = "quiet"
        return self._advance(resp.header.revision)

    def _on_answer(self, revision: int) -> Step:
        phase, self.phase = self.phase, "quiet"
        if phase == "asked" and self.caught_up:
            self.phase, self.candidate = "confirming", revision
            return Step(ask_progress=True)
        if phase == "confirming":
            return self._advance(self.candidate)
        return Step()

    def _events(self, events: Any) -> Step:
        fresh = tuple(e for e in events if e.kv.mod_revision >= self.next_revision)
        if not fresh:
            return Step()
        revision = fresh[-1].kv.mod_revision
        self.caught_up = self.caught_up or revision >= self.created_revision
        self.next_revision = revision + 1
        return Step(events=fresh, revision=revision)

    def _advance(self, revision: int) -> Step:
        if revision < self.next_revision:
            return Step()
        self.next_revision = revision + 1
        return Step(revision=revision)
