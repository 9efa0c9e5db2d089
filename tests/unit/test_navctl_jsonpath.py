"""kubectl's JSONPath templates (navarch/_navctl/jsonpath.py): the examples of Kubernetes'
"JSONPath Support" page on its own input, then kubectl idioms on a pod list."""

from __future__ import annotations

from typing import Any

import pytest

from navarch._navctl.jsonpath import (
    JsonPathError,
    custom_column_cells,
    evaluate,
    parse_custom_columns,
    parse_template,
)

DOC: dict[str, Any] = {
    "kind": "List",
    "items": [
        {"kind": "None", "metadata": {"name": "127.0.0.1",
                                      "labels": {"kubernetes.io/hostname": "127.0.0.1"}},
         "status": {"capacity": {"cpu": "4"},
                    "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.1"}]}},
        {"kind": "None", "metadata": {"name": "127.0.0.2"},
         "status": {"capacity": {"cpu": "8"},
                    "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.2"},
                                  {"type": "another", "address": "127.0.0.3"}]}},
    ],
    "users": [{"name": "myself", "user": {}},
              {"name": "e2e", "user": {"username": "admin", "password": "secret"}}],
}


def run(template: str, data: Any = DOC) -> str:
    return evaluate(parse_template(template), data)


@pytest.mark.parametrize(("template", "output"), [
    ("kind is {.kind}", "kind is List"),
    ("{.kind}", "List"),
    ("{['kind']}", "List"),
    ("{$.kind}", "List"),
    ("{..name}", "127.0.0.1 127.0.0.2 myself e2e"),
    ("{.items[*].metadata.name}", "127.0.0.1 127.0.0.2"),
    ("{.users[0].name}", "myself"),
    # a quoted key is a path; a union goes key by key over every item
    ("{.items[*]['metadata.name', 'status.capacity']}",
     '127.0.0.1 127.0.0.2 {"cpu":"4"} {"cpu":"8"}'),
    ("{.items[*].status.capacity}", '{"cpu":"4"} {"cpu":"8"}'),
    ('{.users[?(@.name=="e2e")].user.password}', "secret"),
    ("{range .items[*]}[{.metadata.name}, {.status.capacity}] {end}",
     '[127.0.0.1, {"cpu":"4"}] [127.0.0.2, {"cpu":"8"}] '),
    ('{range .items[*]}{.metadata.name}{"\\t"}{end}', "127.0.0.1\t127.0.0.2\t"),
    ("{.items[-1:].metadata.name}", "127.0.0.2"),
    ("{.users[-1].name}", "e2e"),
    ("{.items[0].metadata.labels.kubernetes\\.io/hostname}", "127.0.0.1"),
    ("{.items[0].metadata.labels['kubernetes\\.io/hostname']}", "127.0.0.1"),
    ("{.items[0].metadata.labels['kubernetes.io/hostname']}", ""),  # kubernetes → io/…
    ("{.users[0,1].name}", "myself e2e"),
    ("{.items[*].status.addresses[0,1].type}", "LegacyHostIP LegacyHostIP another"),
    ("{.users[::-1].name}", "e2e myself"),
    ("{.items[*].status.addresses[?(@.type=='another')].address}", "127.0.0.3"),
    ("{.items[?(@.status.capacity.cpu>4)].metadata.name}", "127.0.0.2"),
    ("{.users[?(@.user.password)].name}", "e2e"),
    ("{.missing}", ""),  # kubectl's default: missing keys print nothing
    ("{.users[5].name}", ""),
])
def test_kubernetes_documentation_examples(template: str, output: str) -> None:
    assert run(template) == output


def test_values_print_as_kubectl_prints_them() -> None:
    data = {"n": 3, "ok": True, "ratio": 0.5, "nothing": None, "list": ["a", 1]}
    assert run("{.n} {.ok} {.ratio} {.nothing} {.list}", data) == '3 true 0.5 null ["a",1]'


def test_nested_ranges_start_from_the_current_item() -> None:
    pods = {"items": [
        {"metadata": {"name": "a"}, "spec": {"containers": [{"image": "x"}, {"image": "y"}]}},
        {"metadata": {"name": "b"}, "spec": {"containers": [{"image": "z"}]}}]}
    template = ('{range .items[*]}{.metadata.name}:{range .spec.containers[*]} {.image}{end}'
                '{"\\n"}{end}')
    assert run(template, pods) == "a: x y\nb: z\n"


@pytest.mark.parametrize(("template", "why"), [
    ("{.kind", "unclosed action"),
    ("{range .items[*]}{.x}", "unclosed range"),
    ("{end}", "not in range"),
    ("{.items[x]}", "invalid array index"),
    ("{.items[1:2:3:4]}", "invalid slice"),
    ("{.items[0}", "unterminated array"),
    ("{.items[?(@.a == b)]}", "invalid filter"),
])
def test_bad_templates_say_why(template: str, why: str) -> None:
    with pytest.raises(JsonPathError, match=why):
        parse_template(template)


def test_custom_columns() -> None:
    columns = parse_custom_columns("NAME:.metadata.name,ADDRESSES:{.status.addresses[*]"
                                   ".address},ZONE:.metadata.labels.zone")
    assert [header for header, _ in columns] == ["NAME", "ADDRESSES", "ZONE"]
    assert custom_column_cells(columns, DOC["items"][1]) == [
        "127.0.0.2", "127.0.0.2,127.0.0.3", "<none>"]
    with pytest.raises(JsonPathError, match="expected <header>:<json-path-expr>"):
        parse_custom_columns("NAME")
