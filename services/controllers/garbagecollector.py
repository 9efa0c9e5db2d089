"""The garbage collector: deletes objects whose owners are gone, and carries out the
foreground and orphan propagation policies.

Flow::

    informers of every kind that can have owners ──▶ Graph (uid -> node, owner uid ->
    dependents) ──▶ queue of uids
      reconcile(uid):
        being deleted with "orphan"      ──▶ strip its ownerReferences from dependents,
                                             then remove the finalizer
        being deleted with "foreground…" ──▶ delete its dependents; once none that
                                             blocks owner deletion is left, remove it
        has ownerReferences              ──▶ owner_verdict (pure): every owner gone →
                                             delete (background); some gone → drop
                                             those references; owner waiting for
                                             dependents → delete (foreground)

Contracts:
- An owner is gone when no object of its kind, name and uid exists (a uid mismatch is
  gone). Absence from the graph is confirmed with a live GET before deleting anything.
- Deletes carry a uid precondition: a recreated object of the same name is never hit.
- The API server adds the "orphan"/"foregroundDeletion" finalizers on delete with
  propagationPolicy Orphan/Foreground; only the garbage collector removes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from navarch._errors import Conflict, NotFound
from navarch._kinds import UnknownKind, kind_for

from .framework import Controller, clone

__all__ = ["FOREGROUND", "ORPHAN", "WATCHED", "GarbageCollector", "Graph", "Node",
           "OwnerAction", "OwnerVerdict", "owner_action", "owner_verdict"]

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"

# The kinds whose objects commonly have owners (and own others): node leases are owned by
# their Node, PodMetrics by their Pod.
WATCHED = ("nodes", "pods", "replicasets", "deployments", "statefulsets", "daemonsets",
           "jobs", "cronjobs", "controllerrevisions", "persistentvolumeclaims", "configmaps",
           "secrets", "services", "horizontalpodautoscalers", "leases", "podmetrics")


@dataclass(frozen=True)
class Ref:
    """An ownerReference, as the graph keeps it."""

    uid: str
    api_version: str
    kind: str
    name: str
    block: bool


@dataclass(frozen=True)
class Node:
    """One object in the dependency graph."""

    resource: str
    namespace: str
    name: str
    uid: str
    owners: tuple[Ref, ...]
    deleting: bool
    finalizers: tuple[str, ...]


def node_of(resource: str, obj: Any) -> Node:
    """The graph node of a stored object."""
    meta = obj.metadata
    owners = tuple(Ref(r.uid, r.api_version, r.kind, r.name, bool(r.block_owner_deletion))
                   for r in meta.owner_references)
    return Node(resource, meta.namespace, meta.name, meta.uid, owners,
                meta.HasField("deletion_timestamp"), tuple(meta.finalizers))


class Graph:
    """uid -> Node and owner uid -> dependent uids. Fed by informer handlers only."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self._dependents: dict[str, set[str]] = {}

    def upsert(self, node: Node) -> Node | None:
        """Put ``node`` in; returns the node it replaced."""
        before = self.remove(node.uid)
        self.nodes[node.uid] = node
        for ref in node.owners:
            self._dependents.setdefault(ref.uid, set()).add(node.uid)
        return before

    def remove(self, uid: str) -> Node | None:
        """Take the node out; returns it."""
        node = self.nodes.pop(uid, None)
        if node is not None:
            for ref in node.owners:
                deps = self._dependents.get(ref.uid)
                if deps is not None:
                    deps.discard(uid)
                    if not deps:
                        del self._dependents[ref.uid]
        return node

    def dependents(self, uid: str) -> list[Node]:
        """The nodes that name ``uid`` as an owner."""
        return [self.nodes[d] for d in sorted(self._dependents.get(uid, ()))
                if d in self.nodes]


@dataclass(frozen=True)
class OwnerVerdict:
    """What the garbage collector does with a dependent, given its owners' states."""

    action: str  # "keep", "delete" or "drop-refs"
    policy: str = ""  # the propagation policy of a delete
    drop: tuple[str, ...] = ()  # owner uids whose references to remove


def owner_verdict(owners: Iterable[Ref], states: Mapping[str, str],
                  has_dependents: bool) -> OwnerVerdict:
    """Kubernetes' attemptToDeleteItem: ``states`` maps each owner uid to "solid"
    (exists), "absent" (gone, uid mismatch included) or "waiting" (being deleted in the
    foreground). Unknown owners count as solid: nothing is deleted on a guess."""
    solid: list[str] = []
    dangling: list[str] = []
    waiting: list[str] = []
    for ref in owners:
        state = states.get(ref.uid, "solid")
        (dangling if state == "absent" else waiting if state == "waiting" else solid
         ).append(ref.uid)
    if not dangling and not waiting:
        return OwnerVerdict("keep")
    if solid:
        if dangling:
            return OwnerVerdict("drop-refs", drop=tuple(dangling))
        return OwnerVerdict("keep")
    if waiting and has_dependents:
        return OwnerVerdict("delete", "Foreground")
    return OwnerVerdict("delete", "Background")


@dataclass(frozen=True)
class OwnerAction:
    """What to do for an owner being deleted with a propagation finalizer."""

    orphan: tuple[str, ...] = ()  # dependent uids to strip the owner reference from
    delete: tuple[str, ...] = ()  # dependent uids to delete
    remove_finalizer: str = ""  # the finalizer to remove now ("" to wait)


def owner_action(owner: Node, dependents: Iterable[Node]) -> OwnerAction:
    """The orphan and foreground steps for ``owner`` (being deleted)."""
    deps = list(dependents)
    if ORPHAN in owner.finalizers:
        return OwnerAction(orphan=tuple(d.uid for d in deps), remove_finalizer=ORPHAN)
    if FOREGROUND in owner.finalizers:
        delete = tuple(d.uid for d in deps if not d.deleting)
        blocking = [d for d in deps if any(r.uid == owner.uid and r.block for r in d.owners)]
        return OwnerAction(delete=delete, remove_finalizer="" if blocking else FOREGROUND)
    return OwnerAction()


class GarbageCollector(Controller):
    """Deletes orphaned dependents; runs foreground and orphan propagation."""

    name = "garbagecollector"
    workers = 4

    async def setup(self) -> None:
        self.graph = Graph()
        self.informers = {r: self.ctx.informers.informer(r) for r in WATCHED}
        for resource, informer in self.informers.items():
            await informer.add_handlers(self._handler(resource),
                                        self._updater(resource), self._remover(resource))

    # --- graph upkeep (informer task: quick, no I/O) ----------------------------------------

    def _handler(self, resource: str) -> Any:
        def on_add(obj: Any) -> None:
            self._observe(node_of(resource, obj))
        return on_add

    def _updater(self, resource: str) -> Any:
        def on_update(_old: Any, new: Any) -> None:
            self._observe(node_of(resource, new))
        return on_update

    def _remover(self, resource: str) -> Any:
        def on_delete(obj: Any) -> None:
            node = self.graph.remove(obj.metadata.uid) or node_of(resource, obj)
            for dep in self.graph.dependents(node.uid):
                self.queue.add(dep.uid)
            self._wake_owners(node)
        return on_delete

    def _observe(self, node: Node) -> None:
        before = self.graph.upsert(node)
        if node.owners or (node.deleting and (ORPHAN in node.finalizers
                                              or FOREGROUND in node.finalizers)):
            self.queue.add(node.uid)
        if before is not None:
            self._wake_owners(before)
        self._wake_owners(node)

    def _wake_owners(self, node: Node) -> None:
        for ref in node.owners:
            owner = self.graph.nodes.get(ref.uid)
            if owner is not None and owner.deleting:
                self.queue.add(owner.uid)

    # --- reconcile --------------------------------------------------------------------------

    def _cached(self, node: Node) -> Any:
        obj = self.informers[node.resource].get(node.name, node.namespace)
        return obj if obj is not None and obj.metadata.uid == node.uid else None

    async def reconcile(self, key: str) -> None:
        node = self.graph.nodes.get(key)
        if node is None:
            return
        if node.deleting:
            await self._propagate(node)
            return
        if not node.owners:
            return
        states = {ref.uid: await self._owner_state(node, ref) for ref in node.owners}
        verdict = owner_verdict(node.owners, states, bool(self.graph.dependents(node.uid)))
        api = self.client.resource(node.resource, node.namespace)
        try:
            if verdict.action == "delete":
                await api.delete(node.name, uid=node.uid, propagation_policy=verdict.policy)
            elif verdict.action == "drop-refs":
                await self._drop_refs(node, set(verdict.drop))
        except NotFound:
            return

    async def _owner_state(self, node: Node, ref: Ref) -> str:
        owner = self.graph.nodes.get(ref.uid)
        if owner is not None:
            return "waiting" if owner.deleting and FOREGROUND in owner.finalizers else "solid"
        try:
            kind = kind_for(ref.api_version, ref.kind)
        except UnknownKind:
            return "solid"
        namespace = node.namespace if kind.namespaced else ""
        try:
            found = await self.client.resource(kind.resource, namespace).get(ref.name)
        except NotFound:
            return "absent"
        if found.metadata.uid != ref.uid:
            return "absent"
        deleting = found.metadata.HasField("deletion_timestamp")
        return "waiting" if deleting and FOREGROUND in found.metadata.finalizers else "solid"

    async def _drop_refs(self, node: Node, uids: set[str]) -> None:
        obj = self._cached(node)
        if obj is None:
            obj = await self.client.resource(node.resource, node.namespace).get(node.name)
            if obj.metadata.uid != node.uid:
                return
        new = clone(obj)
        kept = [r for r in new.metadata.owner_references if r.uid not in uids]
        if len(kept) == len(new.metadata.owner_references):
            return
        del new.metadata.owner_references[:]
        new.metadata.owner_references.extend(kept)
        await self.client.resource(node.resource, node.namespace).update(new)

    async def _propagate(self, owner: Node) -> None:
        action = owner_action(owner, self.graph.dependents(owner.uid))
        for uid in action.orphan:
            dep = self.graph.nodes.get(uid)
            if dep is not None:
                try:
                    await self._drop_refs(dep, {owner.uid})
                except NotFound:
                    pass
        for uid in action.delete:
            dep = self.graph.nodes.get(uid)
            if dep is None:
                continue
            policy = "Foreground" if self.graph.dependents(dep.uid) else "Background"
            try:
                await self.client.resource(dep.resource, dep.namespace).delete(
                    dep.name, uid=dep.uid, propagation_policy=policy)
            except (NotFound, Conflict):
                pass
        if action.remove_finalizer:
            await self._remove_finalizer(owner, action.remove_finalizer)

    async def _remove_finalizer(self, node: Node, finalizer: str) -> None:
        obj = self._cached(node)
        if obj is None or finalizer not in obj.metadata.finalizers:
            return
        new = clone(obj)
        kept = [f for f in new.metadata.finalizers if f != finalizer]
        del new.metadata.finalizers[:]
        new.metadata.finalizers.extend(kept)
        try:
            await self.client.resource(node.resource, node.namespace).update(new)
        except NotFound:
            pass
