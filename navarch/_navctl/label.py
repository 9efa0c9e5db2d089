"""``navctl label`` and ``navctl annotate``: ``k=v`` sets, ``k-`` removes; changing an
existing value needs ``--overwrite``."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from navarch._errors import ApiError
from navarch._kinds import Kind
from navarch._navctl.context import Context
from navarch._navctl.errors import NavctlError, error_message
from navarch._navctl.printers import object_ref
from navarch._navctl.targets import parse_targets

__all__ = ["MetadataChange", "Outcome", "parse_changes", "plan_change", "run_metadata",
           "split_arguments"]


@dataclass(frozen=True)
class MetadataChange:
    """Values to set and keys to remove."""

    set: dict[str, str]
    remove: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    """What a change does to one object: the resulting map, the merge patch of the map
    (empty: nothing to send), keys asked to be removed that were absent, and refusals."""

    result: dict[str, str]
    patch: dict[str, str | None]
    absent: tuple[str, ...]
    errors: tuple[str, ...]


def _is_change(arg: str) -> bool:
    return "=" in arg or (arg.endswith("-") and "/" not in arg)


def split_arguments(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """(resource arguments, change arguments): changes start at the first ``k=v`` or
    ``k-``."""
    for index, arg in enumerate(args):
        if _is_change(arg):
            return list(args[:index]), list(args[index:])
    return list(args), []


def parse_changes(specs: Sequence[str], what: str) -> MetadataChange:
    """``k=v`` and ``k-`` arguments. Labels allow one ``=``; annotation values may hold
    more. Raises NavctlError for a malformed argument or a key both set and removed."""
    to_set: dict[str, str] = {}
    removed: list[str] = []
    for spec in specs:
        if "=" in spec:
            key, _, value = spec.partition("=")
            if not key or (what == "label" and "=" in value):
                raise NavctlError(f"invalid {what} spec: {spec}")
            to_set[key] = value
        elif spec.endswith("-") and len(spec) > 1:
            removed.append(spec[:-1])
        else:
            raise NavctlError(f"invalid {what} spec: {spec}")
    both = sorted(set(to_set) & set(removed))
    if both:
        raise NavctlError(f"can not both modify and remove the following {what}(s) in the "
                          f"same command: {', '.join(both)}")
    if not to_set and not removed:
        raise NavctlError(f"at least one {what} update is required")
    return MetadataChange(to_set, tuple(removed))


def plan_change(current: Mapping[str, str], change: MetadataChange, overwrite: bool
                ) -> Outcome:
    """The outcome of ``change`` on a map holding ``current``."""
    errors = tuple(f"'{k}' already has a value ({current[k]}), and --overwrite is false"
                   for k, v in sorted(change.set.items())
                   if not overwrite and k in current and current[k] != v)
    result = dict(current)
    patch: dict[str, str | None] = {}
    for key, value in change.set.items():
        if result.get(key) != value:
            patch[key] = value
        result[key] = value
    absent = tuple(k for k in change.remove if k not in current)
    for key in change.remove:
        if key in result:
            patch[key] = None
            del result[key]
    return Outcome(result, patch, absent, errors)


def _verb(what: str, before: Mapping[str, str], outcome: Outcome, overwrite: bool) -> str:
    if what == "annotation":
        return "annotated"
    if not outcome.patch:
        return "not labeled"
    if not overwrite and len(outcome.result) < len(before):
        return "unlabeled"
    return "labeled"


async def _objects(ctx: Context, args: argparse.Namespace, targets: list[str]
                   ) -> list[tuple[Kind, str]]:
    selection = parse_targets(targets)
    found: list[tuple[Kind, str]] = []
    for kind, names in selection.groups:
        if names:
            found += [(kind, name) for name in names]
        elif args.all or args.selector:
            listed = await ctx.client().resource(kind, ctx.namespace).list_all(
                label_selector=args.selector)
            found += [(kind, o.metadata.name) for o in listed.items]
        else:
            raise NavctlError("resource(s) were provided, but no name was specified")
    return found


async def run_metadata(ctx: Context, args: argparse.Namespace, what: str) -> None:
    """``navctl label`` (``what="label"``) or ``navctl annotate`` (``"annotation"``)."""
    targets, specs = split_arguments(args.args)
    field = "labels" if what == "label" else "annotations"
    if args.list:
        for kind, name in await _objects(ctx, args, targets):
            obj = await ctx.client().resource(kind, ctx.namespace).get(name)
            values = getattr(obj.metadata, field)
            ctx.print(*(f"{k}={values[k]}" for k in sorted(values)))
        return
    change = parse_changes(specs, what)
    for kind, name in await _objects(ctx, args, targets):
        client = ctx.client().resource(kind, ctx.namespace)
        try:
            obj = await client.get(name)
            before = dict(getattr(obj.metadata, field))
            outcome = plan_change(before, change, args.overwrite)
            if outcome.errors:
                text = outcome.errors[0] if len(outcome.errors) == 1 else \
                    f"[{', '.join(outcome.errors)}]"
                ctx.fail(f"error: {text}")
                continue
            if what == "label":
                ctx.print(*(f'label "{key}" not found.' for key in outcome.absent))
            if outcome.patch:
                meta: dict[str, object] = {field: outcome.patch}
                if args.resource_version:
                    meta["resourceVersion"] = args.resource_version
                await client.patch(name, {"metadata": meta})
        except ApiError as exc:
            ctx.fail(error_message(exc, ctx.address))
            continue
        ctx.print(f"{object_ref(kind, name)} {_verb(what, before, outcome, args.overwrite)}")
