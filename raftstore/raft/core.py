"""The Raft protocol core: no I/O, no clock, no threads (after etcd-io/raft).

Inputs: ``tick()`` (a heartbeat interval passed), ``step(message)``, ``propose(...)``,
``read_index(context)``. Output: ``ready()`` gathers what the caller must do, in order:

1. persist ``hard_state``, ``snapshot`` and ``entries`` durably,
2. send ``messages``,
3. apply ``snapshot`` then ``committed`` entries, resolve ``read_states``,
4. call ``advance(ready)``.

Protocol choices, as in etcd: pre-vote (a rejoining member cannot disrupt a healthy
leader), check-quorum (a leader that cannot hear a quorum steps down, and followers that
hear a leader ignore votes), pipelined replication with per-follower progress
(probe/replicate/snapshot), ReadIndex for linearizable reads without log writes, one
pending membership change at a time, applied when committed.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import msgpack

from raftstore.raft.log import RaftLog
from raftstore.raft.types import (
    NONE,
    ClusterConfig,
    Entry,
    EntryKind,
    HardState,
    Message,
    MsgType,
    ReadState,
    Ready,
    Snapshot,
)


class Role(enum.IntEnum):
    FOLLOWER = 0
    PRE_CANDIDATE = 1
    CANDIDATE = 2
    LEADER = 3


class ProgressState(enum.IntEnum):
    PROBE = 0       # one message at a time until we find where the follower's log matches
    REPLICATE = 1   # pipelined: send optimistically, up to max_inflight messages
    SNAPSHOT = 2    # a snapshot is on its way; wait


@dataclass(slots=True)
class Progress:
    """The leader's view of one follower."""

    match: int = 0
    next: int = 1
    state: ProgressState = ProgressState.PROBE
    paused: bool = False
    pending_snapshot: int = 0
    snapshot_elapsed: int = 0  # ticks since the snapshot was sent
    recent_active: bool = False
    inflight: list[int] = field(default_factory=list)  # last index of each message in flight
    read_ack: int = 0  # highest read round acknowledged

    def maybe_update(self, index: int) -> bool:
        """A success response for ``index``. Never moves ``next`` backwards."""
        updated = index > self.match
        if updated:
            self.match = index
            self.paused = False
        self.next = max(self.next, index + 1)
        return updated

    def maybe_decr(self, rejected: int, hint: int) -> bool:
        """A rejection of the entry at ``rejected``; False if the response is stale."""
        if self.state == ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, hint + 1), 1)
        self.paused = False
        return True

    def become_probe(self) -> None:
        if self.state == ProgressState.SNAPSHOT:
            self.next = max(self.match + 1, self.pending_snapshot + 1)
        else:
            self.next = self.match + 1
        self.state = ProgressState.PROBE
        self.pending_snapshot = 0
        self.inflight.clear()
        self.paused = False

    def become_replicate(self) -> None:
        self.state = ProgressState.REPLICATE
        self.next = self.match + 1
        self.inflight.clear()
        self.paused = False

    def become_snapshot(self, index: int) -> None:
        self.state = ProgressState.SNAPSHOT
        self.pending_snapshot = index
        self.snapshot_elapsed = 0
        self.inflight.clear()

    def is_paused(self, max_inflight: int) -> bool:
        if self.state == ProgressState.PROBE:
            return self.paused
        if self.state == ProgressState.REPLICATE:
            return len(self.inflight) >= max_inflight
        return True

    def free_to(self, index: int) -> None:
        i = 0
        while i < len(self.inflight) and self.inflight[i] <= index:
            i += 1
        if i:
            del self.inflight[:i]


@dataclass(slots=True)
class _PendingRead:
    round: int
    context: int
    requester: int
    index: int


def encode_config(config: ClusterConfig) -> bytes:
    packed: bytes = msgpack.packb(config.to_wire(), use_bin_type=True)
    return packed


def decode_config(data: bytes) -> ClusterConfig:
    return ClusterConfig.from_wire(msgpack.unpackb(data, raw=False))


class RaftCore:
    """One member's Raft state machine. Not thread-safe: one caller drives it."""

    def __init__(
        self,
        node_id: int,
        config: ClusterConfig,
        hard_state: HardState,
        snapshot: Snapshot | None,
        entries: list[Entry],
        *,
        election_ticks: int = 10,
        heartbeat_ticks: int = 1,
        rng: random.Random | None = None,
        max_inflight: int = 256,
        max_msg_bytes: int = 1 << 20,
        pre_vote: bool = True,
        check_quorum: bool = True,
        snapshot_source: Callable[[], Snapshot | None] | None = None,
    ) -> None:
        if election_ticks <= heartbeat_ticks:
            raise ValueError("election_ticks must be greater than heartbeat_ticks")
        self.id = node_id
        self.log = RaftLog(snapshot, entries, hard_state.commit)
        self.term = hard_state.term
        self.vote = hard_state.vote
        self.config = snapshot.meta.config if snapshot and snapshot.meta.config.voters else config
        for e in self.log.entries:  # the newest config in the log (applied on commit)
            if e.kind == EntryKind.CONFIG and e.index <= self.log.committed:
                self.config = decode_config(e.data)
        self.election_ticks = election_ticks
        self.heartbeat_ticks = heartbeat_ticks
        self.rng = rng or random.Random()
        self.max_inflight = max_inflight
        self.max_msg_bytes = max_msg_bytes
        self.pre_vote = pre_vote
        self.check_quorum = check_quorum
        self.snapshot_source = snapshot_source or (lambda: None)
        self.role = Role.FOLLOWER
        self.leader = NONE
        self.prs: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_timeout = self._random_timeout()
        self.pending_conf_index = 0
        self._prev_hs = self.hard_state()
        self._soft_changed = False
        self._prev_soft = (self.leader, self.role)
        self._commit_dirty = False
        self._sent_app: set[int] = set()
        self._read_round = 0
        self._reads_waiting: list[_PendingRead] = []   # not yet in a round
        self._reads_pending: list[_PendingRead] = []   # in a round, awaiting quorum
        self._reads_before_commit: list[tuple[int, int]] = []  # (context, requester)

    # ------------------------------------------------------------------ helpers
    def hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.log.committed)

    def quorum(self) -> int:
        return len(self.config.ids) // 2 + 1

    def promotable(self) -> bool:
        return self.id in self.config.ids

    def _random_timeout(self) -> int:
        return self.election_ticks + self.rng.randrange(self.election_ticks)

    def _send(self, m: Message) -> None:
        if m.type not in (MsgType.PROP, MsgType.READ_INDEX, MsgType.PRE_VOTE,
                          MsgType.PRE_VOTE_RESP):
            m.term = self.term
        self.msgs.append(m)

    def _reset(self, term: int) -> None:
        if term != self.term:
            self.term = term
            self.vote = NONE
        self.leader = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_timeout = self._random_timeout()
        self.votes = {}
        self.prs = {}
        self._fail_reads()
        self._soft_changed = True

    def _fail_reads(self) -> None:
        for r in (*self._reads_waiting, *self._reads_pending):
            self._answer_read(r.requester, r.context, -1)
        for ctx, requester in self._reads_before_commit:
            self._answer_read(requester, ctx, -1)
        self._reads_waiting, self._reads_pending, self._reads_before_commit = [], [], []

    # ------------------------------------------------------------------ role changes
    def become_follower(self, term: int, leader: int) -> None:
        self._reset(term)
        self.role = Role.FOLLOWER
        self.leader = leader

    def _become_pre_candidate(self) -> None:
        self.role = Role.PRE_CANDIDATE
        self.votes = {}
        self.leader = NONE
        self._soft_changed = True

    def _become_candidate(self) -> None:
        self._reset(self.term + 1)
        self.role = Role.CANDIDATE
        self.vote = self.id

    def _become_leader(self) -> None:
        self._reset(self.term)
        self.role = Role.LEADER
        self.leader = self.id
        last = self.log.last_index()
        for node in self.config.ids:
            self.prs[node] = Progress(match=0, next=last + 1, recent_active=True)
        self.prs[self.id].match = self.log.stable
        self.pending_conf_index = last  # a config entry may be uncommitted: be conservative
        self._append([Entry(0, 0, EntryKind.EMPTY)])
        self._bcast_append()

    def campaign(self, force: bool = False) -> None:
        """Start an election (a pre-vote first, unless ``force``)."""
        if not self.promotable():
            return
        pre = self.pre_vote and not force
        if pre:
            self._become_pre_candidate()
            term = self.term + 1
            vtype = MsgType.PRE_VOTE
        else:
            self._become_candidate()
            term = self.term
            vtype = MsgType.VOTE
        self.votes[self.id] = True
        if self._tally() >= self.quorum():
            if pre:
                self.campaign(force=True)
            else:
                self._become_leader()
            return
        for node in self.config.ids:
            if node != self.id:
                self._send(Message(vtype, node, self.id, term=term,
                                   index=self.log.last_index(), log_term=self.log.last_term(),
                                   context=1 if force else 0))

    def _tally(self) -> int:
        return sum(1 for v in self.votes.values() if v)

    # ------------------------------------------------------------------ inputs
    def tick(self) -> None:
        """One heartbeat interval has passed."""
        self.election_elapsed += 1
        if self.role == Role.LEADER:
            self.heartbeat_elapsed += 1
            self._retry_snapshots()
            if self.election_elapsed >= self.election_ticks:
                self.election_elapsed = 0
                if self.check_quorum and not self._quorum_active():
                    self.become_follower(self.term, NONE)
                    return
            if self.heartbeat_elapsed >= self.heartbeat_ticks:
                self.heartbeat_elapsed = 0
                # a pending read round rides on every heartbeat until a quorum acks it
                self._bcast_heartbeat(context=self._read_round if self._reads_pending else 0)
        elif self.promotable() and self.election_elapsed >= self.randomized_timeout:
            self.election_elapsed = 0
            self.campaign()

    def _retry_snapshots(self) -> None:
        """A snapshot, or the follower's reply to it, may be lost: after an election
        timeout without a reply, probe the follower again (which resends if needed)."""
        for pr in self.prs.values():
            if pr.state == ProgressState.SNAPSHOT:
                pr.snapshot_elapsed += 1
                if pr.snapshot_elapsed >= self.election_ticks:
                    pr.become_probe()

    def _quorum_active(self) -> bool:
        active = 0
        for node, pr in self.prs.items():
            if node == self.id or pr.recent_active:
                active += 1
            pr.recent_active = False
        return active >= self.quorum()

    def propose(self, datas: list[bytes], kind: EntryKind = EntryKind.NORMAL) -> bool:
        """Propose entries. False if there is no leader to take them (they are dropped)."""
        entries = [Entry(0, 0, kind, d) for d in datas]
        if self.role == Role.LEADER:
            return self._leader_propose(entries)
        if self.role == Role.FOLLOWER and self.leader != NONE:
            self._send(Message(MsgType.PROP, self.leader, self.id, entries=entries))
            return True
        return False

    def propose_config(self, config: ClusterConfig) -> bool:
        """Propose a new voter set (one member added or removed at a time)."""
        return self.propose([encode_config(config)], EntryKind.CONFIG)

    def read_index(self, context: int) -> None:
        """Ask for a linearizable read point. A ``ReadState(context, index)`` comes out
        in a later Ready: index -1 means no leader could confirm it (retry)."""
        if self.role == Role.LEADER:
            self._leader_read(context, self.id)
        elif self.role == Role.FOLLOWER and self.leader != NONE:
            self._send(Message(MsgType.READ_INDEX, self.leader, self.id, context=context))
        else:
            self.read_states.append(ReadState(context, -1))

    def step(self, m: Message) -> None:
        """Handle a message from a peer."""
        if m.term == 0 and m.type in (MsgType.PROP, MsgType.READ_INDEX):
            pass
        elif m.term > self.term:
            if m.type in (MsgType.VOTE, MsgType.PRE_VOTE):
                in_lease = (self.check_quorum and self.leader != NONE
                            and self.election_elapsed < self.election_ticks)
                if in_lease and not m.context:
                    return  # we hear a leader: ignore disruptive candidates
            if m.type == MsgType.PRE_VOTE or (m.type == MsgType.PRE_VOTE_RESP and not m.reject):
                pass  # pre-votes never change our term
            elif m.type in (MsgType.APP, MsgType.HEARTBEAT, MsgType.SNAP):
                self.become_follower(m.term, m.frm)
            else:
                self.become_follower(m.term, NONE)
        elif m.term < self.term:
            if m.type in (MsgType.APP, MsgType.HEARTBEAT):
                # a stale leader: tell it our term so that it steps down
                self._send(Message(MsgType.APP_RESP, m.frm, self.id))
            elif m.type == MsgType.PRE_VOTE:
                self._send(Message(MsgType.PRE_VOTE_RESP, m.frm, self.id, term=self.term,
                                   reject=True))
            return

        if m.type in (MsgType.VOTE, MsgType.PRE_VOTE):
            self._handle_vote(m)
        elif self.role == Role.LEADER:
            self._step_leader(m)
        elif self.role == Role.FOLLOWER:
            self._step_follower(m)
        else:
            self._step_candidate(m)

    def _handle_vote(self, m: Message) -> None:
        pre = m.type == MsgType.PRE_VOTE
        resp = MsgType.PRE_VOTE_RESP if pre else MsgType.VOTE_RESP
        can_vote = (self.vote == m.frm or (self.vote == NONE and self.leader == NONE)
                    or (pre and m.term > self.term))
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            out = Message(resp, m.frm, self.id, term=m.term if pre else self.term)
            if not pre:
                self.election_elapsed = 0
                self.vote = m.frm
            self._send(out)
        else:
            self._send(Message(resp, m.frm, self.id, term=self.term, reject=True))

    # ------------------------------------------------------------------ leader
    def _leader_propose(self, entries: list[Entry]) -> bool:
        for k, e in enumerate(entries):
            if e.kind == EntryKind.CONFIG:
                if self.pending_conf_index > self.log.committed:
                    entries[k] = Entry(0, 0, EntryKind.EMPTY)  # one change at a time
                else:
                    self.pending_conf_index = self.log.last_index() + k + 1
        self._append(entries)
        self._bcast_append()
        return True

    def _append(self, entries: list[Entry]) -> None:
        last = self.log.last_index()
        stamped = [Entry(last + 1 + k, self.term, e.kind, e.data) for k, e in enumerate(entries)]
        self.log.append(stamped)
        # the leader's own copy counts toward commitment once it is durable (advance),
        # so that its disk write may run in parallel with replication (thesis §10.2.1)
        self.prs[self.id].next = self.log.last_index() + 1

    def _step_leader(self, m: Message) -> None:
        t = m.type
        if t == MsgType.PROP:
            if self.id in self.config.ids:
                self._leader_propose(list(m.entries))
            return
        if t == MsgType.READ_INDEX:
            self._leader_read(m.context, m.frm)
            return
        pr = self.prs.get(m.frm)
        if pr is None:
            return
        if t == MsgType.APP_RESP:
            pr.recent_active = True
            if m.reject:
                if pr.maybe_decr(m.index, m.reject_hint):
                    if pr.state == ProgressState.REPLICATE:
                        pr.become_probe()
                    self._send_append(m.frm)
                return
            old_paused = pr.is_paused(self.max_inflight)
            if pr.maybe_update(m.index):
                if pr.state == ProgressState.PROBE:
                    pr.become_replicate()
                elif (pr.state == ProgressState.SNAPSHOT
                      and pr.match >= pr.pending_snapshot):
                    pr.become_probe()
                    pr.become_replicate()
                else:
                    pr.free_to(m.index)
                if self._maybe_commit():
                    self._commit_dirty = True
                if old_paused or pr.next <= self.log.last_index():
                    self._send_append(m.frm)
        elif t == MsgType.HEARTBEAT_RESP:
            pr.recent_active = True
            pr.paused = False
            if pr.state == ProgressState.REPLICATE and pr.is_paused(self.max_inflight):
                del pr.inflight[0]  # everything in flight may have been lost
            if pr.match < self.log.last_index():
                # even if nothing is left to send: an empty append at pr.next - 1 makes a
                # follower that lost messages reject it, and we fall back to probing
                self._send_append(m.frm, send_if_empty=True)
            if m.context > pr.read_ack:
                pr.read_ack = m.context
                self._release_reads()

    def _maybe_commit(self) -> bool:
        matches = sorted((self.prs[n].match for n in self.config.ids if n in self.prs),
                         reverse=True)
        if len(matches) < self.quorum():
            return False
        index = matches[self.quorum() - 1]
        if index > self.log.committed and self.log.term(index) == self.term:
            self.log.commit_to(index)
            if self._reads_before_commit:
                waiting, self._reads_before_commit = self._reads_before_commit, []
                for ctx, requester in waiting:
                    self._leader_read(ctx, requester)
            return True
        return False

    def _send_append(self, to: int, send_if_empty: bool = False) -> None:
        pr = self.prs[to]
        if pr.is_paused(self.max_inflight):
            return
        prev = pr.next - 1
        prev_term = self.log.term(prev)
        if prev_term is None:
            self._send_snapshot(to, pr)
            return
        entries = self.log.slice(pr.next, self.log.last_index() + 1, self.max_msg_bytes)
        if not entries and not send_if_empty:
            return
        self._send(Message(MsgType.APP, to, self.id, index=prev, log_term=prev_term,
                           entries=entries, commit=self.log.committed))
        self._sent_app.add(to)
        if entries:
            last = entries[-1].index
            if pr.state == ProgressState.REPLICATE:
                pr.next = last + 1
                pr.inflight.append(last)
            elif pr.state == ProgressState.PROBE:
                pr.paused = True

    def _send_snapshot(self, to: int, pr: Progress) -> None:
        if not pr.recent_active:
            return
        snap = self.snapshot_source()
        if snap is None:
            return
        self._send(Message(MsgType.SNAP, to, self.id, snapshot=snap))
        pr.become_snapshot(snap.meta.index)

    def _bcast_append(self) -> None:
        for node in self.prs:
            if node != self.id:
                self._send_append(node)

    def _bcast_heartbeat(self, context: int = 0) -> None:
        for node, pr in self.prs.items():
            if node != self.id:
                self._send(Message(MsgType.HEARTBEAT, node, self.id,
                                   commit=min(pr.match, self.log.committed), context=context))

    # -- ReadIndex (Raft thesis §6.4)
    def _leader_read(self, context: int, requester: int) -> None:
        if self.log.term(self.log.committed) != self.term:
            # nothing committed in this term yet: our commit index may be stale
            self._reads_before_commit.append((context, requester))
            return
        read = _PendingRead(0, context, requester, self.log.committed)
        if self.quorum() == 1:
            self._answer_read(requester, context, read.index)
            return
        self._reads_waiting.append(read)
        if not self._reads_pending:
            self._start_read_round()

    def _start_read_round(self) -> None:
        self._read_round += 1
        for r in self._reads_waiting:
            r.round = self._read_round
        self._reads_pending, self._reads_waiting = self._reads_waiting, []
        self.prs[self.id].read_ack = self._read_round
        self._bcast_heartbeat(context=self._read_round)

    def _release_reads(self) -> None:
        acks = sorted((self.prs[n].read_ack for n in self.config.ids if n in self.prs),
                      reverse=True)
        if len(acks) < self.quorum():
            return
        confirmed = acks[self.quorum() - 1]
        if not self._reads_pending or self._reads_pending[0].round > confirmed:
            return
        done = [r for r in self._reads_pending if r.round <= confirmed]
        self._reads_pending = [r for r in self._reads_pending if r.round > confirmed]
        for r in done:
            self._answer_read(r.requester, r.context, r.index)
        if not self._reads_pending and self._reads_waiting:
            self._start_read_round()

    def _answer_read(self, requester: int, context: int, index: int) -> None:
        if requester == self.id:
            self.read_states.append(ReadState(context, index))
        else:
            self._send(Message(MsgType.READ_INDEX_RESP, requester, self.id, context=context,
                               index=max(index, 0), reject=index < 0))

    # ------------------------------------------------------------------ follower
    def _step_follower(self, m: Message) -> None:
        t = m.type
        if t == MsgType.PROP:
            if self.leader != NONE:
                m.to = self.leader
                self.msgs.append(m)
        elif t == MsgType.APP:
            self.election_elapsed = 0
            self.leader = m.frm
            self._handle_append(m)
        elif t == MsgType.HEARTBEAT:
            self.election_elapsed = 0
            self.leader = m.frm
            self.log.commit_to(m.commit)
            self._send(Message(MsgType.HEARTBEAT_RESP, m.frm, self.id, context=m.context))
        elif t == MsgType.SNAP:
            self.election_elapsed = 0
            self.leader = m.frm
            self._handle_snapshot(m)
        elif t == MsgType.READ_INDEX:
            if self.leader != NONE:
                m.to = self.leader
                self.msgs.append(m)
            else:
                self._answer_read(m.frm, m.context, -1)
        elif t == MsgType.READ_INDEX_RESP:
            self.read_states.append(ReadState(m.context, -1 if m.reject else m.index))
        elif t == MsgType.TIMEOUT_NOW:
            self.campaign(force=True)

    def _handle_append(self, m: Message) -> None:
        if m.index < self.log.committed:
            self._send(Message(MsgType.APP_RESP, m.frm, self.id, index=self.log.committed))
            return
        last_new = self.log.maybe_append(m.index, m.log_term, m.commit, list(m.entries))
        if last_new is not None:
            self._send(Message(MsgType.APP_RESP, m.frm, self.id, index=last_new))
        else:
            self._send(Message(MsgType.APP_RESP, m.frm, self.id, index=m.index, reject=True,
                               reject_hint=self.log.last_index()))

    def _handle_snapshot(self, m: Message) -> None:
        assert m.snapshot is not None
        meta = m.snapshot.meta
        if meta.index <= self.log.committed:
            pass
        elif self.log.match_term(meta.index, meta.term):
            self.log.commit_to(meta.index)  # we have it all: just fast-forward
        else:
            self.log.restore(m.snapshot)
            if meta.config.voters:
                self.config = meta.config
        # claim only what is known to match the leader: entries after the snapshot's
        # index (kept by the fast-forward above) may be from a deposed leader
        self._send(Message(MsgType.APP_RESP, m.frm, self.id, index=self.log.committed))

    # ------------------------------------------------------------------ candidate
    def _step_candidate(self, m: Message) -> None:
        t = m.type
        want = MsgType.PRE_VOTE_RESP if self.role == Role.PRE_CANDIDATE else MsgType.VOTE_RESP
        if t in (MsgType.APP, MsgType.HEARTBEAT, MsgType.SNAP):
            self.become_follower(m.term, m.frm)
            self._step_follower(m)
        elif t == want:
            self.votes[m.frm] = not m.reject
            granted = self._tally()
            rejected = len(self.votes) - granted
            if granted >= self.quorum():
                if self.role == Role.PRE_CANDIDATE:
                    self.campaign(force=True)
                else:
                    self._become_leader()
            elif rejected >= self.quorum():
                self.become_follower(self.term, NONE)
        elif t == MsgType.READ_INDEX:
            self._answer_read(m.frm, m.context, -1)
        elif t == MsgType.TIMEOUT_NOW:
            pass

    # ------------------------------------------------------------------ Ready
    def has_ready(self) -> bool:
        return bool(
            self.msgs or self.read_states or self._commit_dirty or self._soft_changed
            or (self.leader, self.role) != self._prev_soft
            or self.log.pending_snapshot is not None or self.log.unstable()
            or self.hard_state() != self._prev_hs or self.log.next_committed())

    def ready(self) -> Ready:
        """What to persist, send and apply now (see the module docstring for the order)."""
        if self._commit_dirty and self.role == Role.LEADER:
            # tell followers that got nothing this round about the new commit index
            # (a follower with messages in flight learns it from the next one)
            for node, pr in self.prs.items():
                if node != self.id and node not in self._sent_app and not pr.inflight:
                    self._send_append(node, send_if_empty=True)
        self._commit_dirty = False
        self._sent_app.clear()
        hs = self.hard_state()
        rd = Ready(
            hard_state=hs if hs != self._prev_hs else None,
            entries=list(self.log.unstable()),
            snapshot=self.log.pending_snapshot,
            messages=self.msgs,
            committed=list(self.log.next_committed()),
            read_states=self.read_states,
            soft_state_changed=self._soft_changed or (self.leader, self.role) != self._prev_soft,
        )
        self._prev_soft = (self.leader, self.role)
        self.msgs = []
        self.read_states = []
        self._soft_changed = False
        return rd

    def advance(self, rd: Ready) -> None:
        """The caller did everything ``rd`` asked."""
        if rd.hard_state is not None:
            self._prev_hs = rd.hard_state
        if rd.snapshot is not None and self.log.pending_snapshot is rd.snapshot:
            self.log.pending_snapshot = None
        if rd.entries:
            last = rd.entries[-1]
            self.log.stable_to(last.index, last.term)
            if self.role == Role.LEADER and self.id in self.prs:
                self.prs[self.id].match = max(self.prs[self.id].match, self.log.stable)
                if self._maybe_commit():
                    self._commit_dirty = True
        for e in rd.committed:
            if e.kind == EntryKind.CONFIG:
                self._apply_config(decode_config(e.data))
        if rd.committed:
            self.log.applied_to(rd.committed[-1].index)

    def _apply_config(self, config: ClusterConfig) -> None:
        self.config = config
        if self.role != Role.LEADER:
            return
        last = self.log.last_index()
        for node in config.ids:
            if node not in self.prs:
                self.prs[node] = Progress(match=0, next=last + 1, recent_active=True)
        for node in list(self.prs):
            if node not in config.ids and node != self.id:
                del self.prs[node]
        if self.id not in config.ids:
            self.become_follower(self.term, NONE)  # removed: stop leading
            return
        if self._maybe_commit():
            self._commit_dirty = True

    def compact(self, index: int) -> None:
        """The state machine snapshotted at ``index``: drop the log up to it."""
        self.log.compact(index)
