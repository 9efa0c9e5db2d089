"""The DaemonSet controller: one pod per eligible node (decisions in ``daemonset_sync``).

Flow::

    daemonsets, nodes, pods informers ──▶ DaemonSet keys (a node change queues them all)
        reconcile(key): DaemonSet + nodes + its pods ──plan_daemonset──▶ DaemonSetPlan
            delete pods, create pods (placed by the scheduler through a required node
            affinity on the node's name), write status, requeue for minReadySeconds;
            a ControllerRevision ``<set>-<hash>`` per template, old ones pruned

Contracts: never mutates cached objects; acts only once the cache has shown the previous
round's creations and deletions (``Expectations``), so no node ever gets two pods from a
stale cache.
"""

from __future__ import annotations

from navarch._errors import AlreadyExists, NotFound
from navarch._informer import Informer
from navarch.v1 import apps_pb2, core_pb2

from .daemonset_sync import DaemonSetPlan, new_daemon_pod, plan_daemonset
from .framework import Controller, ControllerContext, owner_uids, split_key
from .revisions import history_to_prune, new_revision
from .workloads import (
    OWNER_INDEX,
    REVISION_LABEL,
    Expectations,
    OwnedPodEvents,
    template_hash,
)

__all__ = ["DaemonSetController", "daemonset_status"]

FAILED_BACKOFF_BASE = 1.0
FAILED_BACKOFF_MAX = 900.0


def daemonset_status(ds: apps_pb2.DaemonSet, plan: DaemonSetPlan) -> apps_pb2.DaemonSetStatus:
    """The status ``plan`` describes for ``ds`` (conditions and collisionCount kept)."""
    status = apps_pb2.DaemonSetStatus()
    status.CopyFrom(ds.status)
    status.desired_number_scheduled = plan.desired
    status.current_number_scheduled = plan.current
    status.number_misscheduled = plan.misscheduled
    status.number_ready = plan.ready
    status.number_available = plan.available
    status.number_unavailable = max(0, plan.desired - plan.available)
    status.updated_number_scheduled = plan.updated
    status.observed_generation = ds.metadata.generation
    return status


class DaemonSetController(Controller):
    """Runs a DaemonSet's pod on every node it fits."""

    name = "daemonset"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.expectations = Expectations()
        self.daemonsets: Informer[apps_pb2.DaemonSet]
        self.nodes: Informer[core_pb2.Node]
        self.pods: Informer[core_pb2.Pod]
        self.revisions: Informer[apps_pb2.ControllerRevision]
        # (DaemonSet key, node) -> (current delay, no new pod before): failed pods' backoff
        self.failed_backoff: dict[tuple[str, str], tuple[float, float]] = {}

    async def setup(self) -> None:
        """Watch DaemonSets, nodes and pods."""
        self.daemonsets = self.ctx.informers.informer("daemonsets")
        self.nodes = self.ctx.informers.informer("nodes")
        self.pods = self.ctx.informers.informer("pods")
        self.revisions = self.ctx.informers.informer("controllerrevisions")
        self.pods.add_index(OWNER_INDEX, owner_uids)
        self.revisions.add_index(OWNER_INDEX, owner_uids)
        await self.daemonsets.add_handlers(self.enqueue, lambda _o, new: self.enqueue(new),
                                           self._ds_deleted)
        await self.nodes.add_handlers(self._node_changed, self._node_updated,
                                      self._node_changed)
        owned = OwnedPodEvents("DaemonSet", self.queue, self.expectations)
        await self.pods.add_handlers(owned.added, owned.updated, owned.deleted)

    # --- handlers -------------------------------------------------------------------------

    def _ds_deleted(self, ds: apps_pb2.DaemonSet) -> None:
        key = f"{ds.metadata.namespace}/{ds.metadata.name}"
        self.expectations.forget(key)
        for entry in [e for e in self.failed_backoff if e[0] == key]:
            del self.failed_backoff[entry]

    def _node_changed(self, _node: core_pb2.Node) -> None:
        for ds in self.daemonsets.list():
            self.enqueue(ds)

    def _node_updated(self, old: core_pb2.Node, new: core_pb2.Node) -> None:
        if (old.metadata.labels != new.metadata.labels or old.spec != new.spec
                or old.metadata.HasField("deletion_timestamp")
                != new.metadata.HasField("deletion_timestamp")):
            self._node_changed(new)

    # --- reconcile ------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        """Sync one DaemonSet: pods per node, rolling update, status."""
        namespace, name = split_key(key)
        ds = self.daemonsets.get(name, namespace)
        if ds is None or ds.metadata.HasField("deletion_timestamp"):
            return
        now = self.clock.now()
        pods = [p for p in self.pods.by_index(OWNER_INDEX, ds.metadata.uid)
                if p.metadata.namespace == namespace]
        nodes = [n for n in self.nodes.list() if not n.metadata.HasField("deletion_timestamp")]
        revision = template_hash(ds.spec.template, ds.status.collision_count)
        plan = plan_daemonset(ds, nodes, pods, revision, now)
        if self.expectations.satisfied(key, now):
            await self._act(key, ds, plan, revision)
        else:
            self.queue.add_after(key, self.expectations.ttl)
        status = daemonset_status(ds, plan)
        if status != ds.status:
            updated = apps_pb2.DaemonSet()
            updated.CopyFrom(ds)
            updated.status.CopyFrom(status)
            await self.client.daemonsets(namespace).update_status(updated)
        await self._sync_revisions(ds, revision, pods)
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after + 0.01)

    def _back_off(self, key: str, node: str, now: float) -> None:
        """A failed pod on ``node``: double the wait before the next one (1 s to 15 min;
        reset after 30 quiet minutes)."""
        delay, until = self.failed_backoff.get((key, node), (0.0, 0.0))
        if now - until > 2 * FAILED_BACKOFF_MAX:
            delay = 0.0
        delay = min(max(FAILED_BACKOFF_BASE, 2 * delay), FAILED_BACKOFF_MAX)
        self.failed_backoff[(key, node)] = (delay, now + delay)

    async def _sync_revisions(self, ds: apps_pb2.DaemonSet, hash_: str,
                              pods: list[core_pb2.Pod]) -> None:
        """Make sure the current template has its ControllerRevision; prune those beyond
        revisionHistoryLimit that no pod uses."""
        name, namespace = ds.metadata.name, ds.metadata.namespace
        api = self.client.controllerrevisions(namespace)
        revisions = self.revisions.by_index(OWNER_INDEX, ds.metadata.uid)
        current = f"{name}-{hash_}"
        if all(r.metadata.name != current for r in revisions):
            number = max((r.revision for r in revisions), default=0) + 1
            try:
                await api.create(new_revision(ds, "DaemonSet", ds.spec.template, current,
                                              hash_, number))
            except AlreadyExists:
                pass
        limit = (ds.spec.revision_history_limit
                 if ds.spec.HasField("revision_history_limit") else 10)
        used = {current} | {f"{name}-{p.metadata.labels.get(REVISION_LABEL, '')}"
                            for p in pods}
        for old in history_to_prune(revisions, used, limit):
            try:
                await api.delete(old)
            except NotFound:
                continue

    async def _act(self, key: str, ds: apps_pb2.DaemonSet, plan: DaemonSetPlan,
                   revision: str) -> None:
        namespace = ds.metadata.namespace
        pods = self.client.pods(namespace)
        now = self.clock.now()
        self.expectations.expect(key, now, deletes=plan.delete)
        failed = dict(plan.failed)
        for pod_name in plan.delete:
            if pod_name in failed:
                self.recorder.event(ds, "Warning", "FailedDaemonPod",
                                    f"Found failed daemon pod {namespace}/{pod_name} on node "
                                    f"{failed[pod_name]}, will try to kill it")
                self._back_off(key, failed[pod_name], now)
            try:
                await pods.delete(pod_name)
            except NotFound:
                self.expectations.observed_delete(key, pod_name)
                continue
            except Exception:
                self.expectations.lower(key, deletes=[pod_name])
                raise
            self.recorder.event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {pod_name}")
        for node_name in plan.create_on:
            until = self.failed_backoff.get((key, node_name), (0.0, 0.0))[1]
            if until > now:  # the last pod here failed: wait before the next one
                self.queue.add_after(key, until - now + 0.01)
                continue
            try:
                created = await pods.create(new_daemon_pod(ds, node_name, revision))
            except Exception as exc:
                self.recorder.event(ds, "Warning", "FailedCreate",
                                    f"Error creating: {getattr(exc, 'message', exc)}")
                raise
            self.expectations.expect(key, now, adds=[created.metadata.name])
            if self.pods.get(created.metadata.name, namespace) is not None:
                self.expectations.observed_add(key, created.metadata.name)
            self.recorder.event(ds, "Normal", "SuccessfulCreate",
                                f"Created pod: {created.metadata.name}")
