"""``navctl rollout status|history|undo|pause|resume|restart`` and ``navctl set image``,
worded as kubectl's.

Rollback is client-side, as kubectl does it since apps/v1: the ReplicaSet of the asked
revision (default: the previous one) lends its pod template back to the Deployment; the
controller then finds that ReplicaSet as the new one and gives it the next revision.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from navarch._clock import rfc3339
from navarch._deployments import CHANGE_CAUSE, revision_of, template_without_hash
from navarch._errors import NotFound
from navarch._kinds import Kind
from navarch._navctl.context import Context, parse_duration
from navarch._navctl.errors import NavctlError
from navarch._navctl.printers import object_ref
from navarch._navctl.targets import parse_targets
from navarch.v1 import apps_pb2, core_pb2

__all__ = ["history_lines", "rollback_template", "rollout_status_message", "run_rollout",
           "run_set_image", "set_images"]

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
_TEMPLATED = ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet")


def _one_target(args: argparse.Namespace) -> tuple[Kind, str]:
    selection = parse_targets(args.targets)
    if not selection.named:
        raise NavctlError("required resource not specified")
    (kind, names), *_ = selection.groups
    return kind, names[0]


# --- pure parts ----------------------------------------------------------------------------

def rollout_status_message(d: apps_pb2.Deployment) -> tuple[str, bool]:
    """kubectl's DeploymentStatusViewer: (the line to print, whether the rollout is done);
    raises NavctlError when the progress deadline was exceeded."""
    name = d.metadata.name
    st = d.status
    if d.metadata.generation > st.observed_generation:
        return "Waiting for deployment spec update to be observed...", False
    for cond in st.conditions:
        if cond.type == "Progressing" and cond.reason == "ProgressDeadlineExceeded":
            raise NavctlError(f'deployment "{name}" exceeded its progress deadline')
    want = d.spec.replicas if d.spec.HasField("replicas") else 1
    if st.updated_replicas < want:
        return (f'Waiting for deployment "{name}" rollout to finish: {st.updated_replicas} '
                f"out of {want} new replicas have been updated...", False)
    if st.replicas > st.updated_replicas:
        return (f'Waiting for deployment "{name}" rollout to finish: '
                f"{st.replicas - st.updated_replicas} old replicas are pending "
                "termination...", False)
    if st.available_replicas < st.updated_replicas:
        return (f'Waiting for deployment "{name}" rollout to finish: '
                f"{st.available_replicas} of {st.updated_replicas} updated replicas are "
                "available...", False)
    return f'deployment "{name}" successfully rolled out', True


def daemonset_status_message(ds: apps_pb2.DaemonSet) -> tuple[str, bool]:
    """kubectl's DaemonSetStatusViewer: (the line to print, whether it is done)."""
    if (ds.spec.update_strategy.type or "RollingUpdate") != "RollingUpdate":
        raise NavctlError("rollout status is only available for RollingUpdate strategy type")
    name, st = ds.metadata.name, ds.status
    if ds.metadata.generation > st.observed_generation:
        return "Waiting for daemon set spec update to be observed...", False
    if st.updated_number_scheduled < st.desired_number_scheduled:
        return (f'Waiting for daemon set "{name}" rollout to finish: '
                f"{st.updated_number_scheduled} out of {st.desired_number_scheduled} new pods "
                "have been updated...", False)
    if st.number_available < st.desired_number_scheduled:
        return (f'Waiting for daemon set "{name}" rollout to finish: {st.number_available} '
                f"of {st.desired_number_scheduled} updated pods are available...", False)
    return f'daemon set "{name}" successfully rolled out', True


def statefulset_status_message(sts: apps_pb2.StatefulSet) -> tuple[str, bool]:
    """kubectl's StatefulSetStatusViewer: (the line to print, whether it is done)."""
    strategy = sts.spec.update_strategy
    if (strategy.type or "RollingUpdate") != "RollingUpdate":
        raise NavctlError("rollout status is only available for RollingUpdate strategy type")
    st = sts.status
    if st.observed_generation == 0 or sts.metadata.generation > st.observed_generation:
        return "Waiting for statefulset spec update to be observed...", False
    replicas = sts.spec.replicas if sts.spec.HasField("replicas") else 1
    if st.ready_replicas < replicas:
        return f"Waiting for {replicas - st.ready_replicas} pods to be ready...", False
    if strategy.HasField("rolling_update"):
        rolling = strategy.rolling_update
        if rolling.HasField("partition") and st.updated_replicas < replicas - rolling.partition:
            return (f"Waiting for partitioned roll out to finish: {st.updated_replicas} out of "
                    f"{replicas - rolling.partition} new pods have been updated...", False)
        return (f"partitioned roll out complete: {st.updated_replicas} new pods have been "
                "updated...", True)
    if st.update_revision != st.current_revision:
        return (f"waiting for statefulset rolling update to complete {st.updated_replicas} "
                f"pods at revision {st.update_revision}...", False)
    return (f"statefulset rolling update complete {st.current_replicas} pods at revision "
            f"{st.current_revision}...", True)


_VIEWERS: dict[str, Callable[[Any], tuple[str, bool]]] = {
    "Deployment": rollout_status_message,
    "DaemonSet": daemonset_status_message,
    "StatefulSet": statefulset_status_message,
}


def history_lines(ref: str, sets: list[apps_pb2.ReplicaSet]) -> list[str]:
    """``rollout history``: one line per revision, oldest first."""
    rows = sorted((revision_of(rs), rs.metadata.annotations.get(CHANGE_CAUSE, "<none>"))
                  for rs in sets if revision_of(rs) > 0)
    return [ref, "REVISION  CHANGE-CAUSE",
            *[f"{rev:<9} {cause}" for rev, cause in rows], ""]


def rollback_template(d: apps_pb2.Deployment, sets: list[apps_pb2.ReplicaSet],
                      to_revision: int) -> core_pb2.PodTemplateSpec | None:
    """The template to roll back to (None: the Deployment already has it); NavctlError
    when the revision does not exist."""
    revisions = sorted(((revision_of(rs), rs) for rs in sets if revision_of(rs) > 0),
                       key=lambda pair: pair[0])
    if to_revision == 0:
        if len(revisions) < 2:
            raise NavctlError("no rollout history found for deployment "
                              f'"{d.metadata.name}"')
        target = revisions[-2][1]
    else:
        found = [rs for rev, rs in revisions if rev == to_revision]
        if not found:
            raise NavctlError(f"unable to find specified revision {to_revision} in history")
        target = found[0]
    template = template_without_hash(target.spec.template)
    if template == template_without_hash(d.spec.template):
        return None
    return template


def set_images(template: core_pb2.PodTemplateSpec, images: dict[str, str]) -> list[str]:
    """Set container images in place (``*`` = every container); the names not found."""
    missing = []
    for name, image in images.items():
        hit = False
        for c in [*template.spec.init_containers, *template.spec.containers]:
            if name in ("*", c.name):
                c.image = image
                hit = True
        if not hit:
            missing.append(name)
    return missing


# --- commands ------------------------------------------------------------------------------

async def _owned_sets(ctx: Context, d: apps_pb2.Deployment) -> list[apps_pb2.ReplicaSet]:
    listed = await ctx.client().replicasets(d.metadata.namespace).list_all()
    return [rs for rs in listed.items
            if any(r.uid == d.metadata.uid and r.controller
                   for r in rs.metadata.owner_references)]


async def _get(ctx: Context, kind: Kind, name: str) -> Any:
    try:
        return await ctx.client().resource(kind, ctx.namespace).get(name)
    except NotFound:
        raise NavctlError(f'{kind.group_resource} "{name}" not found') from None


async def _status(ctx: Context, kind: Kind, name: str, watch: bool,
                  give_up_after: float) -> None:
    """Print the rollout's progress until it is done (``watch``), for at most
    ``give_up_after`` seconds (0: no limit), as ``kubectl rollout status``."""
    viewer = _VIEWERS.get(kind.kind)
    if viewer is None:
        raise NavctlError(f"no status viewer has been implemented for {kind.kind}")
    d = await _get(ctx, kind, name)
    message, done = viewer(d)
    ctx.print(message)
    if done or not watch:
        return
    try:
        async with asyncio.timeout(give_up_after or None):
            await _follow(ctx, kind, name, d, message)
    except TimeoutError:
        raise NavctlError("timed out waiting for the condition") from None


async def _follow(ctx: Context, kind: Kind, name: str, d: Any, last: str) -> None:
    client = ctx.client().resource(kind, ctx.namespace)
    stream = client.watch(field_selector=f"metadata.name={name}",
                          resource_version=str(d.metadata.resource_version))
    async with contextlib.aclosing(stream):
        async for event in stream:
            if event.type == "DELETED":
                raise NavctlError(f'{kind.kind.lower()} "{name}" was deleted')
            if event.type == "BOOKMARK":
                continue
            message, done = _VIEWERS[kind.kind](event.object)
            if message != last:
                ctx.print(message)
                last = message
            if done:
                return


async def _patch(ctx: Context, kind: Kind, name: str, body: dict[str, Any]) -> Message:
    result: Message = await ctx.client().resource(kind, ctx.namespace).patch(name, body)
    return result


async def run_rollout(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl rollout ACTION TYPE/NAME``."""
    kind, name = _one_target(args)
    ref = object_ref(kind, name)
    action = args.action
    if action == "status":
        await _status(ctx, kind, name, args.watch, parse_duration(args.timeout, "--timeout"))
        return
    if action == "restart":
        if kind.kind not in _TEMPLATED:
            raise NavctlError(f"restarting is not supported for {kind.kind}")
        stamp = rfc3339(time.time())
        await _patch(ctx, kind, name, {"spec": {"template": {"metadata": {
            "annotations": {RESTARTED_AT: stamp}}}}})
        ctx.print(f"{ref} restarted")
        return
    if kind.kind != "Deployment":
        raise NavctlError(f"rollout {action} is not supported for {kind.kind}")
    d = await _get(ctx, kind, name)
    if action in ("pause", "resume"):
        want = action == "pause"
        if d.spec.paused == want:
            raise NavctlError(f'deployments.apps "{name}" is {"already" if want else "not"} '
                              "paused")
        await _patch(ctx, kind, name, {"spec": {"paused": want}})
        ctx.print(f"{ref} {'paused' if want else 'resumed'}")
        return
    sets = await _owned_sets(ctx, d)
    if action == "history":
        if args.revision:
            found = [rs for rs in sets if revision_of(rs) == args.revision]
            if not found:
                raise NavctlError(f"unable to find the specified revision {args.revision}")
            import yaml

            from navarch._codec import to_dict
            ctx.print(f"{ref} with revision #{args.revision}", "Pod Template:",
                      yaml.safe_dump(to_dict(found[0].spec.template), sort_keys=False))
            return
        ctx.print(*history_lines(ref, sets))
        return
    if action == "undo":
        if d.spec.paused:
            raise NavctlError("you cannot rollback a paused deployment; resume it first "
                              f"with 'navctl rollout resume {ref}' and try again")
        template = rollback_template(d, sets, args.to_revision)
        if template is None:
            ctx.print(f"{ref} skipped rollback (current template already matches revision "
                      f"{args.to_revision or 'previous'})")
            return
        changed = apps_pb2.Deployment()
        changed.CopyFrom(d)
        changed.spec.template.CopyFrom(template)
        await ctx.client().deployments(ctx.namespace).update(changed)
        ctx.print(f"{ref} rolled back")
        return
    raise NavctlError(f"unknown rollout action {action!r}")


async def run_set_image(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl set image TYPE/NAME CONTAINER=IMAGE...``."""
    if args.what != "image":
        raise NavctlError(f'unknown command "{args.what}" for "navctl set" (only image)')
    targets = [a for a in args.args if "=" not in a]
    pairs = [a for a in args.args if "=" in a]
    if not targets or not pairs:
        raise NavctlError("set image needs TYPE/NAME and at least one CONTAINER=IMAGE")
    images = dict(p.split("=", 1) for p in pairs)
    selection = parse_targets(targets)
    for kind, names in selection.groups:
        for name in names:
            obj = await _get(ctx, kind, name)
            if kind.kind == "Pod":
                wrapper = core_pb2.PodTemplateSpec()
                wrapper.spec.CopyFrom(obj.spec)
                missing = set_images(wrapper, images)
                obj.spec.CopyFrom(wrapper.spec)
            elif kind.kind in (*_TEMPLATED, "Job"):
                missing = set_images(obj.spec.template, images)
            else:
                raise NavctlError(f"{kind.kind} has no pod template")
            if missing:
                raise NavctlError(f'unable to find container named "{missing[0]}"')
            await ctx.client().resource(kind, ctx.namespace).update(obj)
            ctx.print(f"{object_ref(kind, name)} image updated")
