"""How ``navctl drain`` removes the pods it picked, as kubectl's drain helper
(k8s.io/kubectl/pkg/drain) removes them.

- Evicting (the default, when discovery lists the ``eviction`` subresource of pods): all
  the pods at once, one task each. A pod's loop: say ``evicting pod NS/NAME``; give up if
  the global timeout (``--timeout``; 0: none) has passed; create its Eviction. Allowed:
  wait until the pod is gone or its uid changed, then say ``pod/NAME evicted``. NotFound:
  already gone. TooManyRequests (a PodDisruptionBudget allows no disruption now): say so
  on stderr with the server's reason, sleep ``retry_delay`` (5 s; never past the
  deadline), read the pod again and loop. Any other refusal is that pod's error.
  ``--dry-run=server`` sends dry-run evictions and waits for nothing.
- Deleting (``--disable-eviction``, or a server without the Eviction API): delete each
  pod (its uid as precondition) one after the other, then wait for them all, saying
  ``pod/NAME deleted`` as each goes. PodDisruptionBudgets are not consulted.

The pods' errors are put together as kubectl's aggregate error is: one alone, several as
``[a, b]`` in the order they happened. The clock and the sleep are injected (``Removal``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from navarch._client import ResourceClient
from navarch._errors import ApiError, NotFound, TooManyRequests
from navarch._navctl.context import Context
from navarch._navctl.delete import wait_until_gone
from navarch._navctl.values import go_duration
from navarch.v1 import api_pb2, core_pb2

__all__ = [
    "EVICT_RETRY_DELAY", "PodsApi", "Removal", "aggregate", "delete_pods", "evict_pods",
    "eviction_supported",
]

EVICT_RETRY_DELAY = 5.0  # kubectl drain's EvictErrorRetryDelay


class PodsApi(Protocol):
    """What removing pods needs of the API server (``navarch.Client`` has it)."""

    def pods(self, namespace: str = "default") -> ResourceClient[core_pb2.Pod]:
        """The pods of ``namespace``."""
        ...

    async def evict(self, namespace: str, pod: str, *, grace_period_seconds: int | None = None,
                    dry_run: bool = False) -> core_pb2.Pod:
        """Create the pod's Eviction."""
        ...

    async def api_resources(self) -> list[api_pb2.APIResource]:
        """Discovery."""
        ...


@dataclass(frozen=True)
class Removal:
    """How to remove pods. ``grace_period`` None: each pod's own; ``timeout`` 0: no limit
    (kubectl's global timeout, counted from the start of the removal)."""

    grace_period: int | None = None
    server_dry_run: bool = False
    timeout: float = 0.0
    retry_delay: float = EVICT_RETRY_DELAY
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def deadline(self) -> float:
        """When the removal gives up, on ``clock``."""
        return self.clock() + self.timeout if self.timeout > 0 else math.inf


def aggregate(errors: Sequence[str]) -> str:
    """kubectl's aggregate of error messages: "" for none, one as it is (also when every
    one says the same), several as ``[a, b]`` without repeats."""
    unique = list(dict.fromkeys(errors))
    if len(unique) <= 1:
        return unique[0] if unique else ""
    return f"[{', '.join(unique)}]"


async def eviction_supported(api: PodsApi) -> bool:
    """Whether the server serves pods/eviction (kubectl asks discovery, and deletes when
    it does not)."""
    return any(r.name == "pods" and not r.group and "eviction" in r.subresources
               for r in await api.api_resources())


async def evict_pods(ctx: Context, api: PodsApi, pods: Sequence[core_pb2.Pod],
                     how: Removal) -> str:
    """Evict ``pods`` concurrently and wait until they are gone; the aggregate error, or
    "" when every one went."""
    deadline = how.deadline()
    errors: list[str] = []

    async def one(pod: core_pb2.Pod) -> None:
        problem = await _evict_one(ctx, api, pod, how, deadline)
        if problem:
            errors.append(problem)

    await asyncio.gather(*(one(p) for p in pods))
    return aggregate(errors)


async def _evict_one(ctx: Context, api: PodsApi, pod: core_pb2.Pod, how: Removal,
                     deadline: float) -> str:
    namespace, name = pod.metadata.namespace, pod.metadata.name
    where = f'pods/"{name}" -n "{namespace}"'
    suffix = " (server dry run)" if how.server_dry_run else ""
    active = pod
    while True:
        ctx.print(f"evicting pod {namespace}/{name}{suffix}")
        if how.clock() >= deadline:
            return f"error when evicting {where}: global timeout reached: " \
                   f"{go_duration(how.timeout)}"
        try:
            await api.evict(namespace, name, grace_period_seconds=how.grace_period,
                            dry_run=how.server_dry_run)
            break
        except NotFound:
            return ""
        except TooManyRequests as exc:
            ctx.warn(f"error when evicting {where} (will retry after "
                     f"{go_duration(how.retry_delay)}): {exc.message}")
            await how.sleep(min(how.retry_delay, max(0.0, deadline - how.clock())))
        except ApiError as exc:
            return f"error when evicting {where}: {exc.message}"
        try:
            active = await api.pods(namespace).get(name)
        except ApiError:
            pass  # as kubectl: evict again with the pod as last seen
    if how.server_dry_run:
        return ""
    if await wait_until_gone(api.pods(namespace), name, active.metadata.uid, deadline,
                             clock=how.clock, sleep=how.sleep):
        ctx.print(f"pod/{name} evicted")
        return ""
    return (f'error when waiting for pod "{name}" in namespace "{namespace}" to terminate: '
            "context deadline exceeded")


async def delete_pods(ctx: Context, api: PodsApi, pods: Sequence[core_pb2.Pod],
                      how: Removal) -> str:
    """Delete ``pods`` (no disruption budget asked) and wait until they are gone; the
    error, or "" when every one went."""
    for pod in pods:
        try:
            await api.pods(pod.metadata.namespace).delete(
                pod.metadata.name, grace_period_seconds=how.grace_period,
                uid=pod.metadata.uid, dry_run=how.server_dry_run)
        except NotFound:
            continue
        except ApiError as exc:
            return exc.message
    if how.server_dry_run:
        return ""
    deadline = how.deadline()

    async def gone(pod: core_pb2.Pod) -> bool:
        ok = await wait_until_gone(api.pods(pod.metadata.namespace), pod.metadata.name,
                                   pod.metadata.uid, deadline, clock=how.clock,
                                   sleep=how.sleep)
        if ok:
            ctx.print(f"pod/{pod.metadata.name} deleted")
        return ok

    if not all(await asyncio.gather(*(gone(p) for p in pods))):
        return f"drain did not complete within {go_duration(how.timeout)}"
    return ""
