"""Raw etcd v3 API access for the conformance tests: async stubs, error checks, watch streams.

The conformance tests speak the wire API through ``grpc.aio`` and aetcd's generated stubs,
so that every request field is exactly what the test sets and every assertion is about
what a server answers, not about what a client library makes of it.

Contracts:

- Every unary call gets a deadline (:data:`RPC_TIMEOUT`) unless the caller gives one, so
  a server that never answers fails a test quickly instead of hanging it.
- :class:`WatchStream` reads its responses from a background task into a queue; a test
  waits on the queue with a deadline. (Cancelling a pending ``read()`` on a grpc.aio call
  cancels the whole call, so reads are never timed out directly.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import pytest
from aetcd.rpc import kv_pb2, rpc_pb2, rpc_pb2_grpc

T = TypeVar("T")

RPC_TIMEOUT = 10.0
"""Deadline, in seconds, of a unary call that does not set its own."""

WATCH_TIMEOUT = 10.0
"""How long, in seconds, a test waits for the next watch response by default."""

PROGRESS_WATCH_ID = -1
"""The watch_id etcd puts on progress responses and on rejected watch creations."""


class _DefaultDeadline(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Give unary calls without a deadline :data:`RPC_TIMEOUT`."""

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any,
    ) -> Any:
        if client_call_details.timeout is None:
            client_call_details = client_call_details._replace(timeout=RPC_TIMEOUT)
        return await continuation(client_call_details, request)


@dataclass(frozen=True)
class EtcdApi:
    """The etcd v3 services of one member, over one channel."""

    endpoint: str
    channel: grpc.aio.Channel
    kv: rpc_pb2_grpc.KVStub
    lease: rpc_pb2_grpc.LeaseStub
    cluster: rpc_pb2_grpc.ClusterStub
    maintenance: rpc_pb2_grpc.MaintenanceStub
    auth: rpc_pb2_grpc.AuthStub

    def watch_stream(self) -> WatchStream:
        """A new Watch stream on this member (use it as ``async with``)."""
        return WatchStream(self.channel)


@asynccontextmanager
async def connect(endpoint: str) -> AsyncIterator[EtcdApi]:
    """Open a channel to ``endpoint`` (``host:port``) and close it on exit."""
    channel = grpc.aio.insecure_channel(endpoint, interceptors=[_DefaultDeadline()])
    try:
        yield EtcdApi(
            endpoint=endpoint,
            channel=channel,
            kv=rpc_pb2_grpc.KVStub(channel),
            lease=rpc_pb2_grpc.LeaseStub(channel),
            cluster=rpc_pb2_grpc.ClusterStub(channel),
            maintenance=rpc_pb2_grpc.MaintenanceStub(channel),
            auth=rpc_pb2_grpc.AuthStub(channel),
        )
    finally:
        await channel.close()


# -- keys and errors --------------------------------------------------------------------------

def prefix_end(prefix: bytes) -> bytes:
    """The range_end that selects every key starting with ``prefix`` (etcd's GetPrefixRangeEnd)."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\0"


async def expect_error(
    call: Awaitable[Any], code: grpc.StatusCode, details: str | None = None,
) -> grpc.aio.AioRpcError:
    """Await ``call``; assert it fails with ``code`` and, if given, exactly ``details``."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    err = info.value
    assert err.code() == code, f"expected {code.name}, got {err.code().name}: {err.details()!r}"
    if details is not None:
        assert err.details() == details
    return err


@dataclass(frozen=True)
class KeyspaceState:
    """What a read of one prefix saw: the store revision and the key-values under the prefix."""

    revision: int
    kvs: tuple[kv_pb2.KeyValue, ...]


async def keyspace(api: EtcdApi, prefix: bytes) -> KeyspaceState:
    """Read the store revision and every key-value under ``prefix`` (a linearizable read)."""
    resp = await api.kv.Range(rpc_pb2.RangeRequest(key=prefix, range_end=prefix_end(prefix)))
    return KeyspaceState(resp.header.revision, tuple(resp.kvs))


async def current_revision(api: EtcdApi) -> int:
    """The store's current revision, from the header of a linearizable read."""
    resp = await api.kv.Range(rpc_pb2.RangeRequest(key=b"\0", count_only=True))
    return int(resp.header.revision)


async def put(api: EtcdApi, key: bytes, value: bytes = b"v", **fields: Any
              ) -> rpc_pb2.PutResponse:
    """Put one key; ``fields`` are further PutRequest fields."""
    return await api.kv.Put(rpc_pb2.PutRequest(key=key, value=value, **fields))


async def get(api: EtcdApi, key: bytes, **fields: Any) -> kv_pb2.KeyValue | None:
    """The key-value at ``key``, or None if absent; ``fields`` are further RangeRequest fields."""
    resp = await api.kv.Range(rpc_pb2.RangeRequest(key=key, **fields))
    assert len(resp.kvs) <= 1
    return resp.kvs[0] if resp.kvs else None


async def eventually(cond: Callable[[], Awaitable[T | None]], what: str,
                     within: float = 15.0, interval: float = 0.05) -> T:
    """Await ``cond()`` until it returns a truthy value; fail naming ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        value = await cond()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)


# -- request builders -------------------------------------------------------------------------

def op_put(key: bytes, value: bytes = b"v", **fields: Any) -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value, **fields))


def op_range(key: bytes, **fields: Any) -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key, **fields))


def op_delete(key: bytes, **fields: Any) -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(
        request_delete_range=rpc_pb2.DeleteRangeRequest(key=key, **fields))


def op_txn(compare: Iterable[rpc_pb2.Compare] = (), success: Iterable[rpc_pb2.RequestOp] = (),
           failure: Iterable[rpc_pb2.RequestOp] = ()) -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_txn=rpc_pb2.TxnRequest(
        compare=list(compare), success=list(success), failure=list(failure)))


# -- watch --------------------------------------------------------------------------------------

class WatchStream:
    """One bidirectional Watch stream: send requests, await responses with deadlines.

    Responses arrive in the order the server sent them. Use as ``async with``; leaving
    the block half-closes the request side and cancels the call.
    """

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._requests: asyncio.Queue[rpc_pb2.WatchRequest | None] = asyncio.Queue()
        self._responses: asyncio.Queue[rpc_pb2.WatchResponse | BaseException] = asyncio.Queue()
        self._call = rpc_pb2_grpc.WatchStub(channel).Watch(self._request_iterator())
        self._pump = asyncio.create_task(self._read_all())

    async def __aenter__(self) -> WatchStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._requests.put_nowait(None)
        self._call.cancel()
        with suppress(asyncio.CancelledError):
            await self._pump

    async def _request_iterator(self) -> AsyncIterator[rpc_pb2.WatchRequest]:
        while (request := await self._requests.get()) is not None:
            yield request

    async def _read_all(self) -> None:
        try:
            async for response in self._call:
                self._responses.put_nowait(response)
            self._responses.put_nowait(EOFError("the server ended the watch stream"))
        except grpc.aio.AioRpcError as e:
            self._responses.put_nowait(e)

    def send(self, request: rpc_pb2.WatchRequest) -> None:
        self._requests.put_nowait(request)

    async def next(self, within: float = WATCH_TIMEOUT) -> rpc_pb2.WatchResponse:
        """The next response; fail if none arrives within ``within`` seconds."""
        try:
            item = await asyncio.wait_for(self._responses.get(), within)
        except TimeoutError:
            pytest.fail(f"no watch response within {within}s")
        if isinstance(item, BaseException):
            raise item
        return item

    def send_create(self, key: bytes, range_end: bytes = b"", **fields: Any) -> None:
        self.send(rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(
            key=key, range_end=range_end, **fields)))

    async def create(self, key: bytes, range_end: bytes = b"", **fields: Any
                     ) -> rpc_pb2.WatchResponse:
        """Create a watch; assert the next response confirms it (created, not canceled)."""
        self.send_create(key, range_end, **fields)
        resp = await self.next()
        assert resp.created, f"expected a created response, got {resp}"
        assert not resp.canceled, f"watch creation was refused: {resp.cancel_reason!r}"
        assert not resp.events
        return resp

    async def cancel(self, watch_id: int) -> rpc_pb2.WatchResponse:
        """Cancel a watch; assert the next response confirms it."""
        self.send(rpc_pb2.WatchRequest(
            cancel_request=rpc_pb2.WatchCancelRequest(watch_id=watch_id)))
        resp = await self.next()
        assert resp.canceled and resp.watch_id == watch_id, f"expected cancel of {watch_id}: {resp}"
        return resp

    async def progress(self) -> rpc_pb2.WatchResponse:
        """Request progress; assert the next response is a progress notification.

        Every response the server sent before it has been consumed by then, so this doubles
        as a barrier: "nothing else was sent for writes applied before this call".
        """
        self.send(rpc_pb2.WatchRequest(progress_request=rpc_pb2.WatchProgressRequest()))
        resp = await self.next()
        assert resp.watch_id == PROGRESS_WATCH_ID and not resp.events, \
            f"expected a progress notification, got {resp}"
        assert not resp.created and not resp.canceled
        return resp

    async def events(self, count: int, within: float = WATCH_TIMEOUT
                     ) -> list[rpc_pb2.WatchResponse]:
        """Responses until exactly ``count`` events have arrived (fail on more)."""
        responses: list[rpc_pb2.WatchResponse] = []
        seen = 0
        while seen < count:
            resp = await self.next(within)
            assert not resp.created and not resp.canceled, f"expected events, got {resp}"
            responses.append(resp)
            seen += len(resp.events)
        assert seen == count, f"expected {count} events, got {seen}: {responses}"
        return responses


def flat_events(responses: Iterable[rpc_pb2.WatchResponse]) -> list[Any]:
    """The events of ``responses``, in order."""
    return [ev for resp in responses for ev in resp.events]
