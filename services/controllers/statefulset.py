"""The StatefulSet controller: ordinal pods with stable names and storage (decisions in
``statefulset_sync``).

Flow::

    statefulsets, pods, controllerrevisions, persistentvolumeclaims informers
        reconcile(key): the set's revisions (ControllerRevision ``<set>-<hash>`` holding
        spec.template, created when the template changes) + pods + claims
          ──plan_statefulset──▶ create claims, then pods (from their revision's
          template), delete pods, write status, prune old revisions

Contracts: never mutates cached objects. Pod and claim names are fixed by the ordinal,
so a stale cache can at worst meet AlreadyExists (taken as done) or NotFound on delete.
Claims are never deleted by this controller.
"""

from __future__ import annotations

from navarch._errors import AlreadyExists, NotFound
from navarch._informer import Informer
from navarch.v1 import apps_pb2, core_pb2

from .framework import Controller, owner_uids, split_key
from .revisions import history_to_prune, new_revision, revision_template
from .statefulset_sync import (
    StatefulSetPlan,
    new_claim,
    new_stateful_pod,
    plan_statefulset,
)
from .workloads import OWNER_INDEX, REVISION_LABEL, owner_key, template_hash

__all__ = ["StatefulSetController", "statefulset_status"]


def statefulset_status(sts: apps_pb2.StatefulSet,
                       plan: StatefulSetPlan) -> apps_pb2.StatefulSetStatus:
    """The status ``plan`` describes for ``sts`` (conditions and collisionCount kept)."""
    status = apps_pb2.StatefulSetStatus()
    status.CopyFrom(sts.status)
    status.observed_generation = sts.metadata.generation
    status.replicas = plan.replicas
    status.ready_replicas = plan.ready
    status.available_replicas = plan.available
    status.current_replicas = plan.current
    status.updated_replicas = plan.updated
    status.current_revision = plan.current_revision
    status.update_revision = plan.update_revision
    return status


class StatefulSetController(Controller):
    """Runs StatefulSets: ordered, stable pods with their own claims."""

    name = "statefulset"

    async def setup(self) -> None:
        """Watch StatefulSets, pods, ControllerRevisions and claims."""
        inf = self.ctx.informers
        self.sets: Informer[apps_pb2.StatefulSet] = inf.informer("statefulsets")
        self.pods: Informer[core_pb2.Pod] = inf.informer("pods")
        self.revisions: Informer[apps_pb2.ControllerRevision] = inf.informer(
            "controllerrevisions")
        self.claims: Informer[core_pb2.PersistentVolumeClaim] = inf.informer(
            "persistentvolumeclaims")
        self.pods.add_index(OWNER_INDEX, owner_uids)
        self.revisions.add_index(OWNER_INDEX, owner_uids)
        await self.sets.add_handlers(self.enqueue, lambda _o, new: self.enqueue(new))
        await self.pods.add_handlers(self._pod_changed, self._pod_updated, self._pod_changed)

    def _pod_changed(self, pod: core_pb2.Pod) -> None:
        key = owner_key(pod, "StatefulSet")
        if key is not None:
            self.queue.add(key)

    def _pod_updated(self, _old: core_pb2.Pod, new: core_pb2.Pod) -> None:
        self._pod_changed(new)

    async def reconcile(self, key: str) -> None:
        """Sync one StatefulSet: revisions, claims, pods, status."""
        namespace, name = split_key(key)
        sts = self.sets.get(name, namespace)
        if sts is None or sts.metadata.HasField("deletion_timestamp"):
            return
        now = self.clock.now()
        revisions = {r.metadata.name: r
                     for r in self.revisions.by_index(OWNER_INDEX, sts.metadata.uid)}
        hash_ = template_hash(sts.spec.template, sts.status.collision_count)
        update_name = f"{name}-{hash_}"
        if update_name not in revisions:
            number = max((r.revision for r in revisions.values()), default=0) + 1
            revisions[update_name] = await self._create_revision(
                new_revision(sts, "StatefulSet", sts.spec.template, update_name, hash_, number))
        current_name = sts.status.current_revision or update_name
        pods = [p for p in self.pods.by_index(OWNER_INDEX, sts.metadata.uid)
                if p.metadata.namespace == namespace]
        claims = {c.metadata.name for c in self.claims.list(namespace)}
        plan = plan_statefulset(sts, pods, claims, update_name, current_name, now)
        await self._act(sts, plan, revisions)
        status = statefulset_status(sts, plan)
        if status != sts.status:
            updated = apps_pb2.StatefulSet()
            updated.CopyFrom(sts)
            updated.status.CopyFrom(status)
            await self.client.statefulsets(namespace).update_status(updated)
        await self._prune(sts, revisions, pods, {current_name, update_name,
                                                 status.current_revision})
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after + 0.01)

    async def _create_revision(self, rev: apps_pb2.ControllerRevision
                               ) -> apps_pb2.ControllerRevision:
        api = self.client.controllerrevisions(rev.metadata.namespace)
        try:
            created: apps_pb2.ControllerRevision = await api.create(rev)
        except AlreadyExists:
            existing: apps_pb2.ControllerRevision = await api.get(rev.metadata.name)
            return existing
        return created

    async def _act(self, sts: apps_pb2.StatefulSet, plan: StatefulSetPlan,
                   revisions: dict[str, apps_pb2.ControllerRevision]) -> None:
        namespace = sts.metadata.namespace
        templates = {t.metadata.name: t for t in sts.spec.volume_claim_templates}
        for cname in plan.claims:
            tpl_name, ordinal = self._claim_origin(sts, cname)
            try:
                await self.client.persistentvolumeclaims(namespace).create(
                    new_claim(sts, templates[tpl_name], ordinal))
            except AlreadyExists:
                continue
            except Exception as exc:
                self.recorder.event(sts, "Warning", "FailedCreate",
                                    f"create Claim {cname} for Pod {sts.metadata.name}-"
                                    f"{ordinal} in StatefulSet {sts.metadata.name} failed "
                                    "error: "
                                    f"{getattr(exc, 'message', exc)}")
                raise
            self.recorder.event(sts, "Normal", "SuccessfulCreate",
                                f"create Claim {cname} Pod {sts.metadata.name}-{ordinal} in "
                                f"StatefulSet {sts.metadata.name} success")
        pods = self.client.pods(namespace)
        for pod_name in plan.delete:
            try:
                await pods.delete(pod_name)
            except NotFound:
                continue
            self.recorder.event(sts, "Normal", "SuccessfulDelete",
                                f"delete Pod {pod_name} in StatefulSet {sts.metadata.name} "
                                "successful")
        for new in plan.create:
            rev = revisions.get(new.revision)
            template = (revision_template(rev) if rev is not None else None) or sts.spec.template
            pod = new_stateful_pod(sts, template, new.ordinal, new.revision)
            try:
                await pods.create(pod)
            except AlreadyExists:
                continue
            except Exception as exc:
                self.recorder.event(sts, "Warning", "FailedCreate",
                                    f"create Pod {pod.metadata.name} in StatefulSet "
                                    f"{sts.metadata.name} failed error: "
                                    f"{getattr(exc, 'message', exc)}")
                raise
            self.recorder.event(sts, "Normal", "SuccessfulCreate",
                                f"create Pod {pod.metadata.name} in StatefulSet "
                                f"{sts.metadata.name} successful")

    @staticmethod
    def _claim_origin(sts: apps_pb2.StatefulSet, cname: str) -> tuple[str, int]:
        """(template name, ordinal) of a claim name ``<template>-<set>-<ordinal>``."""
        for tpl in sts.spec.volume_claim_templates:
            prefix = f"{tpl.metadata.name}-{sts.metadata.name}-"
            if cname.startswith(prefix) and cname[len(prefix):].isdigit():
                return tpl.metadata.name, int(cname[len(prefix):])
        raise ValueError(f"claim {cname!r} matches no volumeClaimTemplate")

    async def _prune(self, sts: apps_pb2.StatefulSet,
                     revisions: dict[str, apps_pb2.ControllerRevision],
                     pods: list[core_pb2.Pod], live: set[str]) -> None:
        """Delete the oldest revisions beyond revisionHistoryLimit that no pod uses."""
        limit = (sts.spec.revision_history_limit
                 if sts.spec.HasField("revision_history_limit") else 10)
        used = live | {p.metadata.labels.get(REVISION_LABEL, "") for p in pods}
        for name in history_to_prune(revisions.values(), used, limit):
            try:
                await self.client.controllerrevisions(sts.metadata.namespace).delete(name)
            except NotFound:
                continue
