"""Fixtures: an API server over each store backend (raftstore and etcd), and a client.

``apiserver`` is one process per module and backend; tests isolate themselves in a fresh
namespace (``ns``). The store fixtures come from tests/store (NAVARCH_STORE_BACKENDS).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

import navarch
from tests.api.harness import ApiServerProcess
from tests.store.cluster import StoreCluster
from tests.store.conftest import fresh_store, store  # noqa: F401


@pytest.fixture(scope="module")
def apiserver(store: StoreCluster,  # noqa: F811
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    """A running API server over the module's store cluster."""
    proc = ApiServerProcess(store.endpoints, tmp_path_factory.mktemp("apiserver"))
    try:
        proc.start()
    except BaseException:
        print(proc.log_tail())
        proc.stop()
        raise
    yield proc
    proc.stop()


@pytest_asyncio.fixture
async def client(apiserver: ApiServerProcess) -> AsyncIterator[navarch.Client]:
    """An SDK client of the module's API server."""
    c = navarch.Client(apiserver.address, timeout=20.0)
    try:
        yield c
    finally:
        await c.close()


@pytest_asyncio.fixture
async def ns(client: navarch.Client) -> AsyncIterator[str]:
    """A namespace of this test's own."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    namespace = navarch.v1.core_pb2.Namespace()
    namespace.metadata.name = name
    await client.namespaces().create(namespace)
    yield name
