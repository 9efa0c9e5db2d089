"""Output of ``navctl get``: tables, ``-o yaml|json|name``, and the watch stream.

Every function maps objects (Kubernetes JSON form) and the current time to lines; nothing
here talks to a server or reads a clock, so that the output is tested without either.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml

from navarch._kinds import Kind
from navarch._navctl.columns import table_for
from navarch._navctl.tabwriter import TabWriter, align_table, table_writer
from navarch._navctl.values import Obj, dig, format_labels

__all__ = [
    "TableOptions", "WatchTable", "list_document", "object_ref", "qualified_resource",
    "render_table", "table_lines", "to_json", "to_yaml",
]


@dataclass(frozen=True)
class TableOptions:
    """How a table is printed.

    ``namespace_column`` is ``-A``; ``with_kind`` prefixes names with their kind
    (``deployment.apps/web``), as kubectl does when one ``get`` prints several kinds;
    ``label_columns`` are the keys of ``-L``.
    """

    wide: bool = False
    namespace_column: bool = False
    show_labels: bool = False
    with_kind: bool = False
    headers: bool = True
    label_columns: tuple[str, ...] = ()


def qualified_resource(kind: Kind) -> str:
    """``deployment.apps``, or ``pod`` for the core group: how kubectl names a kind in
    messages and in ``-o name``."""
    return f"{kind.singular}.{kind.group}" if kind.group else kind.singular


def object_ref(kind: Kind, name: str) -> str:
    """``deployment.apps/web``."""
    return f"{qualified_resource(kind)}/{name}"


def _header_cells(kind: Kind, options: TableOptions) -> list[str]:
    headers = table_for(kind.kind).headers(options.wide)
    if options.namespace_column:
        headers.insert(0, "NAMESPACE")
    headers += [key.rsplit("/", 1)[-1].upper() for key in options.label_columns]
    if options.show_labels:
        headers.append("LABELS")
    return headers


def _row_cells(kind: Kind, obj: Obj, now: datetime, options: TableOptions) -> list[str]:
    table = table_for(kind.kind)
    cells = table.cells(obj, now, options.wide)
    if options.with_kind and table.name_column is not None:
        cells[table.name_column] = object_ref(kind, cells[table.name_column])
    if options.namespace_column:
        cells.insert(0, str(dig(obj, "metadata.namespace", "")))
    labels = dig(obj, "metadata.labels", {})
    cells += [str(labels.get(key, "")) for key in options.label_columns]
    if options.show_labels:
        cells.append(format_labels(labels))
    return cells


def table_lines(kind: Kind, objects: Sequence[Obj], now: datetime,
                options: TableOptions = TableOptions()) -> list[str]:
    """The unaligned lines (cells separated by tabs) of a table: header, then one row per
    object."""
    lines = ["\t".join(_header_cells(kind, options))] if options.headers else []
    lines += ["\t".join(_row_cells(kind, obj, now, options)) for obj in objects]
    return lines


def render_table(kind: Kind, objects: Sequence[Obj], now: datetime,
                 options: TableOptions = TableOptions()) -> list[str]:
    """The table as kubectl prints it: columns 3 spaces apart, the last one unpadded."""
    return align_table(table_lines(kind, objects, now, options))


class WatchTable:
    """``get --watch``: rows printed as changes arrive, aligned with the rows before them.

    The header is printed with the first row; columns only ever widen.
    """

    def __init__(self, kind: Kind, options: TableOptions = TableOptions(),
                 writer: TabWriter | None = None) -> None:
        self.kind = kind
        self.options = options
        self.writer = writer or table_writer(remember_widths=True)
        self._header_done = not options.headers

    def headers_due(self) -> bool:
        """Whether the header is still to be printed; it is due only once (for outputs
        that print their own, such as custom columns)."""
        due = not self._header_done
        self._header_done = True
        return due

    def lines(self, objects: Sequence[Obj], now: datetime,
              events: Sequence[str] | None = None) -> list[str]:
        """The lines for ``objects`` (with the header the first time). With ``events``
        (``--output-watch-events``) an EVENT column comes first."""
        raw: list[str] = []
        if not self._header_done:
            header = _header_cells(self.kind, self.options)
            raw.append("\t".join((["EVENT"] if events is not None else []) + header))
            self._header_done = True
        for index, obj in enumerate(objects):
            cells = _row_cells(self.kind, obj, now, self.options)
            if events is not None:
                cells.insert(0, events[index])
            raw.append("\t".join(cells))
        return self.writer.align(raw)


# --- structured output -------------------------------------------------------------------

def list_document(objects: Sequence[Obj]) -> Obj:
    """A ``kind: List`` holding ``objects``, as kubectl prints several objects."""
    return {"apiVersion": "v1", "items": list(objects), "kind": "List",
            "metadata": {"resourceVersion": ""}}


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line strings as ``|`` literals, other strings plain or in
    double quotes, as kubectl prints YAML (``resourceVersion: "7"``)."""


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    analysis = dumper.analyze_scalar(value)
    implicit = dumper.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    style: str | None = None
    if "\n" in value:
        style = "|" if analysis.allow_block else '"'
    elif not value or implicit != "tag:yaml.org,2002:str" or not analysis.allow_block_plain:
        style = '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_presenter)


def to_yaml(document: Any) -> str:
    """``document`` as YAML, keys sorted (as kubectl prints them)."""
    return yaml.dump(document, Dumper=_Dumper, default_flow_style=False, sort_keys=True,
                     allow_unicode=True, width=1 << 30)


def to_json(document: Any) -> str:
    """``document`` as kubectl prints JSON: 4-space indents, fields in schema order."""
    return json.dumps(document, indent=4, ensure_ascii=False)
