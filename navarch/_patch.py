"""Patches of JSON-like values (dict, list, str, int, float, bool, None).

* JSON merge patch (RFC 7386): ``apply_merge_patch``, ``create_merge_patch``, and
  ``three_way_merge_patch``, the patch ``navctl apply`` sends.
* JSON patch (RFC 6902): ``apply_json_patch``.

Every function returns a new value sharing nothing with its inputs and never mutates them.
Equality of JSON values is JSON's: ``true`` is not ``1``, ``1`` is ``1.0``, object members
are unordered, arrays ordered.

Merge patches cannot say "set this member to null" (null deletes it) and replace arrays
whole; so a null in a document being diffed counts as the member being absent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

__all__ = [
    "JSONValue",
    "PatchError",
    "apply_json_patch",
    "apply_merge_patch",
    "create_merge_patch",
    "json_equal",
    "three_way_merge_patch",
]

JSONValue: TypeAlias = Any
"""dict[str, JSONValue] | list[JSONValue] | str | int | float | bool | None."""


class PatchError(ValueError):
    """A patch that cannot be applied. ``index`` and ``op`` locate the JSON patch operation
    (None for merge patches), ``path`` the JSON pointer it failed at."""

    def __init__(self, message: str, *, index: int | None = None, op: str | None = None,
                 path: str | None = None) -> None:
        self.index = index
        self.op = op
        self.path = path
        where = ""
        if index is not None:
            where = f"operation {index}"
            if op:
                where += f" ({op}"
                where += f" {path})" if path is not None else ")"
            where += ": "
        super().__init__(where + message)


def _copy(value: JSONValue) -> JSONValue:
    """A deep copy of a JSON value (dicts, lists and scalars only)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def json_equal(a: JSONValue, b: JSONValue) -> bool:
    """Whether two JSON values are equal as JSON: booleans are not numbers, integers equal
    the floats of the same value, objects compare member-wise and arrays item-wise."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False
    return type(a) is type(b) and bool(a == b)


# --- JSON merge patch (RFC 7386) --------------------------------------------------------------

def apply_merge_patch(target: JSONValue, patch: JSONValue) -> JSONValue:
    """``target`` with the merge ``patch`` applied: objects merge member by member, a null
    member deletes, anything else (arrays included) replaces."""
    if not isinstance(patch, dict):
        return _copy(patch)
    result = _copy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def create_merge_patch(original: JSONValue, modified: JSONValue) -> JSONValue:
    """The merge patch that turns ``original`` into ``modified``: changed and added members,
    removed ones as null, arrays whole. ``{}`` when nothing changed between two objects.

    ``apply_merge_patch(original, create_merge_patch(original, modified))`` equals
    ``modified`` whenever ``modified`` has no null object members.
    """
    if not isinstance(original, dict) or not isinstance(modified, dict):
        return _copy(modified)
    patch: dict[str, JSONValue] = {}
    for key in original:
        if key not in modified:
            patch[key] = None
    for key, new in modified.items():
        if key not in original:
            patch[key] = _copy(new)
            continue
        old = original[key]
        if isinstance(old, dict) and isinstance(new, dict):
            sub = create_merge_patch(old, new)
            if sub:
                patch[key] = sub
        elif not json_equal(old, new):
            patch[key] = _copy(new)
    return patch


def _changes(current: Mapping[str, JSONValue],
             modified: Mapping[str, JSONValue]) -> dict[str, JSONValue]:
    """The members of ``modified`` that ``current`` lacks or has otherwise; no deletions."""
    patch: dict[str, JSONValue] = {}
    for key, new in modified.items():
        if new is None:
            continue
        old = current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            sub = _changes(old, new)
            if sub:
                patch[key] = sub
        elif old is None or not json_equal(old, new):
            patch[key] = apply_merge_patch(None, new) if isinstance(new, dict) else _copy(new)
    return patch


def _deletions(original: Mapping[str, JSONValue],
               modified: Mapping[str, JSONValue]) -> dict[str, JSONValue]:
    """Null for every member ``original`` has and ``modified`` dropped, at any depth
    where both are objects."""
    patch: dict[str, JSONValue] = {}
    for key, old in original.items():
        new = modified.get(key)
        if old is None:
            continue  # null is absent: there was nothing to delete
        if new is None:
            patch[key] = None
        elif isinstance(old, dict) and isinstance(new, dict):
            sub = _deletions(old, new)
            if sub:
                patch[key] = sub
    return patch


def _combine(deletions: dict[str, JSONValue],
             changes: dict[str, JSONValue]) -> dict[str, JSONValue]:
    result = dict(deletions)
    for key, value in changes.items():
        old = result.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            result[key] = _combine(old, value)
        else:
            result[key] = value
    return result


def three_way_merge_patch(original: JSONValue, modified: JSONValue,
                          current: JSONValue) -> JSONValue:
    """The merge patch ``navctl apply`` sends for the manifest ``modified``, given the
    ``original`` manifest applied last time and the ``current`` live object.

    Applied to ``current``, the patch sets every member of ``modified`` (where ``current``
    differs), deletes the members ``original`` had and ``modified`` dropped, and leaves
    alone the members only ``current`` has (set by the server or by other writers). An
    ``original`` of None (nothing applied before) deletes nothing. Arrays are replaced
    whole. ``{}`` means there is nothing to do.
    """
    if not isinstance(modified, dict) or not isinstance(current, dict):
        return _copy(modified)
    base = original if isinstance(original, dict) else {}
    return _combine(_deletions(base, modified), _changes(current, modified))


# --- JSON patch (RFC 6902) ---------------------------------------------------------------------

_OPS = ("add", "remove", "replace", "move", "copy", "test")


def _pointer(text: object, what: str) -> list[str]:
    """The reference tokens of a JSON pointer (RFC 6901)."""
    if not isinstance(text, str):
        raise PatchError(f'"{what}" must be a JSON pointer string')
    if text == "":
        return []
    if not text.startswith("/"):
        raise PatchError(f'"{what}" must be empty or start with "/" (got "{text}")')
    tokens = []
    for raw in text[1:].split("/"):
        if "~" in raw.replace("~0", "").replace("~1", ""):
            raise PatchError(f'invalid escape in "{text}": "~" must be followed by 0 or 1')
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tokens


def _index(token: str, size: int, *, insert: bool) -> int:
    """The array index named by ``token``: within the array, or up to its end (or "-")
    when inserting."""
    if insert and token == "-":
        return size
    if not token.isascii() or not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(f'"{token}" is not an array index')
    index = int(token)
    if index > size or (index == size and not insert):
        raise PatchError(f"index {index} is out of range for an array of {size} items")
    return index


def _parent(doc: JSONValue, tokens: list[str]) -> JSONValue:
    """The container that holds the location ``tokens`` names (all but the last token)."""
    node = doc
    for depth, token in enumerate(tokens[:-1]):
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f'"{_render(tokens[:depth + 1])}" does not exist')
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(token, len(node), insert=False)]
        else:
            raise PatchError(f'"{_render(tokens[:depth + 1])}" is inside a '
                             f"{_kind(node)}, not an object or array")
    if not isinstance(node, dict | list):
        raise PatchError(f'the parent of "{_render(tokens)}" is a {_kind(node)}, not an '
                         "object or array")
    return node


def _render(tokens: list[str]) -> str:
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


def _kind(value: JSONValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _get(doc: JSONValue, tokens: list[str]) -> JSONValue:
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'"{_render(tokens)}" does not exist')
        return parent[last]
    return parent[_index(last, len(parent), insert=False)]


def _add(doc: JSONValue, tokens: list[str], value: JSONValue) -> JSONValue:
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    else:
        parent.insert(_index(tokens[-1], len(parent), insert=True), value)
    return doc


def _remove(doc: JSONValue, tokens: list[str]) -> JSONValue:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'"{_render(tokens)}" does not exist')
        return parent.pop(last)
    return parent.pop(_index(last, len(parent), insert=False))


def _replace(doc: JSONValue, tokens: list[str], value: JSONValue) -> JSONValue:
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'"{_render(tokens)}" does not exist')
        parent[last] = value
    else:
        parent[_index(last, len(parent), insert=False)] = value
    return doc


def _member(op: Mapping[str, JSONValue], name: str) -> JSONValue:
    if name not in op:
        raise PatchError(f'missing "{name}"')
    return op[name]


def _apply_op(doc: JSONValue, op: Mapping[str, JSONValue]) -> JSONValue:
    """``doc`` (owned, mutated in place where possible) after one operation."""
    kind = op["op"]
    tokens = _pointer(_member(op, "path"), "path")
    if kind == "add":
        return _add(doc, tokens, _copy(_member(op, "value")))
    if kind == "remove":
        _remove(doc, tokens)
        return doc
    if kind == "replace":
        return _replace(doc, tokens, _copy(_member(op, "value")))
    source = _pointer(_member(op, "from"), "from") if kind in ("move", "copy") else []
    if kind == "move":
        if tokens[:len(source)] == source and len(tokens) > len(source):
            raise PatchError("cannot move a value into one of its own children")
        if tokens == source:
            _get(doc, source)
            return doc
        return _add(doc, tokens, _remove(doc, source))
    if kind == "copy":
        return _add(doc, tokens, _copy(_get(doc, source)))
    expected = _member(op, "value")  # test
    actual = _get(doc, tokens)
    if not json_equal(actual, expected):
        raise PatchError("the value differs from the expected value")
    return doc


def apply_json_patch(doc: JSONValue, ops: Sequence[Mapping[str, JSONValue]]) -> JSONValue:
    """``doc`` after the JSON patch ``ops`` (RFC 6902: add, remove, replace, move, copy,
    test), applied in order and all or nothing: on error ``PatchError`` names the
    operation's index, op and path and why, and nothing is returned."""
    if not isinstance(ops, Sequence) or isinstance(ops, str | bytes):
        raise PatchError("a JSON patch is a list of operations")
    result = _copy(doc)
    for index, op in enumerate(ops):
        if not isinstance(op, Mapping):
            raise PatchError("an operation must be an object", index=index)
        kind = op.get("op")
        path = op.get("path")
        shown_path = path if isinstance(path, str) else None
        if kind not in _OPS:
            raise PatchError(f'unknown op "{kind}": use one of {", ".join(_OPS)}',
                             index=index, path=shown_path)
        try:
            result = _apply_op(result, op)
        except PatchError as exc:
            raise PatchError(str(exc), index=index, op=str(kind), path=shown_path) from None
    return result
