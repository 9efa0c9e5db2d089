"""A do-nothing ``navarch.v1.Resources`` server on Python's grpc.aio: the ceiling of any
Python API server.

``python -m bench.api_floor PORT`` keeps objects in a dict: Create, Get and Update store or
return them (no validation, no defaults, no store, no resourceVersion checks), List returns
every object of the resource and namespace in one page, and Watch (WatchBatches: in
batches) streams each Create and Update of its namespace, serialized once for all
watchers, resuming from the counter it hands out as resourceVersion. Measured by
``bench.api`` with the same client and phases as the real API server, it shows how much
of each figure is the per-call cost of Python gRPC (server and SDK client) rather than
the API server's own work.
"""

from __future__ import annotations

import asyncio
import builtins
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import any_pb2, descriptor_pool, message_factory

from navarch import _eventloop as eventloop
from navarch.v1 import api_pb2, core_pb2
from services.apiserver.grpc_api import encode_event_batch
from services.apiserver.watchcache import BATCH_EVENTS

KINDS_SERVED = (core_pb2.Namespace, core_pb2.Pod)  # importing core_pb2 registers them

Key = tuple[str, str, str]  # resource, namespace, name


class FloorResources:
    """The verbs the benchmark calls, over a dict. Single event loop; no locking needed."""

    def __init__(self) -> None:
        self.objects: dict[Key, any_pb2.Any] = {}
        self.revision = 1
        self.history: list[tuple[int, str, str, bytes]] = []  # revision, resource, ns, event
        self.watchers: list[tuple[str, str, asyncio.Queue[bytes]]] = []

    @staticmethod
    def _name(packed: any_pb2.Any) -> str:
        desc = descriptor_pool.Default().FindMessageTypeByName(packed.type_url.rsplit("/")[-1])
        obj: Any = message_factory.GetMessageClass(desc)()
        obj.ParseFromString(packed.value)
        return str(obj.metadata.name)

    def _store(self, resource: str, namespace: str, packed: any_pb2.Any, kind: str) -> bytes:
        self.objects[(resource, namespace, self._name(packed))] = packed
        self.revision += 1
        event = api_pb2.WatchEvent(type=kind, object=packed).SerializeToString()
        self.history.append((self.revision, resource, namespace, event))
        for res, ns, queue in self.watchers:
            if res == resource and ns in ("", namespace):
                queue.put_nowait(event)
        return api_pb2.ObjectResponse(object=packed).SerializeToString()

    async def create(self, request: bytes, context: Any) -> bytes:
        """Store the object; ADDED to the watchers."""
        req = api_pb2.CreateRequest.FromString(request)
        return self._store(req.resource, req.namespace, req.object, "ADDED")

    async def update(self, request: bytes, context: Any) -> bytes:
        """Replace the object; MODIFIED to the watchers."""
        req = api_pb2.UpdateRequest.FromString(request)
        return self._store(req.resource, req.namespace, req.object, "MODIFIED")

    async def get(self, request: bytes, context: Any) -> bytes:
        """The stored object (an empty response when there is none)."""
        req = api_pb2.GetRequest.FromString(request)
        found = self.objects.get((req.resource, req.namespace, req.name))
        return api_pb2.ObjectResponse(object=found).SerializeToString()

    async def list(self, request: bytes, context: Any) -> bytes:
        """Every object of the resource in the namespace ("" = all), in one page."""
        req = api_pb2.ListRequest.FromString(request)
        items = [v for (res, ns, _), v in self.objects.items()
                 if res == req.resource and req.namespace in ("", ns)]
        return api_pb2.ListResponse(items=items, resource_version=str(self.revision)
                                    ).SerializeToString()

    async def _batches(self, request: bytes) -> AsyncIterator[builtins.list[bytes]]:
        """Changes after the request's resourceVersion, then as they come: every event
        queued at the time in one batch, as the API server sends them."""
        req = api_pb2.WatchRequest.FromString(request)
        since = int(req.resource_version or 0)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        entry = (req.resource, req.namespace, queue)
        self.watchers.append(entry)
        for revision, res, ns, event in list(self.history):
            if revision > since and res == req.resource and req.namespace in ("", ns):
                queue.put_nowait(event)
        try:
            while True:
                batch = [await queue.get()]
                while not queue.empty() and len(batch) < BATCH_EVENTS:
                    batch.append(queue.get_nowait())
                yield batch
        finally:
            self.watchers.remove(entry)

    async def watch(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        """Watch: one event per message."""
        async for batch in self._batches(request):
            for event in batch:
                yield event

    async def watch_batches(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        """WatchBatches: a WatchEventBatch per message."""
        async for batch in self._batches(request):
            yield encode_event_batch(batch)


async def serve(port: int) -> None:
    """Serve on 127.0.0.1:``port`` until killed."""
    floor = FloorResources()
    handlers = {
        "Create": grpc.unary_unary_rpc_method_handler(floor.create),
        "Update": grpc.unary_unary_rpc_method_handler(floor.update),
        "Get": grpc.unary_unary_rpc_method_handler(floor.get),
        "List": grpc.unary_unary_rpc_method_handler(floor.list),
        "Watch": grpc.unary_stream_rpc_method_handler(floor.watch),
        "WatchBatches": grpc.unary_stream_rpc_method_handler(floor.watch_batches),
    }
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0),
                                      ("grpc.max_send_message_length", 64 * 1024 * 1024)])
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("navarch.v1.Resources", handlers),))
    if not server.add_insecure_port(f"127.0.0.1:{port}"):
        raise SystemExit(f"api_floor: cannot listen on 127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    eventloop.run(serve(int(sys.argv[1])))
