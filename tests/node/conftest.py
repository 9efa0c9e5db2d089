"""Fixtures for node tests with real containerd: the test network plan, a local registry
with the project's images, and a factory of node environments (netns + containerd).

Tests here need root, containerd, runc and Debian's docker-registry; without them they
are skipped with the reason. Everything made is removed at the end: namespaces, links,
mounts, cgroups, processes, files.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deploy import nodeenv
from deploy.images import push_all
from deploy.nodeenv import NetworkPlan, NodeEnv
from tests.api.conftest import client, ns  # noqa: F401 - shared (a module's `apiserver`)

NEEDS = ("containerd", "runc", "docker-registry", "nsenter", "gcc")


def _missing() -> str:
    if os.geteuid() != 0:
        return "needs root (network namespaces, mounts, containerd)"
    absent = [b for b in NEEDS if shutil.which(b) is None]
    return f"not installed: {', '.join(absent)} (make deps)" if absent else ""


@pytest.fixture(scope="session")
def node_plan() -> NetworkPlan:
    """Addresses for test nodes, apart from ``make up``'s 172.30.0.0/24 and port 5000."""
    why = _missing()
    if why:
        pytest.skip(why)
    return NetworkPlan(prefix="nvt", subnet="172.31.240.0/24", registry_port=5090)


@pytest.fixture(scope="session")
def registry(node_plan: NetworkPlan, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[dict[str, str]]:
    """The test bridge and a registry serving the images: {"pause", "busybox", "web1",
    "web2"} -> reference."""
    root = tmp_path_factory.mktemp("registry")
    nodeenv.ensure_bridge(node_plan)
    try:
        nodeenv.start_registry(node_plan, root)
        refs = push_all(node_plan.registry)
        named = {}
        for ref in refs:
            repo, tag = ref.rsplit("/", 1)[1].split(":")
            named[repo + (tag if repo == "web" else "")] = ref
        yield named
    finally:
        nodeenv.stop_registry(node_plan, root)
        nodeenv.remove_bridge(node_plan)


@pytest.fixture
def make_node(node_plan: NetworkPlan, registry: dict[str, str], tmp_path: Path
              ) -> Iterator[Callable[[str], NodeEnv]]:
    """``make_node(name)``: a node environment with containerd running, removed after
    the test."""
    made: list[NodeEnv] = []

    def make(name: str) -> NodeEnv:
        node = NodeEnv(name, 100 + len(made), node_plan, tmp_path / name)
        made.append(node)
        nodeenv.setup_node(node)
        return node

    try:
        yield make
    finally:
        for node in made:
            nodeenv.teardown_node(node)
