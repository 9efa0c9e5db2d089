"""``navctl get``: tables, ``-o wide|yaml|json|name|jsonpath=|custom-columns=``, ``--watch``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from google.protobuf.message import Message

from navarch._kinds import Kind, kind_of_message
from navarch._navctl.apply import manifest_namespace, read_manifests
from navarch._navctl.columns import event_sort_key
from navarch._navctl.context import Context
from navarch._navctl.errors import NavctlError
from navarch._navctl.jsonpath import (
    JsonPathError,
    custom_column_cells,
    evaluate,
    parse_custom_columns,
    parse_template,
)
from navarch._navctl.printers import (
    TableOptions,
    WatchTable,
    list_document,
    object_ref,
    render_table,
    to_json,
    to_yaml,
)
from navarch._navctl.tabwriter import align_table
from navarch._navctl.targets import Found, Selection, fetch, object_dict, parse_targets
from navarch._navctl.values import Obj

__all__ = ["add_get_arguments", "no_resources_message", "run_get"]

OUTPUTS = ("wide", "yaml", "json", "name")
TEMPLATED = ("jsonpath", "jsonpath-file", "custom-columns", "custom-columns-file")
ALLOWED = ("custom-columns,custom-columns-file,json,jsonpath,jsonpath-file,name,wide,yaml")


def output_format(value: str) -> str:
    """``-o``: a plain format, or ``jsonpath=…``, ``custom-columns=…`` and their
    ``-file=PATH`` forms (argparse type; the template is checked when it is used)."""
    name = value.partition("=")[0]
    if value in OUTPUTS or (name in TEMPLATED and "=" in value):
        return value
    if name in TEMPLATED:
        raise argparse.ArgumentTypeError(f"{name} format specified but no template given")
    raise argparse.ArgumentTypeError(
        f'unable to match a printer suitable for the output format "{value}", allowed '
        f"formats are: {ALLOWED}")


def _template_text(output: str) -> tuple[str, str]:
    """(format, template) of a templated ``-o``; a ``-file`` form is read."""
    name, _, value = output.partition("=")
    if name.endswith("-file"):
        try:
            with open(value, encoding="utf-8") as f:
                value = f.read()
        except OSError as exc:
            raise NavctlError(f"error reading template {value}: {exc.strerror}") from None
        name = name[:-len("-file")]
    return name, value


def _print_templated(ctx: Context, output: str, docs: list[Obj], document: Obj,
                     headers: bool) -> None:
    name, text = _template_text(output)
    try:
        if name == "jsonpath":
            ctx.out.write(evaluate(parse_template(text), document))
            ctx.out.flush()
            return
        columns = parse_custom_columns(text.strip() if output.startswith("custom-columns=")
                                       else _columns_file(text))
    except JsonPathError as exc:
        raise NavctlError(f"error parsing {name} template: {exc}") from None
    lines = ["\t".join(header for header, _ in columns)] if headers else []
    lines += ["\t".join(custom_column_cells(columns, doc)) for doc in docs]
    ctx.print(*align_table(lines))


def _columns_file(text: str) -> str:
    """A custom-columns file: a line of headers, a line of paths (kubectl's format)."""
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if len(rows) != 2 or len(rows[0]) != len(rows[1]):
        raise JsonPathError("expected a line of headers and a line of JSONPath expressions, "
                            "as many of each")
    return ",".join(f"{h}:{p}" for h, p in zip(rows[0], rows[1], strict=True))


def add_get_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``get``."""
    parser.add_argument("targets", nargs="*", metavar="TYPE[.GROUP][/NAME] [NAME...]")
    parser.add_argument("-o", "--output", type=output_format, metavar="FORMAT",
                        help="wide, yaml, json, name, jsonpath=TEMPLATE, "
                        "jsonpath-file=PATH, custom-columns=HEADER:PATH,… or "
                        "custom-columns-file=PATH")
    parser.add_argument("-l", "--selector", default="", help="label selector, e.g. app=web")
    parser.add_argument("--field-selector", default="",
                        help="field selector, e.g. status.phase=Running")
    parser.add_argument("-A", "--all-namespaces", action="store_true",
                        help="list across all namespaces")
    parser.add_argument("-w", "--watch", action="store_true",
                        help="after listing, watch for changes")
    parser.add_argument("--watch-only", action="store_true",
                        help="watch for changes without listing first")
    parser.add_argument("--output-watch-events", action="store_true",
                        help="print the event type (ADDED, MODIFIED, DELETED) of each change")
    parser.add_argument("--show-labels", action="store_true",
                        help="show all labels as the last column")
    parser.add_argument("-L", "--label-columns", action="append", default=[],
                        help="a column for each of these label keys (comma-separated)")
    parser.add_argument("--no-headers", action="store_true", help="omit table headers")
    parser.add_argument("-f", "--filename", action="append", default=[],
                        help="get the objects of these manifests")
    parser.add_argument("-R", "--recursive", action="store_true",
                        help="read the directories of -f recursively")


def no_resources_message(namespace: str, namespaced: bool) -> str:
    """kubectl's message for an empty result (printed on stderr)."""
    if namespace and namespaced:
        return f"No resources found in {namespace} namespace."
    return "No resources found"


def _table_options(args: argparse.Namespace, with_kind: bool) -> TableOptions:
    columns = tuple(key for value in args.label_columns for key in value.split(",") if key)
    return TableOptions(wide=args.output == "wide", namespace_column=args.all_namespaces,
                        show_labels=args.show_labels, with_kind=with_kind,
                        headers=not args.no_headers, label_columns=columns)


def _dicts(kind: Kind, objs: Sequence[Message]) -> list[Obj]:
    docs = [object_dict(kind, obj) for obj in objs]
    if kind.kind == "Event":
        docs.sort(key=event_sort_key)
    return docs


def _print_found(ctx: Context, args: argparse.Namespace, found: Found, bare: bool) -> None:
    groups = [(kind, objs) for kind, objs in found.groups if objs]
    templated = bool(args.output) and args.output.partition("=")[0] in TEMPLATED
    if templated or args.output in ("yaml", "json"):
        docs = [d for kind, objs in groups for d in _dicts(kind, objs)]
        document = docs[0] if bare and len(docs) == 1 else list_document(docs)
        if templated:
            _print_templated(ctx, args.output, docs, document, not args.no_headers)
        else:
            text = to_yaml(document) if args.output == "yaml" else to_json(document)
            ctx.print(text.rstrip("\n"))
        return
    if args.output == "name":
        ctx.print(*(object_ref(kind, obj.metadata.name)  # type: ignore[attr-defined]
                    for kind, objs in groups for obj in objs))
        return
    options = _table_options(args, with_kind=len(found.groups) > 1)
    now = ctx.now()
    for index, (kind, objs) in enumerate(groups):
        if index:
            ctx.print("")
        ctx.print(*render_table(kind, _dicts(kind, objs), now, options))


async def _get_files(ctx: Context, args: argparse.Namespace) -> Found:
    found = Found()
    for manifest in read_manifests(args.filename, args.recursive):
        kind = kind_of_message(manifest.object)
        namespace = manifest_namespace(kind, manifest.object, ctx)
        selection = Selection(((kind, (manifest.object.metadata.name,)),))  # type: ignore[attr-defined]
        part = await fetch(ctx, selection, namespace=namespace or ctx.namespace)
        for got_kind, objs in part.groups:
            if found.groups and found.groups[-1][0] == got_kind:
                found.groups[-1][1].extend(objs)
            else:
                found.groups.append((got_kind, objs))
    return found


async def run_get(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl get``."""
    if args.filename:
        if args.targets:
            raise NavctlError("when -f is given, name no resources")
        found = await _get_files(ctx, args)
        _print_found(ctx, args, found, bare=found.count() == 1)
        return
    selection = parse_targets(args.targets)
    namespace = "" if args.all_namespaces else ctx.namespace
    if args.watch or args.watch_only:
        await _watch(ctx, args, selection, namespace)
        return
    found = await fetch(ctx, selection, namespace=namespace, label_selector=args.selector,
                        field_selector=args.field_selector)
    if found.count() == 0:
        if not selection.named:
            namespaced = any(k.namespaced for k in selection.kinds)
            ctx.warn(no_resources_message(namespace, namespaced))
        return
    _print_found(ctx, args, found, bare=selection.single_object())


def _watch_selector(selection: Selection, field_selector: str) -> str:
    names = selection.groups[0][1]
    if len(names) > 1:
        raise NavctlError("watch is only supported on individual resources and resource "
                          "collections, but 2 or more resources were found")
    parts = [field_selector] if field_selector else []
    if names:
        parts.append(f"metadata.name={names[0]}")
    return ",".join(parts)


async def _watch(ctx: Context, args: argparse.Namespace, selection: Selection,
                 namespace: str) -> None:
    if len(selection.groups) != 1:
        raise NavctlError("you may only specify a single resource type")
    kind = selection.kinds[0]
    field_selector = _watch_selector(selection, args.field_selector)
    client = ctx.client().resource(kind, namespace)
    table = WatchTable(kind, _table_options(args, with_kind=False))
    # As kubectl: list first for the version to watch from (printed unless --watch-only).
    listed = await client.list_all(label_selector=args.selector, field_selector=field_selector)
    if not args.watch_only:
        if listed.items:
            added = ["ADDED"] * len(listed.items) if args.output_watch_events else None
            _print_watch(ctx, args, table, kind, list(listed.items), added)
        elif not selection.named:
            ctx.warn(no_resources_message(namespace, kind.namespaced))
    timeout = int(ctx.watch_timeout) if ctx.watch_timeout else 0
    async for event in client.watch(resource_version=listed.resource_version,
                                    label_selector=args.selector,
                                    field_selector=field_selector, timeout_seconds=timeout):
        if event.type == "BOOKMARK":
            continue
        events = [event.type] if args.output_watch_events else None
        _print_watch(ctx, args, table, kind, [event.object], events)


def _print_watch(ctx: Context, args: argparse.Namespace, table: WatchTable, kind: Kind,
                 objs: list[Message], events: list[str] | None) -> None:
    if args.output and args.output.partition("=")[0] in TEMPLATED:
        # each object on its own, as kubectl prints a watch; column headers once
        for doc in _dicts(kind, objs):
            _print_templated(ctx, args.output, [doc], doc, table.headers_due())
        return
    if args.output in ("yaml", "json"):
        for index, doc in enumerate(_dicts(kind, objs)):
            if events is not None:
                doc = {"type": events[index], "object": doc}
            if args.output == "yaml":
                ctx.print("---", to_yaml(doc).rstrip("\n"))
            else:
                ctx.print(to_json(doc))
        return
    if args.output == "name":
        ctx.print(*(object_ref(kind, o.metadata.name) for o in objs))  # type: ignore[attr-defined]
        return
    ctx.print(*table.lines(_dicts(kind, objs), ctx.now(), events))
