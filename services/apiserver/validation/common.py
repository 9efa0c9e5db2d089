"""Building blocks shared by the per-kind validators.

Paths are spelled as Kubernetes prints them (JSON names, ``[i]`` for list items, ``[key]``
for map entries): ``spec.template.spec.containers[0].ports[1].containerPort``. Every check
returns a list of violations (empty when valid) so that callers can report every problem.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from navarch import _codec, _labels, _names, _quantity
from navarch.v1 import meta_pb2

from ..errors import FieldViolation, invalid, not_supported, required

__all__ = [
    "Errors", "NameCheck", "changed_fields", "check_int_or_percent", "check_label_selector",
    "check_labels", "check_names", "check_nonnegative", "check_port_name_or_number",
    "check_quantity", "check_relative_path", "check_value", "copy_field",
    "describe_labels", "describe_selector", "int_or_percent_is_zero", "key", "not_found",
    "parse_quantity", "selector_matches",
]

Errors = list[FieldViolation]
NameCheck = Callable[[str], list[str]]
"""A validator of ``navarch._names``: the problems with a value, as phrases."""

def key(path: str, name: str) -> str:
    """The path of a map entry: ``metadata.labels[app]``."""
    return f"{path}[{name}]"


def not_found(path: str, value: object) -> FieldViolation:
    """``path: Not found: "x"``: a reference to something that does not exist."""
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    return FieldViolation(path, f"Not found: {shown}")


def check_names(path: str, value: str, check: NameCheck) -> Errors:
    """One Invalid violation per problem ``check`` finds with ``value``."""
    return [invalid(path, value, msg) for msg in check(value)]


def check_value(path: str, value: str, supported: Sequence[str], *,
                optional: bool = False) -> Errors:
    """Required when empty (unless ``optional``), Unsupported when not in ``supported``."""
    if not value:
        return [] if optional else [required(path, "supported values: " + ", ".join(
            f'"{s}"' for s in supported))]
    if value not in supported:
        return [not_supported(path, value, supported)]
    return []


def check_nonnegative(path: str, value: int) -> Errors:
    """``must be greater than or equal to 0``."""
    return [] if value >= 0 else [invalid(path, value, "must be greater than or equal to 0")]


def check_relative_path(path: str, value: str) -> Errors:
    """A path below a volume's root: relative, with no ``..`` element."""
    errors: Errors = []
    if value.startswith("/"):
        errors.append(invalid(path, value, "must be a relative path"))
    if ".." in value.split("/"):
        errors.append(invalid(path, value, "must not contain '..'"))
    return errors


def parse_quantity(text: str) -> _quantity.Quantity | None:
    """The quantity ``text`` denotes, or None when it is not one."""
    try:
        return _quantity.parse_quantity(text)
    except _quantity.QuantityError:
        return None


def check_quantity(path: str, text: str, *, nonnegative: bool = True) -> Errors:
    """``text`` parses as a quantity (and, by default, is not negative)."""
    try:
        value = _quantity.parse_quantity(text)
    except _quantity.QuantityError as exc:
        return [invalid(path, text, str(exc))]
    if nonnegative and value < 0:
        return [invalid(path, text, "must be greater than or equal to 0")]
    return []


def check_port_name_or_number(path: str, value: str) -> Errors:
    """An IntOrString port: a number 1-65535 or an IANA service name."""
    if not value:
        return [required(path)]
    number = _codec.int_or_string(value)
    if isinstance(number, int):
        return [invalid(path, number, msg) for msg in _names.port_number(number)]
    return check_names(path, value, _names.port_name)


def check_int_or_percent(path: str, value: str, *, at_most_100: bool = True) -> Errors:
    """An IntOrString count: a non-negative integer or a percentage (by default of at most
    100%)."""
    number = _codec.int_or_string(value)
    if isinstance(number, int):
        return check_nonnegative(path, number)
    problems = _names.percent(value)
    if problems:
        return [invalid(path, value, "must be an integer or a percentage (e.g. '5%')")]
    if at_most_100 and int(value[:-1]) > 100:
        return [invalid(path, value, "must not be greater than 100%")]
    return []


def int_or_percent_is_zero(value: str) -> bool:
    """True for ``0`` and ``0%`` (and for the empty string, which means 0)."""
    return value in ("", "0", "0%") or (value.endswith("%") and value[:-1].isdigit()
                                         and int(value[:-1]) == 0)


# --- labels and selectors --------------------------------------------------------------

def check_labels(path: str, labels: Mapping[str, str]) -> Errors:
    """Keys are qualified names, values label values (reported on the map's path)."""
    errors: Errors = []
    for k in sorted(labels):
        errors += check_names(path, k, _names.qualified_name)
        errors += check_names(path, labels[k], _names.label_value)
    return errors


def check_label_selector(path: str, selector: meta_pb2.LabelSelector) -> Errors:
    """A structured selector: valid match labels, operators with the right values."""
    try:
        _labels.label_selector(selector)
    except _labels.SelectorError as exc:
        return [FieldViolation(f"{path}.{where}" if where else path, message)
                for where, message in exc.violations]
    return []


def _selector(selector: meta_pb2.LabelSelector) -> _labels.LabelSelectorExpr | None:
    try:
        return _labels.label_selector(selector)
    except _labels.SelectorError:
        return None


def selector_matches(selector: meta_pb2.LabelSelector, labels: Mapping[str, str]) -> bool:
    """True when the (valid) structured ``selector`` selects ``labels``; False when the
    selector is invalid (its own violations are reported elsewhere)."""
    expr = _selector(selector)
    return expr is not None and expr.matches(labels)


def describe_selector(selector: meta_pb2.LabelSelector) -> str:
    """A selector as users write it on the command line: ``app=web,tier in (a,b)``."""
    expr = _selector(selector)
    if expr is not None:
        return str(expr)
    parts = [f"{k}={v}" for k, v in sorted(selector.match_labels.items())]
    parts += [f"{r.key} {r.operator} ({','.join(r.values)})"
              for r in selector.match_expressions]
    return ",".join(parts)


def describe_labels(labels: Mapping[str, str]) -> str:
    """Labels as a selector would spell them: ``app=web,tier=front`` (sorted by key)."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


# --- comparing messages ----------------------------------------------------------------
# Descriptors are typed Any: the protobuf stubs describe them as a union of the pure-Python
# and the upb classes, which share the attributes used here but no declared base.

def _fields(msg: Message) -> list[Any]:
    return list(msg.DESCRIPTOR.fields)


def _is_map(field: Any) -> bool:
    return bool(field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE
                and field.message_type.GetOptions().map_entry)


def copy_field(target: Message, source: Message, name: str) -> None:
    """Make ``target.name`` what ``source.name`` is: value, presence and all."""
    field: Any = source.DESCRIPTOR.fields_by_name[name]
    value = getattr(source, name)
    if _is_map(field):
        target.ClearField(name)
        mapping = getattr(target, name)
        for k, v in value.items():
            if isinstance(v, Message):
                mapping[k].CopyFrom(v)
            else:
                mapping[k] = v
    elif field.is_repeated:
        target.ClearField(name)
        getattr(target, name).extend(value)
    elif field.has_presence and not source.HasField(name):
        target.ClearField(name)
    elif isinstance(value, Message):
        getattr(target, name).CopyFrom(value)
    else:
        setattr(target, name, value)


def changed_fields(new: Message, old: Message, path: str, *, limit: int = 8) -> list[str]:
    """The paths (Kubernetes spelling) at which ``new`` differs from ``old``, down to the
    first differing element of each field, at most ``limit`` of them."""
    found: list[str] = []
    _diff(new, old, path, found, limit)
    return found


def _diff(new: Message, old: Message, path: str, found: list[str], limit: int) -> None:
    for field in _fields(new):
        if len(found) >= limit:
            return
        at = f"{path}.{field.json_name}" if path else str(field.json_name)
        a, b = getattr(new, field.name), getattr(old, field.name)
        if _is_map(field):
            if dict(a) != dict(b):
                found.append(at)
        elif field.is_repeated:
            _diff_list(field, list(a), list(b), at, found, limit)
        elif field.has_presence and new.HasField(field.name) != old.HasField(field.name):
            found.append(at)
        elif isinstance(a, Message) and isinstance(b, Message):
            if a != b:
                _diff(a, b, at, found, limit)
        elif a != b:
            found.append(at)


def _diff_list(field: Any, a: list[object], b: list[object], at: str, found: list[str],
               limit: int) -> None:
    if len(a) != len(b):
        found.append(at)
        return
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if len(found) >= limit:
            return
        if x == y:
            continue
        if isinstance(x, Message) and isinstance(y, Message):
            _diff(x, y, f"{at}[{i}]", found, limit)
        else:
            found.append(f"{at}[{i}]")
