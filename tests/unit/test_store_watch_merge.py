"""raftstore's Watch stream merges queued event responses (raftstore/_watch.py).

``WatchStream.next_response`` is pure queue logic: responses are put straight into the
stream's queue here, as the Raft apply path and catch-up put them, and the test reads
what would go out on the wire.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aetcd.rpc import kv_pb2, rpc_pb2

from raftstore import _watch
from raftstore._watch import PROGRESS_WATCH_ID, WatchStream


def events(wid: int, *revisions: int, value: bytes = b"v") -> rpc_pb2.WatchResponse:
    resp = rpc_pb2.WatchResponse(watch_id=wid, events=[
        kv_pb2.Event(type=kv_pb2.Event.PUT,
                     kv=kv_pb2.KeyValue(key=b"k%d" % r, value=value, mod_revision=r))
        for r in revisions])
    resp.header.revision = revisions[-1]
    return resp


def stream_with(*queued: rpc_pb2.WatchResponse | None) -> WatchStream:
    hub = SimpleNamespace(node=None, store=None)
    stream = WatchStream(hub, progress_interval=60.0)  # type: ignore[arg-type]
    for resp in queued:
        stream.out.put_nowait(resp)
    return stream


async def drain(stream: WatchStream) -> list[rpc_pb2.WatchResponse | None]:
    out: list[rpc_pb2.WatchResponse | None] = []
    while True:
        resp = await stream.next_response()
        out.append(resp)
        if resp is None:
            return out


def revisions(resp: rpc_pb2.WatchResponse | None) -> list[int]:
    assert resp is not None
    return [e.kv.mod_revision for e in resp.events]


async def test_queued_events_of_one_watcher_go_out_as_one_response() -> None:
    out = await drain(stream_with(events(1, 5), events(1, 6, 6), events(1, 7), None))
    assert len(out) == 2 and out[1] is None
    assert revisions(out[0]) == [5, 6, 6, 7]
    assert out[0] is not None and out[0].header.revision == 7  # the last header


async def test_order_is_kept_across_watchers_and_other_news() -> None:
    created = rpc_pb2.WatchResponse(watch_id=2, created=True)
    progress = rpc_pb2.WatchResponse(watch_id=PROGRESS_WATCH_ID)
    progress.header.revision = 9
    canceled = rpc_pb2.WatchResponse(watch_id=1, canceled=True, compact_revision=3)
    out = await drain(stream_with(
        events(1, 5), events(1, 6), created, events(2, 7), events(1, 8), events(1, 9),
        progress, events(1, 10), canceled, None))
    shape = [(r.watch_id, revisions(r)) if r is not None and r.events else r for r in out]
    assert shape == [(1, [5, 6]), created, (2, [7]), (1, [8, 9]), progress, (1, [10]),
                     canceled, None]


async def test_a_merged_response_stays_under_the_size_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    one = events(1, 1, value=b"x" * 1000).ByteSize()
    monkeypatch.setattr(_watch, "MERGE_BYTES", 3 * one + one // 2)
    out = await drain(stream_with(*(events(1, r, value=b"x" * 1000) for r in range(1, 8)),
                                  None))
    assert [revisions(r) for r in out[:-1]] == [[1, 2, 3], [4, 5, 6], [7]]
    assert out[-1] is None


async def test_a_response_already_over_the_limit_still_goes_out_whole(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_watch, "MERGE_BYTES", 10)
    out = await drain(stream_with(events(1, 1, 2, 3), events(1, 4), None))
    assert [revisions(r) for r in out[:-1]] == [[1, 2, 3], [4]]
