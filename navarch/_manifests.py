"""Kubernetes manifests (multi-document YAML, JSON, ``kind: List``) as typed messages.

Errors name the source, the document, the line and the field, the way a user needs them
to fix a file: ``web.yaml: document 2, line 14: spec.replicas: expected an integer, got
string "3"``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from google.protobuf.message import Message

from navarch import _codec
from navarch._kinds import UnknownKind, kind_for

__all__ = ["Manifest", "ManifestError", "load_manifests"]


class ManifestError(ValueError):
    """A manifest that cannot be loaded; the message says where and why."""

    def __init__(self, source: str, document: int, line: int | None, message: str) -> None:
        where = f"{source}: document {document}" + (f", line {line}" if line else "")
        super().__init__(f"{where}: {message}")
        self.source, self.document, self.line = source, document, line


@dataclass(frozen=True)
class Manifest:
    """One object of a manifest file, and where it came from."""

    object: Message
    raw: dict[str, Any]
    source: str
    document: int


class _Loader(yaml.SafeLoader):
    """YAML 1.1, as Kubernetes reads manifests (``yes`` is a boolean there too)."""


def load_manifests(text: str, source: str = "<stdin>") -> list[Manifest]:
    """Every object in ``text``, in order. Empty documents are skipped."""
    out: list[Manifest] = []
    for index, (data, node) in enumerate(_documents(text, source), start=1):
        if data is None:
            continue
        for item, item_node in _expand_lists(data, node, source, index):
            out.append(Manifest(_decode(item, item_node, source, index), item, source, index))
    return out


def _documents(text: str, source: str) -> Iterator[tuple[Any, yaml.Node | None]]:
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ManifestError(source, 1, getattr(exc, "lineno", None),
                                f"not valid JSON: {exc}") from None
        yield data, None
        return
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        doc = text.count("\n---", 0, mark.index) + 1 if mark is not None else 1
        raise ManifestError(source, doc, mark.line + 1 if mark else None,
                            f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    for node in nodes:
        if node is None:
            yield None, None
            continue
        yield _Loader(text).construct_document(node), node


def _expand_lists(data: Any, node: yaml.Node | None, source: str, doc: int
                  ) -> Iterator[tuple[dict[str, Any], yaml.Node | None]]:
    if not isinstance(data, dict):
        raise ManifestError(source, doc, _line(node), "a manifest must be an object with "
                            "apiVersion and kind")
    if data.get("kind") == "List" or (str(data.get("kind", "")).endswith("List") and \
            "items" in data):
        items = data.get("items") or []
        items_node = _child(node, "items")
        for i, item in enumerate(items):
            sub = _child(items_node, i)
            if not isinstance(item, dict):
                raise ManifestError(source, doc, _line(sub), f"items[{i}]: expected an object")
            yield item, sub
        return
    yield data, node


def _decode(data: dict[str, Any], node: yaml.Node | None, source: str, doc: int) -> Message:
    api_version, kind_name = data.get("apiVersion"), data.get("kind")
    if not api_version or not isinstance(api_version, str):
        raise ManifestError(source, doc, _line(node), "apiVersion: Required value")
    if not kind_name or not isinstance(kind_name, str):
        raise ManifestError(source, doc, _line(node), "kind: Required value")
    try:
        kind = kind_for(api_version, kind_name)
    except UnknownKind as exc:
        raise ManifestError(source, doc, _line(_child(node, "kind")), str(exc)) from None
    try:
        decoded: Message = _codec.from_dict(data, kind.message)
        return decoded
    except _codec.FieldError as exc:
        raise ManifestError(source, doc, _line(_find(node, exc.path)), str(exc)) from None


# --- YAML positions ------------------------------------------------------------------

def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _child(node: yaml.Node | None, key: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(key, str):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v if not isinstance(v, yaml.ScalarNode) or v.value else k
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int):
        items: list[yaml.Node] = node.value
        return items[key] if 0 <= key < len(items) else None
    return None


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _find(node: yaml.Node | None, path: str) -> yaml.Node | None:
    """The deepest node along a codec path like ``spec.containers[0].image``."""
    best = node
    for name, index in _STEP.findall(path):
        nxt = _child(best, int(index) if index else name)
        if nxt is None and name and isinstance(best, yaml.MappingNode):
            # map keys may contain dots (labels): try the longest matching key
            nxt = _child_with_dots(best, path, name)
        if nxt is None:
            return best
        best = nxt
    return best


def _child_with_dots(node: yaml.MappingNode, path: str, name: str) -> yaml.Node | None:
    start = path.find(name)
    rest = path[start:]
    pairs: list[tuple[yaml.Node, yaml.Node]] = node.value
    for k, v in pairs:
        if isinstance(k, yaml.ScalarNode) and rest.startswith(str(k.value)):
            return v
    return None
