"""Pod volumes on a real filesystem (node_agent.volumes): tmpfs for memory emptyDirs and
secrets, the atomic writer's updates, hostPath checks, teardown leaving no mount."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from navarch.v1 import core_pb2
from node_agent.env import ConfigError
from node_agent.volumes import VolumeManager, container_mounts
from tests.api.util import obj

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts)")


class Lookup:
    def __init__(self) -> None:
        self.cms: dict[str, dict[str, str]] = {"cfg": {"app.conf": "port=8080\n", "x": "1"}}
        self.secrets: dict[str, dict[str, bytes]] = {"creds": {"password": b"s3cret"}}

    def config_map(self, namespace: str, name: str) -> core_pb2.ConfigMap | None:
        data = self.cms.get(name)
        return None if data is None else core_pb2.ConfigMap(data=data)

    def secret(self, namespace: str, name: str) -> core_pb2.Secret | None:
        data = self.secrets.get(name)
        return None if data is None else core_pb2.Secret(data=data)


def make_pod(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]] | None = None
             ) -> core_pb2.Pod:
    pod = obj({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "p", "namespace": "ns", "uid": "uid-1",
                            "labels": {"app": "web"}},
               "spec": {"volumes": volumes,
                        "containers": [{"name": "c", "image": "i",
                                        "volumeMounts": mounts or []}]}})
    assert isinstance(pod, core_pb2.Pod)
    return pod


def fs_type(path: Path) -> str:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, right = line.split(" - ")
        if left.split()[4] == str(path):
            return right.split()[0]
    return ""


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[VolumeManager]:
    vm = VolumeManager(tmp_path / "agent")
    try:
        yield vm
    finally:
        vm.teardown("uid-1")
        assert not [ln for ln in Path("/proc/self/mountinfo").read_text().splitlines()
                    if str(tmp_path) in ln], "mounts left behind"


def test_empty_dirs_on_disk_and_in_memory(manager: VolumeManager) -> None:
    pod = make_pod([{"name": "disk", "emptyDir": {}},
                    {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}])
    paths = manager.setup(pod, Lookup())
    assert paths["disk"].is_dir() and fs_type(paths["disk"]) == ""
    assert fs_type(paths["mem"]) == "tmpfs"
    assert paths["disk"].stat().st_mode & 0o777 == 0o777


def test_secret_volumes_live_on_tmpfs_with_their_mode(manager: VolumeManager) -> None:
    pod = make_pod([{"name": "s", "secret": {"secretName": "creds", "defaultMode": 0o400}}])
    path = manager.setup(pod, Lookup())["s"]
    assert fs_type(path) == "tmpfs"
    assert (path / "password").read_bytes() == b"s3cret"
    assert (path / "password").stat().st_mode & 0o777 == 0o400


def test_config_map_items_and_updates_seen_through_the_same_path(
        manager: VolumeManager) -> None:
    lookup = Lookup()
    pod = make_pod([{"name": "c", "configMap": {
        "name": "cfg", "items": [{"key": "app.conf", "path": "etc/app.conf"}]}}])
    path = manager.setup(pod, lookup)["c"]
    assert (path / "etc" / "app.conf").read_text() == "port=8080\n"
    assert not (path / "x").exists()  # only the listed items
    lookup.cms["cfg"]["app.conf"] = "port=9090\n"
    manager.setup(pod, lookup)
    assert (path / "etc" / "app.conf").read_text() == "port=9090\n"
    assert len([p for p in path.iterdir() if p.name.startswith("..") and p.is_dir()
                and not p.is_symlink()]) == 1  # the old generation is gone


def test_downward_api_files(manager: VolumeManager) -> None:
    pod = make_pod([{"name": "d", "downwardAPI": {"items": [
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}])
    path = manager.setup(pod, Lookup())["d"]
    assert (path / "name").read_text() == "p"
    assert (path / "labels").read_text() == 'app="web"'


@pytest.mark.parametrize(("volume", "message"), [
    ({"name": "v", "configMap": {"name": "nope"}}, 'volume "v": configmap "nope" not found'),
    ({"name": "v", "secret": {"secretName": "nope"}}, 'volume "v": secret "nope" not found'),
    ({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "k", "path": "k"}]}},
     "volume \"v\": configmap \"cfg\": configured to use key 'k', which is not in its data"),
    ({"name": "v", "hostPath": {"path": "/nonexistent-navarch", "type": "Directory"}},
     'volume "v": hostPath type check failed: /nonexistent-navarch does not exist'),
])
def test_bad_volumes_name_the_volume(manager: VolumeManager, volume: dict[str, Any],
                                     message: str) -> None:
    with pytest.raises(ConfigError) as err:
        manager.setup(make_pod([volume]), Lookup())
    assert err.value.message == message


def test_optional_sources_may_be_missing(manager: VolumeManager) -> None:
    pod = make_pod([{"name": "v", "configMap": {"name": "nope", "optional": True}}])
    assert manager.setup(pod, Lookup())["v"].is_dir()


def test_host_path_directory_or_create(manager: VolumeManager, tmp_path: Path) -> None:
    target = tmp_path / "made" / "here"
    pod = make_pod([{"name": "h", "hostPath": {"path": str(target),
                                               "type": "DirectoryOrCreate"}}])
    assert manager.setup(pod, Lookup())["h"] == target and target.is_dir()


def test_mounts_sub_paths_and_read_only_kinds(manager: VolumeManager) -> None:
    pod = make_pod([{"name": "work", "emptyDir": {}},
                    {"name": "cfg", "configMap": {"name": "cfg"}}],
                   [{"name": "work", "mountPath": "/work", "subPath": "a/b"},
                    {"name": "cfg", "mountPath": "/etc/cfg"}])
    paths = manager.setup(pod, Lookup())
    mounts = container_mounts(pod, pod.spec.containers[0], paths)
    assert [(m.container_path, m.readonly) for m in mounts] == [("/work", False),
                                                                 ("/etc/cfg", True)]
    assert Path(mounts[0].host_path) == paths["work"] / "a" / "b"
    assert Path(mounts[0].host_path).is_dir()
    bad = make_pod([{"name": "work", "emptyDir": {}}],
                   [{"name": "work", "mountPath": "/w", "subPath": "../escape"}])
    with pytest.raises(ConfigError):
        container_mounts(bad, bad.spec.containers[0], paths)


def test_teardown_unmounts_and_removes_and_orphans_are_found(manager: VolumeManager) -> None:
    pod = make_pod([{"name": "s", "secret": {"secretName": "creds"}},
                    {"name": "m", "emptyDir": {"medium": "Memory"}}])
    paths = manager.setup(pod, Lookup())
    assert manager.orphans({"someone-else"}) == ["uid-1"]
    assert manager.orphans({"uid-1"}) == []
    manager.teardown("uid-1")
    assert not paths["s"].exists() and fs_type(paths["s"]) == "" and fs_type(paths["m"]) == ""
    manager.teardown("uid-1")  # twice is fine
