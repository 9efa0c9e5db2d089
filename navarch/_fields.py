"""Field selectors: Kubernetes' ``--field-selector`` grammar and matching.

::

    selector := term ("," term)*         AND of the terms; "" selects everything
    term     := FIELD ("=" | "==" | "!=") VALUE

FIELD is everything before the first operator of the term, taken literally (no escapes, no
whitespace trimming: ``"a=b, c=d"`` names the field ``" c"``). In VALUE a backslash escapes
``\\``, ``,`` and ``=``; an unescaped ``,`` ends the term and an unescaped ``=`` is an error.
Empty terms (``"a=b,,c=d"``) are skipped, as is a term with an empty field and an empty value.

Which fields a resource can be selected by is not decided here: the API server's registry
checks ``FieldSelectorExpr.field_names()``. Matching treats a field absent from the object's
field set as the empty string, so ``spec.nodeName=`` selects unscheduled pods.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "FieldOperator",
    "FieldRequirement",
    "FieldSelectorError",
    "FieldSelectorExpr",
    "escape_field_value",
    "parse_field_selector",
]

FieldOperator = Literal["=", "!="]
_OPERATORS = ("!=", "==", "=")  # "==" before "=", so that it leaves no '=' in the value
_ESCAPABLE = "\\,="


class FieldSelectorError(ValueError):
    """A field selector that cannot be parsed; the message names the term and the reason."""


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """``field`` equals (``=``) or differs from (``!=``) ``value``."""

    field: str
    operator: FieldOperator
    value: str

    def __post_init__(self) -> None:
        if self.operator not in ("=", "!="):
            raise FieldSelectorError(f'unknown field selector operator "{self.operator}": '
                                     "use '=' or '!='")

    def matches(self, fields: Mapping[str, str]) -> bool:
        """Whether the object's ``fields`` satisfy the requirement (absent reads as "")."""
        equal = fields.get(self.field, "") == self.value
        return equal if self.operator == "=" else not equal

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_field_value(self.value)}"


@dataclass(frozen=True, slots=True)
class FieldSelectorExpr:
    """The AND of its requirements; no requirements selects everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything."""
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        """Whether an object with these selectable ``fields`` is selected."""
        return all(r.matches(fields) for r in self.requirements)

    def field_names(self) -> frozenset[str]:
        """Every field the selector reads, for the registry to check it supports them."""
        return frozenset(r.field for r in self.requirements)

    def requires_exact_match(self, field: str) -> str | None:
        """The value ``field`` must have to be selected (from an ``=`` term), if any."""
        for r in self.requirements:
            if r.field == field and r.operator == "=":
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def escape_field_value(value: str) -> str:
    """``value`` with ``\\``, ``,`` and ``=`` backslash-escaped, for use in a selector."""
    return "".join("\\" + ch if ch in _ESCAPABLE else ch for ch in value)


def _unescape(value: str, term: str) -> str:
    out: list[str] = []
    chars = iter(value)
    for ch in chars:
        if ch == "\\":
            escaped = next(chars, None)
            if escaped is None or escaped not in _ESCAPABLE:
                sequence = "\\" + (escaped or "")
                raise FieldSelectorError(
                    f"invalid escape sequence '{sequence}' in the value of '{term}': only "
                    "'\\\\', '\\,' and '\\=' are escapes")
            out.append(escaped)
        elif ch in ",=":
            raise FieldSelectorError(
                f"unescaped '{ch}' in the value of '{term}': write it as '\\{ch}'")
        else:
            out.append(ch)
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    """Split at commas that are not escaped; escapes stay in the terms."""
    terms: list[str] = []
    start, escaped = 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, FieldOperator, str]:
    for i in range(len(term)):
        for op in _OPERATORS:
            if term.startswith(op, i):
                operator: FieldOperator = "!=" if op == "!=" else "="
                return term[:i], operator, term[i + len(op):]
    raise FieldSelectorError(f"invalid field selector term '{term}': expected a field, an "
                             "operator ('=', '==' or '!=') and a value, like "
                             "'spec.nodeName=node-1'")


def parse_field_selector(text: str) -> FieldSelectorExpr:
    """Parse Kubernetes' string form of a field selector (see the module docstring). Terms
    are kept in sorted order of their text, as Kubernetes orders them."""
    if not text:
        return FieldSelectorExpr()
    requirements = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        field, operator, raw = _split_term(term)
        value = _unescape(raw, term)
        if field or value:
            requirements.append(FieldRequirement(field, operator, value))
    return FieldSelectorExpr(tuple(requirements))
