"""``navctl autoscale``: a HorizontalPodAutoscaler for a Deployment, ReplicaSet or
StatefulSet, as kubectl makes one.

    TYPE NAME | TYPE/NAME (fetched: it must exist) | -f FILE (read, not fetched)
        ─▶ hpa_for(kind, name, AutoscaleOptions)     pure: the HPA document
             name         --name, else the object's
             replicas     --min (default 1) .. --max (required, at least --min)
             metric       average CPU utilisation, --cpu-percent (default 80, the
                          autoscaler's own default when kubectl gives none)
        ─▶ create (--dry-run=server: validated, not stored; client: not sent)
        ─▶ ``horizontalpodautoscaler.autoscaling/NAME autoscaled`` or -o yaml|json|name
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from navarch import _codec
from navarch._errors import ApiError
from navarch._kinds import Kind, resource
from navarch._navctl.context import Context
from navarch._navctl.errors import NavctlError, error_message
from navarch._navctl.expose import Target, print_made, targets_of
from navarch._navctl.targets import object_dict
from navarch._navctl.values import Obj, dig

__all__ = ["AutoscaleOptions", "add_autoscale_arguments", "hpa_for", "options_from_args",
           "run_autoscale"]

_SCALABLE = frozenset({("apps", "Deployment"), ("apps", "ReplicaSet"),
                       ("apps", "StatefulSet")})
DEFAULT_CPU_PERCENT = 80  # the HorizontalPodAutoscaler's default target
_OUTPUTS = ("yaml", "json", "name")


@dataclass(frozen=True)
class AutoscaleOptions:
    max_replicas: int
    min_replicas: int = 1
    cpu_percent: int = DEFAULT_CPU_PERCENT
    name: str = ""


def add_autoscale_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max", type=int, default=-1,
                        help="the most replicas the autoscaler may set (required)")
    parser.add_argument("--min", type=int, default=-1,
                        help="the fewest replicas the autoscaler may set (default 1)")
    parser.add_argument("--cpu-percent", type=int, default=-1,
                        help="target average CPU utilisation of the pods, in percent of "
                             f"their request (default {DEFAULT_CPU_PERCENT})")
    parser.add_argument("--name", default="", help="the autoscaler's name (default: the "
                                                   "object's)")
    parser.add_argument("-o", "--output", choices=_OUTPUTS, help="output format")


def options_from_args(args: argparse.Namespace) -> AutoscaleOptions:
    """The flags checked as kubectl checks them; NavctlError names the flag."""
    if args.max < 1:
        raise NavctlError(f"--max=MAXPODS is required and must be at least 1, max: {args.max}")
    minimum = 1 if args.min == -1 else args.min
    if minimum < 1:
        raise NavctlError(f"--min=MINPODS must be at least 1, min: {args.min}")
    if args.max < minimum:
        raise NavctlError(f"--max=MAXPODS must be larger or equal to --min=MINPODS, "
                          f"max: {args.max}, min: {minimum}")
    if args.cpu_percent < -1 or args.cpu_percent == 0:
        raise NavctlError(f"--cpu-percent must be at least 1, cpu-percent: {args.cpu_percent}")
    cpu = DEFAULT_CPU_PERCENT if args.cpu_percent == -1 else args.cpu_percent
    return AutoscaleOptions(args.max, minimum, cpu, args.name)


def hpa_for(kind: Kind, name: str, options: AutoscaleOptions) -> Obj:
    """The autoscaling/v2 HorizontalPodAutoscaler of the object ``kind``/``name``."""
    if (kind.group, kind.kind) not in _SCALABLE:
        raise NavctlError(f"cannot autoscale a {kind.kind}: only a Deployment, ReplicaSet "
                          "or StatefulSet")
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": options.name or name},
        "spec": {
            "scaleTargetRef": {"apiVersion": kind.api_version, "kind": kind.kind,
                               "name": name},
            "minReplicas": options.min_replicas, "maxReplicas": options.max_replicas,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization",
                                          "averageUtilization": options.cpu_percent}}}],
        },
    }


async def _autoscale_one(ctx: Context, target: Target, options: AutoscaleOptions,
                         dry_run: str) -> Obj:
    name = target.name
    doc = hpa_for(target.kind, name, options)  # an unscalable kind fails before the fetch
    if target.obj is None:  # as kubectl: the object must exist
        await ctx.client().resource(target.kind, target.namespace).get(name)
    hpas = resource("horizontalpodautoscalers")
    body = _codec.from_dict(doc, hpas.message)
    if dry_run == "client":
        if ctx.namespace_explicit:
            body.metadata.namespace = target.namespace
        return object_dict(hpas, body)
    body.metadata.namespace = target.namespace
    created = await ctx.client().resource(hpas, target.namespace).create(
        body, dry_run=dry_run == "server")
    return object_dict(hpas, created)


def autoscaled_message(name: str, dry_run: str) -> str:
    suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")
    return f"horizontalpodautoscaler.autoscaling/{name} autoscaled{suffix}"


async def run_autoscale(ctx: Context, args: argparse.Namespace) -> None:
    """One autoscaler per object named; a failure is reported and the others go on."""
    options = options_from_args(args)
    for target in targets_of(ctx, args, "autoscale"):
        try:
            hpa = await _autoscale_one(ctx, target, options, args.dry_run)
        except (ApiError, NavctlError, _codec.FieldError) as exc:
            ctx.fail(error_message(exc, ctx.address))
            continue
        name = str(dig(hpa, "metadata.name", ""))
        print_made(ctx, resource("horizontalpodautoscalers"), hpa, args.output,
                   autoscaled_message(name, args.dry_run))
