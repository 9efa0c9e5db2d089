"""The Pods service: ``navctl logs | exec | top`` through the API server to the node.

    navctl ──Pods.Logs/Exec/Top──▶ apiserver: authorize (pods/log get, pods/exec create,
        pods get|list), read the Pod ─▶ spec.nodeName ─▶ the Node's InternalIP and
        daemonEndpoints.kubeletEndpoint.port ─▶ NodeAgent.ContainerLogs/Exec/Stats,
        replies streamed back as they come (and the node's call cancelled when the
        caller goes away)

Errors: no such pod → NOT_FOUND; not yet scheduled → FAILED_PRECONDITION; the node's
agent unreachable → UNAVAILABLE naming the node and its address; the node's own errors
(no such container, a container name needed) pass through. One channel per node address,
kept for later calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc
import structlog
from grpc_status import rpc_status

from navarch._pods import default_container
from navarch.v1 import core_pb2, node_pb2, node_pb2_grpc

from .errors import ApiError
from .grpc_api import ApiService

__all__ = ["PODS_SERVICE", "PodProxy", "node_address", "waiting_reason"]

PODS_SERVICE = "navarch.v1.Pods"
KUBELET_PORT = 10250  # when a Node does not publish its agent's port
STATS_TIMEOUT = 10.0  # seconds for one node's Stats
MAX_MESSAGE = 32 << 20

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
log = structlog.get_logger("apiserver.podproxy")


def node_address(node: core_pb2.Node) -> str:
    """``host:port`` of a node's agent: its InternalIP and published kubelet port.

    Raises ApiError (FAILED_PRECONDITION) when the node has no InternalIP."""
    ip = next((a.address for a in node.status.addresses if a.type == "InternalIP"), "")
    if not ip:
        raise ApiError(grpc.StatusCode.FAILED_PRECONDITION,
                       f"node {node.metadata.name} has no InternalIP address",
                       reason="BadRequest")
    port = node.status.daemon_endpoints.kubelet_endpoint.port or KUBELET_PORT
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def waiting_reason(pod: core_pb2.Pod, container: str) -> str:
    """Why ``container`` (or the pod's only one) has not started yet, as the pod's status
    says ("" when it has run, or the status does not say)."""
    statuses = [*pod.status.init_container_statuses, *pod.status.container_statuses]
    if not container and len(statuses) == 1:
        container = statuses[0].name
    for status in statuses:
        if status.name == container and status.state.HasField("waiting") \
                and status.restart_count == 0 and not status.last_state.HasField("terminated"):
            return status.state.waiting.reason or "ContainerCreating"
    return ""


def _waiting(pod: core_pb2.Pod, container: str) -> ApiError | None:
    """kubectl's error for the logs of a container that has not started, if it has not."""
    reason = waiting_reason(pod, container)
    if not reason:
        return None
    name = container or default_container(pod)
    return ApiError(grpc.StatusCode.FAILED_PRECONDITION,
                    f'container "{name}" in pod "{pod.metadata.name}" is waiting to start: '
                    f"{reason}", reason="BadRequest")


class PodProxy(node_pb2_grpc.PodsServicer):
    """Routes pod logs, exec and stats to the pod's node agent, through ``api``'s
    authentication, authorization and Resources (no second client)."""

    def __init__(self, api: ApiService) -> None:
        self.api = api
        self.resources = api.resources
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def close(self) -> None:
        """Close the channels to the nodes."""
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()

    def _stub(self, address: str) -> node_pb2_grpc.NodeAgentStub:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = grpc.aio.insecure_channel(
                address, options=[("grpc.max_receive_message_length", MAX_MESSAGE)])
        return node_pb2_grpc.NodeAgentStub(channel)  # type: ignore[no-untyped-call]

    async def _route(self, context: Context, verb: str, subresource: str, namespace: str,
                     name: str) -> tuple[core_pb2.Pod, node_pb2_grpc.NodeAgentStub, str]:
        """The pod, a stub for its node's agent, and "node N (address)" for errors."""
        self.api._admit(context, self.api._attrs(verb, "pods", subresource, namespace, name))
        pod = await self.resources.get("pods", namespace or "default", name)
        assert isinstance(pod, core_pb2.Pod)
        if not pod.spec.node_name:
            raise ApiError(grpc.StatusCode.FAILED_PRECONDITION,
                           f"pod {name} is not scheduled to a node yet", reason="BadRequest")
        node = await self.resources.get("nodes", "", pod.spec.node_name)
        assert isinstance(node, core_pb2.Node)
        address = node_address(node)
        return pod, self._stub(address), f"node {pod.spec.node_name} ({address})"

    @staticmethod
    async def _abort(context: Context, exc: Exception, where: str = "") -> None:
        if isinstance(exc, ApiError):
            await context.abort_with_status(rpc_status.to_status(exc.to_status()))
        assert isinstance(exc, grpc.aio.AioRpcError)
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                f"the agent of {where} is unreachable: {exc.details()}")
        await context.abort(exc.code(), exc.details() or "")

    async def Logs(self, request: node_pb2.ContainerLogsRequest, context: Context
                   ) -> AsyncIterator[node_pb2.LogChunk]:
        """A container's log from its node (pods/log, verb get)."""
        where = ""
        pod = None
        call = None
        try:
            pod, stub, where = await self._route(context, "get", "log", request.namespace,
                                                 request.pod)
            forward = node_pb2.ContainerLogsRequest()
            forward.CopyFrom(request)
            forward.namespace, forward.uid = pod.metadata.namespace, pod.metadata.uid
            forward.container = request.container or default_container(pod)
            call = stub.ContainerLogs(forward)
            async for chunk in call:
                yield chunk
        except (ApiError, grpc.aio.AioRpcError) as exc:
            if pod is not None and isinstance(exc, grpc.aio.AioRpcError) \
                    and exc.code() == grpc.StatusCode.NOT_FOUND and not request.previous:
                exc = _waiting(pod, request.container) or exc
            await self._abort(context, exc, where)
        finally:
            if call is not None:
                call.cancel()

    async def Exec(self, request_iterator: AsyncIterator[node_pb2.ExecInput],
                   context: Context) -> AsyncIterator[node_pb2.ExecOutput]:
        """A command in a container, on its node (pods/exec, verb create); input is
        relayed as it comes."""
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("input") != "start":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "start: the first message of an Exec names the command")
        assert first is not None
        where = ""
        call = None
        try:
            pod, stub, where = await self._route(context, "create", "exec",
                                                 first.start.namespace, first.start.pod)
            start = node_pb2.ExecInput()
            start.CopyFrom(first)
            start.start.namespace, start.start.uid = pod.metadata.namespace, pod.metadata.uid
            start.start.container = first.start.container or default_container(pod)

            async def inputs() -> AsyncIterator[node_pb2.ExecInput]:
                yield start
                async for item in request_iterator:
                    yield item

            call = stub.Exec(inputs())
            async for out in call:
                yield out
        except (ApiError, grpc.aio.AioRpcError) as exc:
            await self._abort(context, exc, where)
        finally:
            if call is not None:
                call.cancel()

    async def _nodes_of(self, context: Context, request: node_pb2.StatsRequest
                        ) -> dict[str, str]:
        """Node name → agent address of every node running a selected pod."""
        if request.pod:
            pod, _, _ = await self._route(context, "get", "", request.namespace, request.pod)
            names = {pod.spec.node_name}
        else:
            self.api._admit(context, self.api._attrs("list", "pods", "", request.namespace,
                                                     "", collection=True))
            listed = await self.resources.list("pods", request.namespace,
                                               field_selector="spec.nodeName!=")
            names = {core_pb2.Pod.FromString(data).spec.node_name for data in listed.items}
        nodes = {}
        for name in sorted(names):
            node = await self.resources.get("nodes", "", name)
            assert isinstance(node, core_pb2.Node)
            nodes[name] = node_address(node)
        return nodes

    async def Top(self, request: node_pb2.StatsRequest, context: Context
                  ) -> node_pb2.StatsResponse:
        """Usage of the selected pods, one Stats call per node that runs some, merged;
        unreachable nodes are left out (UNAVAILABLE when every one is)."""
        try:
            nodes = await self._nodes_of(context, request)
        except ApiError as exc:
            await self._abort(context, exc)
            raise
        forward = node_pb2.StatsRequest(namespace=request.namespace, pod=request.pod)
        if request.pod and not forward.namespace:
            forward.namespace = "default"
        replies = await asyncio.gather(
            *(self._stub(a).Stats(forward, timeout=STATS_TIMEOUT) for a in nodes.values()),
            return_exceptions=True)
        out = node_pb2.StatsResponse()
        failed = []
        for (name, address), reply in zip(nodes.items(), replies, strict=True):
            if isinstance(reply, node_pb2.StatsResponse):
                out.pods.extend(reply.pods)
            else:
                why = reply.details() if isinstance(reply, grpc.aio.AioRpcError) else reply
                failed.append(f"node {name} ({address}): {why}")
                log.warning("node stats failed", node=name, address=address, error=str(why))
        if failed and len(failed) == len(nodes):
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                "no usage from the agents of " + "; ".join(failed))
        out.pods.sort(key=lambda p: (p.namespace, p.name))
        return out
