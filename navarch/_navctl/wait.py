"""``navctl wait``: until objects meet a condition, as ``kubectl wait``.

``--for`` takes ``delete``, ``create``, ``condition=TYPE[=STATUS]`` (STATUS default
``true``; type and status compared without case; a condition whose observedGeneration
(its own, else the status's) is behind ``metadata.generation`` does not count yet) or
``jsonpath={PATH}[=VALUE]`` (exactly one value, equal to VALUE as printed; without VALUE,
present and not empty). One ``--timeout`` (default 30s; 0: check once, no waiting;
negative: a week) covers every object, as kubectl's. Each object is watched by name from
the version it was read at; ``<resource>/<name> condition met`` as each one is.

Objects named but absent fail, except for ``--for=delete`` (already gone). A selector
that matches nothing fails with ``no matching resources found`` (except for delete).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from typing import Any

from navarch._errors import ApiError, NotFound
from navarch._kinds import Kind
from navarch._navctl.context import Context, parse_duration
from navarch._navctl.errors import NavctlError, error_message
from navarch._navctl.jsonpath import JsonPathError, Template, format_value
from navarch._navctl.jsonpath import parse_template as parse_jsonpath
from navarch._navctl.printers import object_ref
from navarch._navctl.targets import object_dict, parse_targets
from navarch._navctl.values import Obj, dig, items

__all__ = ["WaitFor", "parse_for", "run_wait", "satisfied"]

WEEK = 7 * 24 * 3600.0


@dataclass(frozen=True)
class WaitFor:
    """What ``--for`` asks: ``what`` is delete, create, condition or jsonpath."""

    what: str
    name: str = ""
    value: str | None = None
    template: Template | None = None


def parse_for(text: str) -> WaitFor:
    """Parse ``--for``; NavctlError names what is accepted."""
    lowered = text.lower()
    if lowered in ("delete", "create"):
        return WaitFor(lowered)
    if lowered.startswith("condition="):
        spec = text[len("condition="):]
        name, sep, value = spec.partition("=")
        if not name:
            raise NavctlError(f"unrecognized condition: {text!r}")
        return WaitFor("condition", name, value if sep else "true")
    if lowered.startswith("jsonpath="):
        spec = text[len("jsonpath="):]
        if spec.startswith("'") and "'" in spec[1:]:  # quotes the shell did not remove
            quote = spec.index("'", 1)
            spec = spec[1:quote] + spec[quote + 1:]
        close = spec.rfind("}")
        if not spec.startswith("{") or close < 0:
            raise NavctlError("jsonpath wait format must be --for=jsonpath='{.status."
                              f"readyReplicas}}'=3, got {text!r}")
        path, rest = spec[:close + 1], spec[close + 1:]
        if rest and not rest.startswith("="):
            raise NavctlError("jsonpath wait format must be --for=jsonpath='{PATH}'=VALUE, "
                              f"got {text!r}")
        try:
            template = parse_jsonpath(path)
        except JsonPathError as exc:
            raise NavctlError(f"error parsing jsonpath {path}: {exc}") from None
        node = template.nodes[0] if len(template.nodes) == 1 else None
        if node is None or not hasattr(node, "expr") or hasattr(node, "body"):
            raise NavctlError(f"jsonpath wait takes one expression, got {path}")
        return WaitFor("jsonpath", path, rest[1:] if rest else None, template)
    if not text:
        raise NavctlError("--for must be delete, create, condition=TYPE[=STATUS] or "
                          "jsonpath='{PATH}'[=VALUE]")
    raise NavctlError(f"unrecognized condition: {text!r}")


def _observed_generation(doc: Obj, condition: Obj) -> int | None:
    for value in (condition.get("observedGeneration"), dig(doc, "status.observedGeneration")):
        if value is not None:
            return int(value)
    return None


def satisfied(want: WaitFor, doc: Obj) -> bool:
    """Whether the object (in JSON form) meets a condition or jsonpath ``want``."""
    if want.what == "create":
        return True
    if want.what == "condition":
        for condition in items(doc, "status.conditions"):
            if str(condition.get("type", "")).lower() != want.name.lower():
                continue
            if "status" not in condition:
                continue
            generation = dig(doc, "metadata.generation")
            observed = _observed_generation(doc, condition)
            if generation is not None and observed is not None and observed < int(generation):
                return False
            return str(condition["status"]).lower() == (want.value or "").lower()
        return False
    assert want.template is not None
    node = want.template.nodes[0]
    values = node.expr.values(doc, doc)
    if len(values) > 1:
        raise NavctlError("given jsonpath expression matches more than one value")
    if not values:
        return False
    if want.value is None:
        return format_value(values[0]) not in ("", "[]", "{}", "null")
    return format_value(values[0]) == want.value


# --- the command ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Target:
    kind: Kind
    namespace: str
    name: str


async def _targets(ctx: Context, args: argparse.Namespace, want: WaitFor) -> list[_Target]:
    selection = parse_targets(args.targets)
    namespace = "" if args.all_namespaces else ctx.namespace
    if not selection.named and not (args.all or args.selector or args.field_selector):
        raise NavctlError("resource(s) were provided, but no name was specified")
    found: list[_Target] = []
    for kind, names in selection.groups:
        ns = namespace if kind.namespaced else ""
        if names:
            found += [_Target(kind, ns, name) for name in names]
            continue
        listed = await ctx.client().resource(kind, ns).list_all(
            label_selector=args.selector, field_selector=args.field_selector)
        found += [_Target(kind, o.metadata.namespace, o.metadata.name)
                  for o in listed.items]
    if not found and want.what != "delete":
        raise NavctlError("no matching resources found")
    return found


def _met(want: WaitFor, kind: Kind, obj: Any, uid: str) -> bool:
    """Whether an object that exists ends the wait: for delete, when it is another one
    than the ``uid`` first seen; else when it meets the condition."""
    if want.what == "delete":
        return bool(uid) and obj.metadata.uid != uid
    return satisfied(want, object_dict(kind, obj))


async def _wait_one(ctx: Context, target: _Target, want: WaitFor, deadline: float) -> bool:
    """Wait for one object; prints ``… condition met``. False on a timeout or an error
    (reported)."""
    client = ctx.client().resource(target.kind, target.namespace)
    met_line = f"{object_ref(target.kind, target.name)} condition met"
    selector = f"metadata.name={target.name}"
    uid = ""  # delete: the object first seen; another of the same name counts as gone
    while True:
        try:
            obj: Any = await client.get(target.name)
        except NotFound as exc:
            if want.what == "delete":
                if uid:  # absent from the start: nothing to wait for, nothing printed
                    ctx.print(met_line)
                return True
            if want.what != "create":
                ctx.fail(error_message(exc, ctx.address))
                return False
            obj = None
        if obj is None:
            listed = await client.list(field_selector=selector)
            if listed.items:
                continue  # created meanwhile: read it
            version = listed.resource_version
        elif _met(want, target.kind, obj, uid):
            break
        else:
            uid = uid or obj.metadata.uid
            version = obj.metadata.resource_version
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            ctx.fail("error: timed out waiting for the condition on "
                     f"{target.kind.resource}/{target.name}")
            return False
        if await _until_change(client, target.kind, selector, want, version, uid, remaining):
            break
    ctx.print(met_line)
    return True


async def _until_change(client: Any, kind: Kind, selector: str, want: WaitFor, version: str,
                        uid: str, remaining: float) -> bool:
    """Watch the object by name from ``version``: True once the wait is over, False when
    the watch ends (read again) or ``remaining`` seconds pass."""
    try:
        async with asyncio.timeout(remaining):
            async for event in client.watch(resource_version=version, field_selector=selector):
                if event.type == "DELETED":
                    if want.what == "delete":
                        return True
                elif event.type != "BOOKMARK" and _met(want, kind, event.object, uid):
                    return True
    except TimeoutError:
        return False
    except ApiError:
        return False  # the version went away (compaction): read again
    return False


async def run_wait(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl wait``."""
    want = parse_for(args.for_)
    timeout = parse_duration(args.timeout, "--timeout") if not args.timeout.startswith(
        "-") else WEEK
    deadline = time.monotonic() + timeout
    for target in await _targets(ctx, args, want):
        if not await _wait_one(ctx, target, want, deadline):
            return
