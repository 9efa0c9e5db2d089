"""The Raft core (raftstore/raft/core.py) against the Raft paper, on the in-memory ``Sim``.

Each scenario test quotes the sentence it checks, from Ongaro & Ousterhout, "In Search
of an Understandable Consensus Algorithm (Extended Version)" (2014) -- "(§n)" -- or, for
pre-vote, check-quorum, ReadIndex and single-server membership changes, Ongaro's
dissertation "Consensus: Bridging Theory and Practice" (2014) -- "(thesis §n)".

Besides each test's own assertions, ``raft_sim.SafetyChecker`` checks Figure 3 (Election
Safety, Leader Append-Only, Log Matching, Leader Completeness, State Machine Safety) after
every step of every test (raft_safety.py). test_raft_randomized.py drives many seeded
schedules of loss, duplication, reordering, partitions, crashes, snapshots and
membership changes through the same checks.
"""

from __future__ import annotations

import random

import pytest

from raftstore.raft.core import RaftCore, Role
from raftstore.raft.log import RaftLog
from raftstore.raft.types import (
    NONE,
    ClusterConfig,
    Entry,
    EntryKind,
    HardState,
    Message,
    MsgType,
    Snapshot,
    SnapshotMeta,
)
from tests.unit.raft_sim import DurableStore, Sim, config_of

ELECTION = 10  # the Sim's default election_ticks


def entry(index: int, term: int) -> Entry:
    return Entry(index, term, EntryKind.NORMAL, b"%d/%d" % (index, term))


def log_of(terms: list[int]) -> list[Entry]:
    """A log whose entry i has term terms[i-1]: the paper's figures, written as terms."""
    return [entry(i, t) for i, t in enumerate(terms, 1)]


def elect(sim: Sim, node: int) -> int:
    """Make ``node`` campaign now, and deliver until the network is quiet."""
    sim.core(node).campaign(force=True)
    sim.process(node)
    sim.deliver_all()
    assert sim.core(node).role == Role.LEADER, sim.report()
    return node


def followers(sim: Sim, leader: int) -> list[int]:
    return [i for i in sim.nodes if i != leader]


# ====================================================================== elections
@pytest.mark.parametrize("seed", range(10))
def test_at_most_one_leader_per_term(seed: int) -> None:
    """"Election Safety: at most one leader can be elected in a given term." (Figure 3)

    A lossy network, short timeouts and no pre-vote make terms contested; the checker
    records the leader of every term and fails on a second one.
    """
    sim = Sim(5, seed, drop=0.3, pre_vote=False, election_ticks=3)
    sim.run(3000)
    assert len(sim.checker.leaders) >= 3, sim.report()


def test_candidate_needs_votes_from_a_majority() -> None:
    """"A candidate wins an election if it receives votes from a majority of the servers
    in the full cluster for the same term." (§5.2)"""
    sim = Sim(5, seed=2, pre_vote=False)
    sim.partition([1, 2], [3, 4, 5])
    sim.run_ticks(20 * ELECTION)
    assert set(sim.checker.leaders.values()) <= {3, 4, 5}
    assert sim.ready_leader([3, 4, 5]) is not None
    assert sim.core(1).term > 1 and sim.core(2).term > 1  # the minority did campaign


@pytest.mark.parametrize("seed", range(10))
def test_randomized_timeouts_resolve_split_votes(seed: int) -> None:
    """"Raft uses randomized election timeouts to ensure that split votes are rare and
    that they are resolved quickly." (§5.2)"""
    sim = Sim(4, seed, pre_vote=False)
    for i in sim.nodes:  # everyone times out at once and votes for itself
        sim.core(i).campaign(force=True)
        sim.process(i)
    sim.deliver_all()
    assert sim.leaders() == [] and {c.core.term for c in sim.nodes.values()} == {1}
    start = sim.ticks
    sim.wait_leader()
    assert sim.ticks - start <= 3 * ELECTION


@pytest.mark.parametrize(("last_term", "last_index", "up_to_date"), [
    (3, 5, True),    # same last term, same length
    (3, 6, True),    # same last term, longer
    (3, 4, False),   # same last term, shorter
    (4, 1, True),    # later last term wins whatever the length
    (2, 9, False),   # earlier last term loses whatever the length
])
def test_up_to_date_comparison(last_term: int, last_index: int, up_to_date: bool) -> None:
    """"If the logs have last entries with different terms, then the log with the later
    term is more up-to-date. If the logs end with the same term, then whichever log is
    longer is more up-to-date." (§5.4.1)"""
    log = RaftLog(None, log_of([1, 1, 2, 3, 3]), 0)
    assert log.is_up_to_date(last_index, last_term) is up_to_date


def test_voter_denies_a_less_up_to_date_candidate() -> None:
    """"The RequestVote RPC implements this restriction: the RPC includes information about
    the candidate's log, and the voter denies its vote if its own log is more up-to-date
    than that of the candidate." (§5.4.1)"""
    sim = Sim(3, seed=3)
    lead = sim.wait_leader()
    ahead, behind = followers(sim, lead)
    sim.isolate(behind)
    for _ in range(3):
        sim.propose(lead)
    sim.run_until(lambda: sim.nodes[ahead].applied_index() == sim.core(lead).log.last_index())
    sim.heal()
    sim.isolate(lead)
    term = sim.core(lead).term
    sim.core(behind).campaign(force=True)  # skip pre-vote: ask for real votes
    sim.process(behind)
    sim.deliver_all()
    assert sim.core(behind).role == Role.CANDIDATE
    assert sim.wait_leader(among=[ahead, behind]) == ahead
    assert all(who == ahead for t, who in sim.checker.leaders.items() if t > term)


# ====================================================================== replication
@pytest.mark.parametrize("seed", range(5))
def test_followers_logs_converge_despite_loss(seed: int) -> None:
    """"If followers crash or run slowly, or if network packets are lost, the leader
    retries AppendEntries RPCs indefinitely (even after it has responded to the client)
    until all followers eventually store all log entries." (§5.3)"""
    sim = Sim(5, seed, drop=0.2, max_inflight=4, max_msg_bytes=1)
    for _ in range(30):
        lead = sim.leader()
        if lead is not None:
            sim.propose(lead)
        sim.run(5)
    sim.run_until(lambda: sim.all_applied() and len(
        {tuple(sim.durable_log(i)) for i in sim.nodes}) == 1, 50_000, "convergence")


@pytest.mark.parametrize("max_inflight", [1, 256])
def test_lost_append_is_retried_without_new_proposals(max_inflight: int) -> None:
    """"the leader retries AppendEntries RPCs indefinitely (even after it has responded
    to the client) until all followers eventually store all log entries." (§5.3)

    The follower is in pipelined (replicate) mode when its only AppendEntries is lost,
    and nothing else is proposed afterwards.
    """
    sim = Sim(3, seed=4, max_inflight=max_inflight)
    lead = sim.wait_leader()
    sim.run_until(sim.all_applied)
    f = followers(sim, lead)[0]
    sim.net.drop_next(lambda m: m.type == MsgType.APP and m.to == f and bool(m.entries))
    sim.propose(lead)
    sim.run_until(sim.all_applied, 20 * ELECTION * 10, "the follower catching up")


FIGURE7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
FIGURE7 = {  # follower log, follower term
    "a": ([1, 1, 1, 4, 4, 5, 5, 6, 6], 6),
    "b": ([1, 1, 1, 4], 4),
    "c": ([1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6], 6),
    "d": ([1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7], 7),
    "e": ([1, 1, 1, 4, 4, 4, 4], 4),
    "f": ([1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], 3),
}


@pytest.mark.parametrize("case", sorted(FIGURE7))
def test_figure7_followers_logs_are_made_to_duplicate_the_leaders(case: str) -> None:
    """"When the leader at the top comes to power, it is possible that any of scenarios
    (a-f) could occur in follower logs." ... "the leader handles inconsistencies by
    forcing the followers' logs to duplicate its own." (§5.3, Figure 7)

    And "Leader Append-Only: a leader never overwrites or deletes entries in its log; it
    only appends new entries." (Figure 3): the leader's ten entries stay as they were.
    """
    terms, term = FIGURE7[case]
    sim = Sim(0, seed=7, election_ticks=1000)
    cfg = config_of([1, 2, 3])
    sim.add_node(1, cfg, DurableStore(HardState(term=7), None, log_of(FIGURE7_LEADER)))
    sim.add_node(2, cfg, DurableStore(HardState(term=term), None, log_of(terms)))
    sim.add_node(3, cfg, DurableStore(HardState(term=7), None, log_of(FIGURE7_LEADER)))
    before = sim.durable_log(1)
    elect(sim, 1)
    assert sim.core(1).term == 8
    sim.run_until(lambda: sim.all_applied() and sim.durable_log(2) == sim.durable_log(1))
    assert sim.durable_log(1) == [*before, (11, 8)]


def test_figure8_only_current_term_entries_are_committed_by_counting_replicas() -> None:
    """"Raft never commits log entries from previous terms by counting replicas. Only log
    entries from the leader's current term are committed by counting replicas" (§5.4.2)

    Figure 8: (b) S5 led term 3 and wrote index 2; (c) S1 leads term 4 and copies its
    term-2 entry at index 2 to S3, so a majority (S1, S2, S3) stores it -- yet it must not
    be committed; (d) S1 crashes, S5 is elected and overwrites index 2 everywhere.
    """
    cfg = config_of(range(1, 6))
    sim = Sim(0, seed=8, election_ticks=1000, max_msg_bytes=1)  # one entry per message
    one, two_t2, two_t3 = entry(1, 1), entry(2, 2), entry(2, 3)
    sim.add_node(1, cfg, DurableStore(HardState(3, NONE, 1), None, [one, two_t2]))
    sim.add_node(2, cfg, DurableStore(HardState(2, 1, 1), None, [one, two_t2]))
    sim.add_node(3, cfg, DurableStore(HardState(3, 5, 1), None, [one]))
    sim.add_node(4, cfg, DurableStore(HardState(3, 5, 1), None, [one]))
    sim.add_node(5, cfg, DurableStore(HardState(3, 5, 1), None, [one, two_t3]))
    # (c): S5 is down, S4 does not hear S1, S3 gets index 2 but not S1's term-4 entry
    sim.isolate(5)
    sim.cut(1, 4)
    sim.net.filters.append(lambda m: m.type == MsgType.APP and m.to == 3
                           and any(e.term == 4 for e in m.entries)
                           and sim.core(3).log.last_index() >= 2)
    elect(sim, 1)
    assert sim.core(1).term == 4
    holders = [i for i in sim.nodes if (2, 2) in sim.durable_log(i)]
    assert holders == [1, 2, 3]  # a majority of five
    assert sim.core(1).log.committed == 1
    # (d): S1 crashes; S5 (last term 3) wins with S3 and S4 and overwrites index 2
    sim.heal()
    sim.isolate(1)
    sim.crash(1)
    for _ in range(3):
        if sim.core(5).role == Role.LEADER:
            break
        sim.core(5).campaign(force=True)
        sim.process(5)
        sim.deliver_all()
    assert sim.core(5).role == Role.LEADER
    sim.run_until(lambda: sim.all_applied([2, 3, 4, 5]))
    for i in (2, 3, 4, 5):
        assert sim.durable_log(i)[:2] == [(1, 1), (2, 3)]
        assert sim.nodes[i].applied[1][0] == 3  # nobody ever applied (2, term 2)


def test_retransmitted_append_never_truncates_acknowledged_entries() -> None:
    """"If an existing entry conflicts with a new one (same index but different terms),
    delete the existing entry and all that follow it" (Figure 2, AppendEntries receiver
    implementation, step 3) -- only on a conflict.

    Regression for a pysyncobj bug: a late duplicate of an earlier AppendEntries made a
    follower drop entries it had already acknowledged -- and that the leader had already
    committed by counting that acknowledgement.
    """
    sim = Sim(3, seed=9, election_ticks=1000)
    elect(sim, 1)
    term = sim.core(1).term
    sim.cut(1, 3)  # the quorum is now {1, 2}: every commit counts node 2's ack

    def to_2(m: Message) -> bool:
        return m.type == MsgType.APP and m.to == 2

    a = sim.propose(1)
    [first] = sim.net.take(to_2)
    b = sim.propose(1)
    [second] = sim.net.take(to_2)
    assert first.entries[0].data == a and second.entries[-1].data == b
    b_index = second.entries[-1].index
    sim.deliver(first)
    sim.deliver(second)  # node 2 stores a and b, and acknowledges both
    for m in sim.net.take(lambda m: m.to == 1):
        sim.deliver(m)
    assert sim.core(1).log.committed >= b_index  # b is committed on node 2's word...
    assert sim.core(2).log.committed < b_index  # ...and node 2 does not know it yet
    sim.deliver(first)  # a late duplicate of the first append
    assert (b_index, term) in sim.durable_log(2)
    for m in (second, first, second, first):  # more duplicates, reordered
        sim.deliver(m)
    sim.deliver_all()
    assert (b_index, term) in sim.durable_log(2)
    # the leader dies: node 2 must win (its log is longer) and keep b
    sim.heal()
    sim.isolate(1)
    sim.crash(1)
    elect(sim, 2)
    sim.propose(2)
    sim.run_until(lambda: sim.all_applied([2, 3]))
    assert sim.nodes[3].applied_data()[:2] == [a, b]


def test_reordered_appends_are_accepted_once_the_gap_is_filled() -> None:
    """"If a follower's log is inconsistent with the leader's, the AppendEntries
    consistency check will fail in the next AppendEntries RPC. After a rejection, the
    leader decrements nextIndex and retries" (§5.3) -- pipelined appends that arrive out
    of order are rejected, then retried, and nothing acknowledged is lost."""
    sim = Sim(3, seed=24, election_ticks=1000)
    elect(sim, 1)
    sim.cut(1, 3)
    msgs = []
    for _ in range(4):
        sim.propose(1)
        msgs += sim.net.take(lambda m: m.type == MsgType.APP and m.to == 2)
    for m in reversed(msgs):
        sim.deliver(m)
    sim.deliver_all()
    sim.run_until(lambda: sim.all_applied([1, 2]))
    assert sim.durable_log(2) == sim.durable_log(1)


@pytest.mark.parametrize(("prev", "prev_term", "commit", "ents", "want", "terms", "commit_to"), [
    (3, 3, 3, [], 3, [1, 2, 3], 3),                    # empty: only the commit moves
    (3, 3, 3, [(4, 4)], 4, [1, 2, 3, 4], 3),           # appended
    (1, 1, 3, [(2, 2)], 2, [1, 2, 3], 2),              # a stale prefix: nothing truncated
    (0, 0, 3, [(1, 1), (2, 2)], 2, [1, 2, 3], 2),      # a duplicate from the start
    (2, 2, 3, [(3, 4), (4, 4)], 4, [1, 2, 4, 4], 3),   # conflict at 3: replaced
    (3, 2, 3, [(4, 4)], None, [1, 2, 3], 1),           # previous entry's term differs
    (4, 3, 3, [(5, 4)], None, [1, 2, 3], 1),           # previous entry missing
])
def test_append_entries_receiver(prev: int, prev_term: int, commit: int,
                                 ents: list[tuple[int, int]], want: int | None,
                                 terms: list[int], commit_to: int) -> None:
    """"Reply false if log doesn't contain an entry at prevLogIndex whose term matches
    prevLogTerm" ... "If an existing entry conflicts with a new one ..., delete the
    existing entry and all that follow it" ... "Append any new entries not already in the
    log" ... "If leaderCommit > commitIndex, set commitIndex = min(leaderCommit, index of
    last new entry)" (Figure 2)"""
    log = RaftLog(None, log_of([1, 2, 3]), 1)
    got = log.maybe_append(prev, prev_term, commit, [entry(i, t) for i, t in ents])
    assert got == want
    assert [e.term for e in log.entries] == terms
    assert log.committed == commit_to


# ====================================================================== leadership
def test_stale_leader_steps_down_when_it_sees_a_higher_term() -> None:
    """"If a candidate or leader discovers that its term is out of date, it immediately
    reverts to follower state." (§5.1)"""
    sim = Sim(5, seed=10, check_quorum=False)
    old = sim.wait_leader()
    rest = followers(sim, old)
    sim.partition([old], rest)
    new = sim.wait_leader(among=rest)
    lost = sim.propose(old)  # can never be committed
    kept = sim.propose(new)
    sim.run_ticks(2 * ELECTION)
    assert sim.core(old).role == Role.LEADER  # it does not know yet
    sim.heal()
    sim.run_until(lambda: sim.core(old).role == Role.FOLLOWER)
    assert sim.core(old).term == sim.core(new).term
    sim.run_until(sim.all_applied)
    for n in sim.nodes.values():
        assert lost not in n.applied_data() and kept in n.applied_data()


@pytest.mark.parametrize("pre_vote", [True, False])
def test_pre_vote_rejoining_node_does_not_disrupt_the_leader(pre_vote: bool) -> None:
    """"the Pre-Vote algorithm ... a candidate would first ask other servers whether its
    log was up-to-date enough to get their vote. Only if the candidate believed it could
    get votes from a majority of the cluster would it increment its term and start a
    normal election." (thesis §9.6)

    Without pre-vote (the control case) the rejoining node's inflated term deposes the
    leader.
    """
    sim = Sim(3, seed=11, pre_vote=pre_vote)
    lead = sim.wait_leader()
    term = sim.core(lead).term
    f = followers(sim, lead)[0]
    sim.isolate(f)
    sim.run_ticks(10 * ELECTION)
    sim.heal()
    sim.run_ticks(5 * ELECTION)
    if pre_vote:
        assert sim.core(f).term == term
        assert sim.leader() == lead and sim.core(lead).term == term
        assert set(sim.checker.leaders) == {term}
    else:
        assert sim.core(lead).term > term


def test_vote_requests_within_the_leader_lease_are_ignored() -> None:
    """"if a server receives a RequestVote request within the minimum election timeout of
    hearing from a current leader, it does not update its term or grant its vote"
    (thesis §4.2.3) -- so a follower whose timer fires while the leader is healthy (its
    log is just as up to date) cannot depose it."""
    sim = Sim(3, seed=23)
    lead = sim.wait_leader()
    term = sim.core(lead).term
    sim.run_until(sim.all_applied)
    f = followers(sim, lead)[0]
    sim.core(f).campaign()  # its election timer fired: pre-vote first
    sim.process(f)
    sim.deliver_all()
    sim.run_ticks(3 * ELECTION)
    assert sim.leader() == lead and sim.core(lead).term == term
    assert set(sim.checker.leaders) == {term}


@pytest.mark.parametrize("check_quorum", [True, False])
def test_check_quorum_isolated_leader_steps_down(check_quorum: bool) -> None:
    """"a leader steps down if an election timeout elapses without a successful round of
    heartbeats to a majority of its cluster" (thesis §6.2)

    The leader checks once per election timeout whether it heard from a quorum since the
    previous check, so it steps down within two election timeouts of the cut.
    """
    sim = Sim(3, seed=12, check_quorum=check_quorum)
    lead = sim.wait_leader()
    sim.isolate(lead)
    start = sim.ticks
    if check_quorum:
        sim.run_until(lambda: sim.core(lead).role != Role.LEADER)
        assert sim.ticks - start <= 2 * ELECTION
    else:
        sim.run_ticks(10 * ELECTION)
        assert sim.core(lead).role == Role.LEADER


# ====================================================================== ReadIndex
@pytest.mark.parametrize("where", ["leader", "follower"])
def test_read_index_covers_every_committed_write(where: str) -> None:
    """"The leader saves its current commit index in a local variable readIndex. This
    will be used as a lower bound for the version of the state that the query operates
    against." (thesis §6.4) -- a follower "issues a request to the leader to learn the
    current readIndex" (thesis §6.4)."""
    sim = Sim(3, seed=13)
    lead = sim.wait_leader()
    written = [sim.propose(lead) for _ in range(5)]
    sim.run_until(lambda: written[-1] in sim.nodes[lead].applied_data())
    floor = max(n.core.log.committed for n in sim.nodes.values())
    node = lead if where == "leader" else followers(sim, lead)[0]
    ctx = sim.read_index(node)
    sim.run_until(lambda: ctx in sim.nodes[node].reads)
    index = sim.nodes[node].reads[ctx]
    assert index >= floor
    sim.run_until(lambda: sim.nodes[node].applied_index() >= index)
    assert set(written) <= set(sim.nodes[node].applied_data())


def test_read_index_on_a_new_leader_waits_for_an_entry_of_its_term() -> None:
    """"If the leader has not yet marked an entry from its current term committed, it
    waits until it has done so." (thesis §6.4)"""
    sim = Sim(3, seed=14, election_ticks=1000)
    elect(sim, 1)
    for _ in range(3):
        sim.propose(1)
    sim.deliver_all()
    sim.core(2).campaign(force=True)
    sim.process(2)
    sim.run_until(lambda: sim.core(2).role == Role.LEADER)
    first_of_term = sim.core(2).log.last_index()
    ctx = sim.read_index(2)
    assert ctx not in sim.nodes[2].reads
    sim.run_until(lambda: ctx in sim.nodes[2].reads)
    assert sim.nodes[2].reads[ctx] >= first_of_term


def test_read_index_survives_lost_heartbeats() -> None:
    """"the leader ... issues a new round of heartbeats and waits for their
    acknowledgments from a majority of the cluster" (thesis §6.4) -- heartbeats are
    periodic, so a lost round must not leave the read waiting forever."""
    sim = Sim(3, seed=15)
    lead = sim.wait_leader()
    sim.net.drop_next(lambda m: m.type == MsgType.HEARTBEAT and m.context != 0, count=2)
    ctx = sim.read_index(lead)
    sim.run_until(lambda: ctx in sim.nodes[lead].reads, 10 * ELECTION * 10, "the read")
    assert sim.nodes[lead].reads[ctx] >= 0


@pytest.mark.parametrize("check_quorum", [True, False])
def test_isolated_leader_cannot_serve_a_read_index(check_quorum: bool) -> None:
    """"Once these acknowledgments are received, the leader knows that there could not
    have existed a leader for a greater term at the moment it sent the heartbeats."
    (thesis §6.4) -- without them, no read index: the old leader and the follower on its
    side of the partition get a refusal (-1) or nothing, never an index."""
    sim = Sim(5, seed=16, check_quorum=check_quorum)
    old = sim.wait_leader()
    f, *rest = followers(sim, old)
    sim.partition([old, f], rest)
    ctx_old, ctx_f = sim.read_index(old), sim.read_index(f)
    new = sim.wait_leader(among=rest)
    for _ in range(3):
        sim.propose(new)
    sim.run_ticks(3 * ELECTION)
    assert sim.nodes[old].reads.get(ctx_old, -1) < 0
    assert sim.nodes[f].reads.get(ctx_f, -1) < 0
    if check_quorum:  # the deposed leader answers: retry elsewhere
        assert sim.nodes[old].reads[ctx_old] == -1 and sim.nodes[f].reads[ctx_f] == -1


# ====================================================================== snapshots
@pytest.mark.parametrize("lose", ["nothing", "snapshot", "snapshot ack"])
def test_lagging_follower_is_sent_a_snapshot(lose: str) -> None:
    """"the leader must occasionally send snapshots to followers that lag behind. This
    happens when the leader has already discarded the next log entry that it needs to
    send to a follower." (§7) -- and, like AppendEntries, it is retried if lost."""
    sim = Sim(3, seed=17, snapshot_every=5)
    lead = sim.wait_leader()
    f = followers(sim, lead)[0]
    sim.isolate(f)
    for _ in range(30):
        sim.propose(lead)
        sim.run(3)
    sim.run_until(lambda: sim.core(lead).log.snap_index > sim.core(f).log.last_index())
    if lose == "snapshot":
        sim.net.drop_next(lambda m: m.type == MsgType.SNAP)
    elif lose == "snapshot ack":
        sim.net.drop_next(lambda m: m.type == MsgType.APP_RESP and m.frm == f
                          and sim.nodes[f].snapshots_installed > 0)
    sim.net.isolated.clear()
    sim.run_until(sim.all_applied, 100 * ELECTION, "the follower catching up")
    assert sim.nodes[f].snapshots_installed >= 1


def test_stale_snapshot_keeps_the_entries_after_it() -> None:
    """"If instead the follower receives a snapshot that describes a prefix of its log
    (due to retransmission or by mistake), then log entries covered by the snapshot are
    deleted but entries following the snapshot are still valid and must be retained."
    (§7)"""
    sim = Sim(3, seed=22, snapshot_every=5)
    lead = sim.wait_leader()
    f = followers(sim, lead)[0]
    sim.isolate(f)
    for _ in range(20):
        sim.propose(lead)
        sim.run(3)
    sim.run_until(lambda: sim.core(lead).log.snap_index > sim.core(f).log.last_index())
    snaps: list[Message] = []

    def keep_snapshots(m: Message) -> bool:
        if m.type == MsgType.SNAP:
            snaps.append(m)
        return False  # deliver it
    sim.net.filters.append(keep_snapshots)
    sim.net.isolated.clear()
    sim.run_until(sim.all_applied)
    for _ in range(12):  # the follower compacts its own log past the snapshot
        sim.propose(lead)
    sim.run_until(sim.all_applied)
    before, commit = sim.durable_log(f), sim.core(f).log.committed
    assert snaps and snaps[0].snapshot is not None
    assert snaps[0].snapshot.meta.index < sim.core(f).log.snap_index
    sim.deliver(snaps[0])  # the retransmitted, now stale, snapshot
    assert sim.durable_log(f) == before and sim.core(f).log.committed == commit


@pytest.mark.parametrize("kind", ["snapshot", "append below the commit index"])
def test_follower_reply_claims_only_entries_known_to_match(kind: str) -> None:
    """"Reply false if log doesn't contain an entry at prevLogIndex whose term matches
    prevLogTerm" (Figure 2): a success reply tells the leader that the follower's log
    matches its own up to the index named. Entries 3 and 4 here are from a deposed term-2
    leader, and neither message says anything about them: the reply must not claim
    them (etcd replies with the commit index)."""
    cfg = config_of([1, 2, 3])
    core = RaftCore(2, cfg, HardState(3, NONE, 1), None, log_of([1, 1, 2, 2]),
                    rng=random.Random(1))
    if kind == "snapshot":  # the follower holds (2, term 1): it keeps its log
        msg = Message(MsgType.SNAP, 2, 1, term=3,
                      snapshot=Snapshot(SnapshotMeta(2, 1, cfg), b""))
        want = 2
    else:  # a late duplicate whose previous entry is already committed here
        msg = Message(MsgType.APP, 2, 1, term=3, index=0, log_term=0, commit=1)
        want = 1
    core.step(msg)
    replies = [m for m in core.ready().messages if m.type == MsgType.APP_RESP]
    assert len(replies) == 1 and not replies[0].reject
    assert replies[0].index == want


# ====================================================================== membership
@pytest.mark.parametrize("snapshot_every", [0, 4])
@pytest.mark.parametrize("boot", ["no configuration", "the committed configuration"])
def test_added_node_catches_up(snapshot_every: int, boot: str) -> None:
    """"Raft restricts the types of changes that are allowed: only one server can be added
    or removed from the cluster at a time." ... new servers "may not initially store any
    log entries" and must catch up (thesis §4.1, §4.2.1).

    The new node starts knowing no configuration (it learns it from the leader, as an
    etcd member joining an existing cluster does), or the new configuration once that
    is committed. (Starting it with a voter set that is not committed is unsafe: see
    test_raft_randomized.change_membership.)
    """
    sim = Sim(3, seed=18, snapshot_every=snapshot_every)
    lead = sim.wait_leader()
    for _ in range(10):
        sim.propose(lead)
    sim.run_until(sim.all_applied)
    assert sim.propose_config(lead, [1, 2, 3, 4])
    if boot == "no configuration":
        sim.add_node(4, ClusterConfig())
        assert not sim.core(4).promotable()
    else:
        sim.run_until(lambda: sim.core(lead).config.ids == {1, 2, 3, 4})
        sim.add_node(4, config_of([1, 2, 3, 4]))
    sim.run_until(lambda: sim.all_applied() and all(
        n.core.config.ids == {1, 2, 3, 4} for n in sim.nodes.values()))
    assert sim.core(4).promotable()
    lead = sim.wait_leader()
    assert sim.core(lead).quorum() == 3
    last = sim.propose(lead)
    sim.run_until(sim.all_applied)
    assert sim.nodes[4].applied_data() == sim.nodes[lead].applied_data()
    assert last in sim.nodes[4].applied_data()
    if snapshot_every:
        assert sim.nodes[4].snapshots_installed >= 1


def test_one_membership_change_at_a_time() -> None:
    """"Raft restricts the types of changes that are allowed: only one server can be added
    or removed from the cluster at a time." (thesis §4.1) -- a second change proposed
    while the first is pending is not applied (it becomes an empty entry)."""
    sim = Sim(3, seed=19)
    lead = sim.wait_leader()
    sim.add_node(4, ClusterConfig())
    sim.add_node(5, ClusterConfig())
    sim.propose_config(lead, [1, 2, 3, 4])
    sim.propose_config(lead, [1, 2, 3, 4, 5])
    sim.run_until(lambda: sim.all_applied([1, 2, 3, 4]))
    assert all(sim.core(i).config.ids == {1, 2, 3, 4} for i in (1, 2, 3, 4))
    assert sim.core(lead).log.entries[-1].kind == EntryKind.EMPTY
    sim.propose_config(lead, [1, 2, 3, 4, 5])  # the first is committed: now it is accepted
    sim.run_until(lambda: sim.all_applied() and sim.core(5).config.ids == {1, 2, 3, 4, 5})


def test_remove_a_follower() -> None:
    """"only one server can be added or removed from the cluster at a time" (thesis §4.1):
    after removing one of three, the remaining two commit on their own."""
    sim = Sim(3, seed=20)
    lead = sim.wait_leader()
    gone, stay = followers(sim, lead)
    sim.propose_config(lead, [lead, stay])
    sim.run_until(lambda: sim.core(stay).config.ids == {lead, stay})
    sim.remove_node(gone)
    assert sim.core(lead).quorum() == 2
    v = sim.propose(lead)
    sim.run_until(lambda: v in sim.nodes[stay].applied_data())


def test_remove_the_leader() -> None:
    """"the leader steps down (returns to follower state) once it has committed the
    Cnew log entry." (thesis §4.2.2)"""
    sim = Sim(3, seed=21)
    old = sim.wait_leader()
    rest = followers(sim, old)
    sim.propose_config(old, rest)
    sim.run_until(lambda: sim.core(old).role != Role.LEADER)
    assert not sim.core(old).promotable()
    sim.remove_node(old)
    new = sim.wait_leader(among=rest)
    v = sim.propose(new)
    sim.run_until(lambda: sim.all_applied(rest))
    assert all(sim.core(i).config.ids == set(rest) for i in rest)
    assert all(v in sim.nodes[i].applied_data() for i in rest)


# ====================================================================== crashes
def test_a_vote_survives_a_crash() -> None:
    """"Persistent state on all servers: (Updated on stable storage before responding to
    RPCs) ... votedFor: candidateId that received vote in current term" (Figure 2) -- "Each
    server will vote for at most one candidate in a given term" (§5.2), restarts included."""
    sim = Sim(3, seed=25, election_ticks=1000)
    sim.core(1).campaign(force=True)
    sim.process(1)
    sim.isolate(3)  # node 3 hears nothing of term 1
    [to_2] = sim.net.take(lambda m: m.type == MsgType.VOTE and m.to == 2)
    sim.deliver(to_2)
    sim.crash(2)  # right after granting the vote
    [granted] = sim.net.take(lambda m: m.type == MsgType.VOTE_RESP)
    sim.deliver(granted)
    assert sim.core(1).role == Role.LEADER and sim.core(1).term == 1
    sim.heal()
    sim.isolate(1)  # node 2 hears nothing from the leader after its restart
    assert sim.core(3).term == 0
    sim.core(3).campaign(force=True)  # also term 1: it asks the restarted node 2
    sim.process(3)
    sim.deliver_all()
    assert sim.core(3).role != Role.LEADER
    assert sim.checker.leaders == {1: 1}


@pytest.mark.parametrize(("seed", "crash_all"), [(s, False) for s in range(4)]
                         + [(s, True) for s in range(4)])
def test_crash_restart_loses_no_committed_entry(seed: int, crash_all: bool) -> None:
    """"Persistent state on all servers: (Updated on stable storage before responding to
    RPCs) currentTerm, votedFor, log[]" (Figure 2) -- so restarting a minority, or every
    server at once, loses no committed entry."""
    sim = Sim(5, seed, snapshot_every=4)
    rng = random.Random(seed)
    committed: list[bytes] = []
    for _ in range(12):
        sim.propose(sim.wait_leader())
        sim.run(rng.randrange(5, 40))
        committed = max([committed, *(n.applied_data() for n in sim.nodes.values())], key=len)
        victims = list(sim.nodes) if crash_all else rng.sample(sorted(sim.nodes), 2)
        for i in victims:
            sim.crash(i)
    lead = sim.wait_leader()
    sim.propose(lead)
    sim.run_until(sim.all_applied)
    assert len(committed) >= 3
    for n in sim.nodes.values():
        assert n.applied_data()[:len(committed)] == committed
