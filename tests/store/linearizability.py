"""Linearizability checking of recorded store histories. Pure functions, no I/O.

A history is a list of :class:`Operation` values: who called what, with which input, what
came back, and when the call started and returned (times from one monotonic clock). The
checker searches for a total order of the operations that (a) respects real time — an
operation that returned before another was called comes first — and (b) is a legal
sequence of the sequential :class:`Model`. Such an order exists iff the history is
linearizable.

Search: Wing & Gong's backtracking over the call/return events, with Lowe's memoization
(a cache of (set of linearized operations, model state) pairs already explored), as in
porcupine and knossos. Model states are handled as sets, so a model may be
nondeterministic (several successor states for one operation). Three reductions keep
crash-heavy histories tractable without changing any verdict (see :func:`_search`; the
unit tests compare the search with brute force): reads that fit are placed at once,
unknown-outcome operations are placed last and only when needed, and unknown-outcome
writes of values nothing observes are interchangeable.

Unknown outcomes. An operation whose client never learned the result (timeout, crash)
has ``ret = math.inf``: it may take effect at any point after its call, or never — "never"
is the same as taking effect after every other operation, which the infinite return time
allows. Its ``output`` is ignored. Operations that certainly failed (refused before being
sent, rejected by validation) have no effect and belong nowhere in the history.

Multi-key stores are checked per key (:func:`check_per_key`): linearizability is
compositional (Herlihy & Wing's locality), so a history is linearizable iff each key's
sub-history is.

    history ──partition by key──▶ per-key ops ──events sorted by time──▶ linked list
        ──Wing-Gong DFS + cache──▶ CheckResult (linearization, or the longest prefix
                                    and the operations that could not be placed)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple, Protocol

UNKNOWN = math.inf
"""Return time of an operation whose outcome the client never learned."""


@dataclass(frozen=True)
class Operation:
    """One client operation as observed by the client.

    ``op`` names the operation ("read", "write", "cas"); ``input`` and ``output`` are
    model-specific. ``ret`` is :data:`UNKNOWN` when the outcome is unknown; ``output`` is
    then ignored. ``key`` selects the sub-history in :func:`check_per_key`.
    """

    client: Hashable
    op: str
    input: Any
    output: Any
    call: float
    ret: float = UNKNOWN
    key: Hashable = None

    @property
    def unknown(self) -> bool:
        """True when the client never learned whether the operation took effect."""
        return self.ret == UNKNOWN

    def __str__(self) -> str:
        out = "?" if self.unknown else repr(self.output)
        key = "" if self.key is None else f"[{self.key!r}]"
        ret = "inf" if self.unknown else f"{self.ret:.6f}"
        return (f"client {self.client}: {self.op}{key}({self.input!r}) -> {out} "
                f"@ [{self.call:.6f}, {ret}]")


class Model(Protocol):
    """A sequential specification. States must be hashable and compare by value."""

    def init(self) -> Hashable:
        """The state before any operation."""
        ...

    def step(self, state: Any, op: Operation) -> Iterable[Hashable]:
        """States possible after applying ``op`` (with its output) to ``state``.

        Empty: ``op`` could not have produced its output in ``state``. For an operation
        with unknown outcome, every state it may have produced by taking effect; this
        must never be empty (an operation whose outcome is unknown fits anywhere).
        """
        ...

    def read_only(self, op: Operation) -> bool:
        """True when ``op`` (with its output) never changes the state, at most narrows it.

        Reads, and a cas that reported failure. Each state ``step`` returns for it must be
        the state itself or a refinement of it (one fewer unknown; no operation may fit
        a refinement and not the original). An unknown-outcome one is dropped.
        """
        ...

    def interchangeable(self, op: Operation) -> Hashable:
        """A class label, or None. Operations of one class must be interchangeable:
        swapping any two in a sequence changes no operation's legality (an
        unknown-outcome write of a value nothing else mentions). The search then places
        them in call order only.
        """
        ...

    def describe(self, state: Any) -> str:
        """The state for a human."""
        ...


# -- models ---------------------------------------------------------------------------


class Register:
    """A single register: ``read`` → value; ``write(v)``; ``cas((expected, new))`` → bool.

    The initial value is ``initial`` (None: never written). ``mentioned`` (see
    :meth:`for_history`) lists the values the history mentions other than as the input
    of an unknown-outcome write; None: unknown.
    """

    def __init__(self, initial: Hashable = None,
                 mentioned: frozenset[Hashable] | None = None) -> None:
        self.initial = initial
        self.mentioned = mentioned

    @classmethod
    def for_history(cls, history: Iterable[Operation], initial: Hashable = None) -> Register:
        """A model that knows which values ``history`` mentions (see :meth:`interchangeable`)."""
        mentioned = {initial}
        for op in history:
            if op.op == "write" and not op.unknown:
                mentioned.add(op.input)
            elif op.op == "cas":
                mentioned.update(op.input)
            elif op.op == "read" and not op.unknown:
                mentioned.add(op.output)
        return cls(initial, frozenset(mentioned))

    def init(self) -> Hashable:
        return self.initial

    def step(self, state: Any, op: Operation) -> Iterable[Hashable]:
        if op.op == "read":
            return (state,) if op.unknown or op.output == state else ()
        if op.op == "write":
            return (op.input,)
        if op.op == "cas":
            expected, new = op.input
            swapped = state == expected
            if op.unknown:
                return (new,) if swapped else (state,)
            if op.output != swapped:
                return ()
            return (new,) if swapped else (state,)
        raise ValueError(f"Register: unknown operation {op.op!r} (read, write, cas)")

    def read_only(self, op: Operation) -> bool:
        return op.op == "read" or (op.op == "cas" and not op.unknown and op.output is False)

    def interchangeable(self, op: Operation) -> Hashable:
        if (self.mentioned is not None and op.op == "write" and op.unknown
                and op.input not in self.mentioned):
            return "unmentioned unknown-outcome write"
        return None

    def describe(self, state: Any) -> str:
        return f"value {state!r}"


class KeyState(NamedTuple):
    """One etcd key: its value (None: absent) and mod_revision.

    ``mod_revision`` None means "written by an operation whose outcome was unknown, at
    some revision greater than ``floor``"; when known, ``floor == mod_revision``.
    """

    value: Any
    mod_revision: int | None
    floor: int


class RevisionedRegister:
    """One etcd key with the revisions the store assigns.

    - ``read`` → ``(value | None, mod_revision)``; an absent key reads ``(None, 0)``.
    - ``write(value)`` → the revision of the put (the key's new mod_revision).
    - ``cas((target, expected, new))`` with target ``"value"`` or ``"mod_revision"``, a
      Txn that puts ``new`` if the compare holds → ``(succeeded, revision | None)``.
      As in etcd, a value compare on an absent key fails and an absent key's
      mod_revision is 0.

    Revisions of one key must increase. The revision of an unknown-outcome write is
    learned from a later read or mod_revision compare. ``owners`` (see
    :meth:`for_history`) says which key and value each revision is known to belong to;
    an unknown-outcome write cannot have a revision that belongs to another value.
    """

    def __init__(self, owners: Mapping[int, tuple[Hashable, Any]] | None = None,
                 mentioned: frozenset[tuple[Hashable, Any]] | None = None) -> None:
        self.owners: Mapping[int, tuple[Hashable, Any]] = owners or {}
        self.mentioned = mentioned

    @classmethod
    def for_history(cls, history: Iterable[Operation]) -> RevisionedRegister:
        """A model that knows the revisions the history shows: acknowledged writes and cas,
        and reads. A revision is made by one write (etcd: one put per request), so
        this costs nothing in accuracy; it saves the search from guessing that an
        unknown-outcome write made a revision some other value had. Conflicts are
        reported by :func:`revision_conflicts`, not here.
        """
        history = list(history)
        owners: dict[int, tuple[Hashable, Any]] = {}
        for key, value, rev in _revisions(history):
            owners.setdefault(rev, (key, value))
        mentioned = {(key, value) for key, value in owners.values()}
        mentioned.update((op.key, v) for op in history if op.op == "cas"
                         for v in op.input[1:])
        return cls(owners, frozenset(mentioned))

    def _may_own(self, rev: int, key: Hashable, value: Any) -> bool:
        owner = self.owners.get(rev)
        return owner is None or owner == (key, value)

    def init(self) -> Hashable:
        return KeyState(None, 0, 0)

    def step(self, state: Any, op: Operation) -> Iterable[Hashable]:
        s: KeyState = state
        if op.op == "read":
            if op.unknown:
                return (s,)
            value, rev = op.output
            if value != s.value:
                return ()
            if s.mod_revision is None:
                ok = rev > s.floor and self._may_own(rev, op.key, value)
                return (KeyState(value, rev, rev),) if ok else ()
            return (s,) if rev == s.mod_revision else ()
        if op.op == "write":
            return self._written(s.floor, op.input, None if op.unknown else op.output)
        if op.op == "cas":
            return self._cas(s, op)
        raise ValueError(
            f"RevisionedRegister: unknown operation {op.op!r} (read, write, cas)")

    @staticmethod
    def _written(floor: int, value: Any, rev: int | None) -> tuple[KeyState, ...]:
        if rev is None:
            return (KeyState(value, None, floor),)
        return (KeyState(value, rev, rev),) if rev > floor else ()

    def _cas(self, s: KeyState, op: Operation) -> tuple[KeyState, ...]:
        target, expected, new = op.input
        if target == "value":
            can_match = s.value is not None and s.value == expected
            can_fail = not can_match
            floor_if_matched = s.floor
        elif target == "mod_revision":
            if s.mod_revision is None:
                can_match = expected > s.floor and self._may_own(expected, op.key, s.value)
                can_fail = True
            else:
                can_match = s.mod_revision == expected
                can_fail = not can_match
            floor_if_matched = max(s.floor, expected)
        else:
            raise ValueError(f"RevisionedRegister: cas target {target!r} (value, mod_revision)")
        if op.unknown:
            after: list[KeyState] = []
            if can_match:
                after.extend(self._written(floor_if_matched, new, None))
            if can_fail:
                after.append(s)
            return tuple(after)
        succeeded, rev = op.output
        if succeeded:
            return self._written(floor_if_matched, new, rev) if can_match else ()
        return (s,) if can_fail else ()

    def read_only(self, op: Operation) -> bool:
        return op.op == "read" or (
            op.op == "cas" and not op.unknown and not op.output[0])

    def interchangeable(self, op: Operation) -> Hashable:
        if (self.mentioned is not None and op.op == "write" and op.unknown
                and (op.key, op.input) not in self.mentioned):
            return "unmentioned unknown-outcome write"
        return None

    def describe(self, state: Any) -> str:
        s: KeyState = state
        rev = f"mod_revision {s.mod_revision}" if s.mod_revision is not None else (
            f"mod_revision unknown (> {s.floor})")
        return f"value {s.value!r}, {rev}"


def _revisions(history: Iterable[Operation]) -> Iterable[tuple[Hashable, Any, int]]:
    """(key, value, revision) for every revision a RevisionedRegister history shows."""
    for op in history:
        if op.unknown:
            continue
        if op.op == "write":
            yield op.key, op.input, op.output
        elif op.op == "cas" and op.output[0]:
            yield op.key, op.input[2], op.output[1]
        elif op.op == "read" and op.output[0] is not None:
            yield op.key, op.output[0], op.output[1]


def revision_conflicts(history: Iterable[Operation]) -> list[str]:
    """Revisions shown with two different (key, value) pairs — a store must make each
    revision with one write. Checks across keys what the per-key check cannot see;
    assumes each write puts a value no other write puts.
    """
    owners: dict[int, tuple[Hashable, Any]] = {}
    conflicts = []
    for key, value, rev in _revisions(history):
        owner = owners.setdefault(rev, (key, value))
        if owner != (key, value):
            conflicts.append(f"revision {rev} is both {owner[0]!r}={owner[1]!r} "
                             f"and {key!r}={value!r}")
    return conflicts


# -- results --------------------------------------------------------------------------


class Verdict(Enum):
    """Outcome of a check."""

    LINEARIZABLE = "linearizable"
    NOT_LINEARIZABLE = "not linearizable"
    UNKNOWN = "unknown (search budget exhausted)"


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one (sub-)history.

    Linearizable: ``linearization`` is a witness order of every operation with known
    outcome and of the unknown-outcome ones that had to take effect (the others may
    never have, or only after everything else). Not linearizable: ``linearization`` is the
    longest legal prefix found, ``states`` the model states after it, ``blocked`` the
    operation that returned without any legal place, and ``pending`` the operations that
    were open at that point (none of which could be placed next).
    """

    verdict: Verdict
    key: Hashable
    linearization: tuple[Operation, ...]
    states: tuple[str, ...] = ()
    blocked: Operation | None = None
    pending: tuple[Operation, ...] = ()
    steps: int = 0

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.LINEARIZABLE

    def explain(self, context: int = 8) -> str:
        """A human explanation: the end of the longest prefix, the state, the stuck ops."""
        where = "" if self.key is None else f"key {self.key!r}: "
        if self.ok:
            return f"{where}linearizable ({len(self.linearization)} operations placed)"
        lines = [f"{where}{self.verdict.value} after {self.steps} search steps"]
        if self.blocked is not None:
            n = len(self.linearization)
            lines.append(f"longest linearizable prefix: {n} operations; its last ones:")
            lines += [f"    {op}" for op in self.linearization[-context:]] or ["    (none)"]
            lines.append(f"state after it: {' | '.join(self.states) or '(none)'}")
            lines.append(f"could not be placed before it returned: {self.blocked}")
            others = [op for op in self.pending if op != self.blocked]
            if others:
                lines.append("other operations open at that point, none placeable next:")
                lines += [f"    {op}" for op in others[:context]]
        return "\n".join(lines)


@dataclass(frozen=True)
class StoreCheckResult:
    """Per-key verdicts of a multi-key history."""

    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.ok)

    def explain(self, context: int = 8) -> str:
        if self.ok:
            n = sum(len(r.linearization) for r in self.results)
            return f"linearizable: {len(self.results)} keys, {n} operations placed"
        return "\n\n".join(r.explain(context) for r in self.failures)


# -- search ---------------------------------------------------------------------------


def validate(history: Sequence[Operation]) -> None:
    """Raise ValueError if the history is malformed.

    Every operation must return no earlier than it was called, and one client's
    operations with known outcome must not overlap (a client is sequential; after an
    unknown outcome it may go on, so those may overlap its later operations).
    """
    by_client: dict[Hashable, list[Operation]] = {}
    for op in history:
        if math.isnan(op.call) or math.isnan(op.ret) or op.ret < op.call:
            raise ValueError(f"operation returns before it is called: {op}")
        if not op.unknown:
            by_client.setdefault(op.client, []).append(op)
    for client, ops in by_client.items():
        ops.sort(key=lambda o: o.call)
        for a, b in itertools.pairwise(ops):
            if b.call < a.ret:
                raise ValueError(
                    f"client {client!r} has overlapping operations with known outcome "
                    f"(a client must be sequential): {a} / {b}")


def check_history(history: Sequence[Operation], model: Model, *,
                  max_steps: int | None = None, key: Hashable = None) -> CheckResult:
    """Decide whether ``history`` (of one object) is linearizable with respect to ``model``.

    ``max_steps`` bounds the search; when exceeded the verdict is UNKNOWN.
    """
    validate(history)
    ops = [op for op in history if not (op.unknown and model.read_only(op))]
    return _search(ops, model, max_steps, key)


def check_per_key(history: Sequence[Operation], model: Model, *,
                  max_steps: int | None = None) -> StoreCheckResult:
    """Check each key's sub-history independently (``Operation.key``) against ``model``.

    ``max_steps`` bounds the search of each key.
    """
    validate(history)
    by_key: dict[Hashable, list[Operation]] = {}
    for op in history:
        by_key.setdefault(op.key, []).append(op)
    return StoreCheckResult(tuple(
        check_history(ops, model, max_steps=max_steps, key=k)
        for k, ops in sorted(by_key.items(), key=lambda kv: repr(kv[0]))))


_CALL, _RETURN = 0, 1


class _Visited:
    """Lowe's cache, strengthened for unknown outcomes.

    A configuration is (known-outcome operations linearized, unknown-outcome ones
    linearized, model states). The search succeeds once every known-outcome operation
    is linearized (the unknown-outcome ones left need never take effect), and
    unknown-outcome operations never hold others back (they never return). So a
    configuration with fewer unknown-outcome operations linearized and otherwise equal
    dominates: every way to finish the larger one finishes the smaller one too. A
    configuration dominated by one already visited is not explored again.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[int, frozenset[Hashable]], list[int]] = {}

    def add_if_new(self, known: int, unknown: int, states: frozenset[Hashable]) -> bool:
        """Record the configuration; False if it (or a dominating one) was visited."""
        subsets = self._seen.setdefault((known, states), [])
        for seen in subsets:
            if seen & ~unknown == 0:
                return False
        subsets[:] = [seen for seen in subsets if seen & unknown != unknown]
        subsets.append(unknown)
        return True


def _search(ops: list[Operation], model: Model, max_steps: int | None,
            key: Hashable) -> CheckResult:
    """Wing-Gong DFS with memoization over a doubly linked list of call/return events.

    Positions 1..2n hold events in time order (calls before returns at equal times, so
    touching intervals count as concurrent); 0 is the head and 2n+1 the tail sentinel.
    Linearizing an operation unlinks its call and return ("lift"); backtracking relinks
    them in reverse order, which restores the list exactly (dancing links).

    The candidates at each point are the calls before the first return, tried in passes:

    0. a read-only operation that fits without changing the states is placed at once,
       and no alternative is tried at this point: any way to finish without placing it
       now stays valid with it moved here (it is concurrent with every candidate, and
       where it stood it could only narrow the states). This collapses the orderings of
       concurrent reads.
    1. every other known-outcome operation;
    2. unknown-outcome operations, placed only when nothing else fits, which with
       :class:`_Visited` keeps the search from trying every subset of the operations
       that never took effect; not right after another one whose effect it would wipe
       out; and interchangeable ones only in call order.
    """
    n = len(ops)
    events = sorted([(op.call, _CALL, i) for i, op in enumerate(ops)]
                    + [(op.ret, _RETURN, i) for i, op in enumerate(ops)])
    tail = 2 * n + 1
    kind = [_RETURN] * (tail + 1)
    opi = [-1] * (tail + 1)
    ret_pos = [0] * n
    for p, (_, k, i) in enumerate(events, start=1):
        kind[p], opi[p] = k, i
        if k == _RETURN:
            ret_pos[i] = p
    # The pass in which each operation is a candidate (passes 0 and 1 for read-only ones).
    unknown_mask = sum(1 << i for i, op in enumerate(ops) if op.unknown)
    known_mask = ((1 << n) - 1) & ~unknown_mask
    in_pass = [2 if op.unknown else 1 for op in ops]
    # Interchangeable operations go in call order: op i only when rank[i] of its class
    # are placed.
    label = [model.interchangeable(op) for op in ops]
    rank, placed = [0] * n, dict.fromkeys(label, 0)
    for i in sorted(range(n), key=lambda i: (ops[i].call, i)):
        if label[i] is not None:
            rank[i] = placed[label[i]]
            placed[label[i]] += 1
    placed = dict.fromkeys(placed, 0)
    pure_candidate = [not op.unknown and model.read_only(op) for op in ops]
    nxt = list(range(1, tail + 2))
    prv = list(range(-1, tail))

    states: frozenset[Hashable] = frozenset((model.init(),))
    linearized = 0
    visited = _Visited()
    stack: list[tuple[int, int, frozenset[Hashable]]] = []  # (call pos, pass, states before)
    best_depth = -1
    best: tuple[list[int], frozenset[Hashable], int, list[int]] = ([], states, -1, [])
    steps = 0
    p, phase = nxt[0], 0
    # Done once every known-outcome operation is placed: the unknown-outcome ones left
    # can go after them all, which is the same as never taking effect.
    while linearized & known_mask != known_mask:
        steps += 1
        if max_steps is not None and steps > max_steps:
            return _result(Verdict.UNKNOWN, key, ops, model, best, steps)
        dead_end = False
        if kind[p] == _CALL:
            i = opi[p]
            in_this_pass = pure_candidate[i] if phase == 0 else in_pass[i] == phase
            if not in_this_pass or (label[i] is not None and rank[i] != placed[label[i]]):
                p = nxt[p]
                continue
            after = frozenset(s2 for s in states for s2 in model.step(s, ops[i]))
            if phase == 0 and after != states:
                p = nxt[p]
                continue
            if phase == 2 and stack and stack[-1][1] == 2 and after <= frozenset(
                    s2 for s in stack[-1][2] for s2 in model.step(s, ops[i])):
                # Right after another unknown-outcome operation that this one overwrites:
                # placing this one without it (tried from the parent) is as good.
                p = nxt[p]
                continue
            lin_after = linearized | (1 << i)
            if after and visited.add_if_new(lin_after & known_mask, lin_after & unknown_mask,
                                            after):
                stack.append((p, phase, states))
                states, linearized = after, lin_after
                if label[i] is not None:
                    placed[label[i]] += 1
                for q in (p, ret_pos[i]):  # lift: unlink call, then return
                    nxt[prv[q]] = nxt[q]
                    prv[nxt[q]] = prv[q]
                p, phase = nxt[0], 0
                continue
            if phase > 0:
                p = nxt[p]
                continue
            dead_end = True  # placing it now was the only choice, and it was explored
        elif phase < 2:
            p, phase = nxt[0], phase + 1
            continue
        # A dead end: the return of an operation that could not be placed.
        if len(stack) > best_depth and not dead_end:
            best_depth = len(stack)
            pending, q = [], nxt[0]
            while q != p:
                if kind[q] == _CALL:
                    pending.append(opi[q])
                q = nxt[q]
            best = ([opi[c] for c, _, _ in stack], states, opi[p], pending)
        while True:
            if not stack:
                return _result(Verdict.NOT_LINEARIZABLE, key, ops, model, best, steps)
            p, phase, states = stack.pop()
            i = opi[p]
            linearized &= ~(1 << i)
            if label[i] is not None:
                placed[label[i]] -= 1
            for q in (ret_pos[i], p):  # unlift: relink in reverse order
                nxt[prv[q]] = q
                prv[nxt[q]] = q
            if phase > 0:
                break
        p = nxt[p]
    order = tuple(ops[opi[c]] for c, _, _ in stack)
    return CheckResult(Verdict.LINEARIZABLE, key, order, steps=steps)


def _result(verdict: Verdict, key: Hashable, ops: list[Operation], model: Model,
            best: tuple[list[int], frozenset[Hashable], int, list[int]],
            steps: int) -> CheckResult:
    order, states, blocked, pending = best
    return CheckResult(
        verdict, key,
        linearization=tuple(ops[i] for i in order),
        states=tuple(sorted(model.describe(s) for s in states)),
        blocked=ops[blocked] if blocked >= 0 else None,
        pending=tuple(ops[i] for i in pending),
        steps=steps,
    )
