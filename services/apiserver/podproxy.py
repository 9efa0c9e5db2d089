"""The Pods service: ``navctl logs | exec | top`` through the API server to the node.

    navctl ──Pods.Logs/Exec/Top──▶ apiserver: authorize (pods/log get, pods/exec create,
        pods get), read the Pod ─▶ spec.nodeName ─▶ the Node's InternalIP and
        daemonEndpoints.kubeletEndpoint.port ─▶ NodeAgent.ContainerLogs/Exec/Stats,
        replies streamed back as they come

Errors: no such pod → NOT_FOUND; not yet scheduled → FAILED_PRECONDITION; the node's
agent unreachable → UNAVAILABLE naming the node and its address. One channel per node
address, kept for later calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_status import rpc_status

from navarch.v1 import core_pb2, node_pb2, node_pb2_grpc

from .errors import ApiError
from .grpc_api import ApiService

__all__ = ["PODS_SERVICE", "PodProxy"]

PODS_SERVICE = "navarch.v1.Pods"
KUBELET_PORT = 10250


DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"


def default_container(pod: core_pb2.Pod) -> str:
    """The container logs and exec use when none is named, as kubectl picks it: the
    default-container annotation, else the first (regular) container."""
    named = pod.metadata.annotations.get(DEFAULT_CONTAINER, "")
    if named:
        return named
    return pod.spec.containers[0].name if pod.spec.containers else ""


class PodProxy(node_pb2_grpc.PodsServicer):
    """Routes pod logs, exec and stats to the pod's node agent."""

    def __init__(self, api: ApiService) -> None:
        self.api = api
        self.resources = api.resources
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    def _stub(self, address: str) -> node_pb2_grpc.NodeAgentStub:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = grpc.aio.insecure_channel(address)
        return node_pb2_grpc.NodeAgentStub(channel)  # type: ignore[no-untyped-call]

    @staticmethod
    def node_address(node: core_pb2.Node) -> str:
        ip = next((a.address for a in node.status.addresses if a.type == "InternalIP"), "")
        if not ip:
            raise ApiError(grpc.StatusCode.FAILED_PRECONDITION,
                           f"node {node.metadata.name} has no InternalIP address",
                           reason="BadRequest")
        port = node.status.daemon_endpoints.kubelet_endpoint.port or KUBELET_PORT
        return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"

    async def _route(self, context: grpc.aio.ServicerContext[Any, Any], verb: str,
                     subresource: str, namespace: str, name: str
                     ) -> tuple[node_pb2_grpc.NodeAgentStub, str, core_pb2.Pod]:
        self.api._admit(context, self.api._attrs(verb, "pods", subresource, namespace, name))
        pod = await self.resources.get("pods", namespace or "default", name)
        if not pod.spec.node_name:
            raise ApiError(grpc.StatusCode.FAILED_PRECONDITION,
                           f"pod {name} is not scheduled to a node yet", reason="BadRequest")
        node = await self.resources.get("nodes", "", pod.spec.node_name)
        address = self.node_address(node)
        return self._stub(address), f"node {pod.spec.node_name} ({address})", pod

    async def _abort(self, context: grpc.aio.ServicerContext[Any, Any], exc: Exception,
                     where: str = "") -> None:
        if isinstance(exc, ApiError):
            await context.abort_with_status(rpc_status.to_status(exc.to_status()))
        assert isinstance(exc, grpc.aio.AioRpcError)
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                f"the agent of {where} is unreachable: {exc.details()}")
        await context.abort(exc.code(), exc.details() or "")

    async def Logs(self, request: node_pb2.ContainerLogsRequest,
                   context: grpc.aio.ServicerContext[Any, Any]
                   ) -> AsyncIterator[node_pb2.LogChunk]:
        where = ""
        try:
            stub, where, pod = await self._route(context, "get", "log", request.namespace,
                                                 request.pod)
            routed = node_pb2.ContainerLogsRequest()
            routed.CopyFrom(request)
            routed.container = request.container or default_container(pod)
            async for chunk in stub.ContainerLogs(routed):
                yield chunk
        except (ApiError, grpc.aio.AioRpcError) as exc:
            await self._abort(context, exc, where)

    async def Exec(self, request: node_pb2.ExecRequest,
                   context: grpc.aio.ServicerContext[Any, Any]
                   ) -> AsyncIterator[node_pb2.ExecOutput]:
        where = ""
        try:
            stub, where, pod = await self._route(context, "create", "exec",
                                                 request.namespace, request.pod)
            routed = node_pb2.ExecRequest()
            routed.CopyFrom(request)
            routed.container = request.container or default_container(pod)
            async for out in stub.Exec(routed):
                yield out
        except (ApiError, grpc.aio.AioRpcError) as exc:
            await self._abort(context, exc, where)

    async def Top(self, request: node_pb2.StatsRequest,
                  context: grpc.aio.ServicerContext[Any, Any]) -> node_pb2.StatsResponse:
        try:
            self.api._admit(context, self.api._attrs("get", "pods", "", request.namespace,
                                                     request.pod, collection=not request.pod))
            listed = await self.resources.list("pods", request.namespace,
                                               field_selector="spec.nodeName!=")
            nodes = set()
            for data in listed.items:
                pod = core_pb2.Pod.FromString(data)
                if not request.pod or pod.metadata.name == request.pod:
                    nodes.add(pod.spec.node_name)
            addresses = []
            for name in sorted(nodes):
                node = await self.resources.get("nodes", "", name)
                addresses.append(self.node_address(node))
        except ApiError as exc:
            await self._abort(context, exc)
            raise
        replies = await asyncio.gather(
            *(self._stub(a).Stats(request, timeout=10.0) for a in addresses),
            return_exceptions=True)
        out = node_pb2.StatsResponse()
        for reply in replies:
            if isinstance(reply, node_pb2.StatsResponse):
                out.pods.extend(reply.pods)
        return out
