"""``navctl patch``: ``-p PATCH`` (JSON or YAML) or ``--patch-file``, ``--type strategic``
(the default, as kubectl's), ``merge`` or ``json``, on named objects or those of ``-f``.

Prints ``deployment.apps/web patched``, or ``… patched (no change)`` when the object's
resourceVersion did not move (the API server writes nothing for a patch that changes
nothing). ``--dry-run=client`` applies the patch here to the object as read, with the
same patch functions as the server; ``--dry-run=server`` has the server validate it.
"""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from navarch import _codec, _patch
from navarch._errors import ApiError
from navarch._kinds import Kind
from navarch._navctl.apply import manifest_objects
from navarch._navctl.context import Context
from navarch._navctl.errors import NavctlError, error_message
from navarch._navctl.expose import print_made
from navarch._navctl.printers import object_ref
from navarch._navctl.targets import object_dict, parse_targets
from navarch._strategicpatch import apply_strategic_merge_patch

__all__ = ["load_patch", "run_patch"]

PATCH_TYPES = ("strategic", "merge", "json")


def load_patch(text: str, patch_type: str) -> Any:
    """The patch document (JSON, or YAML as kubectl accepts); NavctlError if unreadable
    or of the wrong shape for its type."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise NavctlError(f"unable to parse {text!r}: {exc}") from None
    if patch_type == "json":
        if not isinstance(doc, list):
            raise NavctlError("a JSON patch (--type json) is a list of operations, e.g. "
                              '[{"op": "replace", "path": "/spec/replicas", "value": 3}]')
    elif not isinstance(doc, dict):
        raise NavctlError(f"a {patch_type} merge patch is a JSON object, e.g. "
                          '{"spec": {"replicas": 3}}')
    return doc


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise NavctlError(f"unable to read {path}: {exc.strerror}") from None


def _targets(ctx: Context, args: argparse.Namespace) -> list[tuple[Kind, str, str]]:
    if args.filename:
        return manifest_objects(args.filename, False, ctx)
    selection = parse_targets(args.targets)
    if not selection.named:
        raise NavctlError("resource(s) were provided, but no name was specified")
    return [(kind, ctx.namespace if kind.namespaced else "", name)
            for kind, names in selection.groups for name in names]


def _apply_here(kind: Kind, obj: Any, doc: Any, patch_type: str) -> Any:
    current = object_dict(kind, obj)
    if patch_type == "merge":
        return _patch.apply_merge_patch(current, doc)
    if patch_type == "json":
        return _patch.apply_json_patch(current, doc)
    return apply_strategic_merge_patch(current, doc, type(obj).DESCRIPTOR)


async def run_patch(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl patch``."""
    if args.type not in PATCH_TYPES:
        raise NavctlError(f'--type must be one of ["json" "merge" "strategic"], not '
                          f'"{args.type}"')
    if bool(args.patch) == bool(args.patch_file):
        raise NavctlError("must specify --patch or --patch-file containing the contents of "
                          "the patch" if not args.patch else
                          "--patch and --patch-file cannot be given together")
    doc = load_patch(_read(args.patch_file) if args.patch_file else args.patch, args.type)
    for kind, namespace, name in _targets(ctx, args):
        client = ctx.client().resource(kind, namespace)
        try:
            before = await client.get(name)
            if args.dry_run == "client":
                try:
                    result = _apply_here(kind, before, doc, args.type)
                except _patch.PatchError as exc:
                    ctx.fail(f"error: {exc}")
                    continue
                print_made(ctx, kind, result, args.output,
                           f"{object_ref(kind, name)} patched (dry run)")
                continue
            after = await client.patch(name, doc, patch_type=args.type,
                                       subresource=args.subresource,
                                       dry_run=args.dry_run == "server")
        except ApiError as exc:
            ctx.fail(error_message(exc, ctx.address))
            continue
        if args.dry_run == "server":
            suffix = " (server dry run)"
        else:
            unchanged = (after.metadata.resource_version
                         == before.metadata.resource_version)
            suffix = " (no change)" if unchanged else ""
        print_made(ctx, kind, _codec.to_dict(after), args.output,
                   f"{object_ref(kind, name)} patched{suffix}")
