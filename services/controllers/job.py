"""The Job controller: runs a Job's pods to completion (decisions in ``job_sync``).

Flow::

    jobs, pods informers ──▶ key of the Job (a pod's controller ownerReference)
        reconcile(key): Job + its pods (owner index) ──plan_job──▶ JobPlan
            delete pods, create pods (expectations recorded), write status, events,
            requeue at the backoff end / deadline; ttlSecondsAfterFinished deletes the Job

Contracts: never mutates cached objects; creates or deletes pods only once the cache has
shown the previous round's writes (``Expectations``), so that a stale cache never makes a
pod twice. Jobs with ``spec.managedBy`` naming another controller are left alone.
"""

from __future__ import annotations

from navarch._errors import AlreadyExists, NotFound
from navarch._informer import Informer
from navarch.v1 import batch_pb2, core_pb2

from .framework import Controller, ControllerContext, owner_uids, split_key
from .job_sync import (
    JobPlan,
    finished_at,
    is_finished,
    job_status,
    new_job_pod,
    plan_job,
)
from .workloads import OWNER_INDEX, Expectations, OwnedPodEvents

__all__ = ["JobController"]

MANAGER = "kubernetes.io/job-controller"


class JobController(Controller):
    """Keeps each Job's pods running until it completes or fails."""

    name = "job"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.expectations = Expectations()
        self.jobs: Informer[batch_pb2.Job]
        self.pods: Informer[core_pb2.Pod]

    async def setup(self) -> None:
        """Watch Jobs and pods; index pods by their controller's uid."""
        self.jobs = self.ctx.informers.informer("jobs")
        self.pods = self.ctx.informers.informer("pods")
        self.pods.add_index(OWNER_INDEX, owner_uids)
        await self.jobs.add_handlers(self.enqueue, lambda _old, new: self.enqueue(new),
                                     self._job_deleted)
        owned = OwnedPodEvents("Job", self.queue, self.expectations)
        await self.pods.add_handlers(owned.added, owned.updated, owned.deleted)

    # --- handlers -------------------------------------------------------------------------

    def _job_deleted(self, job: batch_pb2.Job) -> None:
        self.expectations.forget(f"{job.metadata.namespace}/{job.metadata.name}")

    # --- reconcile ------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        """Sync one Job: pods, status, events, TTL."""
        namespace, name = split_key(key)
        job = self.jobs.get(name, namespace)
        if job is None or job.metadata.HasField("deletion_timestamp"):
            return
        if job.spec.HasField("managed_by") and job.spec.managed_by not in ("", MANAGER):
            return
        now = self.clock.now()
        if is_finished(job) and await self._expire(key, job, now):
            return
        if not self.expectations.satisfied(key, now):
            self.queue.add_after(key, self.expectations.ttl)
            return
        pods = [p for p in self.pods.by_index(OWNER_INDEX, job.metadata.uid)
                if p.metadata.namespace == namespace]
        plan = plan_job(job, pods, now)
        try:
            await self._act(key, job, plan)
        finally:
            for ev in plan.events:
                self.recorder.event(job, ev.type, ev.reason, ev.message)
        status = job_status(plan, job.status)
        if status != job.status:
            updated = batch_pb2.Job()
            updated.CopyFrom(job)
            updated.status.CopyFrom(status)
            await self.client.jobs(namespace).update_status(updated)
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after + 0.01)
        if plan.finished and job.spec.HasField("ttl_seconds_after_finished"):
            self.queue.add_after(key, job.spec.ttl_seconds_after_finished + 0.01)

    async def _act(self, key: str, job: batch_pb2.Job, plan: JobPlan) -> None:
        """Delete then create the plan's pods, recording expectations first."""
        namespace = job.metadata.namespace
        pods = self.client.pods(namespace)
        now = self.clock.now()
        self.expectations.expect(key, now, deletes=plan.delete)
        for pod_name in plan.delete:
            try:
                await pods.delete(pod_name)
            except NotFound:
                self.expectations.observed_delete(key, pod_name)
                continue
            except Exception:
                self.expectations.lower(key, deletes=[pod_name])
                raise
            self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {pod_name}")
        indexes: list[int | None] = (list(plan.create_indexes) if plan.create_indexes
                                     else [None] * plan.create)
        for index in indexes:
            pod = new_job_pod(job, index)
            try:
                created = await pods.create(pod)
            except AlreadyExists:
                continue
            except Exception as exc:
                self.recorder.event(job, "Warning", "FailedCreate",
                                    f"Error creating: {getattr(exc, 'message', exc)}")
                raise
            self.expectations.expect(key, now, adds=[created.metadata.name])
            if self.pods.get(created.metadata.name, namespace) is not None:
                self.expectations.observed_add(key, created.metadata.name)
            self.recorder.event(job, "Normal", "SuccessfulCreate",
                                f"Created pod: {created.metadata.name}")

    async def _expire(self, key: str, job: batch_pb2.Job, now: float) -> bool:
        """ttlSecondsAfterFinished: delete the Job (and, in the background, its pods) once
        its time has come; True when it was deleted."""
        if not job.spec.HasField("ttl_seconds_after_finished"):
            return False
        due = finished_at(job) + job.spec.ttl_seconds_after_finished
        if now < due:
            self.queue.add_after(key, due - now + 0.01)
            return False
        try:
            await self.client.jobs(job.metadata.namespace).delete(
                job.metadata.name, propagation_policy="Background", uid=job.metadata.uid)
        except NotFound:
            pass
        return True
