"""navctl explain: documentation from proto comments, JSON field names, kubectl's type
names and layout; against a hand-built descriptor set and the real generated one."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2

from navarch._kinds import Kind, resource
from navarch._navctl.explain import DocIndex, ExplainError, explain, load_index, wrap_description

F = descriptor_pb2.FieldDescriptorProto


def _field(name: str, number: int, ftype: int, *, json_name: str = "", type_name: str = "",
           repeated: bool = False) -> F:
    field = F(name=name, number=number, type=ftype, json_name=json_name or name,
              type_name=type_name)
    field.label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
    return field


def _comment(file: descriptor_pb2.FileDescriptorProto, path: list[int], text: str) -> None:
    location = file.source_code_info.location.add()
    location.path.extend(path)
    location.leading_comments = text


@pytest.fixture(scope="module")
def index() -> DocIndex:
    """A package ``t.v1`` with Widget {apiVersion, metadata(Meta), spec(WidgetSpec)},
    WidgetSpec {replicas, ports[], labels map, paused, started (Timestamp), parts[]}."""
    file = descriptor_pb2.FileDescriptorProto(name="t.proto", package="t.v1")
    widget = file.message_type.add(name="Widget")
    widget.field.extend([
        _field("api_version", 1, F.TYPE_STRING, json_name="apiVersion"),
        _field("spec", 2, F.TYPE_MESSAGE, type_name=".t.v1.WidgetSpec"),
    ])
    spec = file.message_type.add(name="WidgetSpec")
    spec.field.extend([
        _field("replicas", 1, F.TYPE_INT32),
        _field("ports", 2, F.TYPE_MESSAGE, type_name=".t.v1.WidgetSpec.Port", repeated=True),
        _field("labels", 3, F.TYPE_MESSAGE, type_name=".t.v1.WidgetSpec.LabelsEntry",
               repeated=True),
        _field("paused", 4, F.TYPE_BOOL),
        _field("started", 5, F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp"),
        _field("host_ip", 6, F.TYPE_STRING, json_name="hostIP"),
        _field("weights", 7, F.TYPE_DOUBLE, repeated=True),
    ])
    port = spec.nested_type.add(name="Port")
    port.field.append(_field("number", 1, F.TYPE_INT64))
    entry = spec.nested_type.add(name="LabelsEntry")
    entry.options.map_entry = True
    entry.field.extend([_field("key", 1, F.TYPE_STRING), _field("value", 2, F.TYPE_STRING)])
    _comment(file, [4, 0], " A Widget does things.\n")
    _comment(file, [4, 0, 2, 0], " Version of the schema.\n")
    _comment(file, [4, 0, 2, 1], " What the widget should be.\n")
    _comment(file, [4, 1], " WidgetSpec is the desired state.\n")
    _comment(file, [4, 1, 2, 0], " How many widgets.\n Defaults to 1.\n")
    _comment(file, [4, 1, 3, 0], " Port is one port.\n")
    _comment(file, [4, 1, 3, 0, 2, 0], " The port number.\n")
    return DocIndex(descriptor_pb2.FileDescriptorSet(file=[file]))


WIDGET = Kind("Widget", "example.io", "v1", "widgets", "t.v1.Widget")


def test_kind_lists_fields_sorted_with_descriptions(index: DocIndex) -> None:
    assert explain(WIDGET, [], index=index) == [
        "KIND:     Widget",
        "VERSION:  example.io/v1",
        "",
        "DESCRIPTION:",
        "     A Widget does things.",
        "",
        "FIELDS:",
        "   apiVersion\t<string>",
        "     Version of the schema.",
        "",
        "   spec\t<Object>",
        "     What the widget should be.",
        "",
    ]


def test_object_field_shows_field_then_type_description(index: DocIndex) -> None:
    lines = explain(WIDGET, ["spec"], index=index)
    assert lines[:10] == [
        "KIND:     Widget",
        "VERSION:  example.io/v1",
        "",
        "RESOURCE: spec <Object>",
        "",
        "DESCRIPTION:",
        "     What the widget should be.",
        "",
        "     WidgetSpec is the desired state.",
        "",
    ]
    fields = [line for line in lines if line.startswith("   ") and "\t" in line]
    assert fields == [
        "   hostIP\t<string>",
        "   labels\t<map[string]string>",
        "   paused\t<boolean>",
        "   ports\t<[]Object>",
        "   replicas\t<integer>",
        "   started\t<string>",
        "   weights\t<[]number>",
    ]
    assert "     How many widgets. Defaults to 1." in lines


def test_primitive_field(index: DocIndex) -> None:
    assert explain(WIDGET, ["spec", "ports", "number"], index=index) == [
        "KIND:     Widget",
        "VERSION:  example.io/v1",
        "",
        "FIELD:    number <integer>",
        "",
        "DESCRIPTION:",
        "     The port number.",
    ]


def test_field_without_documentation(index: DocIndex) -> None:
    assert explain(WIDGET, ["spec", "paused"], index=index)[-2:] == [
        "DESCRIPTION:", "     <empty>"]


@pytest.mark.parametrize("path", [["nope"], ["spec", "nope"], ["spec", "replicas", "x"],
                                  ["spec", "labels", "app"]])
def test_unknown_field(index: DocIndex, path: list[str]) -> None:
    with pytest.raises(ExplainError) as info:
        explain(WIDGET, path, index=index)
    assert str(info.value) == f'field "{path[-1]}" does not exist'


def test_recursive_indents_three_per_level(index: DocIndex) -> None:
    lines = explain(WIDGET, [], recursive=True, index=index)
    assert lines[lines.index("FIELDS:"):] == [
        "FIELDS:",
        "   apiVersion\t<string>",
        "   spec\t<Object>",
        "      hostIP\t<string>",
        "      labels\t<map[string]string>",
        "      paused\t<boolean>",
        "      ports\t<[]Object>",
        "         number\t<integer>",
        "      replicas\t<integer>",
        "      started\t<string>",
        "      weights\t<[]number>",
    ]


def test_wrap_keeps_paragraphs_and_list_items() -> None:
    text = ("One two three four five six seven eight nine ten eleven twelve.\n\n"
            "Values:\n- Always: restart\n- Never: do not")
    assert wrap_description(text, 5, width=40) == [
        "     One two three four five six seven",
        "     eight nine ten eleven twelve.",
        "",
        "     Values:",
        "     - Always: restart",
        "     - Never: do not",
    ]


# --- the real descriptors ------------------------------------------------------------------

def test_real_pod_documentation() -> None:
    lines = explain(resource("pods"), [])
    assert lines[:2] == ["KIND:     Pod", "VERSION:  v1"]
    assert "   apiVersion\t<string>" in lines
    assert "   metadata\t<Object>" in lines
    assert "   spec\t<Object>" in lines
    description = lines[lines.index("DESCRIPTION:") + 1]
    assert description.startswith("     ") and description.strip()


@pytest.mark.parametrize(("kind", "path", "heading"), [
    ("pods", ["spec", "containers"], "RESOURCE: containers <[]Object>"),
    ("pods", ["metadata", "labels"], "FIELD:    labels <map[string]string>"),
    ("pods", ["status", "podIP"], "FIELD:    podIP <string>"),
    ("pods", ["metadata", "creationTimestamp"], "FIELD:    creationTimestamp <string>"),
    ("deploy", ["spec", "replicas"], "FIELD:    replicas <integer>"),
    ("svc", ["spec", "clusterIP"], "FIELD:    clusterIP <string>"),
])
def test_real_field_types(kind: str, path: list[str], heading: str) -> None:
    assert heading in explain(resource(kind), path)


def test_every_served_kind_is_documented() -> None:
    docs = load_index()
    for name in ("pods", "services", "deployments", "jobs", "cronjobs", "hpa", "leases",
                 "nodes", "namespaces", "configmaps", "secrets", "events"):
        kind = resource(name)
        assert kind.message_type in docs
        assert docs.message(kind.message_type).description, kind.kind
