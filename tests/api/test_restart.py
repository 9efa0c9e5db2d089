"""Killing an API server loses no acknowledged write, and watchers carry on."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import navarch
from tests.api.harness import ApiServerProcess
from tests.api.util import configmap, eventually
from tests.store.cluster import StoreCluster


async def test_kill_restart_loses_nothing_and_informers_resume(
        fresh_store: StoreCluster, tmp_path: Path) -> None:
    a = ApiServerProcess(fresh_store.endpoints, tmp_path / "a")
    b = ApiServerProcess(fresh_store.endpoints, tmp_path / "b")
    a.start()
    b.start()
    client_a = navarch.Client(a.address, timeout=5.0)
    client_b = navarch.Client(b.address, timeout=5.0)
    informer = navarch.Informer(client_a.configmaps("default"), backoff=0.1, max_backoff=0.5)
    informer.start()
    try:
        await informer.wait_synced(timeout=20)
        acknowledged: list[str] = []

        async def writer() -> None:
            for i in range(10_000):
                try:
                    await client_a.configmaps("default").create(configmap(f"w{i}", "default"))
                except navarch.ApiError:
                    return
                acknowledged.append(f"w{i}")

        task = asyncio.create_task(writer())
        await eventually(lambda: _ready(len(acknowledged) >= 20), what="some writes")
        a.kill()
        await asyncio.wait_for(task, 30)
        for i in range(5):  # changes while A is down, through B
            await client_b.configmaps("default").create(configmap(f"during{i}", "default"))
        a.start()
        names = {c.metadata.name for c in
                 (await client_b.configmaps("default").list_all()).items}
        assert set(acknowledged) <= names
        expected = set(acknowledged) | {f"during{i}" for i in range(5)}
        await eventually(lambda: _has_all(informer, expected), within=30,
                         what="the informer to catch up after the restart")
    finally:
        await informer.stop()
        with contextlib.suppress(Exception):
            await client_a.close()
            await client_b.close()
        a.stop()
        b.stop()


async def _ready(value: bool) -> bool:
    return value


async def _has_all(informer: navarch.Informer, names: set[str]) -> bool:
    cached = {key.split("/", 1)[1] for key in informer.cache}
    return names <= cached
