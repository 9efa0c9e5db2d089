"""``navctl describe``: the framework, the shared sections, and the generic describer.

The describers of particular kinds are in describe.py.

A describer is a pure function from an object (Kubernetes JSON form), the objects
related to it (its events, a Service's Endpoints, a Deployment's ReplicaSets...) and the
time, to lines. Output is built as kubectl builds it: ``Key:\\tvalue`` lines, 2 spaces of
indent per level, aligned by the tab writer in runs of consecutive lines
(tabwriter.py), so that it reads the same as kubectl's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from navarch._navctl.columns import event_sort_key
from navarch._navctl.tabwriter import align_describe
from navarch._navctl.values import Obj, age, dig, items, rfc1123

__all__ = [
    "LAST_APPLIED", "Related", "Writer", "conditions", "controlled_by", "describer_for",
    "events", "header", "labels_and_annotations", "register",
]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_MAX_ANNOTATION = 140


@dataclass(frozen=True)
class Related:
    """What a describer shows besides the object itself, fetched by the caller."""

    events: list[Obj] = field(default_factory=list)
    endpoints: Obj | None = None
    replicasets: list[Obj] = field(default_factory=list)
    pods: list[Obj] = field(default_factory=list)


class Writer:
    """Describe output under construction; ``level`` indents by 2 spaces per level."""

    def __init__(self, now: datetime, tz: timezone | None = None) -> None:
        self.now = now
        self.tz = tz
        self.raw: list[str] = []

    def line(self, level: int, text: str = "") -> None:
        """One line, cells separated by tabs."""
        self.raw.append("  " * level + text)

    def kv(self, level: int, key: str, value: object) -> None:
        """``Key:\\tvalue``."""
        self.line(level, f"{key}:\t{value}")

    def time(self, value: object) -> str:
        """A timestamp as describe prints it."""
        return rfc1123(value, self.tz)

    def age(self, value: object) -> str:
        """The age of a timestamp."""
        return age(value, self.now)

    def mapping(self, level: int, title: str, values: Mapping[str, Any] | None,
                sep: str = "=", skip: Sequence[str] = ()) -> None:
        """Labels or annotations: one ``key=value`` per line, sorted, or ``<none>``."""
        shown = {k: v for k, v in (values or {}).items() if k not in skip}
        if not shown:
            self.kv(level, title, "<none>")
            return
        for index, key in enumerate(sorted(shown)):
            value = str(shown[key])
            if len(value) > _MAX_ANNOTATION and sep != "=":
                value = value[:_MAX_ANNOTATION] + "..."
            text = f"{key}{sep}{value}"
            if index == 0:
                self.kv(level, title, text)
            else:
                self.line(level, f"\t{text}")

    def listing(self, level: int, title: str, values: Sequence[str]) -> None:
        """One value per line after ``Title:``, or ``<none>``."""
        if not values:
            self.kv(level, title, "<none>")
            return
        self.kv(level, title, values[0])
        for value in values[1:]:
            self.line(level, f"\t{value}")

    def render(self) -> list[str]:
        """The aligned lines."""
        return align_describe(self.raw)


Describer = Callable[[Writer, Obj, Related], None]
_DESCRIBERS: dict[str, Describer] = {}


def register(kind: str) -> Callable[[Describer], Describer]:
    """Register the describer of ``kind``."""
    def add(fn: Describer) -> Describer:
        _DESCRIBERS[kind] = fn
        return fn
    return add


def describer_for(kind: str) -> Describer:
    """The describer of ``kind``; the generic one for kinds without their own."""
    return _DESCRIBERS.get(kind, _generic)


# --- sections every describer uses ----------------------------------------------------

def header(w: Writer, obj: Obj, *, namespace: bool = True, created: bool = False) -> None:
    """Name, Namespace, [CreationTimestamp], Labels, Annotations."""
    w.kv(0, "Name", dig(obj, "metadata.name", ""))
    if namespace:
        w.kv(0, "Namespace", dig(obj, "metadata.namespace", ""))
    if created:
        w.kv(0, "CreationTimestamp", w.time(dig(obj, "metadata.creationTimestamp")))
    labels_and_annotations(w, obj)


def labels_and_annotations(w: Writer, obj: Obj) -> None:
    """Labels and Annotations (the last-applied annotation is not shown, as kubectl)."""
    w.mapping(0, "Labels", dig(obj, "metadata.labels"))
    w.mapping(0, "Annotations", dig(obj, "metadata.annotations"), sep=": ",
              skip=(LAST_APPLIED,))


def controlled_by(w: Writer, obj: Obj) -> None:
    """``Controlled By:  ReplicaSet/web-abc`` when a controller owns the object."""
    for ref in items(obj, "metadata.ownerReferences"):
        if ref.get("controller"):
            w.kv(0, "Controlled By", f"{ref.get('kind', '')}/{ref.get('name', '')}")


def events(w: Writer, found: Sequence[Obj]) -> None:
    """``Events:`` with one row per event, oldest first, or ``<none>``."""
    if not found:
        w.kv(0, "Events", "<none>")
        return
    w.line(0, "Events:")
    w.line(1, "Type\tReason\tAge\tFrom\tMessage")
    w.line(1, "----\t------\t----\t----\t-------")
    for event in sorted(found, key=event_sort_key):
        first = event.get("eventTime") or event.get("firstTimestamp") \
            or dig(event, "metadata.creationTimestamp")
        interval = w.age(first)
        series = event.get("series")
        count = int(event.get("count") or 0)
        if series:
            interval = (f"{w.age(series.get('lastObservedTime'))} "
                        f"(x{series.get('count', 0)} over {interval})")
        elif count > 1:
            interval = f"{w.age(event.get('lastTimestamp'))} (x{count} over {interval})"
        source = dig(event, "source.component") or event.get("reportingComponent", "")
        w.line(1, f"{event.get('type', '')}\t{event.get('reason', '')}\t{interval}\t"
                  f"{source}\t{str(event.get('message', '')).strip()}")


def conditions(w: Writer, obj: Obj, columns: Sequence[str] = ("Type", "Status", "Reason")
               ) -> None:
    """A Conditions table with the given columns (condition fields, capitalized)."""
    found = items(obj, "status.conditions")
    if not found:
        return
    w.line(0, "Conditions:")
    w.line(1, "\t".join(columns))
    w.line(1, "\t".join("-" * len(c) for c in columns))
    for cond in found:
        cells = []
        for column in columns:
            key = column[:1].lower() + column[1:]
            value = cond.get(key, "")
            cells.append(w.time(value) if key.endswith("Time") else str(value))
        w.line(1, "\t".join(cells))


# --- the generic describer -------------------------------------------------------------

def _title(key: str) -> str:
    words: list[str] = []
    for char in key:
        if char.isupper() and words and not words[-1][-1:].isupper():
            words.append(char)
        elif not words:
            words.append(char.upper())
        else:
            words[-1] += char
    return " ".join(words)


def _generic_value(w: Writer, level: int, key: str, value: Any) -> None:
    if isinstance(value, dict):
        w.line(level, f"{_title(key)}:")
        for sub_key, sub_value in value.items():
            _generic_value(w, level + 1, sub_key, sub_value)
    elif isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            w.line(level, f"{_title(key)}:")
            for element in value:
                first = True
                for sub_key, sub_value in element.items():
                    prefix = "- " if first else "  "
                    first = False
                    if isinstance(sub_value, (dict, list)):
                        w.line(level + 1, f"{prefix}{_title(sub_key)}:")
                        _generic_children(w, level + 3, sub_value)
                    else:
                        w.line(level + 1, f"{prefix}{_title(sub_key)}:\t{sub_value}")
        else:
            w.kv(level, _title(key), ", ".join(str(v) for v in value) or "<none>")
    else:
        w.kv(level, _title(key), value)


def _generic_children(w: Writer, level: int, value: dict[str, Any] | list[Any]) -> None:
    if isinstance(value, dict):
        for sub_key, sub_value in value.items():
            _generic_value(w, level, sub_key, sub_value)
    else:
        for element in value:
            w.line(level, str(element))


def _generic(w: Writer, obj: Obj, related: Related) -> None:
    namespaced = bool(dig(obj, "metadata.namespace"))
    header(w, obj, namespace=namespaced)
    w.kv(0, "API Version", obj.get("apiVersion", ""))
    w.kv(0, "Kind", obj.get("kind", ""))
    w.kv(0, "CreationTimestamp", w.time(dig(obj, "metadata.creationTimestamp")))
    for key, value in obj.items():
        if key not in ("apiVersion", "kind", "metadata"):
            _generic_value(w, 0, key, value)
    events(w, related.events)
