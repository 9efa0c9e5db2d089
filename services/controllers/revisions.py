"""ControllerRevisions of DaemonSets and StatefulSets: immutable snapshots of a set's pod
template (``data.spec.template``) named ``<set>-<hash>``, numbered in order, kept for
rollbacks and for remaking pods at an older revision (a StatefulSet partition).

Pure helpers; the controllers create and delete the objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from navarch._codec import from_dict, to_dict
from navarch.v1 import apps_pb2, core_pb2

from .workloads import REVISION_LABEL, controller_ref

__all__ = ["history_to_prune", "new_revision", "revision_template"]


def new_revision(owner: Message, kind: str, template: core_pb2.PodTemplateSpec, name: str,
                 hash_: str, number: int) -> apps_pb2.ControllerRevision:
    """A ControllerRevision ``name`` of ``owner`` (a ``kind`` of apps/v1) holding
    ``template``, labelled with the template's labels and ``controller-revision-hash``."""
    meta = owner.metadata  # type: ignore[attr-defined]
    rev = apps_pb2.ControllerRevision(api_version="apps/v1", kind="ControllerRevision")
    rev.metadata.name = name
    rev.metadata.namespace = meta.namespace
    rev.metadata.labels.update(template.metadata.labels)
    rev.metadata.labels[REVISION_LABEL] = hash_
    rev.metadata.owner_references.append(controller_ref(owner, kind, "apps/v1"))
    rev.data.update({"spec": {"template": to_dict(template)}})
    rev.revision = number
    return rev


def revision_template(rev: apps_pb2.ControllerRevision) -> core_pb2.PodTemplateSpec | None:
    """The pod template a ControllerRevision holds (``data.spec.template``), None when it
    holds none."""
    data: dict[str, Any] = json_format.MessageToDict(rev.data)
    template = data.get("spec", {}).get("template")
    if not isinstance(template, dict):
        return None
    return from_dict(_integral(template), core_pb2.PodTemplateSpec)


def _integral(value: Any) -> Any:
    """Struct numbers come back as floats: make whole ones ints again."""
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def history_to_prune(revisions: Iterable[apps_pb2.ControllerRevision], in_use: set[str],
                     limit: int) -> list[str]:
    """Names of the oldest revisions not ``in_use`` beyond ``limit`` of them."""
    history = sorted((r for r in revisions if r.metadata.name not in in_use),
                     key=lambda r: (r.revision, r.metadata.name))
    return [r.metadata.name for r in history[:max(0, len(history) - limit)]]
