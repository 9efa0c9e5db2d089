"""The container runtime, as the agent sees it: containerd's CRI v1 over its unix socket.

``CriClient`` is the one door to CRI: grpc.aio stubs from ``cri_api`` (the
container-runtime-interface-api package: generated CRI v1 stubs, DESIGN.md), with typed
wrappers for the calls the agent makes. It keeps no state of its own: containerd is the
record of what runs, which is what lets a restarted agent adopt its pods.

Labels the agent puts on what it creates, and reads back (kubelet's keys, so that tools
that know kubelet's layout read ours)::

    sandbox:    io.kubernetes.pod.name / .namespace / .uid
    container:  the same, plus io.kubernetes.container.name
    container annotations: io.kubernetes.container.restartCount, io.kubernetes.container.hash

Logs: a sandbox's ``log_directory`` is ``<root>/logs/<namespace>_<name>_<uid>``; a
container's ``log_path`` (relative to it) is ``<container>/<restartCount>.log``, in CRI's
log format (``<RFC3339Nano> <stdout|stderr> <F|P> <text>``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
from cri_api.v1 import api_pb2, api_pb2_grpc

POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
POD_UID = "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"
RESTART_COUNT = "io.kubernetes.container.restartCount"
CONTAINER_HASH = "io.kubernetes.container.hash"

#: CRI ContainerState values, by name
CREATED = api_pb2.CONTAINER_CREATED
RUNNING = api_pb2.CONTAINER_RUNNING
EXITED = api_pb2.CONTAINER_EXITED
UNKNOWN = api_pb2.CONTAINER_UNKNOWN
SANDBOX_READY = api_pb2.SANDBOX_READY


def pod_log_dir(root: Path, namespace: str, name: str, uid: str) -> Path:
    """Where a pod's container logs live (the sandbox's ``log_directory``)."""
    return root / "logs" / f"{namespace}_{name}_{uid}"


def container_log_path(container: str, restart_count: int) -> str:
    """A container attempt's log file, relative to its pod's log directory."""
    return f"{container}/{restart_count}.log"


def restart_count_of(status_or_container: Any) -> int:
    """The attempt number the agent stamped on a CRI Container/ContainerStatus."""
    try:
        return int(status_or_container.annotations.get(RESTART_COUNT, "0"))
    except ValueError:
        return 0


class CriClient:
    """Async CRI v1 client over ``unix://<socket>``; ``runtime`` and ``images`` are the stubs.

    Every call takes a deadline (``timeout`` seconds); errors are grpc.aio.AioRpcError.
    """

    def __init__(self, socket: str | Path, timeout: float = 30.0) -> None:
        target = str(socket)
        self.target = target if target.startswith("unix:") else f"unix://{target}"
        self.timeout = timeout
        self.channel = grpc.aio.insecure_channel(
            self.target, options=[("grpc.max_receive_message_length", 16 << 20)])
        self.runtime: Any = api_pb2_grpc.RuntimeServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.images: Any = api_pb2_grpc.ImageServiceStub(self.channel)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self.channel.close()

    # runtime

    async def version(self) -> api_pb2.VersionResponse:
        reply: api_pb2.VersionResponse = await self.runtime.Version(
            api_pb2.VersionRequest(), timeout=self.timeout)
        return reply

    async def status(self) -> api_pb2.StatusResponse:
        reply: api_pb2.StatusResponse = await self.runtime.Status(
            api_pb2.StatusRequest(), timeout=self.timeout)
        return reply

    async def list_sandboxes(self, labels: dict[str, str] | None = None
                             ) -> list[api_pb2.PodSandbox]:
        flt = api_pb2.PodSandboxFilter(label_selector=labels or {})
        reply = await self.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest(filter=flt),
                                                  timeout=self.timeout)
        return list(reply.items)

    async def sandbox_status(self, sandbox_id: str) -> api_pb2.PodSandboxStatus:
        reply = await self.runtime.PodSandboxStatus(
            api_pb2.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id), timeout=self.timeout)
        status: api_pb2.PodSandboxStatus = reply.status
        return status

    async def run_sandbox(self, config: api_pb2.PodSandboxConfig) -> str:
        reply = await self.runtime.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=config),
                                                 timeout=max(self.timeout, 120.0))
        return str(reply.pod_sandbox_id)

    async def stop_sandbox(self, sandbox_id: str) -> None:
        await self.runtime.StopPodSandbox(
            api_pb2.StopPodSandboxRequest(pod_sandbox_id=sandbox_id), timeout=self.timeout)

    async def remove_sandbox(self, sandbox_id: str) -> None:
        await self.runtime.RemovePodSandbox(
            api_pb2.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id), timeout=self.timeout)

    async def list_containers(self, labels: dict[str, str] | None = None,
                              sandbox_id: str = "") -> list[api_pb2.Container]:
        flt = api_pb2.ContainerFilter(label_selector=labels or {}, pod_sandbox_id=sandbox_id)
        reply = await self.runtime.ListContainers(api_pb2.ListContainersRequest(filter=flt),
                                                  timeout=self.timeout)
        return list(reply.containers)

    async def container_status(self, container_id: str) -> api_pb2.ContainerStatus:
        reply = await self.runtime.ContainerStatus(
            api_pb2.ContainerStatusRequest(container_id=container_id), timeout=self.timeout)
        status: api_pb2.ContainerStatus = reply.status
        return status

    async def create_container(self, sandbox_id: str, config: api_pb2.ContainerConfig,
                               sandbox_config: api_pb2.PodSandboxConfig) -> str:
        reply = await self.runtime.CreateContainer(api_pb2.CreateContainerRequest(
            pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config),
            timeout=self.timeout)
        return str(reply.container_id)

    async def start_container(self, container_id: str) -> None:
        await self.runtime.StartContainer(
            api_pb2.StartContainerRequest(container_id=container_id), timeout=self.timeout)

    async def stop_container(self, container_id: str, grace_seconds: int) -> None:
        """SIGTERM (the image's stop signal), then SIGKILL after ``grace_seconds``."""
        await self.runtime.StopContainer(
            api_pb2.StopContainerRequest(container_id=container_id, timeout=grace_seconds),
            timeout=self.timeout + grace_seconds)

    async def remove_container(self, container_id: str) -> None:
        await self.runtime.RemoveContainer(
            api_pb2.RemoveContainerRequest(container_id=container_id), timeout=self.timeout)

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float  # noqa: ASYNC109
                        ) -> api_pb2.ExecSyncResponse:
        """Run ``cmd`` in the container; ``timeout`` 0 means none (CRI's convention)."""
        reply: api_pb2.ExecSyncResponse = await self.runtime.ExecSync(
            api_pb2.ExecSyncRequest(container_id=container_id, cmd=cmd,
                                    timeout=int(timeout)),
            timeout=(timeout + self.timeout) if timeout else None)
        return reply

    async def exec_url(self, request: api_pb2.ExecRequest) -> str:
        """The streaming server's URL for an interactive exec (CRI's Exec)."""
        reply = await self.runtime.Exec(request, timeout=self.timeout)
        return str(reply.url)

    async def container_stats(self, container_id: str) -> api_pb2.ContainerStats:
        reply = await self.runtime.ContainerStats(
            api_pb2.ContainerStatsRequest(container_id=container_id), timeout=self.timeout)
        stats: api_pb2.ContainerStats = reply.stats
        return stats

    async def list_container_stats(self) -> list[api_pb2.ContainerStats]:
        reply = await self.runtime.ListContainerStats(api_pb2.ListContainerStatsRequest(),
                                                      timeout=self.timeout)
        return list(reply.stats)

    async def reopen_log(self, container_id: str) -> None:
        await self.runtime.ReopenContainerLog(
            api_pb2.ReopenContainerLogRequest(container_id=container_id), timeout=self.timeout)

    # images

    async def image_status(self, image: str) -> api_pb2.Image | None:
        reply = await self.images.ImageStatus(
            api_pb2.ImageStatusRequest(image=api_pb2.ImageSpec(image=image)),
            timeout=self.timeout)
        return reply.image if reply.HasField("image") else None

    async def pull_image(self, image: str, sandbox_config: api_pb2.PodSandboxConfig | None = None
                         ) -> str:
        """Pull ``image``; returns its image ref (the digest containerd names it by)."""
        reply = await self.images.PullImage(
            api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=image),
                                     sandbox_config=sandbox_config),
            timeout=max(self.timeout, 300.0))
        return str(reply.image_ref)

    async def list_images(self) -> list[api_pb2.Image]:
        reply = await self.images.ListImages(api_pb2.ListImagesRequest(), timeout=self.timeout)
        return list(reply.images)
