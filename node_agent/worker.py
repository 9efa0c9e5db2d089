"""One pod's sync: observe CRI, decide (``actions.py``), act, report status.

``PodSyncer.sync(pod)`` is level-triggered and idempotent: it may be called at any time,
as often as wanted, and brings the pod one step nearer its spec::

    observe (CRI: sandboxes + container attempts of the pod's uid)
      ─▶ fetch referenced ConfigMaps/Secrets ─▶ volumes set up
      ─▶ compute_pod_actions ─▶ kill / new sandbox / pull + create + start
      ─▶ observe again ─▶ pod_status ─▶ write it when it changed

``terminate(uid)`` stops a pod for good: preStop hooks, SIGTERM with the grace period,
SIGKILL, sandbox removed, volumes and cgroups torn down; the caller deletes the API object.

Contracts: the pod passed in is an informer-cached object and is never mutated; the
syncer is called for one uid at a time (the agent's work queue guarantees it); every
CRI error of one pod is confined to that pod (recorded as a waiting reason or retried).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import structlog
from cri_api.v1 import api_pb2

from navarch._errors import ApiError, Conflict, NotFound
from navarch.v1 import core_pb2

from . import cri, runtime_spec
from .actions import PodActions, compute_pod_actions
from .backoff import CrashBackoff
from .config import AgentConfig
from .cri import CriClient
from .env import ConfigError, container_env, expand
from .podstatus import PodObservation, pod_status
from .probes import ProbeResult, cri_exec, run_probe
from .volumes import VolumeManager, container_mounts

log = structlog.get_logger("navarch.agent.pods")

IMAGE_PULL_BACKOFF = "ImagePullBackOff"
ERR_IMAGE_PULL = "ErrImagePull"


@dataclass
class PodRuntimeState:
    """What CRI shows of one pod: sandboxes newest first; container attempts of the
    newest sandbox by name, newest first; every attempt of every sandbox."""

    sandboxes: list[api_pb2.PodSandboxStatus] = field(default_factory=list)
    containers: dict[str, list[api_pb2.ContainerStatus]] = field(default_factory=dict)
    every: list[api_pb2.ContainerStatus] = field(default_factory=list)

    @property
    def sandbox(self) -> api_pb2.PodSandboxStatus | None:
        return self.sandboxes[0] if self.sandboxes else None


class ApiLookup:
    """The ConfigMaps and Secrets one pod refers to, fetched before a sync (env.py and
    volumes.py read them synchronously). Secrets are fetched one by one, only for pods
    bound to this node: the agent never lists Secrets."""

    def __init__(self) -> None:
        self.config_maps: dict[tuple[str, str], core_pb2.ConfigMap | None] = {}
        self.secrets: dict[tuple[str, str], core_pb2.Secret | None] = {}

    def config_map(self, namespace: str, name: str) -> core_pb2.ConfigMap | None:
        return self.config_maps.get((namespace, name))

    def secret(self, namespace: str, name: str) -> core_pb2.Secret | None:
        return self.secrets.get((namespace, name))


def referenced_objects(pod: core_pb2.Pod) -> tuple[set[str], set[str]]:
    """Names of the ConfigMaps and Secrets the pod's env, envFrom and volumes use."""
    cms: set[str] = set()
    secrets: set[str] = set()
    for c in [*pod.spec.init_containers, *pod.spec.containers]:
        for src in c.env_from:
            if src.HasField("config_map_ref"):
                cms.add(src.config_map_ref.name)
            if src.HasField("secret_ref"):
                secrets.add(src.secret_ref.name)
        for var in c.env:
            ref = var.value_from
            if ref.HasField("config_map_key_ref"):
                cms.add(ref.config_map_key_ref.name)
            if ref.HasField("secret_key_ref"):
                secrets.add(ref.secret_key_ref.name)
    for v in pod.spec.volumes:
        if v.HasField("config_map"):
            cms.add(v.config_map.name)
        if v.HasField("secret"):
            secrets.add(v.secret.secret_name)
        if v.HasField("projected"):
            for s in v.projected.sources:
                if s.HasField("config_map"):
                    cms.add(s.config_map.name)
                if s.HasField("secret"):
                    secrets.add(s.secret.name)
    return cms, secrets


def _default_pull_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    tag = last.split(":", 1)[1] if ":" in last else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


class ImageError(Exception):
    """An image that could not be had: ``reason`` is the waiting reason kubelet reports."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


class PodSyncer:
    """Syncs and terminates pods against CRI; one instance per agent, shared by workers."""

    def __init__(self, client: Any, cri_client: CriClient, cfg: AgentConfig,
                 volumes: VolumeManager, probes: Any, recorder: Any,
                 services_env: Any, host_resolv: str = "") -> None:
        self.client = client
        self.cri = cri_client
        self.cfg = cfg
        self.volumes = volumes
        self.probes = probes
        self.recorder = recorder
        self.services_env = services_env  # (namespace, enable_links) -> [(name, value)]
        self.host_resolv = host_resolv
        self.crash_backoff = CrashBackoff()
        self.image_backoff = CrashBackoff()
        # uid -> container name -> (reason, message): waits decided while acting
        self.waiting: dict[str, dict[str, tuple[str, str]]] = {}
        self.allocatable: dict[str, str] = {}  # the Node's, for resourceFieldRef defaults

    # --- observe ------------------------------------------------------------------------

    async def observe(self, uid: str) -> PodRuntimeState:
        """The pod's sandboxes and containers, as CRI reports them now."""
        sandboxes = await self.cri.list_sandboxes({cri.POD_UID: uid})
        statuses = await asyncio.gather(*(self.cri.sandbox_status(s.id) for s in sandboxes))
        state = PodRuntimeState(sorted(statuses, key=lambda s: (-s.metadata.attempt,
                                                                 -s.created_at)))
        containers = await self.cri.list_containers({cri.POD_UID: uid})
        details = await asyncio.gather(*(self.cri.container_status(c.id)
                                         for c in containers), return_exceptions=True)
        for d in details:
            # A container removed since the list is simply gone; any other failure makes
            # the observation incomplete, and acting on it could start a second copy of a
            # container or stop one without its preStop hook: the sync is retried instead.
            if isinstance(d, grpc.aio.AioRpcError) and d.code() == grpc.StatusCode.NOT_FOUND:
                continue
            if isinstance(d, BaseException):
                raise d
        every = [d for d in details if isinstance(d, api_pb2.ContainerStatus)]
        every.sort(key=lambda s: (-cri.restart_count_of(s), -s.created_at))
        state.every = every
        newest = state.sandbox.id if state.sandbox is not None else None
        by_id = {c.id: c.pod_sandbox_id for c in containers}
        for status in every:
            if by_id.get(status.id) == newest:
                state.containers.setdefault(status.metadata.name, []).append(status)
        return state

    # --- sync ---------------------------------------------------------------------------

    async def sync(self, pod: core_pb2.Pod) -> float:
        """One step towards the pod's spec, then its status; seconds until it should be
        synced again for a back-off to end (0: only on the next event or resync)."""
        uid = pod.metadata.uid
        started = time.monotonic()
        state = await self.observe(uid)
        lookup = await self._fetch_objects(pod)
        waiting = self.waiting.setdefault(uid, {})
        volume_paths: dict[str, Path] | None = None
        try:
            volume_paths = await asyncio.to_thread(self.volumes.setup, pod, lookup)
            waiting.pop("", None)
        except (ConfigError, ValueError, OSError) as exc:
            message = f"MountVolume.SetUp failed: {exc}"
            if waiting.get("") != ("FailedMount", message):
                self.recorder.event(pod, "Warning", "FailedMount", message)
            waiting[""] = ("FailedMount", message)
        liveness = self.probes.liveness_failures(uid) if self.probes is not None else {}
        now = time.time()
        finished = {name: attempts[0].finished_at / 1e9
                    for name, attempts in state.containers.items()
                    if attempts and attempts[0].state == cri.EXITED}
        actions = compute_pod_actions(
            pod, state.sandboxes, state.containers,
            backoff_remaining=lambda name: self.crash_backoff.in_backoff(
                (uid, name), now, since=finished.get(name)),
            backoff_delay=lambda name: self.crash_backoff.delay((uid, name)),
            liveness_failed=liveness)
        retry = actions.retry_after
        if not actions.idle and (volume_paths is not None or actions.kill_pod
                                 or actions.stop_sandbox):
            acting = time.monotonic()
            retry = max(retry, await self._act(pod, state, actions, volume_paths or {},
                                               lookup))
            state = await self.observe(uid)
            log.debug("pod acted", pod=f"{pod.metadata.namespace}/{pod.metadata.name}",
                      sandbox=actions.create_sandbox, start=list(actions.start),
                      init=actions.start_init, kill=len(actions.kill),
                      act_s=round(time.monotonic() - acting, 3),
                      since_start_s=round(acting - started, 3))
        for name, why in actions.waiting.items():
            if why[0] == "CrashLoopBackOff" and waiting.get(name, ("",))[0] != why[0]:
                self.recorder.event(pod, "Warning", "BackOff",
                                    f"Back-off restarting failed container {name} in pod "
                                    f"{pod.metadata.name}_{pod.metadata.namespace}")
        if self.probes is not None:
            self.probes.update(pod, state.containers, state.sandbox,
                               pod_ip=self.cfg.node_ip if pod.spec.host_network else "")
        await self._report(pod, state, {**waiting, **actions.waiting})
        if any(w[0] in (IMAGE_PULL_BACKOFF, ERR_IMAGE_PULL, "CreateContainerConfigError",
                        "FailedMount", "CreateContainerError", "RunContainerError")
               for w in waiting.values()):
            retry = retry or 5.0
        return retry

    async def _fetch_objects(self, pod: core_pb2.Pod) -> ApiLookup:
        lookup = ApiLookup()
        ns = pod.metadata.namespace
        cms, secrets = referenced_objects(pod)

        async def get(kind: str, name: str) -> None:
            resource = self.client.configmaps(ns) if kind == "cm" else self.client.secrets(ns)
            try:
                obj = await resource.get(name)
            except NotFound:
                obj = None
            if kind == "cm":
                lookup.config_maps[(ns, name)] = obj
            else:
                lookup.secrets[(ns, name)] = obj

        await asyncio.gather(*(get("cm", n) for n in cms if n),
                             *(get("secret", n) for n in secrets if n))
        return lookup

    def _sandbox_config(self, pod: core_pb2.Pod, attempt: int) -> api_pb2.PodSandboxConfig:
        meta = pod.metadata
        log_dir = cri.pod_log_dir(self.cfg.root_dir, meta.namespace, meta.name, meta.uid)
        return runtime_spec.sandbox_config(
            pod, log_directory=str(log_dir), cgroup_root=self.cfg.cgroup_root,
            cluster_dns=self.cfg.cluster_dns, host_resolv=self.host_resolv,
            attempt=attempt)

    async def _act(self, pod: core_pb2.Pod, state: PodRuntimeState, actions: PodActions,
                   volume_paths: Mapping[str, Path], lookup: ApiLookup) -> float:
        uid = pod.metadata.uid
        waiting = self.waiting.setdefault(uid, {})
        if actions.kill_pod:
            await self._kill_containers(pod, [c for cs in state.containers.values()
                                              for c in cs if c.state == cri.RUNNING],
                                        self._grace(pod), "Killing")
            for sb in state.sandboxes:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await self.cri.stop_sandbox(sb.id)
        if actions.stop_sandbox and state.sandbox is not None:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.cri.stop_sandbox(state.sandbox.id)
            return 0.0
        for kill in actions.kill:
            self.recorder.event(pod, "Normal", "Killing", kill.message)
            await self._kill_containers(pod, [c for cs in state.containers.values() for c in cs
                                              if c.id == kill.container_id],
                                        self._grace(pod), kill.reason)
        sandbox_id = state.sandbox.id if state.sandbox is not None else ""
        attempt = state.sandbox.metadata.attempt if state.sandbox is not None else 0
        if actions.create_sandbox:
            attempt = actions.sandbox_attempt
            config = self._sandbox_config(pod, attempt)
            await asyncio.to_thread(Path(config.log_directory).mkdir, parents=True,
                                    exist_ok=True)
            try:
                sandbox_id = await self.cri.run_sandbox(config)
            except grpc.aio.AioRpcError as exc:
                message = f"Failed to create pod sandbox: {exc.details()}"
                self.recorder.event(pod, "Warning", "FailedCreatePodSandBox", message)
                waiting["__sandbox__"] = ("ContainerCreating", message)
                return 2.0
            waiting.pop("__sandbox__", None)
        sandbox_config = self._sandbox_config(pod, attempt)
        pod_ip = ""
        with contextlib.suppress(grpc.aio.AioRpcError):
            pod_ip = (await self.cri.sandbox_status(sandbox_id)).network.ip
        names = [actions.start_init] if actions.start_init else list(actions.start)
        specs = {c.name: c for c in [*pod.spec.init_containers, *pod.spec.containers]}
        retry = 0.0
        for name in names:
            if name is None:
                continue
            retry = max(retry, await self._start(pod, specs[name], sandbox_id,
                                                 sandbox_config, state, volume_paths, lookup,
                                                 pod_ip))
        return retry

    def _grace(self, pod: core_pb2.Pod) -> int:
        if pod.metadata.HasField("deletion_grace_period_seconds"):
            return max(0, int(pod.metadata.deletion_grace_period_seconds))
        if pod.spec.HasField("termination_grace_period_seconds"):
            return max(0, int(pod.spec.termination_grace_period_seconds))
        return 30

    async def _ensure_image(self, pod: core_pb2.Pod, container: core_pb2.Container,
                            sandbox_config: api_pb2.PodSandboxConfig) -> str:
        image = container.image
        policy = container.image_pull_policy or _default_pull_policy(image)
        key = (pod.metadata.uid, f"image:{image}")
        present = await self.cri.image_status(image)
        if policy == "Never":
            if present is None:
                raise ImageError("ErrImageNeverPull",
                                 f'Container image "{image}" is not present with pull '
                                 "policy of Never")
            return str(present.id)
        if present is not None and policy == "IfNotPresent":
            return str(present.id)
        remaining = self.image_backoff.in_backoff(key, time.time())
        if remaining > 0:
            raise ImageError(IMAGE_PULL_BACKOFF, f'Back-off pulling image "{image}"')
        self.recorder.event(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        started = time.monotonic()
        try:
            ref = await self.cri.pull_image(image, sandbox_config)
        except grpc.aio.AioRpcError as exc:
            self.image_backoff.record_failure(key, time.time())
            message = f'Failed to pull image "{image}": {exc.details()}'
            self.recorder.event(pod, "Warning", "Failed", message)
            raise ImageError(ERR_IMAGE_PULL, message) from None
        self.image_backoff.forget(key)
        self.recorder.event(pod, "Normal", "Pulled",
                            f'Successfully pulled image "{image}" in '
                            f"{time.monotonic() - started:.3f}s")
        return ref

    async def _start(self, pod: core_pb2.Pod, container: core_pb2.Container,
                     sandbox_id: str, sandbox_config: api_pb2.PodSandboxConfig,
                     state: PodRuntimeState, volume_paths: Mapping[str, Path],
                     lookup: ApiLookup, pod_ip: str) -> float:
        uid, name = pod.metadata.uid, container.name
        waiting = self.waiting.setdefault(uid, {})
        previous = [s for s in state.every if s.metadata.name == name]
        restart_count = (cri.restart_count_of(previous[0]) + 1) if previous else 0
        try:
            image = await self._ensure_image(pod, container, sandbox_config)
        except ImageError as exc:
            waiting[name] = (exc.reason, exc.message)
            return 2.0
        try:
            env = container_env(pod, container, lookup,
                                self.services_env(pod.metadata.namespace,
                                                  _service_links(pod)),
                                pod_ips=[pod_ip] if pod_ip else [], host_ip=self.cfg.node_ip,
                                node_allocatable=self.allocatable)
            values = dict(env)
            command = [expand(s, values) for s in container.command]
            args = [expand(s, values) for s in container.args]
            mounts = container_mounts(pod, container, volume_paths)
        except (ConfigError, ValueError) as exc:
            message = str(exc)
            if waiting.get(name) != ("CreateContainerConfigError", message):
                self.recorder.event(pod, "Warning", "Failed", f"Error: {message}")
            waiting[name] = ("CreateContainerConfigError", message)
            return 5.0
        config = runtime_spec.container_config(
            pod, container, restart_count=restart_count, image=image, env=env,
            command=command, args=args, mounts=mounts)
        # old attempts beyond the previous one are removed (``logs -p`` needs only that)
        for old in previous[1:]:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.cri.remove_container(old.id)
        for stale in (s for s in previous[:1] if s.state == cri.CREATED):
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.cri.remove_container(stale.id)
        try:
            cid = await self.cri.create_container(sandbox_id, config, sandbox_config)
        except grpc.aio.AioRpcError as exc:
            waiting[name] = ("CreateContainerError", exc.details() or "")
            self.recorder.event(pod, "Warning", "Failed", f"Error: {exc.details()}")
            return 5.0
        self.recorder.event(pod, "Normal", "Created", f"Created container {name}")
        try:
            await self.cri.start_container(cid)
        except grpc.aio.AioRpcError as exc:
            waiting[name] = ("RunContainerError", exc.details() or "")
            self.recorder.event(pod, "Warning", "Failed", f"Error: {exc.details()}")
            return 5.0
        self.recorder.event(pod, "Normal", "Started", f"Started container {name}")
        waiting.pop(name, None)
        if previous and previous[0].state == cri.EXITED:
            self.crash_backoff.record_failure((uid, name), time.time(),
                                              since=previous[0].finished_at / 1e9)
        await self._post_start(pod, container, cid, pod_ip)
        return 0.0

    async def _run_hook(self, handler: core_pb2.LifecycleHandler,
                        container: core_pb2.Container, cid: str, pod_ip: str,
                        budget: float) -> tuple[bool, str]:
        """A postStart or preStop handler (exec, httpGet, tcpSocket, sleep) within
        ``budget`` seconds: (succeeded, why not). The checks are the probes' own."""
        if handler.HasField("sleep"):
            await asyncio.sleep(min(budget, max(0, handler.sleep.seconds)))
            return True, ""
        probe = core_pb2.Probe()
        for name in ("exec", "http_get", "tcp_socket"):
            if handler.HasField(name):
                getattr(probe, name).CopyFrom(getattr(handler, name))
                break
        else:
            return True, ""
        exec_in = cri_exec(self.cri)

        def exec_fn(cmd: list[str], timeout: float) -> Any:
            return exec_in(cid, cmd, timeout)
        result, message = await run_probe(probe, container, pod_ip, exec_fn, timeout=budget)
        return result == ProbeResult.SUCCESS, message

    async def _post_start(self, pod: core_pb2.Pod, container: core_pb2.Container,
                          cid: str, pod_ip: str = "") -> None:
        hook = container.lifecycle.post_start
        if not container.lifecycle.HasField("post_start"):
            return
        ok, detail = await self._run_hook(hook, container, cid, pod_ip, 30.0)
        if not ok:
            self.recorder.event(pod, "Warning", "FailedPostStartHook",
                                f"PostStartHook failed: {detail.strip()}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.cri.stop_container(cid, self._grace(pod))

    # --- stop ---------------------------------------------------------------------------

    async def _pre_stop(self, pod: core_pb2.Pod, status: api_pb2.ContainerStatus,
                        budget: float) -> None:
        spec = {c.name: c for c in pod.spec.containers}.get(status.metadata.name)
        if spec is None or not spec.lifecycle.HasField("pre_stop") or budget <= 0:
            return
        ok, detail = False, "timed out"
        with contextlib.suppress(TimeoutError):
            ok, detail = await asyncio.wait_for(self._run_hook(
                spec.lifecycle.pre_stop, spec, status.id, pod.status.pod_ip, budget), budget)
        if not ok:
            log.info("preStop hook failed", uid=pod.metadata.uid,
                     container=status.metadata.name, error=detail.strip())
            self.recorder.event(pod, "Warning", "FailedPreStopHook",
                                f"PreStopHook failed: {detail.strip()}")

    async def _kill_containers(self, pod: core_pb2.Pod | None,
                               running: Sequence[api_pb2.ContainerStatus], grace: int,
                               reason: str) -> None:
        """preStop, then SIGTERM and SIGKILL after what is left of ``grace``, all at once."""

        async def one(status: api_pb2.ContainerStatus) -> None:
            started = time.monotonic()
            if pod is not None:
                await self._pre_stop(pod, status, grace)
            left = max(0, math.ceil(grace - (time.monotonic() - started)))
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.cri.stop_container(status.id, left)

        await asyncio.gather(*(one(s) for s in running if s.state == cri.RUNNING))

    async def terminate(self, uid: str, pod: core_pb2.Pod | None, grace: int) -> None:
        """Stop everything of the pod ``uid`` and remove it from the node (idempotent)."""
        state = await self.observe(uid)
        if state.every or state.sandboxes:
            log.info("stopping pod", uid=uid, grace=grace, sandboxes=len(state.sandboxes),
                     pod=f"{pod.metadata.namespace}/{pod.metadata.name}" if pod else "",
                     containers=[(c.metadata.name, api_pb2.ContainerState.Name(c.state))
                                 for c in state.every])
        await self._kill_containers(pod, state.every, grace, "Killing")
        for status in state.every:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.cri.remove_container(status.id)
        for sb in state.sandboxes:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.cri.stop_sandbox(sb.id)
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.cri.remove_sandbox(sb.id)
        if self.probes is not None:
            self.probes.forget(uid)
        await asyncio.to_thread(self.volumes.teardown, uid)
        remove_pod_cgroups(self.cfg.cgroup_root, uid)
        if pod is not None:
            meta = pod.metadata
            shutil.rmtree(cri.pod_log_dir(self.cfg.root_dir, meta.namespace, meta.name, uid),
                          ignore_errors=True)
        for name in [n for (u, n) in list(self.crash_backoff_keys()) if u == uid]:
            self.crash_backoff.forget((uid, name))
        self.waiting.pop(uid, None)

    def crash_backoff_keys(self) -> list[tuple[str, str]]:
        keys = getattr(self.crash_backoff, "keys", None)
        return list(keys()) if callable(keys) else []

    # --- status -------------------------------------------------------------------------

    async def _report(self, pod: core_pb2.Pod, state: PodRuntimeState,
                      waiting: Mapping[str, tuple[str, str]]) -> None:
        sandbox = state.sandbox
        ready = sandbox is not None and sandbox.state == cri.SANDBOX_READY
        ips = [sandbox.network.ip] if ready and sandbox is not None and sandbox.network.ip \
            else []
        if pod.spec.host_network:
            ips = [self.cfg.node_ip]
        creating = {n: w for n, w in waiting.items() if n and not n.startswith("__")}
        pending_reason = waiting.get("__sandbox__") or waiting.get("")
        observation = PodObservation(
            sandbox_ready=ready, pod_ips=tuple(ips), host_ip=self.cfg.node_ip,
            containers={name: tuple(attempts) for name, attempts in state.containers.items()},
            readiness=self.probes.readiness_map(pod.metadata.uid)
            if self.probes is not None else {},
            started=self.probes.started_map(pod.metadata.uid)
            if self.probes is not None else {},
            waiting=creating, pending=pending_reason, old=pod.status)
        status = pod_status(pod, observation, time.time())
        if _same_status(status, pod.status):
            return
        pods = self.client.pods(pod.metadata.namespace)
        out = core_pb2.Pod()
        out.CopyFrom(pod)
        out.status.CopyFrom(status)
        try:
            await pods.update_status(out)
        except Conflict:
            try:
                fresh = await pods.get(pod.metadata.name)
            except NotFound:
                return
            if fresh.metadata.uid != pod.metadata.uid:
                return
            fresh.status.CopyFrom(status)
            with contextlib.suppress(Conflict, NotFound):
                await pods.update_status(fresh)
        except NotFound:
            return
        except ApiError as exc:
            log.warning("pod status write failed", pod=pod.metadata.name, error=exc.message)
            raise


def _service_links(pod: core_pb2.Pod) -> bool:
    spec = pod.spec
    return spec.enable_service_links if spec.HasField("enable_service_links") else True


def _same_status(a: core_pb2.PodStatus, b: core_pb2.PodStatus) -> bool:
    """Equal but for heartbeat-like timestamps that move on every computation."""
    left, right = core_pb2.PodStatus(), core_pb2.PodStatus()
    left.CopyFrom(a)
    right.CopyFrom(b)
    for s in (left, right):
        for cond in s.conditions:
            cond.ClearField("last_probe_time")
    return left.SerializeToString(deterministic=True) == \
        right.SerializeToString(deterministic=True)


def remove_pod_cgroups(cgroup_root: str, uid: str) -> None:
    """rmdir the pod's cgroup (under any QoS tier) in every hierarchy; runc removed the
    containers' own."""
    base = Path("/sys/fs/cgroup")
    rel = cgroup_root.strip("/")
    for hierarchy in base.iterdir():
        for tier in ("", "burstable", "besteffort"):
            path = hierarchy / rel / tier / f"pod{uid}"
            if path.is_dir():
                for sub in sorted((p for p in path.rglob("*") if p.is_dir()),
                                  key=lambda p: len(p.parts), reverse=True):
                    with contextlib.suppress(OSError):
                        sub.rmdir()
                with contextlib.suppress(OSError):
                    path.rmdir()
