"""``navctl delete``: by name, by manifest, by selector or ``--all``; waits until the
objects are gone unless ``--wait=false``."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from navarch._client import ResourceClient
from navarch._errors import ApiError, NotFound
from navarch._kinds import Kind
from navarch._navctl.apply import manifest_objects
from navarch._navctl.context import Context, parse_duration
from navarch._navctl.errors import NavctlError, error_message
from navarch._navctl.get import no_resources_message
from navarch._navctl.printers import qualified_resource
from navarch._navctl.targets import parse_targets

__all__ = ["deleted_message", "propagation_policy", "run_delete", "wait_until_gone"]

_CASCADE = {"background": "Background", "true": "Background", "foreground": "Foreground",
            "orphan": "Orphan", "false": "Orphan"}
_POLL_FIRST, _POLL_MAX = 0.05, 1.0


def propagation_policy(cascade: str) -> str:
    """The propagation policy of ``--cascade``."""
    policy = _CASCADE.get(cascade.lower())
    if policy is None:
        raise NavctlError(f'invalid cascade value ({cascade}). Must be "background", '
                          '"foreground", or "orphan"')
    return policy


def deleted_message(kind: Kind, name: str) -> str:
    """``pod "web" deleted``, ``deployment.apps "web" deleted``."""
    return f'{qualified_resource(kind)} "{name}" deleted'


@dataclass(frozen=True)
class _Doomed:
    kind: Kind
    namespace: str
    name: str
    uid: str
    grace: int


async def wait_until_gone(client: ResourceClient[Any], name: str, uid: str,
                          deadline: float, *, clock: Callable[[], float] = time.monotonic,
                          sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> bool:
    """Poll until the object is gone (or replaced by another of the same name); False when
    ``deadline`` (on ``clock``) passes first."""
    delay = _POLL_FIRST
    while True:
        try:
            current = await client.get(name)
        except NotFound:
            return True
        if current.metadata.uid != uid:
            return True
        remaining = deadline - clock()
        if remaining <= 0:
            return False
        await sleep(min(delay, remaining))
        delay = min(delay * 2, _POLL_MAX)


def _grace(args: argparse.Namespace) -> int | None:
    if args.now:
        return 1
    if args.force and args.grace_period < 0:
        return 0
    return args.grace_period if args.grace_period >= 0 else None


async def _delete_one(ctx: Context, args: argparse.Namespace, kind: Kind, namespace: str,
                      name: str) -> _Doomed | None:
    client = ctx.client().resource(kind, namespace)
    try:
        last = await client.delete(name, grace_period_seconds=_grace(args),
                                   propagation_policy=propagation_policy(args.cascade),
                                   dry_run=args.dry_run == "server")
    except NotFound as exc:
        if not args.ignore_not_found:
            ctx.fail(error_message(exc, ctx.address))
        return None
    suffix = " (server dry run)" if args.dry_run == "server" else ""
    ctx.print(deleted_message(kind, name) + suffix)
    meta = last.metadata
    grace = meta.deletion_grace_period_seconds if meta.HasField(
        "deletion_grace_period_seconds") else 0
    return _Doomed(kind, namespace, name, meta.uid, int(grace))


async def _targets(ctx: Context, args: argparse.Namespace) -> list[tuple[Kind, str, str]]:
    """(kind, namespace, name) of everything the command line names."""
    if args.filename:
        return manifest_objects(args.filename, args.recursive, ctx)
    selection = parse_targets(args.targets)
    namespace = "" if args.all_namespaces else ctx.namespace
    if not selection.named and not (args.all or args.selector or args.field_selector):
        raise NavctlError("resource(s) were provided, but no name was specified")
    if selection.named and (args.all or args.selector):
        raise NavctlError("name cannot be provided when a selector or --all is specified")
    targets: list[tuple[Kind, str, str]] = []
    for kind, names in selection.groups:
        if names:
            targets += [(kind, namespace, name) for name in names]
            continue
        listed = await ctx.client().resource(kind, namespace).list_all(
            label_selector=args.selector, field_selector=args.field_selector)
        targets += [(kind, o.metadata.namespace, o.metadata.name)
                    for o in listed.items]
    if not targets:
        ctx.warn(no_resources_message(namespace, any(k.namespaced for k in selection.kinds)))
    return targets


async def run_delete(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl delete``."""
    if args.force and args.grace_period <= 0:
        ctx.warn("Warning: Immediate deletion does not wait for confirmation that the running "
                 "resource has been terminated. The resource may continue to run on the "
                 "cluster indefinitely.")
    doomed: list[_Doomed] = []
    for kind, namespace, name in await _targets(ctx, args):
        try:
            gone = await _delete_one(ctx, args, kind, namespace, name)
        except ApiError as exc:
            ctx.fail(error_message(exc, ctx.address))
            continue
        if gone is not None:
            doomed.append(gone)
    if not args.wait or args.dry_run == "server":
        return
    timeout = parse_duration(args.timeout, "--timeout")
    if not timeout:  # as kubectl: 0 waits as long as the longest grace period, and a minute
        timeout = max((item.grace for item in doomed), default=0) + 60.0
    deadline = time.monotonic() + timeout
    for item in doomed:
        client = ctx.client().resource(item.kind, item.namespace)
        if not await wait_until_gone(client, item.name, item.uid, deadline):
            ctx.fail(f"error: timed out waiting for the condition on "
                     f"{item.kind.resource}/{item.name}")
