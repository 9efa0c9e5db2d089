"""``navctl logs``, ``navctl exec`` and ``navctl top``: a pod's output, commands in its
containers, and usage, through the API server's Pods service to the pod's node.

    logs POD|TYPE/NAME ─▶ Pods.Logs ─▶ chunks to stdout as they come
    logs -l SELECTOR   ─▶ each matching pod's, one after the other (-f: all at once)
    exec POD -- CMD    ─▶ Pods.Exec ─▶ stdout/stderr as they come; exit with its code
                          (-i: our stdin goes along; -t: raw terminal, resizes follow)
    top pods | nodes   ─▶ Pods.Top  ─▶ kubectl's table (nodes: the sum of their pods)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

from navarch._labels import label_selector
from navarch._navctl.context import Context, parse_duration
from navarch._navctl.errors import NavctlError
from navarch._navctl.tabwriter import align_table
from navarch._pods import default_container
from navarch._quantity import QuantityError, parse_quantity
from navarch.v1 import core_pb2, node_pb2

__all__ = ["add_arguments", "format_cpu", "format_memory", "logs_plan", "percent",
           "prefixed", "run_exec", "run_logs", "run_top"]

_OWNERS = {"deployment": "deployments", "deploy": "deployments", "replicaset": "replicasets",
           "rs": "replicasets", "job": "jobs", "statefulset": "statefulsets",
           "sts": "statefulsets", "daemonset": "daemonsets", "ds": "daemonsets"}


async def _pod_name(ctx: Context, target: str, verb: str) -> str:
    """``NAME``, ``pod/NAME``, or ``TYPE/NAME`` of a workload: one of its pods (a running
    one first, then by name), as kubectl picks."""
    kind, _, name = target.rpartition("/")
    kind = kind.lower()
    if kind in ("", "pod", "pods", "po"):
        return name
    resource = _OWNERS.get(kind) or _OWNERS.get(kind.removesuffix("s"))
    if resource is None:
        raise NavctlError(f"cannot {verb} {kind!r}: accepted: pod, "
                          + ", ".join(sorted({k for k in _OWNERS if len(k) > 3})))
    client = ctx.client()
    owner = await client.resource(resource, ctx.namespace).get(name)
    selector = str(label_selector(owner.spec.selector))
    pods = (await client.pods(ctx.namespace).list(label_selector=selector)).items
    running = sorted((p for p in pods if p.status.phase == "Running"),
                     key=lambda p: p.metadata.name)
    chosen = running or sorted(pods, key=lambda p: p.metadata.name)
    if not chosen:
        raise NavctlError(f"no pods of {kind}/{name} found")
    if len(pods) > 1:
        ctx.warn(f"Found {len(pods)} pods, using pod/{chosen[0].metadata.name}")
    return str(chosen[0].metadata.name)


def _write(stream: Any, data: bytes) -> None:
    """Bytes to a text stream: to its binary buffer when it has one (a real file)."""
    raw = getattr(stream, "buffer", None)
    if raw is not None:
        raw.write(data)
        raw.flush()
    else:
        stream.write(data.decode(errors="replace"))
        stream.flush()


SELECTOR_TAIL = 10  # kubectl's --tail when pods are chosen by a selector


def logs_plan(pods: list[core_pb2.Pod], container: str, all_containers: bool
              ) -> list[tuple[str, str]]:
    """(pod, container) pairs whose logs ``logs -l`` prints, in order: each pod's
    ``container``, or with ``all_containers`` its init containers then its containers, or
    else its default container (the default-container annotation, else the first)."""
    plan = []
    for pod in pods:
        if container:
            names = [container]
        elif all_containers:
            names = [c.name for c in (*pod.spec.init_containers, *pod.spec.containers)]
        else:
            names = [default_container(pod)]
        plan += [(pod.metadata.name, name) for name in names]
    return plan


def prefixed(data: bytes, prefix: bytes) -> bytes:
    """Every line of ``data`` (whole lines) with ``prefix`` in front."""
    return b"".join(prefix + line for line in data.splitlines(keepends=True))


async def run_logs(ctx: Context, args: argparse.Namespace) -> None:
    """Print a container's log (``-f`` follows it until the container stops); with
    ``-l``, those of every matching pod, as kubectl does."""
    if args.selector and args.pod:
        raise NavctlError("only a selector (-l) or a POD name is allowed")
    if not args.selector and not args.pod:
        raise NavctlError("'logs (POD | TYPE/NAME) [CONTAINER_NAME]'.\n"
                          "POD or TYPE/NAME is a required argument for the logs command")
    if args.selector:
        pods = (await ctx.client().pods(ctx.namespace).list(
            label_selector=args.selector)).items
        plan = logs_plan(sorted(pods, key=lambda p: p.metadata.name), args.container,
                         args.all_containers)
        if args.follow and len(plan) > args.max_log_requests:
            raise NavctlError(
                f"you are attempting to follow {len(plan)} log streams, but maximum allowed "
                f"concurrency is {args.max_log_requests}, use --max-log-requests to increase "
                "the limit")
        tail = args.tail if args.tail >= 0 else SELECTOR_TAIL
    else:
        pod = await _pod_name(ctx, args.pod, "get logs of")
        if args.all_containers or args.prefix:  # the container names are needed
            found = await ctx.client().pods(ctx.namespace).get(pod)
            plan = logs_plan([found], args.container, args.all_containers)
        else:
            plan = [(pod, args.container)]
        tail = args.tail
    if not plan:
        ctx.warn(f"No resources found in {ctx.namespace} namespace.")
        return

    async def one(pod: str, container: str) -> None:
        request = node_pb2.ContainerLogsRequest(
            namespace=ctx.namespace, pod=pod, container=container, follow=args.follow,
            timestamps=args.timestamps, previous=args.previous, limit_bytes=args.limit_bytes)
        if tail >= 0:
            request.tail_lines = tail
        if args.since:
            request.since_seconds = max(1, int(parse_duration(args.since, "--since")))
        prefix = f"[pod/{pod}/{container}] ".encode() if args.prefix else b""
        async for chunk in ctx.client().pod_logs(request):
            _write(ctx.out, prefixed(chunk, prefix) if prefix else chunk)

    if args.follow:  # every stream at once, lines as they come
        await asyncio.gather(*(one(pod, container) for pod, container in plan))
    else:
        for pod, container in plan:
            await one(pod, container)


class _Input:
    """The caller's stdin and terminal size as ExecInput messages, read without blocking
    the loop. ``start`` and ``stop`` bracket its use; ``messages`` ends at end-of-file."""

    def __init__(self, stdin: bool, tty: bool) -> None:
        self.stdin, self.tty = stdin, tty
        self.queue: asyncio.Queue[node_pb2.ExecInput | None] = asyncio.Queue()
        self.fd = sys.stdin.fileno() if stdin else -1
        self._reader = False
        self._thread_read: asyncio.Task[None] | None = None

    def _resize(self) -> None:
        with contextlib.suppress(OSError):
            size = os.get_terminal_size(sys.stdout.fileno())
            self.queue.put_nowait(node_pb2.ExecInput(resize=node_pb2.TerminalSize(
                width=size.columns, height=size.lines)))

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        if data:
            self.queue.put_nowait(node_pb2.ExecInput(stdin=data))
        else:
            asyncio.get_running_loop().remove_reader(self.fd)
            self._reader = False
            self.queue.put_nowait(None)

    async def _read_blocking(self) -> None:  # a regular file: the loop cannot poll it
        while data := await asyncio.to_thread(os.read, self.fd, 65536):
            await self.queue.put(node_pb2.ExecInput(stdin=data))
        await self.queue.put(None)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.tty:
            self._resize()
            with contextlib.suppress(NotImplementedError, ValueError, RuntimeError):
                loop.add_signal_handler(signal.SIGWINCH, self._resize)
        if not self.stdin:
            return
        try:
            loop.add_reader(self.fd, self._readable)
            self._reader = True
        except (OSError, ValueError):
            self._thread_read = asyncio.create_task(self._read_blocking())

    def stop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._reader:
            loop.remove_reader(self.fd)
        if self.tty:
            with contextlib.suppress(NotImplementedError, ValueError, RuntimeError):
                loop.remove_signal_handler(signal.SIGWINCH)
        if self._thread_read is not None:
            self._thread_read.cancel()

    async def messages(self) -> AsyncIterator[node_pb2.ExecInput]:
        while (item := await self.queue.get()) is not None:
            yield item


@contextlib.contextmanager
def _raw_terminal(fd: int, enabled: bool) -> Iterator[None]:
    """The terminal on ``fd`` in raw mode (keys go to the remote as typed), restored."""
    if not enabled:
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def run_exec(ctx: Context, args: argparse.Namespace) -> None:
    """Run a command in a container; exit with its exit code."""
    command = list(args.exec_command)
    if not command:
        raise NavctlError("you must specify at least one command for the container")
    pod = await _pod_name(ctx, args.pod, "exec into")
    use_tty = args.tty and args.stdin  # kubectl: a terminal needs -i as well
    if use_tty and not sys.stdin.isatty():
        ctx.warn("Unable to use a TTY - input is not a terminal or the right kind of file")
        use_tty = False
    request = node_pb2.ExecRequest(namespace=ctx.namespace, pod=pod,
                                   container=args.container or "", command=command,
                                   stdin=args.stdin, tty=use_tty)
    source = _Input(args.stdin, use_tty) if args.stdin else None
    code = 0
    with _raw_terminal(sys.stdin.fileno() if use_tty else -1, use_tty):
        if source is not None:
            source.start()
        try:
            inputs = source.messages() if source is not None else None
            async for out in ctx.client().pod_exec(request, inputs):
                if out.stdout:
                    _write(ctx.out, out.stdout)
                if out.stderr:
                    _write(ctx.err, out.stderr)
                if out.HasField("exit_code"):
                    code = out.exit_code
        finally:
            if source is not None:
                source.stop()
    if code:
        ctx.exit_code = code


def format_cpu(nano_cores: int) -> str:
    """kubectl top's CPU column: millicores, rounded up ("12m")."""
    return f"{-(-nano_cores // 1_000_000)}m"


def format_memory(working_set: int) -> str:
    """kubectl top's MEMORY column: whole mebibytes ("34Mi")."""
    return f"{working_set // (1 << 20)}Mi"


def percent(used: int, available: int) -> str:
    """kubectl top nodes' percentage columns ("<unknown>" without a capacity)."""
    return f"{used * 100 // available}%" if available > 0 else "<unknown>"


def _allocatable(node: core_pb2.Node, resource: str) -> int:
    """A node's allocatable CPU in nanocores or memory in bytes (0 if not known)."""
    text = node.status.allocatable.get(resource) or node.status.capacity.get(resource)
    if not text:
        return 0
    try:
        quantity = parse_quantity(text)
    except QuantityError:
        return 0
    return quantity.milli_value() * 1_000_000 if resource == "cpu" else quantity.value()


async def _top_nodes(ctx: Context, args: argparse.Namespace) -> None:
    client = ctx.client()
    nodes = (await client.nodes().list()).items
    if args.name:
        nodes = [n for n in nodes if n.metadata.name == args.name]
        if not nodes:
            raise NavctlError(f'nodes "{args.name}" not found')
    reply = await client.pod_top("", "")
    usage: dict[str, tuple[int, int]] = {}
    for pod in reply.pods:
        cpu, mem = usage.get(pod.node, (0, 0))
        usage[pod.node] = (cpu + sum(c.cpu_nano_cores for c in pod.containers),
                           mem + sum(c.memory_working_set_bytes for c in pod.containers))
    rows = [["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"]]
    for node in sorted(nodes, key=lambda n: n.metadata.name):
        cpu, mem = usage.get(node.metadata.name, (0, 0))
        rows.append([node.metadata.name, format_cpu(cpu),
                     percent(cpu, _allocatable(node, "cpu")), format_memory(mem),
                     percent(mem, _allocatable(node, "memory"))])
    if len(rows) == 1:
        ctx.warn("No resources found")
        return
    ctx.print(*align_table(["\t".join(r) for r in rows]))


async def run_top(ctx: Context, args: argparse.Namespace) -> None:
    """``top pods [NAME]`` (``--containers``: per container) or ``top nodes [NAME]``."""
    if args.what in ("node", "nodes", "no"):
        await _top_nodes(ctx, args)
        return
    if args.what not in ("pod", "pods", "po"):
        raise NavctlError(f"unknown resource {args.what!r} for top; accepted: pods, nodes")
    namespace = "" if args.all_namespaces else ctx.namespace
    reply = await ctx.client().pod_top(namespace, args.name or "")
    head = (["NAMESPACE"] if args.all_namespaces else []) + (
        ["POD", "NAME"] if args.containers else ["NAME"]) + ["CPU(cores)", "MEMORY(bytes)"]
    rows: list[list[str]] = []
    for pod in reply.pods:
        lead = [pod.namespace] if args.all_namespaces else []
        if args.containers:
            for c in pod.containers:
                rows.append([*lead, pod.name, c.name, format_cpu(c.cpu_nano_cores),
                             format_memory(c.memory_working_set_bytes)])
        else:
            cpu = sum(c.cpu_nano_cores for c in pod.containers)
            mem = sum(c.memory_working_set_bytes for c in pod.containers)
            rows.append([*lead, pod.name, format_cpu(cpu), format_memory(mem)])
    if not rows:
        where = "" if args.all_namespaces else f" in {ctx.namespace} namespace"
        ctx.warn(f"No resources found{where}.")
        return
    ctx.print(*align_table(["\t".join(r) for r in [head, *rows]]))


def add_arguments(sub: Any, command: Any) -> None:
    """Register logs, exec and top on navctl's sub-parsers (``command`` makes one)."""
    p = command(sub, "logs", run_logs, "Print the logs of a container in a pod")
    p.add_argument("pod", metavar="POD | TYPE/NAME", nargs="?", default="")
    p.add_argument("-c", "--container", default="")
    p.add_argument("-l", "--selector", default="",
                   help="the logs of every pod matching this label selector")
    p.add_argument("--all-containers", action="store_true",
                   help="every container of the pods, init containers first")
    p.add_argument("--prefix", action="store_true",
                   help="start each line with [pod/NAME/CONTAINER]")
    p.add_argument("--max-log-requests", type=int, default=5,
                   help="with -l and -f, the most streams to follow at once")
    p.add_argument("-f", "--follow", action="store_true", help="stream new lines")
    p.add_argument("--tail", type=int, default=-1,
                   help="only the last N lines (-1: all; with -l the default is 10)")
    p.add_argument("--since", default="", help="only newer lines: 10s, 5m, 1h")
    p.add_argument("--timestamps", action="store_true")
    p.add_argument("-p", "--previous", action="store_true",
                   help="the previous (terminated) container's log")
    p.add_argument("--limit-bytes", type=int, default=0)
    p = command(sub, "exec", run_exec, "Run a command in a container: exec POD -- CMD...")
    p.add_argument("pod", metavar="POD | TYPE/NAME")
    p.add_argument("exec_command", nargs="*", metavar="-- COMMAND [ARGS...]")
    p.add_argument("-c", "--container", default="")
    p.add_argument("-i", "--stdin", action="store_true",
                   help="pass stdin to the command (without -t its end is not passed on)")
    p.add_argument("-t", "--tty", action="store_true", help="run it on a terminal (with -i)")
    p = command(sub, "top", run_top, "CPU and memory of pods, or of nodes (their pods' sum)")
    p.add_argument("what", metavar="pods|nodes")
    p.add_argument("name", nargs="?", default="")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--containers", action="store_true")
