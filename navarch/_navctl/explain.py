"""``navctl explain``: field documentation from the comments of the .proto files.

proto/generate.py writes ``navarch/v1/descriptors.binpb``, a FileDescriptorSet with
source info; the leading comment of each message and field is its documentation. Field
names are shown in their JSON spelling (as in manifests) with kubectl's type names:
``<string>``, ``<integer>``, ``<boolean>``, ``<number>``, ``<Object>``, ``<[]Object>``,
``<map[string]string>``.
"""

from __future__ import annotations

import functools
import importlib.resources
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from google.protobuf import descriptor_pb2

from navarch._kinds import Kind

__all__ = [
    "DocIndex", "ExplainError", "FieldDoc", "MessageDoc", "explain", "load_index",
    "wrap_description",
]

_FIELD = descriptor_pb2.FieldDescriptorProto
_MESSAGE_TYPE, _NESTED_TYPE, _MESSAGE_FIELD = 4, 3, 2  # FileDescriptorProto/DescriptorProto tags
_WRAP = 80
_STRING_LIKE = {"google.protobuf.Timestamp", "google.protobuf.Duration",
                "google.protobuf.FieldMask"}
_SCALARS = {
    _FIELD.TYPE_STRING: "string", _FIELD.TYPE_BYTES: "string", _FIELD.TYPE_ENUM: "string",
    _FIELD.TYPE_BOOL: "boolean", _FIELD.TYPE_DOUBLE: "number", _FIELD.TYPE_FLOAT: "number",
}
_FIELD_INDENT, _DESCRIPTION_INDENT, _LEVEL_INDENT = 3, 5, 3


class ExplainError(LookupError):
    """A path naming no field; the message is kubectl's."""


@dataclass(frozen=True)
class FieldDoc:
    """One field: JSON name, kubectl type name, description, and the message it holds
    (for Object and []Object fields)."""

    name: str
    type_name: str
    description: str
    message: str | None = None


@dataclass(frozen=True)
class MessageDoc:
    """One message: its description and fields (in declaration order)."""

    full_name: str
    description: str
    fields: tuple[FieldDoc, ...]

    def field(self, name: str) -> FieldDoc | None:
        """The field spelled ``name`` in JSON, if any."""
        return next((f for f in self.fields if f.name == name), None)


def _comment(text: str) -> str:
    lines = [line[1:] if line.startswith(" ") else line for line in text.splitlines()]
    return "\n".join(lines).strip()


class DocIndex:
    """Messages of a FileDescriptorSet, with their documentation, by full name."""

    def __init__(self, files: descriptor_pb2.FileDescriptorSet) -> None:
        self._protos: dict[str, descriptor_pb2.DescriptorProto] = {}
        self._comments: dict[tuple[str, int | None], str] = {}
        self._docs: dict[str, MessageDoc] = {}
        for file in files.file:
            comments = {tuple(loc.path): _comment(loc.leading_comments or loc.trailing_comments)
                        for loc in file.source_code_info.location}
            for full_name, proto, path in _walk(file):
                self._protos[full_name] = proto
                self._comments[(full_name, None)] = comments.get(path, "")
                for index in range(len(proto.field)):
                    self._comments[(full_name, index)] = comments.get(
                        (*path, _MESSAGE_FIELD, index), "")

    def __contains__(self, full_name: str) -> bool:
        return full_name in self._protos

    def message(self, full_name: str) -> MessageDoc:
        """The documentation of message ``full_name`` (``navarch.v1.Pod``)."""
        found = self._docs.get(full_name)
        if found is None:
            proto = self._protos[full_name]
            fields = tuple(self._field(full_name, index, f)
                           for index, f in enumerate(proto.field))
            found = MessageDoc(full_name, self._comments[(full_name, None)], fields)
            self._docs[full_name] = found
        return found

    def _field(self, owner: str, index: int, field: _FIELD) -> FieldDoc:
        type_name, message = self._type_of(field)
        return FieldDoc(field.json_name or field.name, type_name,
                        self._comments[(owner, index)], message)

    def _type_of(self, field: _FIELD) -> tuple[str, str | None]:
        repeated = field.label == _FIELD.LABEL_REPEATED
        if field.type == _FIELD.TYPE_MESSAGE:
            target = field.type_name.lstrip(".")
            entry = self._protos.get(target)
            if entry is not None and entry.options.map_entry:
                value_type, _ = self._type_of(entry.field[1])
                return f"map[string]{value_type}", None
            if target in _STRING_LIKE:
                return ("[]string" if repeated else "string"), None
            known = target if target in self._protos else None
            return ("[]Object" if repeated else "Object"), known
        scalar = _SCALARS.get(field.type, "integer")
        return (f"[]{scalar}" if repeated else scalar), None


def _walk(file: descriptor_pb2.FileDescriptorProto
          ) -> Iterator[tuple[str, descriptor_pb2.DescriptorProto, tuple[int, ...]]]:
    def visit(prefix: str, protos: Sequence[descriptor_pb2.DescriptorProto],
              path: tuple[int, ...], tag: int
              ) -> Iterator[tuple[str, descriptor_pb2.DescriptorProto, tuple[int, ...]]]:
        for index, proto in enumerate(protos):
            name = f"{prefix}.{proto.name}" if prefix else proto.name
            here = (*path, tag, index)
            yield name, proto, here
            yield from visit(name, proto.nested_type, here, _NESTED_TYPE)
    yield from visit(file.package, file.message_type, (), _MESSAGE_TYPE)


@functools.cache
def load_index() -> DocIndex:
    """The index of navarch.v1's descriptors (package data written by proto/generate.py)."""
    data = (importlib.resources.files("navarch.v1") / "descriptors.binpb").read_bytes()
    return DocIndex(descriptor_pb2.FileDescriptorSet.FromString(data))


def wrap_description(text: str, indent: int, width: int = _WRAP) -> list[str]:
    """``text`` wrapped to ``width`` columns at ``indent``; paragraphs and list items
    (lines starting with ``-`` or ``*``) keep their own lines."""
    pad = " " * indent
    out: list[str] = []
    for paragraph in text.split("\n\n"):
        if out:
            out.append("")
        for chunk in _chunks(paragraph):
            out += textwrap.wrap(chunk, width=max(indent + 20, width), initial_indent=pad,
                                 subsequent_indent=pad, break_long_words=False,
                                 break_on_hyphens=False) or [""]
    return out


def _chunks(paragraph: str) -> list[str]:
    chunks: list[str] = []
    for line in paragraph.splitlines():
        stripped = line.strip()
        if stripped.startswith(("- ", "* ")) or not chunks:
            chunks.append(stripped)
        else:
            chunks[-1] = f"{chunks[-1]} {stripped}".strip()
    return chunks


def explain(kind: Kind, path: Sequence[str], *, recursive: bool = False,
            index: DocIndex | None = None) -> list[str]:
    """The lines of ``navctl explain KIND[.path]``. Raises ExplainError for a path naming
    no field."""
    docs = index or load_index()
    message: MessageDoc | None = docs.message(kind.message_type)
    descriptions = [message.description if message else ""]
    field: FieldDoc | None = None
    for step in path:
        field = message.field(step) if message is not None else None
        if field is None:
            raise ExplainError(f'field "{step}" does not exist')
        nested = docs.message(field.message) if field.message else None
        descriptions = [field.description] + ([nested.description] if nested else [])
        message = nested
    lines = [f"KIND:     {kind.kind}", f"VERSION:  {kind.api_version}", ""]
    if field is not None:
        label = "RESOURCE:" if message is not None else "FIELD:   "
        lines += [f"{label} {field.name} <{field.type_name}>", ""]
    lines.append("DESCRIPTION:")
    shown = [d for d in descriptions if d] or ["<empty>"]
    for i, description in enumerate(shown):
        if i:
            lines.append("")
        lines += wrap_description(description, _DESCRIPTION_INDENT)
    if message is not None and message.fields:
        lines += ["", "FIELDS:"]
        lines += (_recursive_fields(docs, message, _FIELD_INDENT, frozenset()) if recursive
                  else _fields(message))
    return lines


def _fields(message: MessageDoc) -> list[str]:
    lines: list[str] = []
    for field in sorted(message.fields, key=lambda f: f.name):
        lines.append(f"{' ' * _FIELD_INDENT}{field.name}\t<{field.type_name}>")
        if field.description:
            lines += wrap_description(field.description, _DESCRIPTION_INDENT)
        lines.append("")
    return lines


def _recursive_fields(docs: DocIndex, message: MessageDoc, indent: int,
                      seen: frozenset[str]) -> list[str]:
    lines: list[str] = []
    for field in sorted(message.fields, key=lambda f: f.name):
        lines.append(f"{' ' * indent}{field.name}\t<{field.type_name}>")
        if field.message and field.message not in seen:
            nested = docs.message(field.message)
            lines += _recursive_fields(docs, nested, indent + _LEVEL_INDENT,
                                       seen | {message.full_name})
    return lines
