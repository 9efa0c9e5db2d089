"""Label selectors (``navarch._labels``): Kubernetes' string grammar, the structured form,
matching, the canonical string, and the errors a user sees.

Tables follow apimachinery's ``labels`` tests in substance: which strings parse, what they
parse to, which label sets they select. A property test checks that the canonical string
parses back to the same selector.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from navarch._labels import (
    LabelSelectorExpr,
    Requirement,
    SelectorError,
    parse_label_selector,
    selector_from_fields,
)

R = Requirement


@pytest.mark.parametrize(("text", "requirements", "canonical"), [
    ("", [], ""),
    ("   ", [], ""),
    ("a=b", [R("a", "=", ("b",))], "a=b"),
    ("a==b", [R("a", "=", ("b",))], "a=b"),
    ("a!=b", [R("a", "!=", ("b",))], "a!=b"),
    ("a", [R("a", "exists")], "a"),
    ("!a", [R("a", "!")], "!a"),
    ("a>3", [R("a", "gt", ("3",))], "a>3"),
    ("a<3", [R("a", "lt", ("3",))], "a<3"),
    ("a=", [R("a", "=", ("",))], "a="),
    ("a!=", [R("a", "!=", ("",))], "a!="),
    ("a in (x,y)", [R("a", "in", ("x", "y"))], "a in (x,y)"),
    ("a notin (y,x)", [R("a", "notin", ("x", "y"))], "a notin (x,y)"),
    ("a in (x,x)", [R("a", "in", ("x",))], "a in (x)"),
    ("a in ()", [R("a", "in", ("",))], "a in ()"),
    ("a in (,x)", [R("a", "in", ("", "x"))], "a in (,x)"),
    ("a in (x,)", [R("a", "in", ("", "x"))], "a in (,x)"),
    ("x in (foo,,baz),y,z notin ()",
     [R("x", "in", ("", "baz", "foo")), R("y", "exists"), R("z", "notin", ("",))],
     "x in (,baz,foo),y,z notin ()"),
    (" a = b , c != d ", [R("a", "=", ("b",)), R("c", "!=", ("d",))], "a=b,c!=d"),
    ("\ta\n=\rb", [R("a", "=", ("b",))], "a=b"),
    ("a in(x)", [R("a", "in", ("x",))], "a in (x)"),
    ("z=1,a=2,m", [R("a", "=", ("2",)), R("m", "exists"), R("z", "=", ("1",))], "a=2,m,z=1"),
    ("b=2,a,b=1", [R("a", "exists"), R("b", "=", ("2",)), R("b", "=", ("1",))], "a,b=2,b=1"),
    ("example.com/tier=front-end",
     [R("example.com/tier", "=", ("front-end",))], "example.com/tier=front-end"),
    # "in" and "notin" are operators only where an operator is expected
    ("in=notin", [R("in", "=", ("notin",))], "in=notin"),
    ("in in (in,notin)", [R("in", "in", ("in", "notin"))], "in in (in,notin)"),
    ("notin", [R("notin", "exists")], "notin"),
    ("a,!b,c=d", [R("a", "exists"), R("b", "!"), R("c", "=", ("d",))], "a,!b,c=d"),
])
def test_parse(text: str, requirements: list[Requirement], canonical: str) -> None:
    expr = parse_label_selector(text)
    assert list(expr.requirements) == requirements
    assert str(expr) == canonical
    assert expr.empty == (not requirements)
    assert parse_label_selector(canonical) == expr


@pytest.mark.parametrize(("text", "message"), [
    ("a=b,", "found the end of the selector, expected a label key, or '!' followed by a "
             "label key"),
    (",a", "found ',' at position 0, expected a label key"),
    ("a,,b", "found ',' at position 2, expected a label key"),
    ("!", "found the end of the selector, expected a label key"),
    ("!=a", "found '!=' at position 0, expected a label key"),
    ("a b", "found 'b' at position 2, expected an operator ('=', '==', '!=', 'in', "
            "'notin', '>' or '<'), ',' or the end of the selector"),
    ("a in b", "found 'b' at position 5, expected '(' and a comma-separated list of values "
               "after 'in'"),
    ("a notin", "found the end of the selector, expected '(' and a comma-separated list of "
                "values after 'notin'"),
    ("a in (b", "found the end of the selector, expected a label value, ',' or ')'"),
    ("a in (b c)", "found 'c' at position 8, expected ',' or ')'"),
    ("a in (b=c)", "found '=' at position 7, expected a label value, ',' or ')'"),
    ("a=b c", "found 'c' at position 4, expected ',' or the end of the selector"),
    ("a=b=c", "found '=' at position 3, expected ',' or the end of the selector"),
    ("!a=b", "found '=' at position 2, expected ',' or the end of the selector"),
    ("a=(b)", "found '(' at position 2, expected a label value after '='"),
    ("a>=3", "found '=' at position 2, expected a label value after '>'"),
    ("a>x", "the value of the '>' operator must be an integer, not \"x\""),
    ("a<", "the value of the '<' operator must be an integer, not \"\""),
    ("a>1.5", "must be an integer"),
    ("a>99999999999999999999", "must be an integer"),
    ("-a", 'invalid label key "-a": name part must consist of letters, digits'),
    ("!-a", 'invalid label key "-a"'),
    ("Example.com/a=b", 'invalid label key "Example.com/a": prefix part must be a lowercase '
                        "RFC 1123 subdomain"),
    ("a/b/c", 'invalid label key "a/b/c"'),
    ("a=-b", 'invalid value "-b" for label "a": must be empty or consist of letters'),
    ("a in (ok,-b)", 'invalid value "-b" for label "a"'),
    ("a=" + "v" * 64, "must be no more than 63 characters"),
    ("a=b)", "found ')' at position 3, expected ',' or the end of the selector"),
])
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_label_selector(text)
    assert message in str(info.value)
    assert all(path == "" for path, _ in info.value.violations)


LABELS: dict[str, str] = {"app": "web", "tier": "front", "n": "10", "empty": ""}


@pytest.mark.parametrize(("text", "selected"), [
    ("", True),
    ("app=web", True),
    ("app==web", True),
    ("app=db", False),
    ("missing=web", False),
    ("app!=db", True),
    ("app!=web", False),
    ("missing!=x", True),  # != also selects objects without the label
    ("app in (db,web)", True),
    ("app in (db)", False),
    ("missing in (x)", False),
    ("app notin (db)", True),
    ("app notin (web)", False),
    ("missing notin (x)", True),
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("empty", True),
    ("empty=", True),
    ("empty in ()", True),
    ("missing=", False),
    ("n>9", True),
    ("n>10", False),
    ("n<11", True),
    ("n<10", False),
    ("app>1", False),  # a value that is not an integer never compares
    ("missing<100", False),
    ("app=web,tier=front", True),
    ("app=web,tier=back", False),
    ("app,!missing,n>0,tier in (front)", True),
])
def test_matches(text: str, selected: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is selected


@pytest.mark.parametrize(("value", "selected"), [
    ("11", True), ("+11", True), ("011", True), ("10", False), ("-20", False),
    ("1_000", False), (" 11", False), ("9223372036854775808", False), ("", False),
])
def test_gt_reads_label_values_as_int64(value: str, selected: bool) -> None:
    assert parse_label_selector("n>10").matches({"n": value}) is selected


def test_matches_reads_labels_only_through_get() -> None:
    class OnlyGet:
        def __init__(self, data: dict[str, str]) -> None:
            self.data = data

        def get(self, key: str, default: str | None = None) -> str | None:
            return self.data.get(key, default)

        def __getitem__(self, key: str) -> str:
            raise AssertionError("indexing could insert into a protobuf map")

    expr = parse_label_selector("a=1,b,!c,d notin (x),e>1")
    assert expr.matches(OnlyGet({"a": "1", "b": "", "e": "2"}))  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "exact"), [
    ("", {}),
    ("a=1", {"a": "1"}),
    ("a==1,b in (2),c in (3,4),d!=5,e", {"a": "1", "b": "2"}),
    ("a notin (1),!b,c>1", {}),
])
def test_exact_matches(text: str, exact: dict[str, str]) -> None:
    expr = parse_label_selector(text)
    assert expr.exact_matches() == exact
    for key, value in exact.items():
        assert expr.requires_exact_match(key) == value
    assert expr.requires_exact_match("zzz") is None


@pytest.mark.parametrize(("key", "op", "values", "message"), [
    ("a", "in", (), "the 'in' operator needs at least one value"),
    ("a", "notin", (), "the 'notin' operator needs at least one value"),
    ("a", "=", (), "the '=' operator needs exactly one value"),
    ("a", "!=", ("x", "y"), "the '!=' operator needs exactly one value"),
    ("a", "exists", ("x",), "the 'exists' operator takes no values"),
    ("a", "!", ("x",), "the '!' (does not exist) operator takes no values"),
    ("a", "gt", ("1", "2"), "the '>' operator needs exactly one value"),
    ("a", "lt", ("x",), "the value of the '<' operator must be an integer"),
    ("a", "~", (), 'unknown operator "~"'),
    ("", "exists", (), 'invalid label key "": name part must be non-empty'),
    ("a", "=", ("a b",), 'invalid value "a b" for label "a"'),
])
def test_requirement_validation(key: str, op: str, values: tuple[str, ...],
                                message: str) -> None:
    with pytest.raises(SelectorError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Requirement(key, op, values)  # type: ignore[arg-type]


def test_requirement_rejects_a_string_as_values() -> None:
    with pytest.raises(TypeError):
        Requirement("a", "in", "xy")


def test_expressions_are_values() -> None:
    a = parse_label_selector("b=1,a in (y,x)")
    b = LabelSelectorExpr((R("a", "in", ("x", "y", "x")), R("b", "=", ("1",))))
    assert a == b and hash(a) == hash(b)
    assert LabelSelectorExpr().empty and LabelSelectorExpr().matches({})


# --- the structured form ---------------------------------------------------------------------

Expression = tuple[str, str, Sequence[str]]


@pytest.mark.parametrize(("match_labels", "expressions", "canonical"), [
    ({}, [], ""),
    ({"app": "web"}, [], "app=web"),
    ({"b": "2", "a": "1"}, [], "a=1,b=2"),
    ({}, [("tier", "In", ["front", "back"])], "tier in (back,front)"),
    ({}, [("tier", "NotIn", ["db"])], "tier notin (db)"),
    ({}, [("tier", "Exists", [])], "tier"),
    ({}, [("tier", "DoesNotExist", [])], "!tier"),
    ({"app": "web"}, [("app", "In", ["web", "api"])], "app=web,app in (api,web)"),
    ({"app": ""}, [], "app="),
])
def test_selector_from_fields(match_labels: dict[str, str], expressions: list[Expression],
                              canonical: str) -> None:
    expr = selector_from_fields(match_labels, expressions)
    assert str(expr) == canonical
    assert parse_label_selector(canonical) == expr


def test_selector_from_fields_matches() -> None:
    expr = selector_from_fields({"app": "web"}, [("tier", "NotIn", ["db"]),
                                                 ("canary", "DoesNotExist", [])])
    assert expr.matches({"app": "web", "tier": "front"})
    assert expr.matches({"app": "web"})
    assert not expr.matches({"app": "web", "tier": "db"})
    assert not expr.matches({"app": "web", "canary": "true"})
    assert not expr.matches({"tier": "front"})
    assert selector_from_fields({}, []).matches({"anything": "at all"})


@pytest.mark.parametrize(("match_labels", "expressions", "violations"), [
    ({"-a": "x"}, [], [("matchLabels", 'invalid label key "-a"')]),
    ({"a": "-x"}, [], [("matchLabels", 'invalid value "-x" for label "a"')]),
    ({}, [("a", "In", [])],
     [("matchExpressions[0].values", "must be specified when the operator is In")]),
    ({}, [("a", "NotIn", [])],
     [("matchExpressions[0].values", "must be specified when the operator is NotIn")]),
    ({}, [("a", "Exists", ["x"])],
     [("matchExpressions[0].values", "must be empty when the operator is Exists")]),
    ({}, [("a", "DoesNotExist", ["x"])],
     [("matchExpressions[0].values", "must be empty when the operator is DoesNotExist")]),
    ({}, [("a", "in", ["x"])],
     [("matchExpressions[0].operator",
       'unsupported operator "in": use "In", "NotIn", "Exists", "DoesNotExist"')]),
    ({}, [("-a", "Bad", [])],
     [("matchExpressions[0].operator", 'unsupported operator "Bad"'),
      ("matchExpressions[0].key", 'invalid label key "-a"')]),
    ({}, [("ok", "In", ["x"]), ("-a", "In", ["-x", "y"])],
     [("matchExpressions[1].key", 'invalid label key "-a"'),
      ("matchExpressions[1].values[0]", 'invalid value "-x" for label "-a"')]),
    ({"-k": "v"}, [("a", "In", [])],
     [("matchLabels", 'invalid label key "-k"'),
      ("matchExpressions[0].values", "must be specified when the operator is In")]),
])
def test_selector_from_fields_errors(match_labels: dict[str, str],
                                     expressions: list[Expression],
                                     violations: list[tuple[str, str]]) -> None:
    with pytest.raises(SelectorError) as info:
        selector_from_fields(match_labels, expressions)
    got = info.value.violations
    assert [p for p, _ in got] == [p for p, _ in violations]
    for (_, message), (_, fragment) in zip(got, violations, strict=True):
        assert fragment in message
    for path, fragment in violations:
        assert f"{path}: " in str(info.value) and fragment in str(info.value)


# --- round trip ------------------------------------------------------------------------------

_name = st.from_regex(r"[a-z0-9]([-a-z0-9_.]{0,10}[a-z0-9])?", fullmatch=True)
_key = st.one_of(_name, st.builds(lambda p, n: f"{p}.io/{n}", _name.filter(
    lambda s: "_" not in s and "." not in s), _name))
_value = st.one_of(st.just(""), _name)
_requirement = st.one_of(
    st.builds(lambda k, v: R(k, "=", (v,)), _key, _value),
    st.builds(lambda k, v: R(k, "!=", (v,)), _key, _value),
    st.builds(lambda k, vs: R(k, "in", tuple(vs)), _key, st.lists(_value, min_size=1,
                                                                  max_size=4)),
    st.builds(lambda k, vs: R(k, "notin", tuple(vs)), _key, st.lists(_value, min_size=1,
                                                                     max_size=4)),
    st.builds(lambda k: R(k, "exists"), _key),
    st.builds(lambda k: R(k, "!"), _key),
    st.builds(lambda k, i: R(k, "gt", (str(i),)), _key, st.integers(0, 10**6)),
    st.builds(lambda k, i: R(k, "lt", (str(i),)), _key, st.integers(0, 10**6)),
)


@given(st.lists(_requirement, max_size=6))
def test_canonical_string_parses_back(requirements: list[Requirement]) -> None:
    expr = LabelSelectorExpr(tuple(requirements))
    again = parse_label_selector(str(expr))
    assert again == expr
    assert str(again) == str(expr)


@given(st.lists(_requirement, max_size=4),
       st.dictionaries(_key, _value, max_size=4))
def test_selector_is_the_and_of_its_requirements(requirements: list[Requirement],
                                                 labels: dict[str, str]) -> None:
    expr = LabelSelectorExpr(tuple(requirements))
    assert expr.matches(labels) == all(r.matches(labels) for r in requirements)
