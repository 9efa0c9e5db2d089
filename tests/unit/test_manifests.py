"""Manifest loading: documents, lists, and errors that say where (navarch/_manifests.py)."""

from __future__ import annotations

import pytest

from navarch import load_manifests
from navarch._manifests import ManifestError

TWO_DOCS = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
data:
  k: v
---
# a comment-only document is skipped
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: localhost/web:1
"""


def test_multi_document_yaml() -> None:
    loaded = load_manifests(TWO_DOCS, "app.yaml")
    assert [(m.object.kind, m.object.metadata.name, m.document) for m in loaded] == [
        ("ConfigMap", "a", 1), ("Deployment", "web", 3)]
    assert loaded[1].object.spec.replicas == 2


def test_json_and_lists() -> None:
    text = ('{"apiVersion": "v1", "kind": "List", "items": ['
            '{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}},'
            '{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}}]}')
    assert [m.object.metadata.name for m in load_manifests(text)] == ["a", "b"]


@pytest.mark.parametrize(("text", "expected"), [
    (TWO_DOCS.replace("replicas: 2", "replicas: two"),
     "app.yaml: document 3, line 15: spec.replicas: expected an integer"),
    (TWO_DOCS.replace("        image: localhost", "        imagee: localhost"),
     "app.yaml: document 3, line 24: spec.template.spec.containers[0].imagee: unknown field"),
    (TWO_DOCS.replace("kind: ConfigMap", "kind: ConfigMapp"),
     'app.yaml: document 1, line 2: no kind "ConfigMapp" is served'),
    (TWO_DOCS.replace("apiVersion: apps/v1", "apiVersion: apps/v2"),
     'app.yaml: document 3, line 11: no kind "Deployment" in apiVersion "apps/v2"'),
    ("kind: Pod\nmetadata: {name: x}\n", "app.yaml: document 1, line 1: apiVersion: Required"),
    ("apiVersion: v1\nkind: Pod\n  bad: [indent\n", "app.yaml: document 1, line 3: not valid YAML"),
    ("- just\n- a list\n", "app.yaml: document 1, line 1: a manifest must be an object"),
])
def test_errors_say_where(text: str, expected: str) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifests(text, "app.yaml")
    assert str(info.value).startswith(expected), str(info.value)
