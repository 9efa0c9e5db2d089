"""``navctl logs``, ``navctl exec`` and ``navctl top``: a pod's output, commands in its
containers, and its usage, through the API server's Pods service to the pod's node.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from navarch._labels import label_selector
from navarch._navctl.context import Context, parse_duration
from navarch._navctl.errors import NavctlError
from navarch._navctl.tabwriter import align_table
from navarch.v1 import node_pb2

__all__ = ["format_cpu", "format_memory", "run_exec", "run_logs", "run_top"]

_OWNERS = {"deployment": "deployments", "deploy": "deployments", "replicaset": "replicasets",
           "rs": "replicasets", "job": "jobs", "statefulset": "statefulsets",
           "sts": "statefulsets", "daemonset": "daemonsets", "ds": "daemonsets"}


async def _pod_name(ctx: Context, target: str) -> str:
    """``NAME``, ``pod/NAME``, or ``TYPE/NAME`` of a workload: its first pod, by name."""
    kind, _, name = target.rpartition("/")
    kind = kind.lower()
    if kind in ("", "pod", "pods", "po"):
        return name
    resource = _OWNERS.get(kind.rstrip("s") if kind.endswith("s") and kind not in _OWNERS
                           else kind)
    if resource is None:
        raise NavctlError(f"cannot get logs of {kind!r}: accepted: pod, "
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
    return str(chosen[0].metadata.name)


async def run_logs(ctx: Context, args: argparse.Namespace) -> None:
    """Print a container's log (``-f`` follows it until the container stops)."""
    pod = await _pod_name(ctx, args.pod)
    request = node_pb2.ContainerLogsRequest(
        namespace=ctx.namespace, pod=pod, container=args.container or "",
        follow=args.follow, timestamps=args.timestamps, previous=args.previous,
        limit_bytes=args.limit_bytes)
    if args.tail >= 0:
        request.tail_lines = args.tail
    if args.since:
        request.since_seconds = max(1, int(parse_duration(args.since, "--since")))
    out = sys.stdout.buffer if ctx.out is sys.stdout else None
    async for chunk in ctx.client().pod_logs(request):
        if out is not None:
            out.write(chunk)
            out.flush()
        else:
            ctx.out.write(chunk.decode(errors="replace"))


async def run_exec(ctx: Context, args: argparse.Namespace) -> None:
    """Run a command in a container; exit with its exit code."""
    command = list(args.exec_command)
    if not command:
        raise NavctlError("you must specify at least one command for the container")
    pod = await _pod_name(ctx, args.pod)
    request = node_pb2.ExecRequest(namespace=ctx.namespace, pod=pod,
                                   container=args.container or "", command=command,
                                   stdin=args.stdin, tty=args.tty)
    code = 0
    async for out in ctx.client().pod_exec(request):
        for data, stream in ((out.stdout, ctx.out), (out.stderr, ctx.err)):
            if not data:
                continue
            raw = getattr(stream, "buffer", None)
            if raw is not None:
                raw.write(data)
                raw.flush()
            else:
                stream.write(data.decode(errors="replace"))
        if out.HasField("exit_code"):
            code = out.exit_code
    if code:
        ctx.exit_code = code


def format_cpu(nano_cores: int) -> str:
    """kubectl top's CPU column: millicores ("12m")."""
    return f"{round(nano_cores / 1_000_000)}m"


def format_memory(working_set: int) -> str:
    """kubectl top's MEMORY column: mebibytes ("34Mi")."""
    return f"{round(working_set / (1 << 20))}Mi"


async def run_top(ctx: Context, args: argparse.Namespace) -> None:
    """``top pods [NAME]``: CPU and memory of pods (``--containers``: per container)."""
    if args.what not in ("pod", "pods", "po"):
        raise NavctlError(f"unknown resource {args.what!r} for top; accepted: pods")
    namespace = "" if args.all_namespaces else ctx.namespace
    reply = await ctx.client().pod_top(namespace, args.name or "")
    rows: list[list[str]] = []
    head = (["NAMESPACE"] if args.all_namespaces else []) + (
        ["POD", "NAME"] if args.containers else ["NAME"]) + ["CPU(cores)", "MEMORY(bytes)"]
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
    p.add_argument("pod", metavar="POD | TYPE/NAME")
    p.add_argument("-c", "--container", default="")
    p.add_argument("-f", "--follow", action="store_true", help="stream new lines")
    p.add_argument("--tail", type=int, default=-1, help="only the last N lines")
    p.add_argument("--since", default="", help="only newer lines: 10s, 5m, 1h")
    p.add_argument("--timestamps", action="store_true")
    p.add_argument("-p", "--previous", action="store_true",
                   help="the previous (terminated) container's log")
    p.add_argument("--limit-bytes", type=int, default=0)
    p = command(sub, "exec", run_exec, "Run a command in a container: exec POD -- CMD...")
    p.add_argument("pod", metavar="POD | TYPE/NAME")
    p.add_argument("exec_command", nargs="*", metavar="-- COMMAND [ARGS...]")
    p.add_argument("-c", "--container", default="")
    p.add_argument("-i", "--stdin", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p = command(sub, "top", run_top, "CPU and memory of pods")
    p.add_argument("what", metavar="pods")
    p.add_argument("name", nargs="?", default="")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--containers", action="store_true")
