"""Helpers for API tests: objects from Kubernetes-style dicts, and awaiting conditions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import navarch
from navarch._kinds import kind_for

T = TypeVar("T")


def obj(doc: dict[str, Any]) -> Any:
    """The message a manifest dict describes (its apiVersion and kind select the type)."""
    kind = kind_for(doc["apiVersion"], doc["kind"])
    return navarch.from_dict(doc, kind.message)


def configmap(name: str, namespace: str, data: dict[str, str] | None = None,
              labels: dict[str, str] | None = None) -> Any:
    """A ConfigMap."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return obj({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                "data": {"k": "v"} if data is None else data})


def pod(name: str, namespace: str, labels: dict[str, str] | None = None,
        image: str = "localhost/busybox:1") -> Any:
    """A one-container Pod."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return obj({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                "spec": {"containers": [{"name": "main", "image": image}]}})


def deployment(name: str, namespace: str, replicas: int = 1, image: str = "localhost/web:1"
               ) -> Any:
    """A Deployment selecting app=<name>."""
    labels = {"app": name}
    return obj({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": "web", "image": image}]}}}})


def service(name: str, namespace: str, **spec: Any) -> Any:
    """A Service; ``spec`` fields in Kubernetes spelling (ports default to one port 80)."""
    body = {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}
    body.update(spec)
    return obj({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": namespace}, "spec": body})


async def eventually(check: Callable[[], Awaitable[T | None]], within: float = 10.0,
                     what: str = "condition") -> T:
    """Await ``check`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def next_events(stream: AsyncIterator[Any], count: int, within: float = 10.0,
                      skip_bookmarks: bool = True) -> list[Any]:
    """The next ``count`` events of a watch stream (bookmarks skipped)."""
    events: list[Any] = []

    async def collect() -> None:
        async for event in stream:
            if skip_bookmarks and event.type == "BOOKMARK":
                continue
            events.append(event)
            if len(events) == count:
                return

    await asyncio.wait_for(collect(), within)
    return events
