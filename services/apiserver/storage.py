"""The API server's storage: a narrow ``Store`` interface and ``EtcdStore``, its etcd v3 client.

``EtcdStore`` speaks the etcd v3 gRPC API to raftstore or to a real etcd through the stubs
that ``aetcd`` ships (``aetcd.rpc``) on its own ``grpc.aio`` channel. It does not use
``aetcd.Client``: that client talks to one endpoint, cannot express a transaction with
several compares or a revision-pinned range page, and does not resume a broken watch.

Contracts:

- Reads (``get``, ``page``, ``current_revision``, a txn of Gets only) are linearizable and
  are retried on any member or transport failure until ``retry_budget`` seconds have
  passed; then ``StoreUnavailable``.
- A write (a txn with a Put or Delete) is retried only when the failure proves that it was
  not applied: no connection could be made, or the member answered "no leader", "too many
  requests" or "proposal dropped", which etcd says before proposing. Any other failure
  after sending raises ``AmbiguousWrite``: the write may or may not have landed, and the
  caller must read to find out. This client never applies a write twice.
- Failover: one channel over every endpoint with ``pick_first``, so a dead member is
  skipped on reconnect; a member that answers but cannot serve (no leader, timeouts) is
  moved to the back of the order. Every request asks etcd to refuse it while the member
  has no leader (``hasleader`` metadata), so an isolated member never stalls a watch.
- ``watch`` yields every change in [start, end) from ``start_revision`` on, in revision
  order, once each, across any number of reconnections: it resumes from the last
  delivered revision + 1. _watch_progress.py says which progress notifications it trusts.

Call every method from the event loop that created the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import grpc
from aetcd.rpc import kv_pb2, rpc_pb2, rpc_pb2_grpc

from ._etcd_rpc import (
    CHANNEL_OPTIONS,
    ERR_COMPACTED,
    ERR_FUTURE_REV,
    METADATA,
    Budget,
    channel_target,
    member_sick,
    verdict,
)
from ._watch_progress import Step, WatchProgress

__all__ = [
    "AmbiguousWrite", "Compacted", "Compare", "Delete", "EtcdStore", "FutureRevision", "Get",
    "KeyValue", "Op", "Page", "Put", "Store", "StoreError", "StoreEvent", "StoreUnavailable",
    "TxnResult", "WatchBatch", "key_absent", "key_at",
]

T = TypeVar("T")

# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One key as the store holds it at some revision."""

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


CompareTarget = Literal["create", "mod", "version", "value"]
CompareOp = Literal["=", "!=", "<", ">"]


@dataclass(frozen=True, slots=True)
class Compare:
    """A txn guard: ``target`` of ``key`` ``op`` ``operand``. An absent key has
    create = mod = version = 0 and an empty value. ``operand`` is bytes for "value",
    an int otherwise."""

    key: bytes
    target: CompareTarget
    op: CompareOp
    operand: int | bytes

    def __post_init__(self) -> None:
        if _TARGETS.get(self.target) is None:
            raise ValueError(f"Compare.target {self.target!r}: expected one of {list(_TARGETS)}")
        if _RESULTS.get(self.op) is None:
            raise ValueError(f"Compare.op {self.op!r}: expected one of {list(_RESULTS)}")
        want = bytes if self.target == "value" else int
        if not isinstance(self.operand, want) or isinstance(self.operand, bool):
            raise ValueError(f"Compare.operand {self.operand!r}: target {self.target!r} "
                             f"compares with {want.__name__}")


def key_absent(key: bytes) -> Compare:
    """Holds when ``key`` does not exist (its create_revision is 0)."""
    return Compare(key, "create", "=", 0)


def key_at(key: bytes, mod_revision: int) -> Compare:
    """Holds when ``key`` was last modified at ``mod_revision`` (compare-and-swap)."""
    return Compare(key, "mod", "=", mod_revision)


@dataclass(frozen=True, slots=True)
class Put:
    """Txn op: set ``key`` to ``value`` (attached to ``lease`` when non-zero)."""

    key: bytes
    value: bytes
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Delete:
    """Txn op: delete one key (absent is not an error)."""

    key: bytes


@dataclass(frozen=True, slots=True)
class Get:
    """Txn op: read one key."""

    key: bytes


Op = Put | Delete | Get


@dataclass(frozen=True, slots=True)
class TxnResult:
    """A txn's outcome. ``kvs`` has one entry per op of the branch that ran: a Get's
    value, or the value a Put or Delete replaced; None where there was none."""

    succeeded: bool
    revision: int
    kvs: tuple[KeyValue | None, ...]


@dataclass(frozen=True, slots=True)
class Page:
    """Keys of a range at ``revision``, sorted. ``count`` is the number of keys in the
    whole range; ``more`` says keys follow the last one in ``kvs``."""

    kvs: tuple[KeyValue, ...]
    revision: int
    more: bool
    count: int


@dataclass(frozen=True, slots=True)
class StoreEvent:
    """One change. For a DELETE, ``kv`` is the tombstone (key, mod_revision = the delete's
    revision); ``prev_kv`` is the key before the change, None if it did not exist."""

    type: Literal["PUT", "DELETE"]
    kv: KeyValue
    prev_kv: KeyValue | None


@dataclass(frozen=True, slots=True)
class WatchBatch:
    """Every change of one revision in the watched range (all of a txn's changes come in
    one batch, each event's ``kv.mod_revision`` is ``revision``). Batches come in revision
    order, and once one arrives every change up to its ``revision`` has been delivered.
    With no ``events`` it is a progress notification: nothing in the range changed after
    the previous batch, up to ``revision``."""

    revision: int
    events: tuple[StoreEvent, ...]


# --------------------------------------------------------------------------- errors


class StoreError(Exception):
    """The store refused a request, or this client could not complete it."""


class StoreUnavailable(StoreError):
    """No member answered in time, after retries. Nothing is known to have been written."""


class AmbiguousWrite(StoreUnavailable):
    """A write was sent and its outcome is unknown (the connection or the member failed
    before answering). Read the keys to learn whether it was applied."""


class Compacted(StoreError):
    """The revision asked for has been compacted away; ``compact_revision`` is the oldest
    revision still readable (0 when the store did not say)."""

    def __init__(self, message: str, compact_revision: int) -> None:
        super().__init__(message)
        self.compact_revision = compact_revision


class FutureRevision(StoreError):
    """A read asked for a revision the store has not reached."""


# --------------------------------------------------------------------------- interface


class Store(Protocol):
    """What the API server needs from its store. Implementations must pass
    tests/apiserver/test_storage.py."""

    async def get(self, key: bytes, *, revision: int = 0) -> KeyValue | None:
        """``key`` at ``revision`` (0 = latest, linearizable); None when absent."""
        ...

    async def page(self, start: bytes, end: bytes, *, revision: int = 0,
                   limit: int = 0) -> Page:
        """At most ``limit`` keys (0 = all) of [start, end), sorted, at ``revision``
        (0 = latest)."""
        ...

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op],
                  failure: Sequence[Op] = ()) -> TxnResult:
        """Atomically: if every compare holds run ``success``, else ``failure``."""
        ...

    def watch(self, start: bytes, end: bytes, *,
              start_revision: int) -> AsyncIterator[WatchBatch]:
        """Every change in [start, end) from ``start_revision`` on, as ordered batches;
        Compacted when ``start_revision`` is no longer in the history."""
        ...

    async def current_revision(self) -> int:
        """The store's latest revision (linearizable)."""
        ...

    async def compact(self, revision: int) -> None:
        """Discard history before ``revision``."""
        ...

    async def close(self) -> None:
        """Release connections; running watches end with StoreError."""
        ...


# --------------------------------------------------------------------------- protobuf

_TARGETS = {"create": rpc_pb2.Compare.CREATE, "mod": rpc_pb2.Compare.MOD,
            "version": rpc_pb2.Compare.VERSION, "value": rpc_pb2.Compare.VALUE}
_RESULTS = {"=": rpc_pb2.Compare.EQUAL, "!=": rpc_pb2.Compare.NOT_EQUAL,
            "<": rpc_pb2.Compare.LESS, ">": rpc_pb2.Compare.GREATER}
_COMPARE_FIELDS = {"create": "create_revision", "mod": "mod_revision",
                   "version": "version", "value": "value"}
_PROGRESS_REQUEST = rpc_pb2.WatchRequest(progress_request=rpc_pb2.WatchProgressRequest())


class _StreamLost(Exception):
    """A watch stream stopped working without a gRPC status: resume it elsewhere."""


async def scan(store: Store, start: bytes, end: bytes, *,
               page_size: int = 1000) -> tuple[int, list[KeyValue]]:
    """Every key in [start, end), read page by page at the first page's revision:
    (that revision, the key-values in key order)."""
    kvs: list[KeyValue] = []
    revision = 0
    while True:
        page = await store.page(start, end, revision=revision, limit=page_size)
        revision = page.revision
        kvs += page.kvs
        if not page.more or not page.kvs:
            return revision, kvs
        start = page.kvs[-1].key + b"\0"


def _kv(m: Any) -> KeyValue:
    return KeyValue(m.key, m.value, m.create_revision, m.mod_revision, m.version, m.lease)


def _compare_pb(c: Compare) -> Any:
    pb = rpc_pb2.Compare(key=c.key, target=_TARGETS[c.target], result=_RESULTS[c.op])
    setattr(pb, _COMPARE_FIELDS[c.target], c.operand)
    return pb


def _op_pb(op: Op) -> Any:
    if isinstance(op, Put):
        return rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(
            key=op.key, value=op.value, lease=op.lease, prev_kv=True))
    if isinstance(op, Delete):
        return rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(
            key=op.key, prev_kv=True))
    return rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=op.key))


def _op_result(resp: Any) -> KeyValue | None:
    kind = resp.WhichOneof("response")
    if kind == "response_range":
        kvs = resp.response_range.kvs
        return _kv(kvs[0]) if kvs else None
    if kind == "response_put":
        put = resp.response_put
        return _kv(put.prev_kv) if put.HasField("prev_kv") else None
    prev = resp.response_delete_range.prev_kvs
    return _kv(prev[0]) if prev else None


def _event(ev: Any) -> StoreEvent:
    prev = _kv(ev.prev_kv) if ev.HasField("prev_kv") else None
    return StoreEvent("DELETE" if ev.type == kv_pb2.Event.DELETE else "PUT", _kv(ev.kv), prev)


def _batches(step: Step) -> list[WatchBatch]:
    """A step's events as one batch per revision; a progress notification if none."""
    if not step.revision:
        return []
    if not step.events:
        return [WatchBatch(step.revision, ())]
    return [WatchBatch(rev, tuple(_event(e) for e in evs))
            for rev, evs in itertools.groupby(step.events, key=lambda e: e.kv.mod_revision)]


def _store_error(e: grpc.aio.AioRpcError) -> StoreError:
    """A final gRPC error as a StoreError (Compacted/FutureRevision where they apply)."""
    details = e.details() or ""
    if ERR_COMPACTED in details:
        return Compacted(details, 0)
    if ERR_FUTURE_REV in details:
        return FutureRevision(details)
    return StoreError(f"store answered {e.code().name}: {details}")


def _watch_error(step: Step, next_revision: int) -> StoreError:
    if step.compact_revision:
        return Compacted(f"watch from revision {next_revision}: history before "
                         f"{step.compact_revision} has been compacted", step.compact_revision)
    return StoreError(f"the store cancelled the watch: {step.cancel_reason}")


# --------------------------------------------------------------------------- EtcdStore


class EtcdStore:
    """``Store`` over the etcd v3 API of raftstore or etcd, failing over between members.

    ``endpoints``: "host:port" of every member. ``retry_budget``: seconds a request (or a
    broken watch) keeps retrying before it gives up; ``attempt_timeout``: deadline of one
    attempt; ``progress_interval``: seconds of silence on a watch after which it asks the
    member for progress (0: never ask; the member's periodic notifications still count).
    """

    def __init__(self, endpoints: Sequence[str], *, retry_budget: float = 10.0,
                 attempt_timeout: float = 5.0, progress_interval: float = 1.0,
                 rng: random.Random | None = None) -> None:
        self.endpoints = list(endpoints)
        channel_target(self.endpoints)  # ValueError now rather than on first use
        self.retry_budget = retry_budget
        self.attempt_timeout = attempt_timeout
        self.progress_interval = progress_interval
        self.rng = rng or random.Random()
        self.retries = 0
        """Attempts repeated after a retriable failure (a metric)."""
        self.watch_resumes = 0
        """Watch streams re-opened after a break (a metric)."""
        self._order = list(self.endpoints)
        self._generation = 0
        self._closed = False
        self._retiring: dict[asyncio.Task[None], grpc.aio.Channel] = {}
        self._channel = self._open_channel()

    def _open_channel(self) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(channel_target(self._order), options=CHANNEL_OPTIONS)
        self._kv = rpc_pb2_grpc.KVStub(channel)
        self._watch = rpc_pb2_grpc.WatchStub(channel)
        return channel

    def _demote_first(self, generation: int) -> None:
        """The first member cannot serve: reconnect with it last. Calls in flight on the
        old channel get ``attempt_timeout`` to finish (a watch then resumes)."""
        if generation != self._generation or len(self._order) < 2 or self._closed:
            return
        self._generation += 1
        self._order = self._order[1:] + self._order[:1]
        old, self._channel = self._channel, self._open_channel()
        task = asyncio.get_running_loop().create_task(old.close(grace=self.attempt_timeout))
        self._retiring[task] = old
        task.add_done_callback(lambda t: self._retiring.pop(t, None))

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store client is closed")

    async def _call(self, attempt: Callable[[Any, float], Awaitable[T]], *, write: bool) -> T:
        """Run ``attempt(kv_stub, seconds)`` under the retry rules of the module docstring."""
        budget = Budget(self.retry_budget, self.rng)
        while True:
            self._check_open()
            generation = self._generation
            try:
                return await attempt(self._kv, max(0.05, min(self.attempt_timeout, budget.left())))
            except grpc.aio.AioRpcError as e:
                outcome = verdict(e, write)
                if outcome == "fatal":
                    raise _store_error(e) from e
                if outcome == "ambiguous":
                    raise AmbiguousWrite(f"write outcome unknown: {e.code().name}: "
                                         f"{e.details()}") from e
                if member_sick(e):
                    self._demote_first(generation)
                if not await budget.wait():
                    raise StoreUnavailable(
                        f"no store member of {self.endpoints} answered within "
                        f"{self.retry_budget}s; last error {e.code().name}: {e.details()}"
                    ) from e
                self.retries += 1

    # -- reads -------------------------------------------------------------------------

    async def _range(self, req: Any) -> Any:
        try:
            return await self._call(
                lambda kv, seconds: kv.Range(req, timeout=seconds, metadata=METADATA),
                write=False)
        except Compacted as e:
            raise Compacted(str(e), await self._compact_revision()) from e

    async def get(self, key: bytes, *, revision: int = 0) -> KeyValue | None:
        """``key`` at ``revision`` (0 = latest, linearizable); None when absent."""
        resp = await self._range(rpc_pb2.RangeRequest(key=key, revision=revision))
        return _kv(resp.kvs[0]) if resp.kvs else None

    async def page(self, start: bytes, end: bytes, *, revision: int = 0,
                   limit: int = 0) -> Page:
        """At most ``limit`` keys (0 = all) of [start, end), sorted, at ``revision``
        (0 = latest; pass the first page's revision to pin the following pages)."""
        resp = await self._range(rpc_pb2.RangeRequest(
            key=start, range_end=end, revision=revision, limit=limit))
        return Page(tuple(_kv(m) for m in resp.kvs), revision or resp.header.revision,
                    resp.more, resp.count)

    async def current_revision(self) -> int:
        """The store's latest revision (linearizable)."""
        resp = await self._range(rpc_pb2.RangeRequest(key=b"\0", count_only=True))
        return int(resp.header.revision)

    # -- writes ------------------------------------------------------------------------

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op],
                  failure: Sequence[Op] = ()) -> TxnResult:
        """Atomically: if every compare holds run ``success``, else ``failure``. A txn
        that writes raises AmbiguousWrite when its outcome cannot be known."""
        req = rpc_pb2.TxnRequest(compare=[_compare_pb(c) for c in compares],
                                 success=[_op_pb(o) for o in success],
                                 failure=[_op_pb(o) for o in failure])
        write = any(not isinstance(o, Get) for o in (*success, *failure))
        resp = await self._call(
            lambda kv, seconds: kv.Txn(req, timeout=seconds, metadata=METADATA), write=write)
        return TxnResult(resp.succeeded, resp.header.revision,
                         tuple(_op_result(r) for r in resp.responses))

    async def compact(self, revision: int) -> None:
        """Discard history before ``revision``. Idempotent: compacting to a revision the
        store has already compacted to (or past) succeeds."""
        req = rpc_pb2.CompactionRequest(revision=revision)
        try:
            await self._call(
                lambda kv, seconds: kv.Compact(req, timeout=seconds, metadata=METADATA),
                write=False)
        except Compacted as e:
            current = await self._compact_revision()
            if current < revision:
                raise Compacted(str(e), current) from e

    async def _compact_revision(self) -> int:
        """The store's compaction revision, as a watch from revision 1 reports it (etcd's
        range errors do not carry it); 0 if it cannot be learned."""
        call = self._watch.Watch(timeout=self.attempt_timeout, metadata=METADATA)
        try:
            await call.write(rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(
                key=b"\0", start_revision=1)))
            while True:
                resp = await call.read()
                if resp is grpc.aio.EOF or resp.events or resp.canceled:
                    return int(0 if resp is grpc.aio.EOF else resp.compact_revision)
        except grpc.aio.AioRpcError:
            return 0
        finally:
            call.cancel()

    # -- watch -------------------------------------------------------------------------

    async def watch(self, start: bytes, end: bytes, *,
                    start_revision: int) -> AsyncGenerator[WatchBatch, None]:
        """Every change in [start, end) from ``start_revision`` on, as ordered batches
        with prev_kv, resuming transparently after a broken stream. Raises Compacted when
        the next revision to deliver has been compacted, StoreUnavailable when no member
        took the watch back within ``retry_budget``."""
        progress = WatchProgress(start_revision)
        budget: Budget | None = None
        while True:
            self._check_open()
            generation, why = self._generation, "the member ended the stream"
            try:
                async with contextlib.aclosing(self._watch_stream(start, end, progress)) as s:
                    async for batch in s:
                        if batch is None:  # the member confirmed the watch
                            budget = None
                        else:
                            yield batch
            except grpc.aio.AioRpcError as e:
                if verdict(e, write=False) == "fatal":
                    raise _store_error(e) from e
                if member_sick(e):
                    self._demote_first(generation)
                why = f"{e.code().name}: {e.details()}"
            except _StreamLost as e:
                self._demote_first(generation)
                why = str(e)
            self._check_open()
            budget = budget or Budget(self.retry_budget, self.rng)
            if not await budget.wait():
                raise StoreUnavailable(f"watch of {start!r} lost and no store member of "
                                       f"{self.endpoints} took it back within "
                                       f"{self.retry_budget}s; last error {why}")
            self.watch_resumes += 1

    async def _watch_stream(self, start: bytes, end: bytes,
                            progress: WatchProgress) -> AsyncGenerator[WatchBatch | None, None]:
        """One Watch stream from ``progress.next_revision``: yields None once the member
        confirms it, then batches; returns when the member ends the stream."""
        call = self._watch.Watch(metadata=METADATA)
        responses: asyncio.Queue[Any] = asyncio.Queue(maxsize=64)
        reader = asyncio.get_running_loop().create_task(_pump(call, responses))
        try:
            progress.restart()
            await call.write(rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(
                key=start, range_end=end, start_revision=progress.next_revision,
                prev_kv=True, progress_notify=True)))
            while True:
                wait = (self.progress_interval or None) if progress.created else \
                    self.attempt_timeout
                try:
                    resp = await asyncio.wait_for(responses.get(), wait)
                except TimeoutError:
                    if not progress.created:
                        raise _StreamLost(f"no confirmation of the watch within "
                                          f"{self.attempt_timeout}s") from None
                    if reader.done() or (progress.on_idle() and not await _send(call)):
                        return
                    continue
                if resp is grpc.aio.EOF:
                    return
                if isinstance(resp, BaseException):
                    raise resp
                step = progress.on_response(resp)
                if step.compact_revision or step.cancel_reason is not None:
                    raise _watch_error(step, progress.next_revision)
                if step.created:
                    yield None
                if step.ask_progress and not await _send(call):
                    return
                for batch in _batches(step):
                    yield batch
        finally:
            reader.cancel()
            call.cancel()

    async def close(self) -> None:
        """Close the channel: calls in flight fail, running watches end with StoreError."""
        self._closed = True
        await asyncio.gather(*(ch.close(grace=None)
                               for ch in (self._channel, *self._retiring.values())))


async def _send(call: Any) -> bool:
    """Ask a watch stream for progress; False when the stream has already ended."""
    try:
        await call.write(_PROGRESS_REQUEST)
    except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
        return False
    return True


async def _pump(call: Any, out: asyncio.Queue[Any]) -> None:
    """Move a stream's responses into ``out``, ending with EOF or the stream's error. (A
    read is never cancelled half-way: that would cancel the whole call.)"""
    try:
        while True:
            resp = await call.read()
            await out.put(resp)
            if resp is grpc.aio.EOF:
                return
    except grpc.aio.AioRpcError as e:
        await out.put(e)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # the stream's owner stopped reading
        await out.put(_StreamLost("the channel cancelled the stream"))
