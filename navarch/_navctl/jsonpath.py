"""kubectl's JSONPath templates (``-o jsonpath=…``, ``custom-columns``), pure.

A template is text with actions in braces. An action is an expression, a quoted string
(``{"\\n"}``), ``range EXPR`` … ``end``, or ``end``. Expressions, as Kubernetes documents
them: ``$`` or ``@`` (optional: paths start from the current object, the root outside a
range), ``.field`` (``\\.`` escapes a dot in a name), ``['field']``, ``..field``
(recursive descent), ``*`` / ``[*]``, ``[i]`` (negative counts from the end),
``[start:end:step]``, unions ``[0,2]`` / ``['a','b']``, filters ``[?(@.type=="Ready")]``
with ``== != < > <= >=`` against a number, a quoted string, ``true``/``false`` or another
path, and ``[?(@.field)]`` for presence.

Printing, as kubectl: the values of one action are separated by spaces; strings as they
are, numbers and booleans as JSON writes them, maps and lists as compact JSON. A missing
field prints nothing (kubectl's ``--allow-missing-template-keys`` default).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["JsonPathError", "Template", "custom_column_cells", "evaluate", "format_value",
           "parse_custom_columns", "parse_template"]


class JsonPathError(ValueError):
    """A template that cannot be parsed; the message says where and why."""


# --- expressions ----------------------------------------------------------------------

Step = Callable[[list[Any]], list[Any]]


@dataclass(frozen=True)
class Expr:
    """A path: from the root (``$``) or the current object, then steps."""

    steps: tuple[Step, ...]
    from_root: bool = False

    def values(self, root: Any, current: Any) -> list[Any]:
        nodes = [root if self.from_root else current]
        for step in self.steps:
            nodes = step(nodes)
        return nodes


def _field(name: str) -> Step:
    def step(nodes: list[Any]) -> list[Any]:
        return [n[name] for n in nodes if isinstance(n, dict) and name in n]
    return step


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [node[k] for k in sorted(node)]
    if isinstance(node, list):
        return list(node)
    return []


def _wildcard(nodes: list[Any]) -> list[Any]:
    return [child for n in nodes for child in _children(n)]


def _descendants(node: Any) -> Iterator[Any]:
    yield node
    for child in _children(node):
        yield from _descendants(child)


def _recursive(inner: Step) -> Step:
    def step(nodes: list[Any]) -> list[Any]:
        return inner([d for n in nodes for d in _descendants(n)])
    return step


def _indexes(indexes: tuple[int, ...]) -> Step:
    """``[i]`` or the union ``[i,j]``: each index over every node, index by index."""
    def step(nodes: list[Any]) -> list[Any]:
        return [n[i] for i in indexes for n in nodes
                if isinstance(n, list) and -len(n) <= i < len(n)]
    return step


def _key_paths(paths: tuple[tuple[str, ...], ...]) -> Step:
    """``['a']`` or the union ``['a.b', 'c']``: as in kubectl, a quoted key is a dotted
    path (``\\.`` keeps a dot in a name); each path over every node, path by path."""
    def step(nodes: list[Any]) -> list[Any]:
        out = []
        for path in paths:
            found = nodes
            for name in path:
                found = _field(name)(found)
            out += found
        return out
    return step


def _split_path(text: str) -> tuple[str, ...]:
    """Split on dots not escaped by a backslash; the escapes are removed."""
    parts, current, i = [], [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            current.append(text[i + 1])
            i += 2
            continue
        if text[i] == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(text[i])
        i += 1
    parts.append("".join(current))
    return tuple(p for p in parts if p)


def _slice(start: int | None, stop: int | None, stride: int | None) -> Step:
    def step(nodes: list[Any]) -> list[Any]:
        return [x for n in nodes if isinstance(n, list) for x in n[start:stop:stride]]
    return step


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
}


def _number(value: Any) -> Any:
    """Protobuf's JSON writes 64-bit integers as strings: compare them as numbers."""
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return float(value)
    return value


def _filter(left: Expr, op: str, right: Expr | Any | None) -> Step:
    def holds(item: Any) -> bool:
        found = left.values(item, item)
        if op == "":
            return bool(found)
        wanted = right.values(item, item) if isinstance(right, Expr) else [right]
        for a in found:
            for b in wanted:
                try:
                    if _COMPARE[op](_number(a), _number(b)):
                        return True
                except TypeError:
                    continue
        return False

    def step(nodes: list[Any]) -> list[Any]:
        return [item for n in nodes if isinstance(n, list) for item in n if holds(item)]
    return step


class _Parser:
    """Parses one expression (the inside of an action)."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def fail(self, why: str) -> JsonPathError:
        return JsonPathError(f"{why} at position {self.pos} of {self.text!r}")

    def peek(self, s: str) -> bool:
        return self.text.startswith(s, self.pos)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def expr(self, stop: str = "") -> Expr:
        from_root = False
        if self.peek("$"):
            self.pos, from_root = self.pos + 1, True
        elif self.peek("@"):
            self.pos += 1
        steps: list[Step] = []
        while self.pos < len(self.text) and not (stop and self.text[self.pos] in stop):
            if self.peek(".."):
                self.pos += 2
                steps.append(_recursive(self.step_after_dot(recursive=True)))
            elif self.peek("."):
                self.pos += 1
                if self.pos == len(self.text) or self.text[self.pos] in (stop or " "):
                    continue  # "{.}" is the current object
                steps.append(self.step_after_dot())
            elif self.peek("["):
                steps.append(self.subscript())
            else:
                raise self.fail(f"unexpected {self.text[self.pos]!r}")
        return Expr(tuple(steps), from_root)

    def step_after_dot(self, recursive: bool = False) -> Step:
        if self.peek("*"):
            self.pos += 1
            return _wildcard if not recursive else (lambda nodes: nodes)
        if self.peek("["):
            return self.subscript()
        name = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                name.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if ch in ".[ )=!<>,":
                break
            name.append(ch)
            self.pos += 1
        if not name:
            raise self.fail("a field name is missing")
        return _field("".join(name))

    def subscript(self) -> Step:
        end = self._matching_bracket()
        inside = self.text[self.pos + 1:end].strip()
        self.pos = end + 1
        if inside == "*":
            return _wildcard
        if inside.startswith("?(") and inside.endswith(")"):
            return self.filter(inside[2:-1])
        if inside[:1] in "'\"":
            paths = []
            for part in _split_union(inside):
                part = part.strip()
                if len(part) < 2 or part[0] != part[-1] or part[0] not in "'\"":
                    raise self.fail(f"invalid key {part}")
                paths.append(_split_path(part[1:-1]))
            return _key_paths(tuple(paths))
        if ":" in inside:
            parts = [p.strip() for p in inside.split(":")]
            if len(parts) > 3:
                raise self.fail(f"invalid slice [{inside}]")
            try:
                nums = [int(p) if p else None for p in parts] + [None] * (3 - len(parts))
            except ValueError:
                raise self.fail(f"invalid slice [{inside}]") from None
            return _slice(nums[0], nums[1], nums[2])
        try:
            return _indexes(tuple(int(p) for p in inside.split(",")))
        except ValueError:
            raise self.fail(f"invalid array index [{inside}]") from None

    def _matching_bracket(self) -> int:
        depth, quote = 0, ""
        for i in range(self.pos, len(self.text)):
            ch = self.text[i]
            if quote:
                if ch == quote:
                    quote = ""
            elif ch in "'\"":
                quote = ch
            elif ch == "[":
                depth += 1
            elif ch == "]":
                depth -= 1
                if depth == 0:
                    return i
        raise self.fail("unterminated array")

    def filter(self, text: str) -> Step:
        sub = _Parser(text)
        sub.skip_space()
        left = sub.expr(stop=" =!<>")
        sub.skip_space()
        op = next((o for o in ("==", "!=", "<=", ">=", "<", ">") if sub.peek(o)), "")
        if not op:
            if sub.pos != len(text):
                raise self.fail(f"invalid filter ?({text})")
            return _filter(left, "", None)
        sub.pos += len(op)
        sub.skip_space()
        rest = text[sub.pos:].strip()
        right: Expr | Any
        if rest[:1] in "'\"":
            right = _unquote(rest)
        elif rest in ("true", "false"):
            right = rest == "true"
        elif rest[:1] in "@$":
            right = _Parser(rest).expr()
        else:
            try:
                right = float(rest)
            except ValueError:
                raise self.fail(f"invalid filter ?({text})") from None
        return _filter(left, op, right)


def _split_union(text: str) -> list[str]:
    parts, current, quote = [], [], ""
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _unquote(text: str) -> str:
    if len(text) < 2 or text[0] != text[-1] or text[0] not in "'\"":
        raise JsonPathError(f"invalid quoted string {text!r}")
    if text[0] == '"':
        try:
            return str(json.loads(text))
        except ValueError:
            raise JsonPathError(f"invalid quoted string {text!r}") from None
    return text[1:-1]


# --- templates ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Action:
    expr: Expr


@dataclass(frozen=True)
class _Range:
    expr: Expr
    body: tuple[Any, ...]


@dataclass(frozen=True)
class Template:
    """A parsed template: text, actions and ranges."""

    nodes: tuple[Any, ...]


def _actions(template: str) -> Iterator[tuple[str, str]]:
    """("text", s) and ("action", inside) pieces; quotes inside actions may hold braces."""
    pos = 0
    while pos < len(template):
        start = template.find("{", pos)
        if start < 0:
            yield "text", template[pos:]
            return
        if start > pos:
            yield "text", template[pos:start]
        i, quote = start + 1, ""
        while i < len(template):
            ch = template[i]
            if quote:
                if ch == "\\":
                    i += 1
                elif ch == quote:
                    quote = ""
            elif ch in "'\"":
                quote = ch
            elif ch == "}":
                break
            i += 1
        if i >= len(template):
            raise JsonPathError(f"unclosed action in {template!r}")
        yield "action", template[start + 1:i].strip()
        pos = i + 1


def parse_template(template: str) -> Template:
    """Parse a template; JsonPathError says what is wrong."""
    stack: list[tuple[Expr | None, list[Any]]] = [(None, [])]
    for kind, piece in _actions(template):
        body = stack[-1][1]
        if kind == "text":
            body.append(_Text(piece))
        elif piece == "end":
            if len(stack) == 1:
                raise JsonPathError(f"not in range, nothing to end in {template!r}")
            expr, inner = stack.pop()
            assert expr is not None
            stack[-1][1].append(_Range(expr, tuple(inner)))
        elif piece.startswith("range ") or piece == "range":
            stack.append((_Parser(piece[5:].strip()).expr(), []))
        elif piece[:1] in "'\"":
            body.append(_Text(_unquote(piece)))
        elif not piece:
            raise JsonPathError(f"empty action in {template!r}")
        else:
            body.append(_Action(_Parser(piece).expr()))
    if len(stack) != 1:
        raise JsonPathError(f"unclosed range in {template!r}")
    return Template(tuple(stack[0][1]))


def format_value(value: Any) -> str:
    """A value as kubectl prints it: strings raw, everything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def evaluate(template: Template, data: Any) -> str:
    """The template's output for ``data`` (an object or a List in JSON form)."""
    out: list[str] = []

    def run(nodes: tuple[Any, ...], current: Any) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Action):
                out.append(" ".join(format_value(v) for v in node.expr.values(data, current)))
            else:
                items = node.expr.values(data, current)
                if len(items) == 1 and isinstance(items[0], list):
                    items = items[0]
                for item in items:
                    run(node.body, item)

    run(template.nodes, data)
    return "".join(out)


# --- custom columns -------------------------------------------------------------------

def parse_custom_columns(spec: str) -> list[tuple[str, Template]]:
    """``HEADER:PATH[,HEADER:PATH...]`` (PATH with or without braces), as kubectl's
    ``-o custom-columns``."""
    columns = []
    for part in spec.split(","):
        header, sep, path = part.partition(":")
        if not sep or not header or not path:
            raise JsonPathError(f"unexpected custom-columns spec: {part}, expected "
                                "<header>:<json-path-expr>")
        path = path.strip()
        if not path.startswith("{"):
            path = "{" + path + "}"
        columns.append((header, parse_template(path)))
    return columns


def custom_column_cells(columns: list[tuple[str, Template]], obj: Any) -> list[str]:
    """One row: each column's values joined by commas, ``<none>`` when there is none."""
    cells = []
    for _, template in columns:
        action = template.nodes[0]
        values = action.expr.values(obj, obj) if isinstance(action, _Action) else []
        cells.append(",".join(format_value(v) for v in values) or "<none>")
    return cells
