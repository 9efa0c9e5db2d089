"""The ReplicaSet controller: keeps ``spec.replicas`` pods of each ReplicaSet running
(decisions in ``replicaset_sync``).

Flow::

    replicasets, pods informers ──▶ key of the ReplicaSet (a pod's controller, or every
        ReplicaSet of the namespace whose selector matches an orphan pod)
    reconcile(key): ReplicaSet + the namespace's pods ──plan_replicaset──▶ plan
        adopt / release pods (owner references), create in slow-start batches, delete the
        most deletable surplus, write status; requeue after minReadySeconds when needed

Contracts: never mutates cached objects; creates or deletes pods only once the cache
shows the previous round's writes (``Expectations`` by pod name; names are chosen
before the create), so that a stale cache never makes a replica twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

from navarch._errors import AlreadyExists, ApiError, NotFound
from navarch._informer import Informer
from navarch.v1 import apps_pb2, core_pb2

from .framework import Controller, ControllerContext, clone, owner_uids, split_key
from .replicaset_sync import (
    new_pod,
    plan_replicaset,
    replicaset_status,
    selects,
    slow_start_batches,
)
from .workloads import (
    OWNER_INDEX,
    Expectations,
    OwnedPodEvents,
    controller_ref,
    controller_ref_of,
    is_pod_ready,
    pod_ready_since,
)

__all__ = ["ReplicaSetController"]


class ReplicaSetController(Controller):
    """Creates and deletes pods so that each ReplicaSet has its replicas."""

    name = "replicaset"
    workers = 4

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.expectations = Expectations()
        self.replicasets: Informer[apps_pb2.ReplicaSet]
        self.pods: Informer[core_pb2.Pod]

    async def setup(self) -> None:
        """Watch ReplicaSets and pods (pods indexed by their controller's uid)."""
        self.replicasets = self.ctx.informers.informer("replicasets")
        self.pods = self.ctx.informers.informer("pods")
        self.pods.add_index(OWNER_INDEX, owner_uids)
        await self.replicasets.add_handlers(self.enqueue, self._rs_updated, self._rs_deleted)
        self._owned = OwnedPodEvents("ReplicaSet", self.queue, self.expectations)
        await self.pods.add_handlers(self._pod_added, self._pod_updated, self._owned.deleted)

    # --- handlers -------------------------------------------------------------------------

    def _rs_updated(self, old: apps_pb2.ReplicaSet, new: apps_pb2.ReplicaSet) -> None:
        self.enqueue(new)

    def _rs_deleted(self, rs: apps_pb2.ReplicaSet) -> None:
        self.expectations.forget(f"{rs.metadata.namespace}/{rs.metadata.name}")

    def _orphan_owners(self, pod: core_pb2.Pod) -> None:
        """Queue every ReplicaSet of the pod's namespace that could adopt it."""
        for rs in self.replicasets.list(pod.metadata.namespace):
            if selects(rs, pod):
                self.enqueue(rs)

    def _pod_added(self, pod: core_pb2.Pod) -> None:
        if self._owned.added(pod) is None and controller_ref_of(pod) is None:
            self._orphan_owners(pod)

    def _pod_updated(self, old: core_pb2.Pod, new: core_pb2.Pod) -> None:
        key = self._owned.updated(old, new)
        if key is not None:
            # a pod that just became ready turns available after minReadySeconds
            namespace, name = split_key(key)
            rs = self.replicasets.get(name, namespace)
            if (rs is not None and rs.spec.min_ready_seconds > 0 and is_pod_ready(new)
                    and not is_pod_ready(old)):
                self.queue.add_after(key, rs.spec.min_ready_seconds + 0.5)
        elif controller_ref_of(new) is None and old.metadata.labels != new.metadata.labels:
            self._orphan_owners(new)

    # --- reconcile ------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        """Sync one ReplicaSet: ownership, replica count, status."""
        namespace, name = split_key(key)
        rs = self.replicasets.get(name, namespace)
        if rs is None:
            self.expectations.forget(key)
            return
        now = self.clock.now()
        may_scale = self.expectations.satisfied(key, now)
        pods = [p for p in self.pods.list(namespace)
                if controller_ref_of(p) is None
                or controller_ref_of(p).uid == rs.metadata.uid]  # type: ignore[union-attr]
        plan = plan_replicaset(rs, pods, may_scale=may_scale)
        failure = ""
        try:
            await self._own(rs, plan.adopt, plan.release)
            await self._delete(key, rs, plan.delete)
            await self._create(key, rs, plan.create)
        except ApiError as exc:
            failure = exc.message
        owned = [p for p in plan.owned if p.metadata.name not in plan.release]
        status = replicaset_status(rs, owned, now, failure)
        if status != rs.status:
            updated = clone(rs)
            updated.status.CopyFrom(status)
            try:
                await self.client.replicasets(namespace).update_status(updated)
            except NotFound:
                return
        if failure:
            raise RuntimeError(failure)
        self._requeue_for_availability(key, rs, owned, now)

    def _requeue_for_availability(self, key: str, rs: apps_pb2.ReplicaSet,
                                  owned: list[core_pb2.Pod], now: float) -> None:
        wait = rs.spec.min_ready_seconds
        if wait <= 0:
            return
        pending = [pod_ready_since(p) + wait - now for p in owned
                   if is_pod_ready(p) and pod_ready_since(p) + wait > now]
        if pending:
            self.queue.add_after(key, min(pending) + 0.5)

    async def _own(self, rs: apps_pb2.ReplicaSet, adopt: tuple[str, ...],
                   release: tuple[str, ...]) -> None:
        """Adopt orphans (add our controller reference) and release pods that stopped
        matching (remove it), each with the pod's resourceVersion so no change is lost."""
        pods = self.client.pods(rs.metadata.namespace)
        for pod_name in adopt:
            pod = self.pods.get(pod_name, rs.metadata.namespace)
            if pod is None:
                continue
            changed = clone(pod)
            changed.metadata.owner_references.append(controller_ref(rs, "ReplicaSet",
                                                                    "apps/v1"))
            await _quietly(pods.update(changed))
        for pod_name in release:
            pod = self.pods.get(pod_name, rs.metadata.namespace)
            if pod is None:
                continue
            changed = clone(pod)
            keep = [r for r in changed.metadata.owner_references if r.uid != rs.metadata.uid]
            del changed.metadata.owner_references[:]
            changed.metadata.owner_references.extend(keep)
            await _quietly(pods.update(changed))

    async def _create(self, key: str, rs: apps_pb2.ReplicaSet, count: int) -> None:
        """Create ``count`` pods in slow-start batches (1, 2, 4…); stop at the first error."""
        if count <= 0:
            return
        pods = self.client.pods(rs.metadata.namespace)
        for size in slow_start_batches(count):
            batch = [new_pod(rs) for _ in range(size)]
            self.expectations.expect(key, self.clock.now(),
                                     adds=[p.metadata.name for p in batch])
            results = await asyncio.gather(*(pods.create(p) for p in batch),
                                           return_exceptions=True)
            failed: BaseException | None = None
            for pod, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    self.expectations.lower(key, adds=[pod.metadata.name])
                    if not isinstance(result, AlreadyExists):
                        failed = failed or result
                    continue
                self.recorder.event(rs, "Normal", "SuccessfulCreate",
                                    f"Created pod: {pod.metadata.name}")
            if failed is not None:
                message = getattr(failed, "message", str(failed))
                self.recorder.event(rs, "Warning", "FailedCreate",
                                    f"Error creating: {message}")
                raise failed

    async def _delete(self, key: str, rs: apps_pb2.ReplicaSet, names: tuple[str, ...]
                      ) -> None:
        """Delete the victims (with their grace periods)."""
        if not names:
            return
        pods = self.client.pods(rs.metadata.namespace)
        self.expectations.expect(key, self.clock.now(), deletes=names)
        results = await asyncio.gather(*(pods.delete(n) for n in names),
                                       return_exceptions=True)
        failed: BaseException | None = None
        for pod_name, result in zip(names, results, strict=True):
            if isinstance(result, NotFound):
                self.expectations.observed_delete(key, pod_name)
            elif isinstance(result, BaseException):
                self.expectations.lower(key, deletes=[pod_name])
                failed = failed or result
            else:
                self.recorder.event(rs, "Normal", "SuccessfulDelete",
                                    f"Deleted pod: {pod_name}")
        if failed is not None:
            raise failed


async def _quietly(call: Any) -> None:
    """Run an ownership update; a pod that changed or went meanwhile is retried by the
    next sync (its informer event queues one)."""
    try:
        await call
    except (NotFound, ApiError):
        pass
