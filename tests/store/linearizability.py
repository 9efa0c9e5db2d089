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
nondeterministic (several successor states for one operation).

Unknown outcomes. An operation whose client never learned the result (timeout, crash)
has ``ret = math.inf``: it may take effect at any point after its call, or never — "never"
is the same as taking effect after every other operation, which the infinite return time
allows. Its ``output`` is ignored. Operations that certainly failed (refused before being
sent, rejected by validation) have no effect and belong nowhere in the history.

Multi-key stores are checked per key (:func:`check_per_key`): linearizability is
compositional (Herlihy & Wing's locality), so a history is linearizable iff each key's
sub-history is.

    history ──partition by key──▶ per-key ops ──events sorted by time──▶ linked list
        ──Wing–Gong DFS + cache──▶ CheckResult (linearization, or the longest prefix
                                    and the operations that could not be placed)
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
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
        """True when ``op`` never changes the state (an unknown-outcome one can be dropped)."""
        ...

    def describe(self, state: Any) -> str:
        """The state for a human."""
        ...


# -- models ---------------------------------------------------------------------------


class Register:
    """A single register: ``read`` → value; ``write(v)``; ``cas((expected, new))`` → bool.

    The initial value is ``initial`` (None: never written).
    """

    def __init__(self, initial: Hashable = None) -> None:
        self.initial = initial

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
        return op.op == "read"

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
    learned from a later read or mod_revision compare.
    """

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
                return (KeyState(value, rev, rev),) if rev > s.floor else ()
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
                can_match, can_fail = expected > s.floor, True
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
        return op.op == "read"

    def describe(self, state: Any) -> str:
        s: KeyState = state
        rev = f"mod_revision {s.mod_revision}" if s.mod_revision is not None else (
            f"mod_revision unknown (> {s.floor})")
        return f"value {s.value!r}, {rev}"


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
        if self.verdict is Verdict.NOT_LINEARIZABLE:
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
        for a, b in zip(ops, ops[1:]):
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
        subsets.append(unknown)
        return True


def _search(ops: list[Operation], model: Model, max_steps: int | None,
            key: Hashable) -> CheckResult:
    """Wing–Gong DFS with memoization over a doubly linked list of call/return events.

    Positions 1..2n hold events in time order (calls before returns at equal times, so
    touching intervals count as concurrent); 0 is the head and 2n+1 the tail sentinel.
    Linearizing an operation unlinks its call and return ("lift"); backtracking relinks
    them in reverse order, which restores the list exactly (dancing links).

    The candidates at each point are the calls before the first return. They are tried
    in two passes, known-outcome operations first: an unknown-outcome operation is placed
    only when nothing else fits, which with :class:`_Visited` keeps the search from
    trying every subset of the operations that never took effect.
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
    unknown_op = [op.unknown for op in ops]
    unknown_mask = sum(1 << i for i in range(n) if unknown_op[i])
    known_mask = ((1 << n) - 1) & ~unknown_mask
    nxt = list(range(1, tail + 2))
    prv = list(range(-1, tail))

    def unlink(p: int) -> None:
        nxt[prv[p]] = nxt[p]
        prv[nxt[p]] = prv[p]

    def relink(p: int) -> None:
        nxt[prv[p]] = p
        prv[nxt[p]] = p

    states: frozenset[Hashable] = frozenset((model.init(),))
    linearized = 0
    visited = _Visited()
    # (call position, pass it was chosen in, states before)
    stack: list[tuple[int, bool, frozenset[Hashable]]] = []
    best_depth = -1
    best: tuple[list[int], frozenset[Hashable], int, list[int]] = ([], states, -1, [])
    steps = 0
    p, unknown_pass = nxt[0], False
    # Done once every known-outcome operation is placed: the unknown-outcome ones left
    # can go after them all, which is the same as never taking effect.
    while linearized & known_mask != known_mask:
        steps += 1
        if max_steps is not None and steps > max_steps:
            return CheckResult(Verdict.UNKNOWN, key, (), steps=steps)
        if kind[p] == _CALL:
            i = opi[p]
            if unknown_op[i] == unknown_pass:
                after = frozenset(s2 for s in states for s2 in model.step(s, ops[i]))
                lin_after = linearized | (1 << i)
                if after and visited.add_if_new(lin_after & ~unknown_mask,
                                                lin_after & unknown_mask, after):
                    stack.append((p, unknown_pass, states))
                    states, linearized = after, lin_after
                    unlink(p)
                    unlink(ret_pos[i])
                    p, unknown_pass = nxt[0], False
                    continue
            p = nxt[p]
            continue
        # The return of an operation not yet linearized: no known-outcome candidate
        # fits here; then no unknown-outcome one either, and this prefix is a dead end.
        if not unknown_pass:
            p, unknown_pass = nxt[0], True
            continue
        if len(stack) > best_depth:
            best_depth = len(stack)
            pending, q = [], nxt[0]
            while q != p:
                if kind[q] == _CALL:
                    pending.append(opi[q])
                q = nxt[q]
            best = ([opi[c] for c, _, _ in stack], states, opi[p], pending)
        if not stack:
            break
        p, unknown_pass, states = stack.pop()
        i = opi[p]
        linearized &= ~(1 << i)
        relink(ret_pos[i])
        relink(p)
        p = nxt[p]
    else:
        order = tuple(ops[opi[c]] for c, _, _ in stack)
        return CheckResult(Verdict.LINEARIZABLE, key, order, steps=steps)
    order_i, st, blocked, pending = best
    return CheckResult(
        Verdict.NOT_LINEARIZABLE, key,
        linearization=tuple(ops[i] for i in order_i),
        states=tuple(sorted(model.describe(s) for s in st)),
        blocked=ops[blocked],
        pending=tuple(ops[i] for i in pending),
        steps=steps,
    )
