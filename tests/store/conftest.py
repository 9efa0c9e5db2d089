"""Fixtures: the same tests run against a 3-member raftstore and a 3-member etcd.

``NAVARCH_STORE_BACKENDS`` (comma-separated, default ``raftstore,etcd``) picks backends.
``store`` is one cluster per backend shared by a module (tests isolate themselves with
the ``prefix`` fixture); ``fresh_store`` is a new cluster per test, for tests that
compact, kill members or otherwise change cluster-wide state.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aetcd
import pytest
import pytest_asyncio

from tests.store.cluster import BACKENDS, StoreCluster

BACKEND_NAMES = [
    b.strip() for b in os.environ.get("NAVARCH_STORE_BACKENDS", "raftstore,etcd").split(",")
    if b.strip()
]


def make_cluster(backend: str, workdir: Path, extra_args: list[str] | None = None
                 ) -> StoreCluster:
    """A started cluster of ``backend`` (its members' logs printed if it fails to start)."""
    cluster = BACKENDS[backend](workdir, extra_args=extra_args)  # type: ignore[call-arg]
    try:
        cluster.start()
    except BaseException:
        for i in range(cluster.size):
            print(f"--- {cluster.names[i]} log ---\n{cluster.log_tail(i)}")
        cluster.destroy()
        raise
    return cluster


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[StoreCluster]:
    """A running 3-member cluster shared by the tests of one module."""
    cluster = make_cluster(request.param, tmp_path_factory.mktemp(request.param))
    yield cluster
    cluster.destroy()


@pytest.fixture(params=BACKEND_NAMES)
def fresh_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreCluster]:
    """A new running 3-member cluster for this test alone."""
    cluster = make_cluster(request.param, tmp_path)
    yield cluster
    cluster.destroy()


@pytest.fixture
def prefix() -> bytes:
    """A key prefix no other test uses."""
    return f"/t/{uuid.uuid4().hex[:12]}/".encode()


@pytest_asyncio.fixture
async def client(store: StoreCluster) -> AsyncIterator[aetcd.Client]:
    """An aetcd client connected to the shared cluster's first member."""
    host, port = store.endpoints[0].split(":")
    c = aetcd.Client(host=host, port=int(port))
    try:
        yield c
    finally:
        await c.close()
