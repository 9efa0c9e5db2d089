"""Label selectors: Kubernetes' string grammar and structured form, and their matching.

The string grammar (``navctl get pods -l ...``, list and watch requests)::

    selector     := "" | requirement ("," requirement)*
    requirement  := "!" KEY                           label absent
                  | KEY                               label present
                  | KEY ("=" | "==" | "!=") VALUE     VALUE may be empty: "tier="
                  | KEY (">" | "<") INTEGER           label value compared as an integer
                  | KEY ("in" | "notin") "(" VALUE ("," VALUE)* ")"

Whitespace around tokens is ignored; ``,`` means AND; the empty string selects everything.
Keys are qualified names and values label values (see ``navarch._names``). ``!=`` and
``notin`` also select objects that lack the label; ``in``, ``=``, ``>`` and ``<`` need it.

The structured form is a LabelSelector's ``matchLabels`` and ``matchExpressions`` (operators
In, NotIn, Exists, DoesNotExist): ``selector_from_fields``. An empty structured selector
selects everything. Kubernetes reads an *absent* selector as selecting nothing in some
places and everything in others, so that is the caller's decision: this module never sees
one.

Selectors are immutable values; ``str()`` gives the canonical string (requirements ordered
by key, set values sorted), which parses back to an equal selector.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from navarch import _names

__all__ = [
    "OPERATORS",
    "LabelSelectorExpr",
    "Operator",
    "Requirement",
    "SelectorError",
    "parse_label_selector",
    "selector_from_fields",
]

Operator = Literal["=", "!=", "in", "notin", "exists", "!", "gt", "lt"]
OPERATORS: tuple[Operator, ...] = ("=", "!=", "in", "notin", "exists", "!", "gt", "lt")

_INT64 = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class SelectorError(ValueError):
    """A selector that cannot be parsed or built.

    ``violations`` holds (path, message) pairs: paths are relative to the selector
    (``matchExpressions[0].values``) for the structured form and empty for the string form.
    ``str()`` joins them into one message.
    """

    def __init__(self, violations: Sequence[tuple[str, str]]) -> None:
        self.violations = tuple(violations)
        super().__init__("; ".join(f"{p}: {m}" if p else m for p, m in self.violations))


def _parse_int64(text: str) -> int | None:
    if not _INT64.fullmatch(text):
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _shown(operator: str) -> str:
    return {"gt": "'>'", "lt": "'<'", "!": "'!' (does not exist)"}.get(operator,
                                                                      f"'{operator}'")


def _count_problem(operator: str, values: tuple[str, ...]) -> str | None:
    if operator in ("in", "notin"):
        return None if values else f"the {_shown(operator)} operator needs at least one value"
    if operator in ("=", "!=", "gt", "lt"):
        if len(values) == 1:
            return None
        return f"the {_shown(operator)} operator needs exactly one value"
    if operator in ("exists", "!"):
        return None if not values else f"the {_shown(operator)} operator takes no values"
    choices = ", ".join(f"'{o}'" for o in OPERATORS)
    return f'unknown operator "{operator}": use one of {choices}'


def _requirement_problems(key: str, operator: str,
                          values: tuple[str, ...]) -> list[tuple[str, str]]:
    """(relative path, message) for each problem of a requirement, Kubernetes' rules."""
    problems: list[tuple[str, str]] = []
    key_errors = _names.qualified_name(key)
    if key_errors:
        problems.append(("key", f'invalid label key "{key}": ' + "; ".join(key_errors)))
    count = _count_problem(operator, values)
    if count is not None:
        problems.append(("operator" if count.startswith("unknown") else "values", count))
    for i, value in enumerate(values):
        if operator in ("gt", "lt") and _parse_int64(value) is None:
            problems.append((f"values[{i}]", f"the value of the {_shown(operator)} operator "
                             f'must be an integer, not "{value}"'))
            continue
        value_errors = _names.label_value(value)
        if value_errors:
            problems.append((f"values[{i}]", f'invalid value "{value}" for label "{key}": '
                             + "; ".join(value_errors)))
    return problems


@dataclass(frozen=True, slots=True)
class Requirement:
    """One condition on one label. Always valid: construction checks the key, the values
    and their number for the operator (``SelectorError`` otherwise). ``values`` is stored
    sorted without duplicates; it is empty for ``exists`` and ``!``."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.values, str):
            raise TypeError("Requirement values must be a sequence of strings, not a string")
        values = tuple(sorted(set(self.values)))
        object.__setattr__(self, "values", values)
        problems = _requirement_problems(self.key, self.operator, values)
        if problems:
            raise SelectorError([("", m) for _, m in problems])

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement."""
        value = labels.get(self.key)
        op = self.operator
        if op == "exists":
            return value is not None
        if op == "!":
            return value is None
        if op in ("=", "in"):
            return value is not None and value in self.values
        if op in ("!=", "notin"):
            return value is None or value not in self.values
        have = None if value is None else _parse_int64(value)
        if have is None:
            return False
        want = int(self.values[0])
        return have > want if op == "gt" else have < want

    def __str__(self) -> str:
        op = self.operator
        if op == "exists":
            return self.key
        if op == "!":
            return "!" + self.key
        if op in ("in", "notin"):
            return f"{self.key} {op} ({','.join(self.values)})"
        symbol = {"=": "=", "!=": "!=", "gt": ">", "lt": "<"}[op]
        return self.key + symbol + self.values[0]


@dataclass(frozen=True, slots=True)
class LabelSelectorExpr:
    """The AND of its requirements, kept ordered by key (stable for equal keys). The empty
    selector (no requirements) selects everything."""

    requirements: tuple[Requirement, ...] = ()

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.requirements, key=lambda r: r.key))
        object.__setattr__(self, "requirements", ordered)

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything."""
        return not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an object with ``labels`` is selected. Reads ``labels`` only with
        ``.get``, so a protobuf map field can be passed as it is."""
        return all(r.matches(labels) for r in self.requirements)

    def exact_matches(self) -> dict[str, str]:
        """The key=value pairs every selected object has (from ``=`` and one-value ``in``
        requirements): what an index lookup can start from. Selectors with conflicting
        pairs select nothing; one of the pairs is returned."""
        pairs: dict[str, str] = {}
        for r in self.requirements:
            if r.operator in ("=", "in") and len(r.values) == 1:
                pairs.setdefault(r.key, r.values[0])
        return pairs

    def requires_exact_match(self, key: str) -> str | None:
        """The value that label ``key`` must have to be selected, if there is exactly one."""
        return self.exact_matches().get(key)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


# --- the string grammar --------------------------------------------------------------------

_WHITESPACE = " \t\r\n"
_SYMBOLS = "=!(),<>"
_TWO_CHAR = ("==", "!=")
_END = ""  # token text of the end of the input


@dataclass(frozen=True, slots=True)
class _Token:
    text: str  # "" only for the end of the input
    symbol: bool
    pos: int

    def describe(self) -> str:
        if not self.text:
            return "the end of the selector"
        return f"'{self.text}' at position {self.pos}"


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WHITESPACE:
            i += 1
        if i == n:
            tokens.append(_Token(_END, True, i))
            return tokens
        if text[i] in _SYMBOLS:
            width = 2 if text[i:i + 2] in _TWO_CHAR else 1
            tokens.append(_Token(text[i:i + width], True, i))
            i += width
            continue
        start = i
        while i < n and text[i] not in _WHITESPACE and text[i] not in _SYMBOLS:
            i += 1
        tokens.append(_Token(text[start:i], False, start))


_KEY_EXPECTED = "a label key, or '!' followed by a label key"
_OPERATOR_EXPECTED = ("an operator ('=', '==', '!=', 'in', 'notin', '>' or '<'), "
                      "',' or the end of the selector")
_SYMBOL_OPERATORS: dict[str, Operator] = {"=": "=", "==": "=", "!=": "!=", ">": "gt",
                                          "<": "lt"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.at = 0

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        if token.text != _END:
            self.at += 1
        return token

    @staticmethod
    def fail(token: _Token, expected: str) -> SelectorError:
        return SelectorError([("", f"found {token.describe()}, expected {expected}")])

    def at_boundary(self) -> bool:
        token = self.peek()
        return token.symbol and token.text in (_END, ",")

    def selector(self) -> LabelSelectorExpr:
        if self.peek().text == _END:
            return LabelSelectorExpr()
        requirements = [self.requirement()]
        while True:
            token = self.take()
            if token.text == _END:
                return LabelSelectorExpr(tuple(requirements))
            if token.text != ",":
                raise self.fail(token, "',' or the end of the selector")
            requirements.append(self.requirement())

    def key(self) -> str:
        token = self.take()
        if token.symbol:
            raise self.fail(token, _KEY_EXPECTED)
        return token.text

    def requirement(self) -> Requirement:
        if self.peek().text == "!":
            self.take()
            return Requirement(self.key(), "!", ())
        key = self.key()
        key_errors = _names.qualified_name(key)
        if key_errors:  # before the operator: "a b" is a bad operator, "-a b" a bad key
            raise SelectorError([("", f'invalid label key "{key}": ' + "; ".join(key_errors))])
        if self.at_boundary():
            return Requirement(key, "exists", ())
        token = self.take()
        if not token.symbol and token.text in ("in", "notin"):
            return Requirement(key, cast(Operator, token.text), self.value_set(token.text))
        operator = _SYMBOL_OPERATORS.get(token.text) if token.symbol else None
        if operator is None:
            raise self.fail(token, _OPERATOR_EXPECTED)
        return Requirement(key, operator, (self.single_value(token.text),))

    def single_value(self, operator: str) -> str:
        if self.at_boundary():
            return ""
        token = self.take()
        if token.symbol:
            raise self.fail(token, f"a label value after '{operator}'")
        return token.text

    def value_set(self, operator: str) -> tuple[str, ...]:
        token = self.take()
        if token.text != "(" or not token.symbol:
            raise self.fail(token, f"'(' and a comma-separated list of values after "
                                   f"'{operator}'")
        values: list[str] = []
        expect_value = True  # a value may be empty: "(,a)", "(a,,b)", "()"
        while True:
            token = self.take()
            if not token.symbol:
                if not expect_value:
                    raise self.fail(token, "',' or ')'")
                values.append(token.text)
                expect_value = False
            elif token.text in (",", ")"):
                if expect_value:
                    values.append("")
                if token.text == ")":
                    return tuple(values)
                expect_value = True
            else:
                raise self.fail(token, "a label value, ',' or ')'")


def parse_label_selector(text: str) -> LabelSelectorExpr:
    """Parse Kubernetes' string form of a label selector (see the module docstring).

    Raises ``SelectorError`` naming the offending token, key or value and what would be
    accepted there.
    """
    return _Parser(text).selector()


# --- the structured form -------------------------------------------------------------------

_STRUCTURED_OPERATORS: dict[str, Operator] = {"In": "in", "NotIn": "notin", "Exists": "exists",
                                              "DoesNotExist": "!"}


def _match_label_problems(key: str, value: str) -> list[tuple[str, str]]:
    problems = []
    key_errors = _names.qualified_name(key)
    if key_errors:
        problems.append(("matchLabels", f'invalid label key "{key}": ' + "; ".join(key_errors)))
    value_errors = _names.label_value(value)
    if value_errors:
        problems.append(("matchLabels", f'invalid value "{value}" for label "{key}": '
                         + "; ".join(value_errors)))
    return problems


def _expression_problems(path: str, key: str, operator: str,
                         values: tuple[str, ...]) -> list[tuple[str, str]]:
    internal = _STRUCTURED_OPERATORS.get(operator)
    if internal is None:
        choices = ", ".join(f'"{o}"' for o in _STRUCTURED_OPERATORS)
        problems = [(f"{path}.operator", f'unsupported operator "{operator}": use {choices}')]
        key_errors = _names.qualified_name(key)
        if key_errors:
            problems.append((f"{path}.key",
                             f'invalid label key "{key}": ' + "; ".join(key_errors)))
        return problems
    if internal in ("in", "notin") and not values:
        return [(f"{path}.values", f"must be specified when the operator is {operator}")]
    if internal in ("exists", "!") and values:
        return [(f"{path}.values", f"must be empty when the operator is {operator}")]
    return [(f"{path}.{sub}", msg) for sub, msg in _requirement_problems(key, internal, values)]


def selector_from_fields(
        match_labels: Mapping[str, str],
        match_expressions: Iterable[tuple[str, str, Sequence[str]]] = (),
) -> LabelSelectorExpr:
    """The selector of a LabelSelector's ``matchLabels`` and ``matchExpressions`` (each a
    (key, operator, values) triple, operator one of In, NotIn, Exists, DoesNotExist).

    Both empty selects everything; an absent LabelSelector is the caller's to interpret.
    Raises ``SelectorError`` listing every problem with its path, e.g.
    ``("matchExpressions[1].values", "must be specified when the operator is In")``.
    """
    problems: list[tuple[str, str]] = []
    requirements: list[Requirement] = []
    for key, value in sorted(match_labels.items()):
        found = _match_label_problems(key, value)
        problems.extend(found)
        if not found:
            requirements.append(Requirement(key, "=", (value,)))
    for i, (key, operator, values) in enumerate(match_expressions):
        vals = tuple(values)
        found = _expression_problems(f"matchExpressions[{i}]", key, operator, vals)
        problems.extend(found)
        if not found:
            requirements.append(Requirement(key, _STRUCTURED_OPERATORS[operator], vals))
    if problems:
        raise SelectorError(problems)
    return LabelSelectorExpr(tuple(requirements))


def label_selector(selector: Any) -> LabelSelectorExpr:
    """The selector of a ``navarch.v1.LabelSelector`` message (matchLabels and
    matchExpressions); raises ``SelectorError`` when it is not valid. An empty one
    selects everything: callers decide what an *absent* selector means."""
    return selector_from_fields(
        dict(selector.match_labels),
        [(r.key, r.operator, list(r.values)) for r in selector.match_expressions])
