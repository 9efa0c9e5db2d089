"""The SDK informer: list + watch + cache + handlers, and recovery after the window moves."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import navarch
from tests.api.harness import ApiServerProcess
from tests.api.util import configmap, eventually
from tests.store.cluster import StoreCluster


async def test_informer_follows_changes(client: navarch.Client, ns: str) -> None:
    seen: list[tuple[str, str]] = []
    informer = navarch.Informer(
        client.configmaps(ns),
        on_add=lambda o: seen.append(("add", o.metadata.name)),
        on_update=lambda old, new: seen.append(("update", new.metadata.name)),
        on_delete=lambda o: seen.append(("delete", o.metadata.name)))
    await client.configmaps(ns).create(configmap("before", ns))
    informer.start()
    try:
        await informer.wait_synced(timeout=20)
        assert informer.get("before", ns) is not None
        await client.configmaps(ns).create(configmap("after", ns))
        await client.configmaps(ns).patch("before", {"data": {"k": "2"}})
        await client.configmaps(ns).delete("after")

        async def done() -> bool:
            return len(seen) >= 4

        await eventually(done, what="four informer events")
        assert seen == [("add", "before"), ("add", "after"), ("update", "before"),
                        ("delete", "after")]
        assert [o.metadata.name for o in informer.list(ns)] == ["before"]
        assert informer.get("before", ns).data["k"] == "2"
    finally:
        await informer.stop()


async def test_informer_relists_when_its_version_expires(store: StoreCluster,
                                                         tmp_path: Path) -> None:
    """A watcher that falls out of the window lists again; deletions it missed reach
    on_delete, so its cache matches the server's."""
    server = ApiServerProcess(store.endpoints, tmp_path / "api", ["--watch-cache-size", "3"])
    server.start()
    ns = f"inf-{uuid.uuid4().hex[:8]}"
    deleted: list[str] = []
    async with navarch.Client(server.address) as client:
        body = navarch.v1.core_pb2.Namespace()
        body.metadata.name = ns
        await client.namespaces().create(body)
        for i in range(3):
            await client.configmaps(ns).create(configmap(f"c{i}", ns))
        informer = navarch.Informer(client.configmaps(ns), backoff=0.1,
                                    on_delete=lambda o: deleted.append(o.metadata.name))
        informer.start()
        try:
            await informer.wait_synced(timeout=20)
            server.kill()  # the informer loses its watch and retries
            server.start()
            await client.configmaps(ns).delete("c0")
            for i in range(10):  # move the new server's window past the informer's version
                await client.configmaps(ns).patch("c1", {"data": {"i": str(i)}})

            async def caught_up() -> bool:
                cached = informer.get("c1", ns)
                return ("c0" in deleted and cached is not None
                        and cached.data.get("i") == "9")

            await eventually(caught_up, within=30, what="the informer to relist")
            assert sorted(o.metadata.name for o in informer.list(ns)) == ["c1", "c2"]
        finally:
            await informer.stop()
            with contextlib.suppress(Exception):
                server.stop()
