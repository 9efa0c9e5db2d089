"""The Deployment controller: rolls a Deployment's pods from ReplicaSet to ReplicaSet
(decisions in ``deployment_sync``).

Flow of one sync (Kubernetes' syncDeployment)::

    deployment + its ReplicaSets (owner index; orphans matching the selector adopted)
      ├─ being deleted ─────────────────────────────────▶ status only
      ├─ paused, or spec.replicas changed mid-rollout ──▶ proportional scaling
      ├─ Recreate ─▶ old ReplicaSets to 0, wait for their pods to go, new one up
      └─ RollingUpdate ─▶ new ReplicaSet up within maxSurge, else old ones down
                          within maxUnavailable; when complete, old empty ReplicaSets
                          beyond revisionHistoryLimit deleted
      then: the revision annotation, status and conditions; a requeue at the progress
      deadline

Contracts: never mutates cached objects; each sync takes one step and the ReplicaSets'
status changes (watched) trigger the next. The new ReplicaSet's name is derived from the
template hash, so a second controller term finds it instead of creating another.
"""

from __future__ import annotations

from navarch._errors import AlreadyExists, NotFound
from navarch._informer import Informer
from navarch.v1 import apps_pb2, core_pb2

from .deployment_sync import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    REVISION,
    REVISION_HISTORY,
    cleanup_victims,
    deadline_in,
    deployment_status,
    fenceposts,
    find_new_rs,
    is_scaling_event,
    max_revision,
    new_rs_for,
    new_rs_target,
    old_scale_downs,
    proportional_targets,
    replicas_of,
    revision_of,
    rs_annotations,
)
from .framework import Controller, ControllerContext, clone, owner_uids, split_key
from .workloads import (
    OWNER_INDEX,
    controller_ref,
    controller_ref_of,
    owner_key,
    selector_selects,
)

__all__ = ["DeploymentController"]

Written = dict[str, apps_pb2.ReplicaSet]  # ReplicaSets written in one sync, by name


def current(sets: list[apps_pb2.ReplicaSet], written: Written) -> list[apps_pb2.ReplicaSet]:
    """The sets as this sync wrote them (or as cached), plus those it created."""
    names = {rs.metadata.name for rs in sets}
    return [written.get(rs.metadata.name, rs) for rs in sets] + [
        rs for name, rs in written.items() if name not in names]


class DeploymentController(Controller):
    """Rolls Deployments out, back, and scales them."""

    name = "deployment"
    workers = 4

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.deployments: Informer[apps_pb2.Deployment]
        self.replicasets: Informer[apps_pb2.ReplicaSet]
        self.pods: Informer[core_pb2.Pod]

    async def setup(self) -> None:
        """Watch Deployments, ReplicaSets (indexed by owner) and pods (for Recreate)."""
        inf = self.ctx.informers
        self.deployments = inf.informer("deployments")
        self.replicasets = inf.informer("replicasets")
        self.pods = inf.informer("pods")
        self.replicasets.add_index(OWNER_INDEX, owner_uids)
        await self.deployments.add_handlers(self.enqueue, lambda _o, n: self.enqueue(n),
                                            None)
        await self.replicasets.add_handlers(self._rs_changed, lambda _o, n: self._rs_changed(n),
                                            self._rs_changed)
        await self.pods.add_handlers(None, None, self._pod_deleted)

    def _rs_changed(self, rs: apps_pb2.ReplicaSet) -> None:
        key = owner_key(rs, "Deployment")
        if key is not None:
            self.queue.add(key)
        elif controller_ref_of(rs) is None:
            for d in self.deployments.list(rs.metadata.namespace):
                if selector_selects(d.spec.selector, rs.metadata.labels):
                    self.enqueue(d)

    def _pod_deleted(self, pod: core_pb2.Pod) -> None:
        """Recreate waits for old pods to be gone: a deletion may unblock it."""
        key = owner_key(pod, "ReplicaSet")
        if key is None:
            return
        namespace, name = split_key(key)
        rs = self.replicasets.get(name, namespace)
        if rs is not None:
            self._rs_changed(rs)

    # --- reconcile ------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        """One step of one Deployment."""
        namespace, name = split_key(key)
        d = self.deployments.get(name, namespace)
        if d is None:
            return
        sets = await self._owned_sets(d)
        new = find_new_rs(d, sets)
        if d.metadata.HasField("deletion_timestamp"):
            await self._write_status(d, new, sets, False)
            return
        created = False
        written: Written = {}  # this sync's writes, newer than the cache
        if d.spec.paused or is_scaling_event(d, sets):
            await self._scale(d, sets, new, written)
        elif d.spec.strategy.type == "Recreate":
            new, created = await self._recreate(d, sets, new, written)
        else:
            new, created = await self._rolling(d, sets, new, written)
        sets = current(sets, written)
        new = find_new_rs(d, sets)
        if new is not None:
            await self._sync_revision(d, new, sets, written)
        await self._write_status(d, new, sets, created)
        wait = deadline_in(self.deployments.get(name, namespace) or d, self.clock.now())
        if wait is not None:
            self.queue.add_after(key, wait + 1.0)


    async def _owned_sets(self, d: apps_pb2.Deployment) -> list[apps_pb2.ReplicaSet]:
        """Owned ReplicaSets that the selector still selects, after adopting matching
        orphans."""
        ns, uid = d.metadata.namespace, d.metadata.uid
        owned = [rs for rs in self.replicasets.by_index(OWNER_INDEX, uid)
                 if rs.metadata.namespace == ns]
        result = []
        client = self.client.replicasets(ns)
        for rs in owned:
            if selector_selects(d.spec.selector, rs.metadata.labels):
                result.append(rs)
        if d.metadata.HasField("deletion_timestamp"):
            return result
        for rs in self.replicasets.list(ns):
            orphan = controller_ref_of(rs) is None
            if orphan and selector_selects(d.spec.selector, rs.metadata.labels):
                adopted = clone(rs)
                adopted.metadata.owner_references.append(
                    controller_ref(d, "Deployment", "apps/v1"))
                try:
                    result.append(await client.update(adopted))
                except (NotFound, AlreadyExists):
                    continue
        return result

    async def _set_replicas(self, d: apps_pb2.Deployment, rs: apps_pb2.ReplicaSet,
                            replicas: int, written: Written) -> apps_pb2.ReplicaSet:
        """Scale ``rs`` (and stamp desired/max-replicas), with an event as Kubernetes'."""
        changed = clone(rs)
        before = rs.spec.replicas
        changed.spec.replicas = replicas
        changed.metadata.annotations[DESIRED_REPLICAS] = str(replicas_of(d))
        changed.metadata.annotations[MAX_REPLICAS] = str(replicas_of(d) + fenceposts(d).surge)
        if changed == rs:
            return rs
        updated: apps_pb2.ReplicaSet = await self.client.replicasets(
            rs.metadata.namespace).update(changed)
        written[updated.metadata.name] = updated
        if before != replicas:
            direction = "up" if replicas > before else "down"
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled {direction} replica set {rs.metadata.name} "
                                f"from {before} to {replicas}")
        return updated

    async def _ensure_new(self, d: apps_pb2.Deployment, sets: list[apps_pb2.ReplicaSet],
                          new: apps_pb2.ReplicaSet | None, replicas: int, written: Written
                          ) -> tuple[apps_pb2.ReplicaSet, bool]:
        """The new ReplicaSet, created (with ``replicas``) when missing."""
        if new is not None:
            return new, False
        rs = new_rs_for(d, max_revision(sets) + 1, replicas)
        client = self.client.replicasets(d.metadata.namespace)
        try:
            created: apps_pb2.ReplicaSet = await client.create(rs)
        except AlreadyExists:
            existing: apps_pb2.ReplicaSet = await client.get(rs.metadata.name)
            ref = controller_ref_of(existing)
            if ref is not None and ref.uid == d.metadata.uid and existing.spec.template == \
                    rs.spec.template:
                written[existing.metadata.name] = existing
                return existing, False
            # a hash collision: bump collisionCount, the next sync uses another name
            bumped = clone(d)
            bumped.status.collision_count = d.status.collision_count + 1
            await self.client.deployments(d.metadata.namespace).update_status(bumped)
            raise
        written[created.metadata.name] = created
        self.recorder.event(d, "Normal", "ScalingReplicaSet",
                            f"Scaled up replica set {created.metadata.name} from 0 to "
                            f"{replicas}")
        return created, True

    async def _rolling(self, d: apps_pb2.Deployment, sets: list[apps_pb2.ReplicaSet],
                       new: apps_pb2.ReplicaSet | None, written: Written
                       ) -> tuple[apps_pb2.ReplicaSet | None, bool]:
        """One rolling-update step."""
        created = False
        if new is None:
            probe = new_rs_for(d, 0, 0)
            first = new_rs_target(d, probe, sets)
            new, created = await self._ensure_new(d, sets, None, first, written)
            return new, created
        target = new_rs_target(d, new, sets)
        if target != new.spec.replicas:
            await self._set_replicas(d, new, target, written)
            return new, False
        old = [rs for rs in sets if rs.metadata.name != new.metadata.name]
        downs = old_scale_downs(d, new, old)
        for rs in old:
            if rs.metadata.name in downs:
                await self._set_replicas(d, rs, downs[rs.metadata.name], written)
        if not downs:
            if new.metadata.annotations.get(DESIRED_REPLICAS) != str(replicas_of(d)):
                await self._set_replicas(d, new, new.spec.replicas, written)
            if _complete(d, new, current(sets, written)):
                await self._cleanup(d, old)
        return new, created

    async def _recreate(self, d: apps_pb2.Deployment, sets: list[apps_pb2.ReplicaSet],
                        new: apps_pb2.ReplicaSet | None, written: Written
                        ) -> tuple[apps_pb2.ReplicaSet | None, bool]:
        """Recreate: every old pod gone before the new ReplicaSet scales up."""
        old = [rs for rs in sets if new is None or rs.metadata.name != new.metadata.name]
        scaled = False
        for rs in old:
            if rs.spec.replicas != 0:
                await self._set_replicas(d, rs, 0, written)
                scaled = True
        if scaled:
            return new, False
        old_uids = {rs.metadata.uid for rs in old}
        if any(ref.uid in old_uids for p in self.pods.list(d.metadata.namespace)
               for ref in p.metadata.owner_references if ref.controller):
            return new, False
        new, created = await self._ensure_new(d, sets, new, replicas_of(d), written)
        if new.spec.replicas != replicas_of(d):
            await self._set_replicas(d, new, replicas_of(d), written)
        if _complete(d, new, current(sets, written)):
            await self._cleanup(d, old)
        return new, created

    async def _scale(self, d: apps_pb2.Deployment, sets: list[apps_pb2.ReplicaSet],
                     new: apps_pb2.ReplicaSet | None, written: Written) -> None:
        """Paused, or spec.replicas changed: resize the active ReplicaSets in proportion."""
        targets = proportional_targets(d, sets, new)
        for rs in sets:
            if rs.metadata.name in targets:
                await self._set_replicas(d, rs, targets[rs.metadata.name], written)
            elif rs.spec.replicas > 0 and rs.metadata.annotations.get(
                    DESIRED_REPLICAS) != str(replicas_of(d)):
                await self._set_replicas(d, rs, rs.spec.replicas, written)

    async def _cleanup(self, d: apps_pb2.Deployment, old: list[apps_pb2.ReplicaSet]) -> None:
        """Delete old empty ReplicaSets beyond revisionHistoryLimit."""
        client = self.client.replicasets(d.metadata.namespace)
        for name in cleanup_victims(d, old):
            try:
                await client.delete(name)
            except NotFound:
                pass

    async def _sync_revision(self, d: apps_pb2.Deployment, new: apps_pb2.ReplicaSet,
                             sets: list[apps_pb2.ReplicaSet], written: Written) -> None:
        """The new ReplicaSet carries the highest revision (a reused one, on rollback, moves
        to max+1 and remembers its old number in revision-history); the Deployment's
        revision annotation follows it."""
        old = [rs for rs in sets if rs.metadata.name != new.metadata.name]
        top = max_revision(old)
        revision = revision_of(new)
        if revision <= top:
            changed = clone(new)
            history = [h for h in changed.metadata.annotations.get(
                REVISION_HISTORY, "").split(",") if h]
            if revision:
                history.append(str(revision))
            changed.metadata.annotations.update(rs_annotations(d, top + 1))
            changed.metadata.annotations[DESIRED_REPLICAS] = new.metadata.annotations.get(
                DESIRED_REPLICAS, str(replicas_of(d)))
            if history:
                changed.metadata.annotations[REVISION_HISTORY] = ",".join(history)
            new = await self.client.replicasets(d.metadata.namespace).update(changed)
            written[new.metadata.name] = new
            revision = top + 1
        if d.metadata.annotations.get(REVISION) != str(revision):
            latest = self.deployments.get(d.metadata.name, d.metadata.namespace) or d
            changed_d = clone(latest)
            changed_d.metadata.annotations[REVISION] = str(revision)
            await self.client.deployments(d.metadata.namespace).update(changed_d)

    async def _write_status(self, d: apps_pb2.Deployment, new: apps_pb2.ReplicaSet | None,
                            sets: list[apps_pb2.ReplicaSet], created: bool) -> None:
        status = deployment_status(d, new, sets, self.clock.now(), created_new=created)
        if status == d.status:
            return
        latest = self.deployments.get(d.metadata.name, d.metadata.namespace) or d
        changed = clone(latest)
        changed.status.CopyFrom(status)
        changed.metadata.resource_version = ""  # status is ours: last writer wins
        try:
            await self.client.deployments(d.metadata.namespace).update_status(changed)
        except NotFound:
            pass


def _complete(d: apps_pb2.Deployment, new: apps_pb2.ReplicaSet,
              sets: list[apps_pb2.ReplicaSet]) -> bool:
    """Every replica updated and available, no old one left."""
    want = replicas_of(d)
    return (new.spec.replicas == want and new.status.available_replicas == want
            and all(rs.spec.replicas == 0 for rs in sets
                    if rs.metadata.name != new.metadata.name))
