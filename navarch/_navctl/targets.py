"""What a command line names: kinds, names, ``TYPE/NAME`` pairs, ``all``, and fetching them.

kubectl accepts ``get pods``, ``get pods,svc``, ``get pod web api``, ``get pod/web
svc/web`` and ``get all``; every command that takes objects (get, describe, delete,
label, annotate, scale) resolves its arguments here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from navarch import _codec
from navarch._errors import NotFound
from navarch._kinds import KINDS, Kind, resource
from navarch._navctl.context import Context
from navarch._navctl.errors import NavctlError, error_message
from navarch._navctl.values import Obj

__all__ = ["Found", "Selection", "fetch", "object_dict", "parse_targets", "resource_in_group"]

# kubectl's "all" category.
_ALL = ("pods", "services", "daemonsets", "deployments", "replicasets", "statefulsets",
        "horizontalpodautoscalers", "cronjobs", "jobs")


@dataclass(frozen=True)
class Selection:
    """Kinds, each with the names asked for (none: every object matching the selectors)."""

    groups: tuple[tuple[Kind, tuple[str, ...]], ...]

    @property
    def kinds(self) -> list[Kind]:
        """The kinds, in the order given."""
        return [kind for kind, _ in self.groups]

    @property
    def named(self) -> bool:
        """Whether objects were named (rather than listed)."""
        return any(names for _, names in self.groups)

    def single_object(self) -> bool:
        """Exactly one object was named: -o yaml prints it bare rather than as a List."""
        return len(self.groups) == 1 and len(self.groups[0][1]) == 1


def _kinds(text: str) -> list[Kind]:
    kinds: list[Kind] = []
    for part in text.split(","):
        if not part:
            continue
        names = _ALL if part == "all" else (part,)
        for name in names:
            kind = resource(name)
            if kind not in kinds:
                kinds.append(kind)
    return kinds


def resource_in_group(name: str, group: str = "", version: str = "") -> Kind | None:
    """The kind ``name`` names (its plural, singular or short name, in any case) in
    ``group`` ("": any group) and ``version`` ("": the stored one), as kubectl's REST
    mapper resolves ``--resource=rs.apps`` or ``can-i get deploy``; None when the server
    serves no such resource."""
    key = name.lower()
    for kind in KINDS:
        if (version and kind.version != version) or (not version and not kind.storage):
            continue
        if group and kind.group != group:
            continue
        if key in (kind.resource, kind.singular, *kind.short_names):
            return kind
    return None


def parse_targets(args: Sequence[str]) -> Selection:
    """``[TYPE[,TYPE...] [NAME...]]`` or ``[TYPE/NAME...]`` as a Selection. Raises
    UnknownKind for a type the server does not serve."""
    if not args:
        raise NavctlError("You must specify the type of resource to get. Use "
                          '"navctl api-resources" for a complete list of supported resources.')
    if any("/" in a for a in args):
        if not all("/" in a for a in args):
            raise NavctlError("there is no need to specify a resource type as a separate "
                              "argument when passing arguments in resource/name form "
                              "(e.g. 'navctl get resource/<resource_name>' instead of "
                              "'navctl get resource resource/<resource_name>'")
        groups: dict[Kind, list[str]] = {}
        for arg in args:
            type_name, _, name = arg.partition("/")
            kind = resource(type_name)
            if not name:
                raise NavctlError(f"arguments in resource/name form must have a single "
                                  f'resource and name: "{arg}"')
            groups.setdefault(kind, []).append(name)
        return Selection(tuple((k, tuple(v)) for k, v in groups.items()))
    kinds = _kinds(args[0])
    names = tuple(args[1:])
    if names and len(kinds) > 1:
        raise NavctlError("you may only specify a single resource type when naming objects "
                          f"({args[0]} {' '.join(names)})")
    return Selection(tuple((kind, names) for kind in kinds))


def object_dict(kind: Kind, obj: Message) -> Obj:
    """``obj`` in its Kubernetes JSON form, with apiVersion and kind set."""
    data: dict[str, Any] = _codec.to_dict(obj)
    ordered = {"apiVersion": data.pop("apiVersion", kind.api_version),
               "kind": data.pop("kind", kind.kind)}
    ordered.update(data)
    return ordered


@dataclass
class Found:
    """Objects fetched for a Selection, per kind, in order."""

    groups: list[tuple[Kind, list[Message]]] = field(default_factory=list)

    def count(self) -> int:
        """How many objects were found."""
        return sum(len(objs) for _, objs in self.groups)


async def fetch(ctx: Context, selection: Selection, *, namespace: str,
                label_selector: str = "", field_selector: str = "") -> Found:
    """Get each named object (reporting NotFound ones and carrying on, as kubectl does)
    or list each kind with the selectors. ``namespace`` "" means all namespaces."""
    found = Found()
    for kind, names in selection.groups:
        client = ctx.client().resource(kind, namespace if namespace else "")
        if not names:
            listed = await client.list_all(label_selector=label_selector,
                                           field_selector=field_selector)
            found.groups.append((kind, list(listed.items)))
            continue
        if not namespace and kind.namespaced:
            raise NavctlError("a resource cannot be retrieved by name across all namespaces")
        objs: list[Message] = []
        for name in names:
            try:
                objs.append(await client.get(name))
            except NotFound as exc:
                ctx.fail(error_message(exc, ctx.address))
        found.groups.append((kind, objs))
    return found
