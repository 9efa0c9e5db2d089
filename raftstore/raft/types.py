"""The values that cross the Raft core's boundary: entries, messages, hard state, Ready.

The core (``core.py``) does no I/O. Its caller feeds it ticks, messages and proposals,
and takes from it a ``Ready``: what to persist, what to send, what to apply. Everything
here is plain data; the transport encodes messages with ``to_wire``/``from_wire``
(msgpack-friendly lists of ints and bytes: no pickles on the wire).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

NONE = 0  # "no node": vote, leader


class EntryKind(enum.IntEnum):
    """What an entry carries. CONFIG entries carry an encoded ``ClusterConfig``."""

    NORMAL = 0
    CONFIG = 1
    EMPTY = 2  # the no-op a new leader appends to commit entries of earlier terms


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry."""

    index: int
    term: int
    kind: EntryKind = EntryKind.NORMAL
    data: bytes = b""

    def to_wire(self) -> list[Any]:
        return [self.index, self.term, int(self.kind), self.data]

    @classmethod
    def from_wire(cls, w: list[Any]) -> Entry:
        index, term, kind, data = w
        return cls(index, term, _ENTRY_KINDS[kind], data)


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be durable before any message reflecting it is sent (Raft §5, Figure 2)."""

    term: int = 0
    vote: int = NONE
    commit: int = 0


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """The voting members: node id -> peer address ("IP:PORT")."""

    voters: tuple[tuple[int, str], ...] = ()

    @property
    def ids(self) -> frozenset[int]:
        return frozenset(i for i, _ in self.voters)

    def address(self, node: int) -> str | None:
        return dict(self.voters).get(node)

    def to_wire(self) -> list[Any]:
        return [[i, a] for i, a in self.voters]

    @classmethod
    def from_wire(cls, w: list[Any]) -> ClusterConfig:
        return cls(tuple(sorted((int(i), str(a)) for i, a in w)))


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """Where a snapshot ends in the log, and the configuration at that point."""

    index: int = 0
    term: int = 0
    config: ClusterConfig = field(default_factory=ClusterConfig)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A state machine snapshot: metadata plus the opaque state (application bytes)."""

    meta: SnapshotMeta
    data: bytes | bytearray  # a bytearray only as the member hands it to storage


class MsgType(enum.IntEnum):
    """Raft messages (names as in etcd-io/raft)."""

    PRE_VOTE = 1
    PRE_VOTE_RESP = 2
    VOTE = 3
    VOTE_RESP = 4
    APP = 5              # AppendEntries: index/log_term = previous entry, entries, commit
    APP_RESP = 6         # index = last matching index; reject + reject_hint on mismatch
    HEARTBEAT = 7        # commit, context = read-index round (0: none)
    HEARTBEAT_RESP = 8   # context echoed
    SNAP = 9             # InstallSnapshot: snapshot
    PROP = 10            # a follower forwards proposals to the leader: entries (index/term 0)
    READ_INDEX = 11      # a follower asks the leader for a read index: context = request id
    READ_INDEX_RESP = 12  # index = the read index for context; reject if not leader
    TIMEOUT_NOW = 13     # leadership transfer: campaign now


@dataclass(slots=True)
class Message:
    """One Raft message. Unused fields stay at their zero values."""

    type: MsgType
    to: int
    frm: int
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: list[Entry] = field(default_factory=list)
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0
    context: int = 0
    snapshot: Snapshot | None = None

    def to_wire(self) -> list[Any]:
        snap = None
        if self.snapshot is not None:
            m = self.snapshot.meta
            snap = [m.index, m.term, m.config.to_wire(), self.snapshot.data]
        return [int(self.type), self.to, self.frm, self.term, self.log_term, self.index,
                [e.to_wire() for e in self.entries], self.commit, self.reject,
                self.reject_hint, self.context, snap]

    @classmethod
    def from_wire(cls, w: list[Any]) -> Message:
        (typ, to, frm, term, log_term, index, entries, commit, reject, hint, context,
         snap) = w
        snapshot = None
        if snap is not None:
            si, st, sc, sd = snap
            snapshot = Snapshot(SnapshotMeta(int(si), int(st), ClusterConfig.from_wire(sc)),
                                bytes(sd))
        return cls(_MSG_TYPES[typ], to, frm, term, log_term, index,
                   [Entry.from_wire(e) for e in entries], commit, bool(reject),
                   hint, context, snapshot)


# Table lookups: constructing an enum from its value is slow on the hot path. A value
# out of range raises IndexError/KeyError, which the transport counts as malformed.
_ENTRY_KINDS = {int(k): k for k in EntryKind}
_MSG_TYPES = {int(t): t for t in MsgType}


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read may be served once the state machine has applied ``index``."""

    context: int
    index: int


@dataclass(slots=True)
class Ready:
    """What the caller must do, in this order: persist ``hard_state``/``snapshot``/
    ``entries`` durably, send ``messages``, apply ``snapshot`` then ``committed``,
    resolve ``read_states`` once applied, then call ``core.advance(ready)``."""

    hard_state: HardState | None = None
    entries: list[Entry] = field(default_factory=list)       # append; may overwrite a suffix
    snapshot: Snapshot | None = None
    messages: list[Message] = field(default_factory=list)
    committed: list[Entry] = field(default_factory=list)
    read_states: list[ReadState] = field(default_factory=list)
    soft_state_changed: bool = False

    def empty(self) -> bool:
        return not (self.hard_state or self.entries or self.snapshot or self.messages
                    or self.committed or self.read_states or self.soft_state_changed)
