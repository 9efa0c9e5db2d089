"""The CronJob controller: starts a Job at each scheduled time (decisions in
``cronjob_sync``).

Flow::

    cronjobs, jobs informers ──▶ key of the CronJob (a Job's controller ownerReference)
        reconcile(key): CronJob + its Jobs ──plan_cronjob──▶ CronJobPlan
            delete Jobs (Replace, history), create the due Job, write status, events,
            requeue at the next scheduled time (``self.clock``)

Contracts: never mutates cached objects. Job names are derived from the scheduled time,
so a run is created at most once even when two reconciles race (AlreadyExists is
success). Time comes from the injected clock only.
"""

from __future__ import annotations

from navarch._errors import AlreadyExists, NotFound
from navarch._events import object_reference
from navarch._informer import Informer
from navarch.v1 import batch_pb2, core_pb2

from .cronjob_sync import CronJobPlan, new_cron_job, plan_cronjob
from .framework import Controller, owner_uids, split_key
from .workloads import OWNER_INDEX, owner_key, timestamp

__all__ = ["CronJobController"]


class CronJobController(Controller):
    """Creates Jobs from CronJobs on schedule and keeps their history bounded."""

    name = "cronjob"

    async def setup(self) -> None:
        """Watch CronJobs and Jobs; index Jobs by their controller's uid."""
        self.cronjobs: Informer[batch_pb2.CronJob] = self.ctx.informers.informer("cronjobs")
        self.jobs: Informer[batch_pb2.Job] = self.ctx.informers.informer("jobs")
        self.jobs.add_index(OWNER_INDEX, owner_uids)
        await self.cronjobs.add_handlers(self.enqueue, lambda _o, new: self.enqueue(new))
        await self.jobs.add_handlers(self._job_changed, lambda _o, new: self._job_changed(new),
                                     self._job_changed)

    def _job_changed(self, job: batch_pb2.Job) -> None:
        key = owner_key(job, "CronJob")
        if key is not None:
            self.queue.add(key)

    async def reconcile(self, key: str) -> None:
        """Sync one CronJob: start the due Job, prune history, write status."""
        namespace, name = split_key(key)
        cj = self.cronjobs.get(name, namespace)
        if cj is None:
            return
        jobs = [j for j in self.jobs.by_index(OWNER_INDEX, cj.metadata.uid)
                if j.metadata.namespace == namespace]
        now = self.clock.now()
        plan = plan_cronjob(cj, jobs, now)
        try:
            created = await self._act(cj, plan)
        finally:
            for ev in plan.events:
                self.recorder.event(cj, ev.type, ev.reason, ev.message)
        status = self._status(cj, plan, jobs, created)
        if status != cj.status:
            updated = batch_pb2.CronJob()
            updated.CopyFrom(cj)
            updated.status.CopyFrom(status)
            await self.client.cronjobs(namespace).update_status(updated)
        if plan.requeue_after is not None:
            # a little late rather than early: the minute must have passed
            self.queue.add_after(key, plan.requeue_after + 0.1)

    async def _act(self, cj: batch_pb2.CronJob, plan: CronJobPlan) -> batch_pb2.Job | None:
        """Delete the plan's Jobs, then create the due one; the Job created, if any."""
        jobs = self.client.jobs(cj.metadata.namespace)
        for job_name in plan.delete:
            try:
                await jobs.delete(job_name, propagation_policy="Background")
            except NotFound:
                continue
            self.recorder.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {job_name}")
        if not plan.create:
            return None
        job = new_cron_job(cj, plan.create)
        try:
            created: batch_pb2.Job = await jobs.create(job)
        except AlreadyExists:
            existing: batch_pb2.Job = await jobs.get(job.metadata.name)
            return existing
        except Exception as exc:
            self.recorder.event(cj, "Warning", "FailedCreate",
                                f"Error creating job: {getattr(exc, 'message', exc)}")
            raise
        self.recorder.event(cj, "Normal", "SuccessfulCreate",
                            f"Created job {created.metadata.name}")
        return created

    def _status(self, cj: batch_pb2.CronJob, plan: CronJobPlan, jobs: list[batch_pb2.Job],
                created: batch_pb2.Job | None) -> batch_pb2.CronJobStatus:
        by_name = {j.metadata.name: j for j in jobs}
        old_refs = {r.name: r for r in cj.status.active}
        status = batch_pb2.CronJobStatus()
        for job_name in plan.keep_active:
            job = by_name.get(job_name)
            ref = object_reference(job) if job is not None else old_refs[job_name]
            status.active.append(_ref(ref))
        if created is not None and created.metadata.name not in plan.keep_active:
            status.active.append(_ref(object_reference(created)))
        if plan.last_schedule_time:
            status.last_schedule_time.CopyFrom(timestamp(plan.last_schedule_time))
        if plan.last_successful_time:
            status.last_successful_time.CopyFrom(timestamp(plan.last_successful_time))
        return status


def _ref(ref: core_pb2.ObjectReference) -> core_pb2.ObjectReference:
    """A Job reference as Kubernetes stores it in status.active (no resourceVersion)."""
    out = core_pb2.ObjectReference()
    out.CopyFrom(ref)
    out.resource_version = ""
    return out
