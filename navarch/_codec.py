"""Kubernetes-style JSON/YAML for Navarch's protobuf kinds.

Protobuf's JSON mapping already spells fields as Kubernetes does (``containerPort``), so a
Kubernetes manifest parses straight into a message. This module adds what the mapping
lacks, guided by the message descriptors:

- strict decoding with Kubernetes' error shape: an unknown or mistyped field is reported
  with its full path (``unknown field "spec.template.spec.containers[0].imagePullPolice"``);
- numbers where a quantity or an IntOrString is expected (``cpu: 1``, ``targetPort: 8080``),
  which the fields marked with the options of ``options.proto`` accept;
- on the way out, numbers where Kubernetes prints numbers: int64 fields (protobuf's mapping
  prints them as strings) and numeric IntOrStrings.

Contract: decoding never mutates its input; encoding returns fresh dicts and lists.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from navarch.v1 import options_pb2

M = TypeVar("M", bound=Message)
# Descriptors come from upb at run time and from google.protobuf.descriptor in the stubs;
# the walk only reads fields both have.
Descriptor = Any
Field = Any

__all__ = ["FieldError", "from_dict", "int_or_string", "to_dict"]

_WELL_KNOWN_PREFIX = "google.protobuf."
_INT_TYPES = frozenset({
    FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64,
})
_INT64_TYPES = frozenset({FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64})
_FLOAT_TYPES = frozenset({FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE})


class FieldError(ValueError):
    """A manifest field that cannot be decoded: ``path`` (Kubernetes style) and ``reason``."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


def int_or_string(value: str) -> int | str:
    """The Kubernetes value of an IntOrString field stored as a string: "8080" → 8080."""
    if value.isdigit() or (value[:1] == "-" and value[1:].isdigit()):
        return int(value)
    return value


def from_dict(data: Mapping[str, Any], message: type[M] | M) -> M:
    """Decode a Kubernetes-style dict into ``message`` (a class, or an instance to fill).

    Raises FieldError naming the first bad field's path.
    """
    msg = message() if isinstance(message, type) else message
    if not isinstance(data, Mapping):
        raise FieldError("", f"expected an object, got {_describe(data)}")
    prepared = _prepare_message(data, msg.DESCRIPTOR, "")
    try:
        json_format.ParseDict(prepared, msg, ignore_unknown_fields=False)
    except json_format.ParseError as exc:  # a case the walk let through (well-known types)
        raise FieldError("", str(exc).splitlines()[0]) from None
    return msg


def to_dict(msg: Message) -> dict[str, Any]:
    """Encode ``msg`` as Kubernetes prints it: camelCase keys, unset fields omitted."""
    raw = json_format.MessageToDict(msg)
    return _finish_message(raw, msg.DESCRIPTOR)


@functools.cache
def _fields_by_json_name(desc: Descriptor) -> dict[str, Field]:
    return {f.json_name: f for f in desc.fields}


@functools.cache
def _marks(field: Field) -> tuple[bool, bool]:
    """(is quantity, is IntOrString) for a field or, for a map field, for its values."""
    opts: Any = field.GetOptions()
    return (bool(opts.Extensions[options_pb2.quantity]),
            bool(opts.Extensions[options_pb2.int_or_string]))


def _is_map(field: Field) -> bool:
    return bool(field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE
                and field.message_type.GetOptions().map_entry)


def _is_repeated(field: Field) -> bool:
    return bool(field.is_repeated)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _prepare_message(data: Mapping[str, Any], desc: Descriptor, path: str) -> dict[str, Any]:
    fields = _fields_by_json_name(desc)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise FieldError(path, f"field names must be strings, got {_describe(key)}")
        here = _join(path, key)
        field = fields.get(key)
        if field is None:
            raise FieldError(here, "unknown field")
        out[key] = None if value is None else _prepare_field(value, field, here)
    return out


def _prepare_field(value: Any, field: Field, path: str) -> Any:
    if _is_map(field):
        if not isinstance(value, Mapping):
            raise FieldError(path, f"expected an object, got {_describe(value)}")
        value_field = field.message_type.fields_by_name["value"]
        quantity, int_or_str = _marks(field)
        return {
            str(k): _prepare_single(v, value_field, f"{path}.{k}", quantity, int_or_str)
            for k, v in value.items()
        }
    quantity, int_or_str = _marks(field)
    if _is_repeated(field):
        if not isinstance(value, list):
            raise FieldError(path, f"expected a list, got {_describe(value)}")
        return [
            _prepare_single(v, field, f"{path}[{i}]", quantity, int_or_str)
            for i, v in enumerate(value)
        ]
    return _prepare_single(value, field, path, quantity, int_or_str)


def _prepare_single(value: Any, field: Field, path: str,
                    quantity: bool, int_or_str: bool) -> Any:
    ctype = field.cpp_type
    if ctype == FieldDescriptor.CPPTYPE_MESSAGE:
        if field.message_type.full_name.startswith(_WELL_KNOWN_PREFIX):
            return value
        if not isinstance(value, Mapping):
            raise FieldError(path, f"expected an object, got {_describe(value)}")
        return _prepare_message(value, field.message_type, path)
    if ctype == FieldDescriptor.CPPTYPE_STRING:
        return _prepare_string(value, field, path, quantity, int_or_str)
    if ctype == FieldDescriptor.CPPTYPE_BOOL:
        if not isinstance(value, bool):
            raise FieldError(path, f"expected a boolean, got {_describe(value)}")
        return value
    if ctype in _INT_TYPES:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise FieldError(path, f"expected an integer, got {_describe(value)}")
        return value
    if ctype in _FLOAT_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldError(path, f"expected a number, got {_describe(value)}")
        return value
    return value


def _prepare_string(value: Any, field: Field, path: str,
                    quantity: bool, int_or_str: bool) -> str:
    if isinstance(value, str):
        return value
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and quantity:
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    if number and int_or_str:
        if isinstance(value, int) or value.is_integer():
            return str(int(value))
        raise FieldError(path, f"expected an integer or a string, got {_describe(value)}")
    if field.type == FieldDescriptor.TYPE_BYTES:
        raise FieldError(path, f"expected base64-encoded data, got {_describe(value)}")
    accepted = "a quantity such as \"100m\" or \"64Mi\"" if quantity else "a string"
    if int_or_str:
        accepted = "an integer or a string"
    raise FieldError(path, f"expected {accepted}, got {_describe(value)}")


def _finish_message(data: dict[str, Any], desc: Descriptor) -> dict[str, Any]:
    fields = _fields_by_json_name(desc)
    for key, value in data.items():
        field = fields.get(key)
        if field is not None:
            data[key] = _finish_field(value, field)
    return data


def _finish_field(value: Any, field: Field) -> Any:
    if _is_map(field):
        value_field = field.message_type.fields_by_name["value"]
        int_or_str = _marks(field)[1]
        return {k: _finish_single(v, value_field, int_or_str) for k, v in value.items()}
    int_or_str = _marks(field)[1]
    if _is_repeated(field):
        return [_finish_single(v, field, int_or_str) for v in value]
    return _finish_single(value, field, int_or_str)


def _finish_single(value: Any, field: Field, int_or_str: bool) -> Any:
    ctype = field.cpp_type
    if ctype == FieldDescriptor.CPPTYPE_MESSAGE:
        if field.message_type.full_name.startswith(_WELL_KNOWN_PREFIX):
            return value
        return _finish_message(value, field.message_type)
    if ctype in _INT64_TYPES and isinstance(value, str):
        return int(value)
    if int_or_str and isinstance(value, str):
        return int_or_string(value)
    return value
