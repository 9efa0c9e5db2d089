"""``navarch store``: check the data dir, start Raft, serve the etcd v3 API until signalled."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

import grpc
import structlog
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from navarch import _eventloop as eventloop
from raftstore import _errors as err
from raftstore._cluster import AuthService, ClusterService, MaintenanceService, url
from raftstore._commands import Op
from raftstore._config import StoreConfig
from raftstore._datadir import DataDir, DataDirError, prepare
from raftstore._kv import KVService
from raftstore._lease import LeaseKeeper, LeaseService
from raftstore._mvcc import Member, MVCCStore
from raftstore._node import RaftNode
from raftstore._watch import WatchHub, WatchService
from raftstore.raft.storage import StorageCorrupt

log = structlog.get_logger("raftstore")

GRPC_OVERHEAD_BYTES = 512 * 1024  # as etcd: room for gRPC framing above max-request-bytes


def run_store(config: StoreConfig) -> int:
    """Run one member until SIGTERM/SIGINT. Returns the process exit code."""
    try:
        _check_bindable(config)  # first: a refused start leaves nothing on disk
        datadir, new = prepare(config)
    except DataDirError as e:
        log.error("cannot start: data dir unusable", error=str(e))
        print(f"navarch store: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"navarch store: {e}", file=sys.stderr)
        return 1
    log.info("starting member", name=config.name, data_dir=str(datadir.root), new=new,
             client=f"{config.listen_client[0]}:{config.listen_client[1]}",
             peer=config.peer_address, cluster=[a for _, a in config.initial_cluster])
    return eventloop.run(_serve(config, datadir))


def _check_bindable(config: StoreConfig) -> None:
    for flag, (host, port) in (("--listen-client", config.listen_client),
                               ("--listen-peer", config.listen_peer)):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as e:
                raise OSError(f"{flag}: cannot listen on {host}:{port}: {e.strerror}") from e


async def _serve(config: StoreConfig, datadir: DataDir) -> int:
    loop = asyncio.get_running_loop()
    store = MVCCStore()
    hub_box: list[WatchHub] = []
    try:
        node = RaftNode(
            config, datadir.raft, store, loop,
            on_applied=lambda applied: hub_box[0].publish(applied) if hub_box else None,
            on_restored=lambda: hub_box[0].restored() if hub_box else None,
        )
    except StorageCorrupt as e:
        log.error("cannot start: Raft storage damaged", error=str(e))
        print(f"navarch store: {e}", file=sys.stderr)
        return 1
    hub = WatchHub(node)
    hub_box.append(hub)
    try:
        await node.start()
    except OSError as e:
        print(f"navarch store: --listen-peer: {e}", file=sys.stderr)
        node.stop()
        return 1

    # As etcd: serve clients only once this member is in the replicated member table
    # (immediately on a restart; after the first commit with a quorum on first start).
    await _publish_self(node, config)
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", config.max_request_bytes + GRPC_OVERHEAD_BYTES),
        ("grpc.max_send_message_length", 2**31 - 1),
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 5000),
    ])
    rpc_pb2_grpc.add_KVServicer_to_server(KVService(node), server)
    rpc_pb2_grpc.add_WatchServicer_to_server(
        WatchService(hub, config.progress_notify_interval), server)
    rpc_pb2_grpc.add_LeaseServicer_to_server(LeaseService(node), server)
    rpc_pb2_grpc.add_ClusterServicer_to_server(ClusterService(node), server)
    rpc_pb2_grpc.add_MaintenanceServicer_to_server(MaintenanceService(node), server)
    rpc_pb2_grpc.add_AuthServicer_to_server(AuthService(), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [s.full_name for s in rpc_pb2.DESCRIPTOR.services_by_name.values()]
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME],
                                        server)
    host, port = config.listen_client
    server.add_insecure_port(f"{host}:{port}" if ":" not in host else f"[{host}]:{port}")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    log.info("serving etcd v3 API", client=f"{host}:{port}", member_id=f"{node.member_id:x}")

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [loop.create_task(LeaseKeeper(node).run())]
    await stop.wait()
    log.info("stopping member", name=config.name, **node.stats)
    await health_servicer.enter_graceful_shutdown()
    for t in tasks:
        t.cancel()
    await server.stop(1.0)
    await node.aclose()
    return 0


async def _publish_self(node: RaftNode, config: StoreConfig) -> None:
    """Record the cluster ID (first leader) and this member's name and URLs in the
    replicated member table, retrying until both are there (as etcd's publish)."""
    ch, cp = config.advertise_client
    me = Member(node.member_id, config.name, (url(config.peer_address),), (url(f"{ch}:{cp}"),))
    interval = max(0.2, config.election_timeout / 2)
    while True:
        have_cluster = bool(node.store.cluster_id)
        published = node.store.members.get(node.member_id) == me
        if have_cluster and published:
            return
        try:
            if not have_cluster:
                await node.propose(Op.CLUSTER_INIT, rpc_pb2.Member(ID=node.local_cluster_id))
            if not published:
                await node.propose(Op.MEMBER_PUBLISH, me.to_pb())
                log.info("published member", name=config.name, member_id=f"{me.id:x}")
        except err.StoreError as e:
            log.debug("publish deferred", reason=e.message)
            await asyncio.sleep(interval)
