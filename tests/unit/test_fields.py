"""Field selectors (``navarch._fields``): Kubernetes' ``fields.ParseSelector`` grammar,
escaping, matching and errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from navarch._fields import (
    FieldRequirement,
    FieldSelectorError,
    FieldSelectorExpr,
    escape_field_value,
    parse_field_selector,
)

F = FieldRequirement


@pytest.mark.parametrize(("text", "requirements", "canonical"), [
    ("", [], ""),
    ("a=b", [F("a", "=", "b")], "a=b"),
    ("a==b", [F("a", "=", "b")], "a=b"),
    ("a!=b", [F("a", "!=", "b")], "a!=b"),
    ("a=", [F("a", "=", "")], "a="),
    ("spec.nodeName=", [F("spec.nodeName", "=", "")], "spec.nodeName="),
    ("metadata.name=x,metadata.namespace=default",
     [F("metadata.name", "=", "x"), F("metadata.namespace", "=", "default")],
     "metadata.name=x,metadata.namespace=default"),
    # terms are ordered by their text
    ("z=1,a=2", [F("a", "=", "2"), F("z", "=", "1")], "a=2,z=1"),
    ("a=b,,c=d", [F("a", "=", "b"), F("c", "=", "d")], "a=b,c=d"),
    (",a=b,", [F("a", "=", "b")], "a=b"),
    # the first operator splits; '!=' wins over '=' at the same place
    ("a=!b", [F("a", "=", "!b")], "a=!b"),
    (r"a!=\=b", [F("a", "!=", "=b")], r"a!=\=b"),
    ("a!b=c", [F("a!b", "=", "c")], "a!b=c"),
    # escapes in values
    (r"a=b\,c", [F("a", "=", "b,c")], r"a=b\,c"),
    (r"a=b\=c", [F("a", "=", "b=c")], r"a=b\=c"),
    (r"a=b\\c", [F("a", "=", "b\\c")], r"a=b\\c"),
    (r"a=\\,b=c", [F("a", "=", "\\"), F("b", "=", "c")], r"a=\\,b=c"),
    # no trimming: whitespace belongs to fields and values, as in Kubernetes
    ("a=b, c=d", [F(" c", "=", "d"), F("a", "=", "b")], " c=d,a=b"),
    ("a = b", [F("a ", "=", " b")], "a = b"),
    # an empty field is kept for the registry to reject, unless the value is empty too
    ("=x", [F("", "=", "x")], "=x"),
    ("=", [], ""),
    ("!=", [], ""),
])
def test_parse(text: str, requirements: list[FieldRequirement], canonical: str) -> None:
    expr = parse_field_selector(text)
    assert list(expr.requirements) == requirements
    assert str(expr) == canonical
    assert expr.empty == (not requirements)
    assert parse_field_selector(canonical) == expr


@pytest.mark.parametrize(("text", "message"), [
    ("a", "invalid field selector term 'a': expected a field, an operator ('=', '==' or "
          "'!=') and a value, like 'spec.nodeName=node-1'"),
    ("a=b,c", "invalid field selector term 'c'"),
    ("a<3", "invalid field selector term 'a<3'"),
    (r"a=b\c", r"invalid escape sequence '\c' in the value of 'a=b\c': only '\\', '\,' and "
               r"'\=' are escapes"),
    ("a=b\\", r"invalid escape sequence '\' in the value of 'a=b\'"),
    ("a=b=c", "unescaped '=' in the value of 'a=b=c': write it as '\\='"),
    ("a==b=c", "unescaped '=' in the value of 'a==b=c'"),
    ("a!==b", "unescaped '=' in the value of 'a!==b'"),
    ("a===b", "unescaped '=' in the value of 'a===b'"),
])
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(FieldSelectorError) as info:
        parse_field_selector(text)
    assert message in str(info.value)


FIELDS = {"metadata.name": "web-1", "status.phase": "Running", "spec.nodeName": ""}


@pytest.mark.parametrize(("text", "selected"), [
    ("", True),
    ("metadata.name=web-1", True),
    ("metadata.name==web-1", True),
    ("metadata.name=web-2", False),
    ("metadata.name!=web-2", True),
    ("metadata.name!=web-1", False),
    ("spec.nodeName=", True),
    ("spec.nodeName!=", False),
    ("status.hostIP=", True),  # absent fields read as ""
    ("status.hostIP!=", False),
    ("status.hostIP=1.2.3.4", False),
    ("status.hostIP!=1.2.3.4", True),
    ("metadata.name=web-1,status.phase=Running", True),
    ("metadata.name=web-1,status.phase!=Running", False),
])
def test_matches(text: str, selected: bool) -> None:
    assert parse_field_selector(text).matches(FIELDS) is selected


def test_field_names_and_exact_matches() -> None:
    expr = parse_field_selector("spec.nodeName=n1,status.phase!=Failed,metadata.name==x")
    assert expr.field_names() == frozenset({"spec.nodeName", "status.phase",
                                            "metadata.name"})
    assert expr.requires_exact_match("spec.nodeName") == "n1"
    assert expr.requires_exact_match("metadata.name") == "x"
    assert expr.requires_exact_match("status.phase") is None
    assert FieldSelectorExpr().field_names() == frozenset()


def test_requirement_operator_is_checked() -> None:
    with pytest.raises(FieldSelectorError, match="use '=' or '!='"):
        FieldRequirement("a", "in", "b")  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "escaped"), [
    ("plain", "plain"), ("a,b", r"a\,b"), ("a=b", r"a\=b"), ("a\\b", r"a\\b"),
    ("\\,=", r"\\\,\="), ("", ""),
])
def test_escape_field_value(value: str, escaped: str) -> None:
    assert escape_field_value(value) == escaped


_field = st.text(st.characters(blacklist_characters="=!,\\"), min_size=1, max_size=8)


@given(st.lists(st.tuples(_field, st.sampled_from(["=", "!="]), st.text(max_size=8)),
                max_size=5))
def test_canonical_string_parses_back(terms: list[tuple[str, str, str]]) -> None:
    text = ",".join(f"{f}{op}{escape_field_value(v)}" for f, op, v in terms)
    expr = parse_field_selector(text)
    assert sorted((r.field, r.operator, r.value) for r in expr.requirements) == sorted(terms)
    assert parse_field_selector(str(expr)) == expr
