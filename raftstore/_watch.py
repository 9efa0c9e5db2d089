"""etcd v3 Watch service: many watchers per stream, history catch-up, live fan-out.

Everything here runs on the event loop. The Raft node calls ``WatchHub.publish`` once
per applied revision, in order.

A watcher is *unsynced* while it replays history from ``next_rev`` and *synced* once
it has caught up; only synced watchers get live events. Catch-up joins the synced set in
the same step as its last history read, with no await in between, so that no revision
is skipped or sent twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import structlog
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

from raftstore._kv import fill_header
from raftstore._mvcc import Applied, Change
from raftstore._node import RaftNode

log = structlog.get_logger("raftstore.watch")

CATCH_UP_BATCH = 1000  # changes per catch-up response (whole revisions)
OUT_QUEUE_HIGH = 256   # catch-up pauses while a stream has this many responses queued
MERGE_BYTES = 1 << 20  # queued responses of one watcher are merged up to this size
ERR_EMPTY_RANGE = "mvcc: watcher range is empty"
ERR_DUPLICATE_ID = "mvcc: duplicate watch ID provided on the WatchStream"
PROGRESS_WATCH_ID = -1


class Watcher:
    """One watch on one stream."""

    __slots__ = ("filters_delete", "filters_put", "hi", "id", "lo", "next_rev", "prev_kv",
                 "progress", "sent_since_tick", "single", "stream", "synced")

    def __init__(self, stream: WatchStream, wid: int, req: rpc_pb2.WatchCreateRequest,
                 next_rev: int) -> None:
        self.stream = stream
        self.id = wid
        self.lo = req.key
        self.single = not req.range_end
        self.hi: bytes | None = None if req.range_end == b"\0" else req.range_end
        self.filters_put = rpc_pb2.WatchCreateRequest.NOPUT in req.filters
        self.filters_delete = rpc_pb2.WatchCreateRequest.NODELETE in req.filters
        self.prev_kv = req.prev_kv
        self.progress = req.progress_notify
        self.next_rev = next_rev
        self.synced = False
        self.sent_since_tick = False

    def wants(self, ch: Change) -> bool:
        rec = ch.rec
        if self.single:
            if rec.key != self.lo:
                return False
        elif rec.key < self.lo or (self.hi is not None and rec.key >= self.hi):
            return False
        if rec.tombstone:
            return not self.filters_delete
        return not self.filters_put

    def events(self, changes: Iterable[Change]) -> list[Any]:
        return [ch.to_event(self.prev_kv) for ch in changes if self.wants(ch)]


class WatchHub:
    """All synced watchers of this member, fed by the Raft apply path."""

    def __init__(self, node: RaftNode) -> None:
        self.node = node
        self.store = node.store
        self.synced: set[Watcher] = set()

    def publish(self, applied: Applied) -> None:
        """Deliver one applied revision's changes to every synced watcher that wants them."""
        rev = applied.revision
        for w in list(self.synced):
            if rev < w.next_rev:
                continue
            evs = w.events(applied.changes)
            w.next_rev = rev + 1
            if evs:
                resp = rpc_pb2.WatchResponse(watch_id=w.id, events=evs)
                resp.header.revision = rev
                w.stream.send(resp)
                w.sent_since_tick = True

    def restored(self) -> None:
        """The state was replaced by a snapshot: every watcher replays from where it was."""
        for w in list(self.synced):
            self.synced.discard(w)
            w.synced = False
            w.stream.start_catch_up(w)

    def remove(self, w: Watcher) -> None:
        self.synced.discard(w)


class WatchStream:
    """One client's Watch stream: its watchers and its outgoing responses."""

    def __init__(self, hub: WatchHub, progress_interval: float) -> None:
        self.hub = hub
        self.node = hub.node
        self.store = hub.store
        self.out: asyncio.Queue[rpc_pb2.WatchResponse | None] = asyncio.Queue()
        self.watchers: dict[int, Watcher] = {}
        self._next_id = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._progress_interval = progress_interval
        self._closed = False
        self._drained = asyncio.Event()
        self._progress_pending = False
        self._held: list[rpc_pb2.WatchResponse | None] = []  # taken, not yet sent

    def taken(self) -> None:
        """The client took a response: wake a paused catch-up once the queue is short."""
        if self.out.qsize() <= OUT_QUEUE_HIGH // 2:
            self._drained.set()

    async def next_response(self) -> rpc_pb2.WatchResponse | None:
        """The next response to send (None: the stream ends).

        Event responses of one watcher that are queued one after the other go out as one
        response, up to ``MERGE_BYTES``: under load the Raft node applies entries in
        batches, and one message per revision would cost a gRPC write each, here and in
        the client. etcd's own catch-up sends events of many revisions in one response
        too; the header is the last one's, so it still says up to where this is.
        """
        resp = self._held.pop() if self._held else await self.out.get()
        if resp is None or not _mergeable(resp):
            return resp
        size = resp.ByteSize()
        while not self.out.empty():
            nxt = self.out.get_nowait()
            more = 0 if nxt is None else nxt.ByteSize()
            if (nxt is None or nxt.watch_id != resp.watch_id or not _mergeable(nxt)
                    or size + more > MERGE_BYTES):
                self._held.append(nxt)
                break
            resp.events.extend(nxt.events)
            resp.header.CopyFrom(nxt.header)
            size += more
        return resp

    def send(self, resp: rpc_pb2.WatchResponse) -> None:
        if not self._closed:
            fill_header(self.node, resp.header)
            self.out.put_nowait(resp)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def read(self, requests: AsyncIterator[rpc_pb2.WatchRequest]) -> None:
        """Consume the client's requests; end the stream when the client ends its side."""
        self._spawn(self._progress_loop())
        try:
            async for req in requests:
                kind = req.WhichOneof("request_union")
                if kind == "create_request":
                    self.create(req.create_request)
                elif kind == "cancel_request":
                    self.cancel(req.cancel_request.watch_id)
                elif kind == "progress_request":
                    self.progress_now()
        finally:
            self.out.put_nowait(None)

    def create(self, req: rpc_pb2.WatchCreateRequest) -> None:
        cur = self.store.revision
        compact = self.store.compact_revision
        wid = req.watch_id
        error = ""
        if req.range_end and req.range_end != b"\0" and req.key >= req.range_end:
            error = ERR_EMPTY_RANGE
        elif wid:
            if wid in self.watchers:
                error = ERR_DUPLICATE_ID
        else:
            while self._next_id in self.watchers:
                self._next_id += 1
            wid = self._next_id
            self._next_id += 1
        created = rpc_pb2.WatchResponse(watch_id=-1 if error else wid, created=True,
                                        canceled=bool(error), cancel_reason=error)
        created.header.revision = cur
        self.send(created)
        if error:
            return
        start = req.start_revision or cur + 1
        w = Watcher(self, wid, req, start)
        self.watchers[wid] = w
        if 0 < start < compact:
            self._cancel_compacted(w, compact)
        elif start > cur:
            w.synced = True
            self.hub.synced.add(w)
        else:
            self.start_catch_up(w)

    def start_catch_up(self, w: Watcher) -> None:
        self._spawn(self._catch_up(w))

    async def _catch_up(self, w: Watcher) -> None:
        while not self._closed and w.id in self.watchers and not w.synced:
            if self.out.qsize() > OUT_QUEUE_HIGH:  # let the client read before more history
                self._drained.clear()
                await self._drained.wait()
            compact = self.store.compact_revision
            if w.next_rev < compact:
                self._cancel_compacted(w, compact)
                return
            changes, nxt = self.store.changes_since(w.next_rev, CATCH_UP_BATCH)
            cur = self.store.revision
            evs = w.events(changes)
            w.next_rev = nxt
            if evs:
                resp = rpc_pb2.WatchResponse(watch_id=w.id, events=evs)
                resp.header.revision = cur
                self.send(resp)
                w.sent_since_tick = True
            if nxt > cur:
                w.synced = True
                self.hub.synced.add(w)
                if self._progress_pending:
                    self.progress_now()
                return
            await asyncio.sleep(0)

    def _cancel_compacted(self, w: Watcher, compact: int) -> None:
        resp = rpc_pb2.WatchResponse(watch_id=w.id, canceled=True, compact_revision=compact,
                                     cancel_reason="mvcc: required revision has been compacted")
        resp.header.revision = self.store.revision
        self.send(resp)
        self._drop(w)

    def cancel(self, wid: int) -> None:
        w = self.watchers.get(wid)
        if w is None:
            return
        self._drop(w)
        resp = rpc_pb2.WatchResponse(watch_id=wid, canceled=True)
        resp.header.revision = self.store.revision
        self.send(resp)

    def _drop(self, w: Watcher) -> None:
        self.watchers.pop(w.id, None)
        self.hub.remove(w)
        w.synced = True  # stops a running catch-up
        if self._progress_pending and not self._closed:
            self.progress_now()

    def progress_now(self) -> None:
        """Answer a WatchProgressRequest: the current revision, for every watcher (id -1).

        The answer promises that every event up to that revision has been sent, so while
        a watcher of this stream still replays history it is deferred until the last one
        has caught up (as etcd ≥ 3.4.24 does).
        """
        if any(not w.synced for w in self.watchers.values()):
            self._progress_pending = True
            return
        self._progress_pending = False
        resp = rpc_pb2.WatchResponse(watch_id=PROGRESS_WATCH_ID)
        resp.header.revision = self.store.revision
        self.send(resp)

    async def _progress_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self._progress_interval)
            rev = self.store.revision
            for w in list(self.watchers.values()):
                if w.progress and w.synced and not w.sent_since_tick and w.next_rev > rev:
                    resp = rpc_pb2.WatchResponse(watch_id=w.id)
                    resp.header.revision = rev
                    self.send(resp)
                w.sent_since_tick = False

    def close(self) -> None:
        self._closed = True
        self._drained.set()
        for w in list(self.watchers.values()):
            self._drop(w)
        for task in list(self._tasks):
            task.cancel()


def _mergeable(resp: rpc_pb2.WatchResponse) -> bool:
    """Whether a response only carries events (no create, cancel or progress news)."""
    return bool(resp.events) and not (resp.created or resp.canceled or resp.compact_revision)


class WatchService(rpc_pb2_grpc.WatchServicer):  # type: ignore[misc]
    """The bidirectional Watch stream."""

    def __init__(self, hub: WatchHub, progress_interval: float) -> None:
        self.hub = hub
        self.progress_interval = progress_interval

    async def Watch(self, request_iterator: AsyncIterator[rpc_pb2.WatchRequest],
                    context: Any) -> AsyncIterator[rpc_pb2.WatchResponse]:
        stream = WatchStream(self.hub, self.progress_interval)
        reader = asyncio.get_running_loop().create_task(stream.read(request_iterator))
        started = time.monotonic()
        try:
            while True:
                resp = await stream.next_response()
                if resp is None:
                    return
                stream.taken()
                yield resp
        finally:
            reader.cancel()
            stream.close()
            log.debug("watch stream closed", seconds=round(time.monotonic() - started, 3))
