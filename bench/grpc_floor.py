"""A do-nothing etcd KV server on Python's grpc.aio: the ceiling of any Python gRPC server.

``python -m bench.grpc_floor PORT`` answers Put and Range from a dict, with no Raft, no
MVCC and no disk. Measured by ``bench.store`` with the same client as etcd and raftstore,
it shows how much of raftstore's throughput gap is the per-request cost of Python gRPC
itself (on a 2-core machine the client takes one core).
"""

from __future__ import annotations

import asyncio
import sys

import grpc
from aetcd.rpc import kv_pb2, rpc_pb2, rpc_pb2_grpc


class FloorKV(rpc_pb2_grpc.KVServicer):  # type: ignore[misc]
    """Put stores into a dict; Range reads one key from it. Nothing else."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    async def Put(self, request: rpc_pb2.PutRequest, context: object) -> rpc_pb2.PutResponse:
        self.data[request.key] = request.value
        resp = rpc_pb2.PutResponse()
        resp.header.revision = 1
        return resp

    async def Range(self, request: rpc_pb2.RangeRequest,
                    context: object) -> rpc_pb2.RangeResponse:
        resp = rpc_pb2.RangeResponse()
        resp.header.revision = 1
        value = self.data.get(request.key)
        if value is not None:
            resp.kvs.append(kv_pb2.KeyValue(key=request.key, value=value, version=1,
                                            create_revision=1, mod_revision=1))
            resp.count = 1
        return resp


async def serve(port: int) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    rpc_pb2_grpc.add_KVServicer_to_server(FloorKV(), server)
    if not server.add_insecure_port(f"127.0.0.1:{port}"):
        raise SystemExit(f"grpc_floor: cannot listen on 127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
