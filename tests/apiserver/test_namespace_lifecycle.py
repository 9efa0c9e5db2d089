"""The namespace lifecycle check of services/apiserver/resources.py when the namespace
watch cache lags the store: a create right after a namespace delete through the same
server is refused, as Kubernetes' NamespaceLifecycle admission guarantees.

The lag is made certain by stopping the namespaces cache after it has seen the
namespace: its copy then says "active" for good.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from navarch.v1 import core_pb2, meta_pb2
from services.apiserver.errors import ApiError
from services.apiserver.objects import object_key
from services.apiserver.resources import Resources
from services.apiserver.storage import EtcdStore
from tests.store.cluster import StoreCluster


@pytest_asyncio.fixture
async def resources(store: StoreCluster) -> AsyncIterator[Resources]:
    db = EtcdStore(store.endpoints)
    res = Resources(db)
    await res.start()
    try:
        yield res
    finally:
        await res.stop()
        await db.close()


def _configmap(name: str, namespace: str) -> core_pb2.ConfigMap:
    return core_pb2.ConfigMap(metadata=meta_pb2.ObjectMeta(name=name, namespace=namespace))


async def _stale_namespace(res: Resources) -> str:
    """A namespace the namespaces cache holds as active and will not hear of again."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    created = await res.create("namespaces", "", core_pb2.Namespace(
        metadata=meta_pb2.ObjectMeta(name=name)))
    cache = res.caches["namespaces"]
    await cache.wait_fresh(int(created.metadata.resource_version))
    await cache.stop()
    key = object_key(res.kind("namespaces"), "", name)
    cached = cache.get(key)
    assert cached is not None and not cached.obj.metadata.HasField("deletion_timestamp")
    return name


async def test_create_after_delete_through_this_server_is_refused(resources: Resources
                                                                   ) -> None:
    name = await _stale_namespace(resources)
    await resources.create("configmaps", name, _configmap("before", name))
    marked = await resources.delete("namespaces", "", name)
    assert marked.status.phase == "Terminating"
    with pytest.raises(ApiError, match="because it is being terminated") as info:
        await resources.create("configmaps", name, _configmap("after", name))
    assert info.value.reason == "Forbidden"


async def test_dry_run_delete_leaves_the_namespace_open(resources: Resources) -> None:
    name = await _stale_namespace(resources)
    await resources.delete("namespaces", "", name, dry_run=True)
    made = await resources.create("configmaps", name, _configmap("after", name))
    assert made.metadata.namespace == name
