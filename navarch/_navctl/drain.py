"""``navctl cordon``, ``uncordon`` and ``drain``: node maintenance, as kubectl does it.

- cordon/uncordon set ``spec.unschedulable`` (a merge patch) and say
  ``node/NAME cordoned`` or ``node/NAME already cordoned``.
- drain cordons, then picks the node's pods with kubectl's filters, in kubectl's order
  (``drain_plan``, pure): DaemonSet-managed pods are refused unless
  ``--ignore-daemonsets`` (then left alone); mirror pods are left alone; pods with an
  emptyDir are refused unless ``--delete-emptydir-data``; pods without a controller are
  refused unless ``--force``. Finished pods (Succeeded, Failed) always go. The first
  filter that leaves a pod out decides its fate, and a later filter's verdict replaces an
  earlier warning, exactly as kubectl's chain does. With a refusal nothing is removed and
  the command fails, naming the pods. Otherwise the pods are evicted through the Eviction
  API, which honours their PodDisruptionBudgets (retried every 5 s while a budget
  refuses), or deleted with ``--disable-eviction`` (evict.py), with their own grace period
  unless ``--grace-period``, and waited for (``--timeout``, 0: no limit). When that
  fails, the pods still on the node are listed, as kubectl lists them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field

from navarch._errors import ApiError
from navarch._navctl.context import Context, parse_duration
from navarch._navctl.errors import NavctlError, error_message
from navarch._navctl.evict import Removal, delete_pods, evict_pods, eviction_supported
from navarch.v1 import core_pb2, meta_pb2

__all__ = ["DrainOptions", "DrainPlan", "drain_plan", "run_cordon", "run_drain"]

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
DAEMONSET_FATAL = "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"
DAEMONSET_WARNING = "ignoring DaemonSet-managed Pods"
LOCAL_STORAGE_FATAL = ("cannot delete Pods with local storage (use --delete-emptydir-data to "
                       "override)")
LOCAL_STORAGE_WARNING = "deleting Pods with local storage"
UNMANAGED_FATAL = "cannot delete Pods that declare no controller (use --force to override)"
UNMANAGED_WARNING = "deleting Pods that declare no controller"


@dataclass(frozen=True)
class DrainOptions:
    ignore_daemonsets: bool = False
    delete_emptydir_data: bool = False
    force: bool = False


@dataclass(frozen=True)
class _Status:
    delete: bool
    warning: str = ""
    error: str = ""


@dataclass
class DrainPlan:
    """The pods to delete, and the warnings and refusals (message -> "ns/name" list)."""

    delete: list[core_pb2.Pod] = field(default_factory=list)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def warning_text(self) -> str:
        return "; ".join(f"{msg}: {', '.join(pods)}" for msg, pods in self.warnings.items())

    def error_text(self) -> str:
        parts = [f"{msg}: {', '.join(pods)}" for msg, pods in self.errors.items()]
        return parts[0] if len(parts) == 1 else f"[{', '.join(parts)}]"


def _controller(pod: core_pb2.Pod) -> meta_pb2.OwnerReference | None:
    return next((ref for ref in pod.metadata.owner_references if ref.controller), None)


def _finished(pod: core_pb2.Pod) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


def _daemonset_filter(pod: core_pb2.Pod, opts: DrainOptions,
                      daemonsets: frozenset[tuple[str, str]]) -> _Status:
    ref = _controller(pod)
    if ref is None or ref.kind != "DaemonSet" or _finished(pod):
        return _Status(True)
    if (pod.metadata.namespace, ref.name) not in daemonsets:
        message = f'daemonsets.apps "{ref.name}" not found'
        return _Status(True, warning=message) if opts.force else _Status(False, error=message)
    if not opts.ignore_daemonsets:
        return _Status(False, error=DAEMONSET_FATAL)
    return _Status(False, warning=DAEMONSET_WARNING)


def _mirror_filter(pod: core_pb2.Pod) -> _Status:
    return _Status(MIRROR_ANNOTATION not in pod.metadata.annotations)


def _local_storage_filter(pod: core_pb2.Pod, opts: DrainOptions) -> _Status:
    if not any(v.HasField("empty_dir") for v in pod.spec.volumes) or _finished(pod):
        return _Status(True)
    if not opts.delete_emptydir_data:
        return _Status(False, error=LOCAL_STORAGE_FATAL)
    return _Status(True, warning=LOCAL_STORAGE_WARNING)


def _unreplicated_filter(pod: core_pb2.Pod, opts: DrainOptions) -> _Status:
    if _finished(pod) or _controller(pod) is not None:
        return _Status(True)
    if opts.force:
        return _Status(True, warning=UNMANAGED_WARNING)
    return _Status(False, error=UNMANAGED_FATAL)


def drain_plan(pods: Sequence[core_pb2.Pod], opts: DrainOptions,
               daemonsets: frozenset[tuple[str, str]]) -> DrainPlan:
    """What drain does with each pod of the node; ``daemonsets`` are the (namespace,
    name) of the DaemonSets that exist."""
    plan = DrainPlan()
    for pod in pods:
        status = _Status(True)
        for check in (lambda p: _daemonset_filter(p, opts, daemonsets), _mirror_filter,
                      lambda p: _local_storage_filter(p, opts),
                      lambda p: _unreplicated_filter(p, opts)):
            status = check(pod)
            if not status.delete:
                break
        ref = f"{pod.metadata.namespace}/{pod.metadata.name}"
        if status.error:
            plan.errors.setdefault(status.error, []).append(ref)
        elif status.warning:
            plan.warnings.setdefault(status.warning, []).append(ref)
        if status.delete:
            plan.delete.append(pod)
    return plan


# --- commands ---------------------------------------------------------------------------

async def _node_names(ctx: Context, args: argparse.Namespace) -> list[str]:
    names = list(args.nodes)
    if names and args.selector:
        raise NavctlError("cannot specify both a node name and a --selector option")
    if args.selector:
        nodes = await ctx.client().nodes().list_all(label_selector=args.selector)
        names = [n.metadata.name for n in nodes.items]
        if not names:
            ctx.warn("No resources found")
    elif not names:
        command = getattr(args, "command", "drain")
        raise NavctlError(f"USAGE: {command} NODE [flags]\nSee 'navctl {command} -h' for "
                          "help and examples")
    return names


async def _set_unschedulable(ctx: Context, name: str, unschedulable: bool,
                             dry_run: str) -> bool:
    """Cordon or uncordon one node; prints what happened. False when it failed."""
    word = "cordoned" if unschedulable else "uncordoned"
    nodes = ctx.client().nodes()
    try:
        node = await nodes.get(name)
        if node.spec.unschedulable == unschedulable:
            ctx.print(f"node/{name} already {word}")
            return True
        if dry_run != "client":
            await nodes.patch(name, {"spec": {"unschedulable": unschedulable or None}},
                              dry_run=dry_run == "server")
    except ApiError as exc:
        ctx.fail(error_message(exc, ctx.address))
        return False
    suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")
    ctx.print(f"node/{name} {word}{suffix}")
    return True


async def run_cordon(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl cordon`` and ``navctl uncordon`` (``args.unschedulable`` tells which)."""
    for name in await _node_names(ctx, args):
        await _set_unschedulable(ctx, name, args.unschedulable, args.dry_run)


async def run_drain(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl drain``: cordon, then evict (or delete) the node's pods kubectl would."""
    opts = DrainOptions(args.ignore_daemonsets, args.delete_emptydir_data, args.force)
    how = Removal(grace_period=args.grace_period if args.grace_period >= 0 else None,
                  server_dry_run=args.dry_run == "server",
                  timeout=parse_duration(args.timeout, "--timeout"))
    pending: list[tuple[str, str]] = []
    for name in await _node_names(ctx, args):
        if not await _set_unschedulable(ctx, name, True, args.dry_run):
            continue
        problem = await _drain_one(ctx, name, opts, args, how)
        if problem:
            ctx.warn(f'error: unable to drain node "{name}" due to error: {problem}, '
                     "continuing command...")
            pending.append((name, problem))
        else:
            suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(
                args.dry_run, "")
            ctx.print(f"node/{name} drained{suffix}")
    if pending:
        ctx.warn("There are pending nodes to be drained:",
                 *(f" {name}" for name, _ in pending))
        ctx.fail(f"error: {pending[-1][1]}")


async def _plan_node(ctx: Context, node: str, opts: DrainOptions, pod_selector: str
                     ) -> DrainPlan:
    client = ctx.client()
    pods = (await client.pods("").list_all(field_selector=f"spec.nodeName={node}",
                                           label_selector=pod_selector)).items
    daemonsets = frozenset((d.metadata.namespace, d.metadata.name)
                           for d in (await client.daemonsets("").list_all()).items)
    return drain_plan(pods, opts, daemonsets)


async def _drain_one(ctx: Context, node: str, opts: DrainOptions, args: argparse.Namespace,
                     how: Removal) -> str:
    """Evict (or delete) what the plan allows and wait for it; the error text, or "" when
    drained."""
    plan = await _plan_node(ctx, node, opts, args.pod_selector)
    if plan.errors:
        return plan.error_text()
    if plan.warnings:
        ctx.warn(f"Warning: {plan.warning_text()}")
    if args.dry_run == "client":
        for pod in plan.delete:
            ctx.print(f"evicting pod {pod.metadata.namespace}/{pod.metadata.name} (dry run)")
        return ""
    if not plan.delete:
        return ""
    client = ctx.client()
    try:
        if args.disable_eviction or not await eviction_supported(client):
            problem = await delete_pods(ctx, client, plan.delete, how)
        else:
            problem = await evict_pods(ctx, client, plan.delete, how)
    except ApiError as exc:
        problem = exc.message
    if problem:
        await _report_pending(ctx, node, opts, args.pod_selector, problem)
    return problem


async def _report_pending(ctx: Context, node: str, opts: DrainOptions, pod_selector: str,
                          problem: str) -> None:
    """After a failed removal, as kubectl: the pods drain would still remove."""
    try:
        plan = await _plan_node(ctx, node, opts, pod_selector)
    except ApiError as exc:
        ctx.warn("Following errors occurred while getting the list of pods to delete:",
                 exc.message)
        return
    if plan.delete:
        ctx.warn(f'There are pending pods in node "{node}" when an error occurred: {problem}',
                 *(f"pod/{pod.metadata.name}" for pod in plan.delete))
    if plan.errors:
        ctx.warn("Following errors occurred while getting the list of pods to delete:",
                 plan.error_text())
