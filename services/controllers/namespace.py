"""The Namespace controller: empties a namespace being deleted, then finalizes it.

Flow::

    namespaces informer ──▶ key (name)
      reconcile: Terminating with the "kubernetes" finalizer?
        list every namespaced kind in it ──cleanup_plan (pure)──▶ delete what is not yet
        being deleted; conditions (NamespaceContentRemaining, ...) to status
        anything left (pods in their grace period, finalizers): requeue
        nothing left: update spec.finalizers without "kubernetes" ──▶ the API server
        removes the namespace

Contracts:
- The API server marks the namespace Terminating and refuses new content in it, so the
  namespace only shrinks; deletion is idempotent and safe to repeat.
- Objects are deleted with background propagation (the garbage collector removes what
  they own, which is in the same namespace anyway).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from navarch._errors import Conflict, NotFound
from navarch._kinds import KINDS, Kind
from navarch.v1 import core_pb2

from .framework import Controller, clone

__all__ = ["FINALIZER", "CleanupPlan", "NamespaceController", "cleanup_plan",
           "namespaced_kinds"]

FINALIZER = "kubernetes"
RECHECK_SECONDS = 2.0  # how soon to look again while content remains
DELETE_CONCURRENCY = 16  # deletions in flight per namespace


def namespaced_kinds() -> list[Kind]:
    """Every namespaced storage kind (the contents a namespace can hold)."""
    return [k for k in KINDS if k.namespaced and k.storage]


@dataclass(frozen=True)
class Condition:
    """One namespace condition the controller reports."""

    type: str
    status: str
    reason: str
    message: str


@dataclass(frozen=True)
class CleanupPlan:
    """What to do with a terminating namespace's contents."""

    delete: tuple[tuple[str, str, str], ...] = ()  # (resource, name, uid)
    remaining: Mapping[str, int] = field(default_factory=dict)  # resource -> count
    finalizers: Mapping[str, int] = field(default_factory=dict)  # finalizer -> count
    conditions: tuple[Condition, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing is left: the namespace may be finalized."""
        return not self.remaining


def cleanup_plan(contents: Mapping[str, Sequence[Any]],
                 failures: Sequence[str] = ()) -> CleanupPlan:
    """The plan for ``contents`` (resource -> objects still stored in the namespace) and
    the deletions that ``failures`` reports failed in the previous round."""
    delete: list[tuple[str, str, str]] = []
    remaining: dict[str, int] = {}
    finalizers: dict[str, int] = {}
    for resource, objs in sorted(contents.items()):
        for obj in objs:
            meta = obj.metadata
            remaining[resource] = remaining.get(resource, 0) + 1
            for f in meta.finalizers:
                finalizers[f] = finalizers.get(f, 0) + 1
            if not meta.HasField("deletion_timestamp"):
                delete.append((resource, meta.name, meta.uid))
    return CleanupPlan(tuple(delete), remaining, finalizers,
                       _conditions(remaining, finalizers, failures))


def _conditions(remaining: Mapping[str, int], finalizers: Mapping[str, int],
                failures: Iterable[str]) -> tuple[Condition, ...]:
    """Kubernetes' deletion conditions, with its reasons and messages."""
    failed = sorted(failures)
    content = (Condition("NamespaceDeletionContentFailure", "True", "ContentDeletionFailed",
                         "Failed to delete all resource types, "
                         f"{len(failed)} remaining: " + ", ".join(failed))
               if failed else Condition("NamespaceDeletionContentFailure", "False",
                                        "ContentDeleted", "All content successfully deleted, "
                                        "may be waiting on finalization"))
    left = (Condition("NamespaceContentRemaining", "True", "SomeResourcesRemain",
                      "Some resources are remaining: " + ", ".join(
                          f"{r} has {n} resource instances" for r, n in remaining.items()))
            if remaining else Condition("NamespaceContentRemaining", "False",
                                        "ContentRemoved", "All content successfully removed"))
    fin = (Condition("NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain",
                     "Some content in the namespace has finalizers remaining: " + ", ".join(
                         f"{f} in {n} resource instances" for f, n in finalizers.items()))
           if finalizers else Condition("NamespaceFinalizersRemaining", "False",
                                        "ContentHasNoFinalizers",
                                        "All content-preserving finalizers finished"))
    return (content, left, fin)


def with_conditions(ns: core_pb2.Namespace, conditions: Sequence[Condition],
                    now: float) -> core_pb2.Namespace | None:
    """A copy of ``ns`` with ``conditions`` set (transition time moved on change), or
    None when its status already says so."""
    new = clone(ns)
    changed = False
    for cond in conditions:
        found = next((c for c in new.status.conditions if c.type == cond.type), None)
        if found is None:
            found = new.status.conditions.add(type=cond.type)
        if (found.status, found.reason, found.message) == (cond.status, cond.reason,
                                                           cond.message):
            continue
        if found.status != cond.status or not found.HasField("last_transition_time"):
            found.last_transition_time.FromSeconds(int(now))
        found.status, found.reason, found.message = cond.status, cond.reason, cond.message
        changed = True
    return new if changed else None


class NamespaceController(Controller):
    """Deletes the contents of terminating namespaces and finalizes them."""

    name = "namespace"

    async def setup(self) -> None:
        self.namespaces = self.ctx.informers.informer("namespaces")
        await self.namespaces.add_handlers(self.enqueue, lambda _o, n: self.enqueue(n))

    async def reconcile(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or not ns.metadata.HasField("deletion_timestamp") \
                or FINALIZER not in ns.spec.finalizers:
            return
        contents: dict[str, list[Any]] = {}
        for kind in namespaced_kinds():
            listed = await self.client.resource(kind.resource, key).list()
            if listed.items:
                contents[kind.resource] = list(listed.items)
        plan = cleanup_plan(contents)
        failures: list[str] = []
        limit = asyncio.Semaphore(DELETE_CONCURRENCY)

        async def delete(resource: str, name: str, uid: str) -> None:
            async with limit:
                try:
                    await self.client.resource(resource, key).delete(
                        name, uid=uid, propagation_policy="Background")
                except (NotFound, Conflict):
                    pass  # gone already, or replaced: the next round sees it
                except Exception:  # reported in the condition, retried next round
                    failures.append(resource)

        await asyncio.gather(*(delete(*item) for item in plan.delete))
        if failures:
            plan = cleanup_plan(contents, sorted(set(failures)))
        status = with_conditions(ns, plan.conditions, self.clock.now())
        if status is not None:
            ns = await self.client.namespaces().update_status(status)
        if not plan.empty:
            self.queue.add_after(key, RECHECK_SECONDS)
            return
        final = clone(ns)
        kept = [f for f in final.spec.finalizers if f != FINALIZER]
        del final.spec.finalizers[:]
        final.spec.finalizers.extend(kept)
        try:
            await self.client.namespaces().update(final)
        except NotFound:
            return
