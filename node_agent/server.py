"""The node service (``navarch.v1.NodeAgent``): logs, exec and stats of this node's pods,
straight from containerd (CRI) and the log files it writes. The API server's Pods
service proxies ``navctl logs | exec | top`` here.

    ContainerLogs: labels → the container's attempts (newest first) → its log_path →
                   read, parse (logs.py), select, render; follow: poll the file until
                   the attempt stops, then drain it
    Exec:          no stdin, no tty → CRI ExecSync; otherwise CRI Exec → containerd's
                   streaming server (execstream.py)
    Stats:         CRI ListContainerStats, CPU as a rate between two samples

Containers are found by the labels the agent put on them (``cri.py``), so the service
needs nothing from the agent but its CRI client and root directory.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
from cri_api.v1 import api_pb2

from navarch.v1 import node_pb2, node_pb2_grpc

from . import cri, logs
from .cri import CriClient

if TYPE_CHECKING:
    from .execstream import Dial

__all__ = ["CpuRates", "CpuSample", "CpuWindow", "NodeAgentService", "Refusal",
           "add_to_server", "choose_container", "next_cpu_window"]

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

FOLLOW_POLL = 0.1  # seconds between reads of a followed log
STATE_CHECK = 1.0  # seconds between checks that a followed container still runs
CHUNK = 64 * 1024  # bytes per LogChunk, at most (lines are not split below this)
EXEC_CHUNK = 1 << 20  # bytes of ExecSync output per message (gRPC's limit is 4 MiB)
CPU_WINDOW_NS = 200_000_000  # the shortest window a CPU rate is computed over
FIRST_SAMPLE_WAIT = 0.5  # seconds between the two samples of a first Stats call


class Refusal(Exception):
    """A request this node cannot serve: the gRPC status code and kubectl's words."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def choose_container(pod: str, names: Iterable[str], requested: str) -> str:
    """The container a request means: ``requested``, or the pod's only container.

    Raises Refusal with kubectl's message when there is a choice to make, or no such
    container."""
    choices = sorted(set(names))
    if requested:
        if requested not in choices:
            raise Refusal(grpc.StatusCode.NOT_FOUND,
                          f"container {requested} is not valid for pod {pod}")
        return requested
    if len(choices) != 1:
        raise Refusal(grpc.StatusCode.INVALID_ARGUMENT,
                      f"a container name must be specified for pod {pod}, "
                      f"choose one of: [{' '.join(choices)}]")
    return choices[0]


@dataclass(frozen=True)
class CpuSample:
    """A container's cumulative CPU time (``usage_ns``) at ``at_ns`` (both nanoseconds)."""

    at_ns: int
    usage_ns: int


@dataclass(frozen=True)
class CpuWindow:
    """The newest sample a rate was computed at, and that rate (None: not known yet)."""

    sample: CpuSample
    nano_cores: int | None


def next_cpu_window(prev: CpuWindow | None, sample: CpuSample,
                    min_window_ns: int = CPU_WINDOW_NS) -> CpuWindow:
    """Fold a new sample in: the rate since ``prev``'s sample once at least
    ``min_window_ns`` passed (a shorter window keeps ``prev``, so close calls do not see
    noise), in billionths of a core; a counter that went back (a new container behind
    the same id) restarts the window."""
    if prev is None or sample.usage_ns < prev.sample.usage_ns \
            or sample.at_ns < prev.sample.at_ns:
        return CpuWindow(sample, None)
    elapsed = sample.at_ns - prev.sample.at_ns
    if elapsed < min_window_ns:
        return prev
    used = sample.usage_ns - prev.sample.usage_ns
    return CpuWindow(sample, used * 1_000_000_000 // elapsed)


class CpuRates:
    """Each container's CPU rate from CRI's stats: CRI's own when it gives one, else the
    rate between our samples (:func:`next_cpu_window`)."""

    def __init__(self) -> None:
        self._windows: dict[str, CpuWindow] = {}

    def observe(self, stats: Iterable[api_pb2.ContainerStats]) -> None:
        for s in stats:
            sample = CpuSample(s.cpu.timestamp, s.cpu.usage_core_nano_seconds.value)
            self._windows[s.attributes.id] = next_cpu_window(
                self._windows.get(s.attributes.id), sample)

    def nano_cores(self, s: api_pb2.ContainerStats) -> int | None:
        """Billionths of a core, or None while no rate is known yet."""
        if s.cpu.usage_nano_cores.value:
            return s.cpu.usage_nano_cores.value
        window = self._windows.get(s.attributes.id)
        return window.nano_cores if window is not None else None

    def keep_only(self, ids: set[str]) -> None:
        """Forget the containers not in ``ids`` (gone from a full listing)."""
        for cid in set(self._windows) - ids:
            del self._windows[cid]


class NodeAgentService(node_pb2_grpc.NodeAgentServicer):
    """Serves ContainerLogs, Exec and Stats for the pods of one node.

    Stateless but for the CPU windows of Stats; safe for concurrent calls on one loop.
    """

    def __init__(self, cri_client: CriClient, root_dir: Path, node_name: str, *,
                 follow_poll: float = FOLLOW_POLL, dial: Dial | None = None) -> None:
        self.cri = cri_client
        self.root_dir = root_dir
        self.node_name = node_name
        self.follow_poll = follow_poll
        #: how interactive exec reaches containerd's streaming server (host, port) ->
        #: (reader, writer); None: asyncio.open_connection (tests enter the node's netns)
        self.dial = dial
        self._cpu = CpuRates()

    # --- finding containers -------------------------------------------------------------

    async def _attempts(self, namespace: str, pod: str, uid: str, container: str
                        ) -> list[api_pb2.ContainerStatus]:
        """The named container's attempts on this node, newest first (never empty)."""
        labels = {cri.POD_NAMESPACE: namespace or "default", cri.POD_NAME: pod}
        if uid:
            labels[cri.POD_UID] = uid
        try:
            found = await self.cri.list_containers(labels)
        except grpc.aio.AioRpcError as exc:
            raise Refusal(grpc.StatusCode.UNAVAILABLE,
                          f"the container runtime of node {self.node_name}: "
                          f"{exc.details()}") from None
        if not found:
            raise Refusal(grpc.StatusCode.NOT_FOUND,
                          f'pod "{pod}" has no containers on node {self.node_name}')
        if not uid:  # an older pod of the same name may linger: take the newest one's
            newest = max(found, key=lambda c: c.created_at).labels.get(cri.POD_UID, "")
            found = [c for c in found if c.labels.get(cri.POD_UID, "") == newest]
        name = choose_container(pod, (c.metadata.name for c in found), container)
        mine = [c for c in found if c.metadata.name == name]
        try:
            statuses = await asyncio.gather(*(self.cri.container_status(c.id) for c in mine))
        except grpc.aio.AioRpcError as exc:  # removed in between: the caller may retry
            raise Refusal(grpc.StatusCode.UNAVAILABLE,
                          f"container {name} of pod {pod}: {exc.details()}") from None
        return sorted(statuses, key=lambda s: (-cri.restart_count_of(s), -s.created_at))

    async def _log_of(self, request: node_pb2.ContainerLogsRequest
                      ) -> tuple[api_pb2.ContainerStatus, Path]:
        """The attempt whose log the request wants, and that log's path."""
        attempts = await self._attempts(request.namespace, request.pod, request.uid,
                                        request.container)
        current = attempts[0]
        if not request.previous:
            return current, Path(current.log_path)
        if len(attempts) > 1:
            return attempts[1], Path(attempts[1].log_path)
        count = cri.restart_count_of(current)  # its container may be gone, not its log
        earlier = Path(current.log_path).with_name(f"{count - 1}.log")
        if count > 0 and current.log_path and earlier.exists():
            return current, earlier
        raise Refusal(grpc.StatusCode.NOT_FOUND,
                      f'previous terminated container "{current.metadata.name}" in pod '
                      f'"{request.pod}" not found')

    async def _running(self, container_id: str) -> bool:
        """Whether a container still runs (so its log may still grow)."""
        try:
            status = await self.cri.container_status(container_id)
        except grpc.aio.AioRpcError:
            return False
        return status.state in (cri.RUNNING, cri.CREATED)

    # --- ContainerLogs ------------------------------------------------------------------

    async def ContainerLogs(self, request: node_pb2.ContainerLogsRequest, context: Context
                            ) -> AsyncIterator[node_pb2.LogChunk]:
        """A container's log: selected lines, then (following) new lines as written."""
        try:
            target, path = await self._log_of(request)
        except Refusal as exc:
            await context.abort(exc.code, exc.message)
        since = time.time() - request.since_seconds if request.since_seconds > 0 else 0.0
        tail = request.tail_lines if request.HasField("tail_lines") else None
        budget = request.limit_bytes if request.limit_bytes > 0 else -1
        if tail is not None and not since:
            data, offset = await asyncio.to_thread(_read_tail, path, tail)
        else:
            data = await asyncio.to_thread(_read_from, path, 0, None)
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
        stopped = False
        checked = time.monotonic()
        while True:
            more = await asyncio.to_thread(_read_from, path, offset, CHUNK)
            if more:
                offset += len(more)
                text = b"".join(logs.render(assembler.feed(more), request.timestamps))
                if text:
                    text, budget = _clip(text, budget)
                    yield node_pb2.LogChunk(data=text)
                    if budget == 0:
                        return
                continue
            if stopped:
                return  # the attempt ended and everything it wrote was sent
            if time.monotonic() - checked >= STATE_CHECK:
                checked = time.monotonic()
                stopped = not await self._running(target.id)
                continue  # read once more: it may have written before it stopped
            await asyncio.sleep(self.follow_poll)

    # --- Exec ---------------------------------------------------------------------------

    async def Exec(self, request_iterator: AsyncIterator[node_pb2.ExecInput],
                   context: Context) -> AsyncIterator[node_pb2.ExecOutput]:
        """Run a command in a running container; the last output has its exit code."""
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("input") != "start":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "start: the first message of an Exec names the command")
        assert first is not None
        request = first.start
        try:
            if not request.command:
                raise Refusal(grpc.StatusCode.INVALID_ARGUMENT,
                              "command: required (navctl exec POD -- COMMAND [ARGS...])")
            target = (await self._attempts(request.namespace, request.pod, request.uid,
                                           request.container))[0]
            if target.state != cri.RUNNING:
                raise Refusal(grpc.StatusCode.FAILED_PRECONDITION,
                              f"cannot exec into a container that is not running: "
                              f"{target.metadata.name} of pod {request.pod}")
        except Refusal as exc:
            await context.abort(exc.code, exc.message)
        if request.stdin or request.tty:
            from .execstream import interactive_exec

            try:
                async for out in interactive_exec(self.cri, target.id, request,
                                                  request_iterator, self.dial):
                    yield out
            except Refusal as exc:
                await context.abort(exc.code, exc.message)
            return
        try:
            reply = await self.cri.exec_sync(target.id, list(request.command),
                                             timeout=request.timeout_seconds)
        except grpc.aio.AioRpcError as exc:
            code = grpc.StatusCode.NOT_FOUND if exc.code() == grpc.StatusCode.NOT_FOUND \
                else grpc.StatusCode.UNKNOWN
            await context.abort(code, f"exec in container {target.metadata.name} of pod "
                                      f"{request.pod}: {exc.details()}")
        for at in range(0, max(len(reply.stdout), len(reply.stderr)), EXEC_CHUNK):
            yield node_pb2.ExecOutput(stdout=reply.stdout[at:at + EXEC_CHUNK],
                                      stderr=reply.stderr[at:at + EXEC_CHUNK])
        yield node_pb2.ExecOutput(exit_code=reply.exit_code)

    # --- Stats --------------------------------------------------------------------------

    async def _sample(self, request: node_pb2.StatsRequest) -> list[api_pb2.ContainerStats]:
        """Stats of the selected pods' containers that have usage (running ones)."""
        def wanted(s: api_pb2.ContainerStats) -> bool:
            labels = s.attributes.labels
            return (s.HasField("cpu") and s.HasField("memory")
                    and (not request.namespace
                         or labels.get(cri.POD_NAMESPACE) == request.namespace)
                    and (not request.pod or labels.get(cri.POD_NAME) == request.pod))
        return [s for s in await self.cri.list_container_stats() if wanted(s)]

    async def Stats(self, request: node_pb2.StatsRequest, context: Context
                    ) -> node_pb2.StatsResponse:
        """Per pod and container: CPU (CRI's rate, else ours) and memory working set."""
        stats = await self._sample(request)
        self._cpu.observe(stats)
        if any(self._cpu.nano_cores(s) is None for s in stats):
            await asyncio.sleep(FIRST_SAMPLE_WAIT)  # a rate needs two samples
            stats = await self._sample(request)
            self._cpu.observe(stats)
        if not request.namespace and not request.pod:  # a full listing: forget the gone
            self._cpu.keep_only({s.attributes.id for s in stats})
        pods: dict[tuple[str, str], node_pb2.PodUsage] = {}
        for s in stats:
            labels = s.attributes.labels
            key = (labels.get(cri.POD_NAMESPACE, ""), labels.get(cri.POD_NAME, ""))
            pod = pods.get(key)
            if pod is None:
                pod = pods[key] = node_pb2.PodUsage(namespace=key[0], name=key[1],
                                                    node=self.node_name)
            nano = self._cpu.nano_cores(s) or 0
            pod.containers.add(name=labels.get(cri.CONTAINER_NAME, s.attributes.metadata.name),
                               cpu_nano_cores=max(0, nano),
                               memory_working_set_bytes=s.memory.working_set_bytes.value)
        out = node_pb2.StatsResponse()
        for key in sorted(pods):
            pod = pods[key]
            pod.containers.sort(key=lambda c: c.name)
            out.pods.append(pod)
        return out


def _read_from(path: Path, offset: int, size: int | None) -> bytes:
    """Up to ``size`` bytes (None: all) of ``path`` from ``offset``; none if absent."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read() if size is None else f.read(size)
    except FileNotFoundError:
        return b""


def _read_tail(path: Path, lines: int) -> tuple[bytes, int]:
    """Enough of the end of ``path`` to hold its last ``lines`` lines (from a record's
    start), and the file's size then (where following goes on)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            block = CHUNK
            while True:
                start = max(0, size - block)
                f.seek(start)
                data = f.read(size - start)
                if start > 0:  # the first record is cut, and maybe the first line
                    data = data[data.find(b"\n") + 1:] if b"\n" in data else b""
                if start == 0 or len(logs.parse(data)) > lines:
                    return data, size
                block *= 4
    except FileNotFoundError:
        return b"", 0


def _chunks(lines: Iterable[bytes]) -> Iterator[bytes]:
    """Lines gathered into chunks of about CHUNK bytes."""
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
