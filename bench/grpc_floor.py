"""A do-nothing etcd KV server in Python: the ceiling of any Python gRPC server.

``python -m bench.grpc_floor PORT [--server aio|threads]`` answers Put and Range from a
dict, with no Raft, no MVCC and no disk. Measured by ``bench.store`` with the same client
as etcd and raftstore, it shows how much of raftstore's throughput gap is the per-request
cost of Python gRPC itself (on a 2-core machine the client takes one core).

Two servers, because grpcio has two and they cost differently per call:

- ``aio`` is grpc.aio on the event loop every Navarch daemon runs (navarch/_eventloop.py),
  the server raftstore is built on;
- ``threads`` is grpcio's synchronous server with a pool of ``THREADS`` workers: less CPU
  per call for a handler that needs nothing else, but every handler that must wait for
  an event loop (a Raft proposal, a watch) pays a hand-off between threads for it.
"""

from __future__ import annotations

import argparse
from concurrent import futures

import grpc
from aetcd.rpc import kv_pb2, rpc_pb2, rpc_pb2_grpc

from navarch import _eventloop as eventloop

THREADS = 4  # measured best of 1, 4, 16 and 64 workers on a 2-core machine


OPTIONS = [("grpc.so_reuseport", 0)]


class Dict:
    """Put stores into a dict; Range reads one key from it. Nothing else."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def put(self, request: rpc_pb2.PutRequest) -> rpc_pb2.PutResponse:
        self.data[request.key] = request.value
        resp = rpc_pb2.PutResponse()
        resp.header.revision = 1
        return resp

    def range(self, request: rpc_pb2.RangeRequest) -> rpc_pb2.RangeResponse:
        resp = rpc_pb2.RangeResponse()
        resp.header.revision = 1
        value = self.data.get(request.key)
        if value is not None:
            resp.kvs.append(kv_pb2.KeyValue(key=request.key, value=value, version=1,
                                            create_revision=1, mod_revision=1))
            resp.count = 1
        return resp


class AioKV(rpc_pb2_grpc.KVServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.dict = Dict()

    async def Put(self, request: rpc_pb2.PutRequest, context: object) -> rpc_pb2.PutResponse:
        return self.dict.put(request)

    async def Range(self, request: rpc_pb2.RangeRequest,
                    context: object) -> rpc_pb2.RangeResponse:
        return self.dict.range(request)


class ThreadedKV(rpc_pb2_grpc.KVServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.dict = Dict()

    def Put(self, request: rpc_pb2.PutRequest, context: object) -> rpc_pb2.PutResponse:
        return self.dict.put(request)

    def Range(self, request: rpc_pb2.RangeRequest, context: object) -> rpc_pb2.RangeResponse:
        return self.dict.range(request)


def _listen(server: grpc.Server | grpc.aio.Server, port: int) -> None:
    if not server.add_insecure_port(f"127.0.0.1:{port}"):
        raise SystemExit(f"grpc_floor: cannot listen on 127.0.0.1:{port}")


async def serve_aio(port: int) -> None:
    server = grpc.aio.server(options=OPTIONS)
    rpc_pb2_grpc.add_KVServicer_to_server(AioKV(), server)
    _listen(server, port)
    await server.start()
    await server.wait_for_termination()


def serve_threads(port: int) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=THREADS), options=OPTIONS)
    rpc_pb2_grpc.add_KVServicer_to_server(ThreadedKV(), server)
    _listen(server, port)
    server.start()
    server.wait_for_termination()


SERVERS = ("aio", "threads")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_floor")
    parser.add_argument("port", type=int)
    parser.add_argument("--server", choices=SERVERS, default="aio")
    args = parser.parse_args()
    if args.server == "aio":
        eventloop.run(serve_aio(args.port))
    else:
        serve_threads(args.port)


if __name__ == "__main__":
    main()
