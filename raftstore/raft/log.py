"""The in-memory Raft log since the last snapshot, with what is durable and what is applied.

Indexes: ``snap_index`` is the last entry covered by the snapshot (0: none);
``entries[k]`` has index ``snap_index + 1 + k``. ``stable`` is the last index known to
be durable, ``committed`` the last known committed, ``applied`` the last handed to the
state machine. Invariant: applied <= committed, snap_index <= applied.
"""

from __future__ import annotations

from raftstore.raft.types import Entry, Snapshot


class LogConflictWithCommitted(AssertionError):
    """A leader tried to overwrite a committed entry: Raft's safety would be broken."""


class RaftLog:
    """Entries after the snapshot; pure data, no I/O."""

    def __init__(self, snapshot: Snapshot | None, entries: list[Entry], committed: int) -> None:
        self.snap_index = snapshot.meta.index if snapshot else 0
        self.snap_term = snapshot.meta.term if snapshot else 0
        self.entries: list[Entry] = [e for e in entries if e.index > self.snap_index]
        for k, e in enumerate(self.entries):
            if e.index != self.snap_index + 1 + k:
                raise ValueError(f"log entries are not contiguous at index {e.index}")
        self.stable = self.last_index()
        self.committed = max(min(committed, self.last_index()), self.snap_index)
        self.applied = self.snap_index
        self.pending_snapshot: Snapshot | None = None

    # ------------------------------------------------------------------ queries
    def last_index(self) -> int:
        return self.entries[-1].index if self.entries else self.snap_index

    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snap_term

    def first_index(self) -> int:
        return self.snap_index + 1

    def term(self, index: int) -> int | None:
        """The term of the entry at ``index``; None if compacted away or beyond the end."""
        if index == self.snap_index:
            return self.snap_term
        if index < self.snap_index or index > self.last_index():
            return None
        return self.entries[index - self.snap_index - 1].term

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Raft §5.4.1: a candidate's log is at least as up to date as ours."""
        return last_term > self.last_term() or (
            last_term == self.last_term() and last_index >= self.last_index())

    def slice(self, lo: int, hi: int, max_bytes: int) -> list[Entry]:
        """Entries [lo, hi), at least one if any, at most about ``max_bytes`` of data."""
        out: list[Entry] = []
        size = 0
        start = lo - self.snap_index - 1
        for e in self.entries[start:hi - self.snap_index - 1]:
            size += len(e.data) + 32
            if out and size > max_bytes:
                break
            out.append(e)
        return out

    def unstable(self) -> list[Entry]:
        """Entries not yet reported durable."""
        return self.entries[self.stable - self.snap_index:]

    def next_committed(self) -> list[Entry]:
        """Entries committed but not yet applied (and durable here)."""
        hi = min(self.committed, self.stable)
        if hi <= self.applied:
            return []
        return self.entries[self.applied - self.snap_index:hi - self.snap_index]

    # ------------------------------------------------------------------ changes
    def append(self, entries: list[Entry]) -> None:
        """Append, overwriting from the first entry's index if it is within the log."""
        if not entries:
            return
        first = entries[0].index
        if first <= self.committed:
            raise LogConflictWithCommitted(
                f"entry {first} would overwrite committed entry (commit {self.committed})")
        if first > self.last_index() + 1:
            raise ValueError(f"gap: appending {first} after {self.last_index()}")
        del self.entries[first - self.snap_index - 1:]
        self.entries.extend(entries)
        self.stable = min(self.stable, first - 1)

    def find_conflict(self, entries: list[Entry]) -> int:
        """Index of the first entry that is new or differs in term; 0 if all are present."""
        for e in entries:
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def maybe_append(self, prev_index: int, prev_term: int, committed: int,
                     entries: list[Entry]) -> int | None:
        """A follower's AppendEntries (Raft §5.3). Returns the last new index, or None if
        the log does not contain ``prev_index`` with ``prev_term``.

        Entries already present with the same term are kept: the log is truncated only
        where a new entry conflicts with an existing one.
        """
        if not self.match_term(prev_index, prev_term):
            return None
        last_new = prev_index + len(entries)
        conflict = self.find_conflict(entries)
        if conflict:
            self.append(entries[conflict - prev_index - 1:])
        self.commit_to(min(committed, last_new))
        return last_new

    def commit_to(self, index: int) -> None:
        if index > self.committed:
            self.committed = min(index, self.last_index())

    def stable_to(self, index: int, term: int) -> None:
        """The caller made entries up to ``index`` (of ``term``) durable."""
        if self.term(index) == term and index > self.stable:
            self.stable = index

    def applied_to(self, index: int) -> None:
        if index > self.applied:
            self.applied = index

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the log with a snapshot from the leader (InstallSnapshot)."""
        self.snap_index = snapshot.meta.index
        self.snap_term = snapshot.meta.term
        self.entries = []
        self.committed = self.snap_index
        self.stable = self.snap_index
        self.applied = self.snap_index
        self.pending_snapshot = snapshot

    def compact(self, index: int) -> None:
        """Forget entries up to ``index`` (already applied and covered by a snapshot)."""
        if index <= self.snap_index:
            return
        if index > self.applied:
            raise ValueError(f"cannot compact to {index}: only {self.applied} is applied")
        term = self.term(index)
        assert term is not None
        del self.entries[:index - self.snap_index]
        self.snap_index, self.snap_term = index, term
