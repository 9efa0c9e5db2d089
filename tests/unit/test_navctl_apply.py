"""navctl apply's decisions: the recorded manifest and the three-way patch, without a
server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from navarch import from_dict
from navarch._kinds import resource
from navarch._navctl.apply import LAST_APPLIED, apply_patch, last_applied_text, with_last_applied

CM = resource("configmaps")


def manifest(data: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", **meta},
            "data": data}


def live(raw: dict[str, Any], *, labels: dict[str, str] | None = None,
         recorded: dict[str, Any] | None = None) -> Any:
    """The ConfigMap as the server would hold it after applying ``recorded``."""
    doc = json.loads(json.dumps(raw))
    meta = doc["metadata"]
    meta.update(namespace="default", uid="u-1", resourceVersion="7",
                creationTimestamp="2024-01-01T00:00:00Z")
    if labels:
        meta["labels"] = labels
    if recorded is not None:
        meta.setdefault("annotations", {})[LAST_APPLIED] = last_applied_text(recorded)
    return from_dict(doc, CM.message)


def test_recorded_manifest_is_compact_sorted_json_without_itself() -> None:
    raw = manifest({"b": "2", "a": "1"}, annotations={LAST_APPLIED: "old", "x": "y"})
    assert last_applied_text(raw) == (
        '{"apiVersion":"v1","data":{"a":"1","b":"2"},"kind":"ConfigMap",'
        '"metadata":{"annotations":{"x":"y"},"name":"cfg"}}\n')
    assert last_applied_text(manifest({}, annotations={LAST_APPLIED: "old"})) == \
        '{"apiVersion":"v1","data":{},"kind":"ConfigMap","metadata":{"name":"cfg"}}\n'
    recorded = with_last_applied(raw)["metadata"]["annotations"][LAST_APPLIED]
    assert recorded == last_applied_text(raw)


def test_same_manifest_needs_no_patch() -> None:
    raw = manifest({"a": "1"})
    applied = live(with_last_applied(raw), recorded=raw)
    assert apply_patch(CM, raw, applied) == {}


def test_other_writers_fields_are_kept() -> None:
    raw = manifest({"a": "1"})
    applied = live(with_last_applied(raw), labels={"owner": "ops"}, recorded=raw)
    assert apply_patch(CM, raw, applied) == {}


def test_dropped_field_is_deleted_and_changed_one_set() -> None:
    before = manifest({"a": "1", "b": "2"})
    applied = live(with_last_applied(before), recorded=before)
    after = manifest({"a": "10"})
    patch = apply_patch(CM, after, applied)
    assert patch["data"] == {"a": "10", "b": None}
    assert patch["metadata"]["annotations"] == {LAST_APPLIED: last_applied_text(after)}


@pytest.mark.parametrize("recorded", [None, "not json", '{"data": 5}'])
def test_without_a_usable_record_nothing_is_deleted(recorded: str | None) -> None:
    current = live(manifest({"a": "1", "b": "2"}))
    if recorded is not None:
        current.metadata.annotations[LAST_APPLIED] = recorded
    patch = apply_patch(CM, manifest({"a": "1"}), current)
    assert "data" not in patch  # "b" is kept: nobody recorded applying it
    assert patch["metadata"]["annotations"][LAST_APPLIED] == \
        last_applied_text(manifest({"a": "1"}))


DEPLOY = resource("deployments")


def deployment(container: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [container]}}}}


def defaulted(raw: dict[str, Any], recorded: dict[str, Any]) -> Any:
    """The Deployment as stored: with server defaults inside the container and ports."""
    doc = with_last_applied(raw)
    container = doc["spec"]["template"]["spec"]["containers"][0]
    container["imagePullPolicy"] = "IfNotPresent"
    for port in container.get("ports", []):
        port["protocol"] = "TCP"
    doc["metadata"]["annotations"][LAST_APPLIED] = last_applied_text(recorded)
    doc["metadata"]["namespace"] = "default"
    return from_dict(doc, DEPLOY.message)


WEB = {"name": "web", "image": "localhost/web:1", "ports": [{"containerPort": 8080}],
       "env": [{"name": "MODE", "value": "fast"}]}


def test_server_defaults_inside_lists_need_no_patch() -> None:
    raw = deployment(WEB)
    assert apply_patch(DEPLOY, raw, defaulted(raw, raw)) == {}


def test_a_field_dropped_inside_a_list_element_replaces_the_list() -> None:
    before = deployment(WEB)
    after = deployment({k: v for k, v in WEB.items() if k != "env"})
    patch = apply_patch(DEPLOY, after, defaulted(before, before))
    assert patch["spec"] == {"template": {"spec": {"containers": [
        {"name": "web", "image": "localhost/web:1", "ports": [{"containerPort": 8080}]}]}}}


def test_a_changed_value_inside_a_list_replaces_the_list() -> None:
    before = deployment(WEB)
    after = deployment({**WEB, "image": "localhost/web:2"})
    patch = apply_patch(DEPLOY, after, defaulted(before, before))
    containers = patch["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == ["localhost/web:2"]
