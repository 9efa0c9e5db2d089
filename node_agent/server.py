"""The node service (``navarch.v1.NodeAgent``): logs, exec and stats of this node's pods,
straight from containerd (CRI) and the log files it writes. The API server's Pods
service proxies ``navctl logs | exec | top`` here.

Containers are found by the labels the agent put on them (``cri.py``), so the service
needs nothing from the agent but its CRI client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from cri_api.v1 import api_pb2

from navarch.v1 import node_pb2, node_pb2_grpc

from . import cri, logs
from .cri import CriClient

__all__ = ["NodeAgentService", "add_to_server"]

FOLLOW_POLL = 0.1  # seconds between reads of a followed log
CHUNK = 64 * 1024


class NodeAgentService(node_pb2_grpc.NodeAgentServicer):
    """Serves ContainerLogs, Exec and Stats for the pods of one node."""

    def __init__(self, cri_client: CriClient, root_dir: Path, node_name: str) -> None:
        self.cri = cri_client
        self.root_dir = root_dir
        self.node_name = node_name
        self._cpu: dict[str, tuple[int, int]] = {}  # container id -> (ns timestamp, usage)

    async def _attempts(self, namespace: str, pod: str, container: str,
                        context: grpc.aio.ServicerContext[Any, Any]
                        ) -> list[api_pb2.ContainerStatus]:
        """The chosen container's attempts, newest first (aborts with kubectl's errors)."""
        found = await self.cri.list_containers({cri.POD_NAMESPACE: namespace or "default",
                                                cri.POD_NAME: pod})
        if not found:
            await context.abort(grpc.StatusCode.NOT_FOUND,
                                f'pod "{pod}" has no containers on node {self.node_name}')
        names = sorted({c.metadata.name for c in found})
        if not container:
            if len(names) > 1:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"a container name must be specified for pod {pod}, "
                                    f"choose one of: [{' '.join(names)}]")
            container = names[0]
        elif container not in names:
            await context.abort(grpc.StatusCode.NOT_FOUND,
                                f"container {container} is not valid for pod {pod}")
        mine = [c for c in found if c.metadata.name == container]
        statuses = await asyncio.gather(*(self.cri.container_status(c.id) for c in mine))
        return sorted(statuses, key=lambda s: (-cri.restart_count_of(s), -s.created_at))

    async def ContainerLogs(self, request: node_pb2.ContainerLogsRequest,
                            context: grpc.aio.ServicerContext[Any, Any]
                            ) -> AsyncIterator[node_pb2.LogChunk]:
        attempts = await self._attempts(request.namespace, request.pod, request.container,
                                        context)
        if request.previous:
            if len(attempts) < 2:
                await context.abort(grpc.StatusCode.NOT_FOUND,
                                    f'previous terminated container "{attempts[0].metadata.name}"'
                                    f' in pod "{request.pod}" not found')
            target = attempts[1]
        else:
            target = attempts[0]
        path = Path(target.log_path)
        since = time.time() - request.since_seconds if request.since_seconds > 0 else 0.0
        tail = request.tail_lines if request.HasField("tail_lines") else None
        budget = request.limit_bytes or -1
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            data = b""
        offset = len(data)
        assembler = logs.LineAssembler()
        lines = logs.select(assembler.feed(data), since=since, tail=tail)
        for chunk in _chunks(logs.render(lines, request.timestamps)):
            chunk, budget = _clip(chunk, budget)
            yield node_pb2.LogChunk(data=chunk)
            if budget == 0:
                return
        if not request.follow or request.previous:
            return
        last_check = time.monotonic()
        while True:
            more = await asyncio.to_thread(_read_from, path, offset)
            if more:
                offset += len(more)
                text = b"".join(logs.render(assembler.feed(more), request.timestamps))
                if text:
                    text, budget = _clip(text, budget)
                    yield node_pb2.LogChunk(data=text)
                    if budget == 0:
                        return
                continue
            if time.monotonic() - last_check > 1.0:
                last_check = time.monotonic()
                if not await self._still_current(target):
                    return
            await asyncio.sleep(FOLLOW_POLL)

    async def _still_current(self, target: api_pb2.ContainerStatus) -> bool:
        """Whether a followed container still runs (its log may still grow)."""
        try:
            status = await self.cri.container_status(target.id)
        except grpc.aio.AioRpcError:
            return False
        return status.state in (cri.RUNNING, cri.CREATED)

    async def Exec(self, request: node_pb2.ExecRequest,
                   context: grpc.aio.ServicerContext[Any, Any]
                   ) -> AsyncIterator[node_pb2.ExecOutput]:
        if request.stdin or request.tty:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED,
                                "interactive exec (stdin or a TTY) is not supported yet; "
                                "run the command without -i/-t")
        if not request.command:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "command: required (navctl exec POD -- COMMAND [ARGS...])")
        attempts = await self._attempts(request.namespace, request.pod, request.container,
                                        context)
        target = attempts[0]
        if target.state != cri.RUNNING:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"cannot exec in a stopped container: {target.metadata.name}"
                                f" of pod {request.pod}")
        try:
            reply = await self.cri.exec_sync(target.id, list(request.command),
                                             timeout=request.timeout_seconds)
        except grpc.aio.AioRpcError as exc:
            await context.abort(grpc.StatusCode.INTERNAL, f"exec failed: {exc.details()}")
            raise
        yield node_pb2.ExecOutput(stdout=reply.stdout, stderr=reply.stderr,
                                  exit_code=reply.exit_code)

    async def _sample(self) -> dict[str, api_pb2.ContainerStats]:
        return {s.attributes.id: s for s in await self.cri.list_container_stats()}

    async def Stats(self, request: node_pb2.StatsRequest,
                    context: grpc.aio.ServicerContext[Any, Any]) -> node_pb2.StatsResponse:
        stats = await self._sample()
        if any(cid not in self._cpu for cid in stats):  # a rate needs two samples
            for cid, s in stats.items():
                self._cpu[cid] = (s.cpu.timestamp, s.cpu.usage_core_nano_seconds.value)
            await asyncio.sleep(0.5)
            stats = await self._sample()
        pods: dict[tuple[str, str], node_pb2.PodUsage] = {}
        for cid, s in stats.items():
            labels = s.attributes.labels
            ns, name = labels.get(cri.POD_NAMESPACE, ""), labels.get(cri.POD_NAME, "")
            if (request.namespace and ns != request.namespace) or \
                    (request.pod and name != request.pod):
                continue
            now, usage = s.cpu.timestamp, s.cpu.usage_core_nano_seconds.value
            before = self._cpu.get(cid)
            self._cpu[cid] = (now, usage)
            nano = s.cpu.usage_nano_cores.value
            if not nano and before is not None and now > before[0]:
                nano = (usage - before[1]) * 1_000_000_000 // (now - before[0])
            pod = pods.setdefault((ns, name), node_pb2.PodUsage(namespace=ns, name=name,
                                                                 node=self.node_name))
            pod.containers.add(name=labels.get(cri.CONTAINER_NAME, s.attributes.metadata.name),
                               cpu_nano_cores=max(0, nano),
                               memory_working_set_bytes=s.memory.working_set_bytes.value)
        for cid in set(self._cpu) - set(stats):
            del self._cpu[cid]
        out = node_pb2.StatsResponse()
        out.pods.extend(pods[key] for key in sorted(pods))
        return out


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(CHUNK)
    except FileNotFoundError:
        return b""


def _chunks(lines: Any) -> Any:
    buf: list[bytes] = []
    size = 0
    for line in lines:
        buf.append(line)
        size += len(line)
        if size >= CHUNK:
            yield b"".join(buf)
            buf, size = [], 0
    if buf:
        yield b"".join(buf)


def _clip(data: bytes, budget: int) -> tuple[bytes, int]:
    """``data`` cut to ``budget`` bytes (-1: unlimited) and what is left of it."""
    if budget < 0:
        return data, budget
    return data[:budget], max(0, budget - len(data))


def add_to_server(service: NodeAgentService, server: grpc.aio.Server) -> None:
    """Register the node service on the agent's gRPC server."""
    node_pb2_grpc.add_NodeAgentServicer_to_server(service, server)  # type: ignore[no-untyped-call]
