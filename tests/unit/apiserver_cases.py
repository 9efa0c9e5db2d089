"""Helpers for the defaulting and validation tables: build objects as the API server does
(namespace, uid, defaults), mutate manifests, and compare violations exactly."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import yaml
from google.protobuf.message import Message

from navarch import _codec
from navarch._kinds import KINDS
from services.apiserver import defaults, validation

UID = "0c8f7a8e-5d1b-4a57-9c43-0d5a1c6f7e21"
DELETE = object()
"""A ``mutate`` value that removes the key (or list item)."""

_STORAGE = {k.kind: k for k in KINDS if k.storage}


def load(text: str) -> dict[str, Any]:
    """A manifest written as YAML."""
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict)
    return doc


def build(kind: str, doc: dict[str, Any], *, defaulted: bool = True,
          uid: str = UID) -> Message:
    """The object the server would validate for ``doc``: namespace filled in, a uid given,
    defaults applied (unless ``defaulted`` is False)."""
    info = _STORAGE[kind]
    body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind")}
    msg = _codec.from_dict(body, info.message)
    meta = msg.metadata  # type: ignore[attr-defined]
    if info.namespaced and not meta.namespace:
        meta.namespace = "default"
    if uid and not meta.uid:
        meta.uid = uid
    if defaulted:
        defaults.apply(kind, msg)
    return msg


def problems(kind: str, doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, message) of every violation of ``doc`` as the server would see it."""
    return [(v.path, v.message) for v in validation.validate(kind, build(kind, doc))]


def update_problems(kind: str, old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, message) of every violation of replacing ``old`` by ``new``."""
    before, after = build(kind, old), build(kind, new)
    found = validation.validate(kind, after) + validation.validate_update(kind, after, before)
    return [(v.path, v.message) for v in found]


def assert_problems(found: Sequence[tuple[str, str]],
                    expected: Sequence[tuple[str, str]]) -> None:
    """``found`` holds exactly one violation per expected (path, message substring)."""
    remaining = list(found)
    for path, fragment in expected:
        match = next((f for f in remaining if f[0] == path and fragment in f[1]), None)
        assert match is not None, f"no violation {path}: ...{fragment}... in {found}"
        remaining.remove(match)
    assert not remaining, f"unexpected violations: {remaining}"


def mutate(doc: dict[str, Any], *changes: tuple[str, Any]) -> dict[str, Any]:
    """A deep copy of ``doc`` with each ``(path, value)`` applied; a path is dot-separated
    keys and list indexes (``spec.containers.0.image``); an index one past the end appends;
    DELETE removes the entry."""
    out = copy.deepcopy(doc)
    for path, value in changes:
        *parents, last = path.split(".")
        node: Any = out
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        index: Any = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[index]
        elif isinstance(node, list) and index == len(node):
            node.append(copy.deepcopy(value))
        else:
            node[index] = copy.deepcopy(value)
    return out
