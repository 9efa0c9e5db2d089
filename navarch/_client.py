"""The typed asyncio client of the API server.

    async with navarch.Client() as client:                  # --server, NAVARCH_SERVER or config
        pod = await client.pods("default").create(pod)
        rv = pod.metadata.resource_version
        async for event in client.pods("default").watch(resource_version=rv):
            print(event.type, event.object.metadata.name)

``Client.resource(kind)`` gives a ``ResourceClient`` for any served kind; the per-kind
methods (``pods``, ``deployments``…) are the same, typed. Every method raises the errors
of ``navarch._errors`` (NotFound, Conflict, Invalid…).

With a token (``Client(token=…)``, $NAVARCH_TOKEN or the config file's ``token``) every
call carries ``authorization: Bearer <token>``, which API servers started with
``--token-auth-file`` read as Kubernetes' bearer tokens.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import grpc
from google.protobuf import any_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from navarch._errors import ApiError, from_rpc_error
from navarch._kinds import Kind, kind_of_message, resource
from navarch.v1 import (
    api_pb2,
    apps_pb2,
    autoscaling_pb2,
    batch_pb2,
    coordination_pb2,
    core_pb2,
    node_pb2,
    policy_pb2,
    rbac_pb2,
)

__all__ = [
    "Client", "ObjectList", "ResourceClient", "WatchEvent", "resolve_server", "resolve_token",
]

T = TypeVar("T", bound=Message)

DEFAULT_CONFIG = Path.home() / ".navarch" / "config.json"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def _config_path() -> Path:
    return Path(os.environ.get("NAVARCH_CONFIG", DEFAULT_CONFIG))


def _config_value(path: Path, key: str) -> str:
    """``key`` of the config file, "" when the file, or the key, is not there."""
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    value = config.get(key, "") if isinstance(config, dict) else ""
    return value if isinstance(value, str) else ""


def resolve_server(explicit: str | None = None) -> str:
    """The API server address: ``explicit``, else $NAVARCH_SERVER, else the ``server`` of
    the config file ($NAVARCH_CONFIG or ~/.navarch/config.json, written by ``navarch up``)."""
    if explicit:
        return explicit
    env = os.environ.get("NAVARCH_SERVER")
    if env:
        return env
    path = _config_path()
    server = _config_value(path, "server")
    if not server:
        raise ApiError(grpc.StatusCode.UNAVAILABLE,
                       "no API server given: pass --server HOST:PORT, set NAVARCH_SERVER, or "
                       f"start a local cluster with `make up` (which writes {path})")
    return server


def resolve_token(explicit: str | None = None, server: str | None = None) -> str:
    """The bearer token to send, found as the server is: ``explicit``, else
    $NAVARCH_TOKEN, else the ``token`` of the config file, but only for the config file's
    own ``server`` (a token goes to the cluster it belongs to, as a kubeconfig's user
    goes with its cluster; ``server`` None means that one); "" (send none) otherwise."""
    if explicit:
        return explicit
    env = os.environ.get("NAVARCH_TOKEN")
    if env:
        return env
    path = _config_path()
    if server is not None and server != _config_value(path, "server"):
        return ""
    return _config_value(path, "token")


@dataclass(frozen=True)
class ObjectList(Generic[T]):
    """One page of a list."""

    items: list[T]
    resource_version: str
    continue_token: str = ""
    remaining_item_count: int | None = None


@dataclass(frozen=True)
class WatchEvent(Generic[T]):
    """ADDED, MODIFIED, DELETED or BOOKMARK, with the object (only its resourceVersion for
    BOOKMARK)."""

    type: str
    object: T


def _decode_any(packed: any_pb2.Any) -> Message:
    full_name = packed.type_url.rsplit("/", 1)[-1]
    desc = descriptor_pool.Default().FindMessageTypeByName(full_name)
    msg = message_factory.GetMessageClass(desc)()
    msg.ParseFromString(packed.value)
    return msg


def _pack(obj: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(obj)
    return packed


class ResourceClient(Generic[T]):
    """The verbs of one kind, in one namespace ("" = all namespaces, for list and watch)."""

    def __init__(self, client: Client, kind: Kind, namespace: str) -> None:
        self._client = client
        self.kind = kind
        self.namespace = namespace if kind.namespaced else ""
        # objects are read and written in this kind's version when it is not the stored one
        self._version = "" if kind.storage else kind.api_version

    async def _unary(self, method: str, request: Message) -> Any:
        return await self._client.call(method, request)

    async def _object(self, method: str, request: Message) -> T:
        response = await self._unary(method, request)
        return cast(T, _decode_any(response.object))

    async def create(self, obj: T, *, dry_run: bool = False) -> T:
        """Create ``obj``; returns it as stored."""
        return await self._object("Create", api_pb2.CreateRequest(
            resource=self.kind.resource, api_version=self._version,
            namespace=self.namespace, object=_pack(obj),
            dry_run=dry_run))

    async def get(self, name: str) -> T:
        """The current object."""
        return await self._object("Get", api_pb2.GetRequest(
            resource=self.kind.resource, api_version=self._version,
            namespace=self.namespace, name=name))

    async def list(self, *, label_selector: str = "", field_selector: str = "",
                   limit: int = 0, continue_token: str = "",
                   resource_version: str = "") -> ObjectList[T]:
        """One page of objects (all of them when ``limit`` is 0)."""
        response = await self._unary("List", api_pb2.ListRequest(
            resource=self.kind.resource, api_version=self._version, namespace=self.namespace,
            label_selector=label_selector, field_selector=field_selector, limit=limit,
            continue_token=continue_token, resource_version=resource_version))
        remaining = (response.remaining_item_count
                     if response.HasField("remaining_item_count") else None)
        return ObjectList([cast(T, _decode_any(a)) for a in response.items],
                          response.resource_version, response.continue_token, remaining)

    async def list_all(self, *, label_selector: str = "", field_selector: str = "",
                       page_size: int = 500) -> ObjectList[T]:
        """Every matching object, fetched page by page at one resourceVersion."""
        items: list[T] = []
        token = ""
        while True:
            page = await self.list(label_selector=label_selector,
                                   field_selector=field_selector, limit=page_size,
                                   continue_token=token)
            items += page.items
            token = page.continue_token
            if not token:
                return ObjectList(items, page.resource_version)

    async def watch(self, *, resource_version: str = "", label_selector: str = "",
                    field_selector: str = "", allow_bookmarks: bool = False,
                    timeout_seconds: int = 0) -> AsyncGenerator[WatchEvent[T], None]:
        """Changes after ``resource_version`` ("" or "0": ADDED for every current object
        first). Raises Gone when that version is compacted."""
        request = api_pb2.WatchRequest(
            resource=self.kind.resource, api_version=self._version, namespace=self.namespace,
            label_selector=label_selector, field_selector=field_selector,
            resource_version=resource_version, allow_watch_bookmarks=allow_bookmarks,
            timeout_seconds=timeout_seconds)
        call = self._client.stream("WatchBatches", request)
        try:
            async for batch in call:
                for event in batch.events:
                    yield WatchEvent(event.type, cast(T, _decode_any(event.object)))
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()

    async def update(self, obj: T, *, dry_run: bool = False) -> T:
        """Replace the object (ABORTED/Conflict when its resourceVersion is stale)."""
        return await self._object("Update", api_pb2.UpdateRequest(
            resource=self.kind.resource, api_version=self._version,
            namespace=self.namespace, object=_pack(obj),
            dry_run=dry_run))

    async def update_status(self, obj: T) -> T:
        """Replace the object's status (the rest is ignored)."""
        return await self._object("Update", api_pb2.UpdateRequest(
            resource=self.kind.resource, api_version=self._version,
            namespace=self.namespace, subresource="status",
            object=_pack(obj)))

    async def patch(self, name: str, patch: Any, *, patch_type: str = "merge",
                    subresource: str = "", dry_run: bool = False) -> T:
        """Patch the object: ``patch`` is a JSON merge patch (a dict), with
        ``patch_type="strategic"`` a Kubernetes strategic merge patch (a dict), or with
        ``patch_type="json"`` a JSON patch (a list of operations)."""
        media = {"merge": "application/merge-patch+json",
                 "strategic": "application/strategic-merge-patch+json",
                 "json": "application/json-patch+json"}.get(patch_type, patch_type)
        body = patch if isinstance(patch, bytes) else json.dumps(patch).encode()
        response = await self._unary("Patch", api_pb2.PatchRequest(
            resource=self.kind.resource, api_version=self._version,
            namespace=self.namespace, name=name,
            subresource=subresource, patch_type=media, patch=body, dry_run=dry_run))
        return cast(T, _decode_any(response.object))

    async def delete(self, name: str, *, grace_period_seconds: int | None = None,
                     propagation_policy: str = "", uid: str = "", resource_version: str = "",
                     dry_run: bool = False) -> T:
        """Delete (or start deleting) the object; returns its last state."""
        request = api_pb2.DeleteRequest(
            resource=self.kind.resource, api_version=self._version,
            namespace=self.namespace, name=name,
            propagation_policy=propagation_policy, dry_run=dry_run,
            preconditions=api_pb2.Preconditions(uid=uid, resource_version=resource_version))
        if grace_period_seconds is not None:
            request.grace_period_seconds = grace_period_seconds
        return await self._object("Delete", request)

    async def get_scale(self, name: str) -> autoscaling_pb2.Scale:
        """The scale subresource."""
        response = await self._unary("Get", api_pb2.GetRequest(
            resource=self.kind.resource, api_version=self._version,
            namespace=self.namespace, name=name,
            subresource="scale"))
        return cast(autoscaling_pb2.Scale, _decode_any(response.object))

    async def scale(self, name: str, replicas: int, *,
                    resource_version: str = "") -> autoscaling_pb2.Scale:
        """Set spec.replicas through the scale subresource."""
        scale = autoscaling_pb2.Scale()
        scale.metadata.name = name
        scale.metadata.namespace = self.namespace
        scale.metadata.resource_version = resource_version
        scale.spec.replicas = replicas
        response = await self._unary("Update", api_pb2.UpdateRequest(
            resource=self.kind.resource, api_version=self._version,
            namespace=self.namespace, subresource="scale",
            object=_pack(scale)))
        return cast(autoscaling_pb2.Scale, _decode_any(response.object))


class Client:
    """A connection to an API server. Use as ``async with``, or call ``close``.

    ``metadata`` is sent with every call (unary and streaming alike). ``token`` adds
    ``authorization: Bearer <token>`` to it (replacing an ``authorization`` entry of
    ``metadata``); without either, the token is $NAVARCH_TOKEN, else the config file's
    ``token`` when ``server`` is the config file's (see ``resolve_token``), else none is
    sent."""

    def __init__(self, server: str | None = None, *, timeout: float = 30.0,
                 metadata: Sequence[tuple[str, str]] = (), token: str = "") -> None:
        self.server = resolve_server(server)
        self.timeout = timeout
        given = any(key.lower() == "authorization" for key, _ in metadata)
        bearer = token or ("" if given else resolve_token(server=self.server))
        if bearer:
            metadata = [*((k, v) for k, v in metadata if k.lower() != "authorization"),
                        ("authorization", f"Bearer {bearer}")]
        self.metadata = tuple(metadata)
        self.channel = grpc.aio.insecure_channel(self.server, options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_time_ms", 30_000),
        ])
        self._methods: dict[str, Any] = {}

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel (ending open watches)."""
        await self.channel.close()

    def _method(self, service: str, name: str, request: Message, response: type[Message],
                stream: bool = False) -> Any:
        key = f"{service}/{name}"
        found = self._methods.get(key)
        if found is None:
            factory = self.channel.unary_stream if stream else self.channel.unary_unary
            found = factory(f"/navarch.v1.{service}/{name}",
                            request_serializer=type(request).SerializeToString,
                            response_deserializer=response.FromString)
            self._methods[key] = found
        return found

    async def call(self, method: str, request: Message) -> Any:
        """One unary call of navarch.v1.Resources; errors become ``navarch`` errors."""
        response = (api_pb2.ListResponse if method == "List" else api_pb2.ObjectResponse)
        rpc = self._method("Resources", method, request, response)
        try:
            return await rpc(request, timeout=self.timeout, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None

    def stream(self, method: str, request: Message) -> Any:
        """A server-streaming call of navarch.v1.Resources (Watch, WatchBatches)."""
        response = api_pb2.WatchEventBatch if method == "WatchBatches" else api_pb2.WatchEvent
        rpc = self._method("Resources", method, request, response, stream=True)
        return rpc(request, metadata=self.metadata)

    async def pod_logs(self, request: node_pb2.ContainerLogsRequest) -> AsyncIterator[bytes]:
        """A container's log through the API server (navarch.v1.Pods/Logs), in chunks of
        whole lines; with ``follow`` it streams until the container stops. Leaving the
        loop early cancels the call."""
        rpc = self._method("Pods", "Logs", request, node_pb2.LogChunk, stream=True)
        call = rpc(request, metadata=self.metadata)
        try:
            async for chunk in call:
                yield chunk.data
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()

    async def pod_exec(self, request: node_pb2.ExecRequest,
                       inputs: AsyncIterator[node_pb2.ExecInput] | None = None
                       ) -> AsyncIterator[node_pb2.ExecOutput]:
        """Run a command in a pod's container (navarch.v1.Pods/Exec): output as it comes,
        the last message with the exit code. ``inputs`` (stdin bytes, terminal resizes)
        are sent as they come when ``request`` asks for stdin or a tty; their end closes
        the command's input."""
        rpc = self._methods.get("Pods/Exec")
        if rpc is None:
            rpc = self._methods["Pods/Exec"] = self.channel.stream_stream(
                "/navarch.v1.Pods/Exec",
                request_serializer=node_pb2.ExecInput.SerializeToString,
                response_deserializer=node_pb2.ExecOutput.FromString)

        async def messages() -> AsyncIterator[node_pb2.ExecInput]:
            yield node_pb2.ExecInput(start=request)
            if inputs is not None:
                async for item in inputs:
                    yield item

        call = rpc(messages(), metadata=self.metadata)
        try:
            async for out in call:
                yield out
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()

    async def pod_top(self, namespace: str = "", pod: str = "") -> node_pb2.StatsResponse:
        """CPU and memory of pods, from their nodes (navarch.v1.Pods/Top)."""
        request = node_pb2.StatsRequest(namespace=namespace, pod=pod)
        rpc = self._method("Pods", "Top", request, node_pb2.StatsResponse)
        try:
            reply: node_pb2.StatsResponse = await rpc(request, timeout=self.timeout,
                                                      metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        return reply

    async def api_resources(self) -> list[api_pb2.APIResource]:
        """What the server serves (Discovery.ListResources)."""
        rpc = self._method("Discovery", "ListResources", api_pb2.ListResourcesRequest(),
                           api_pb2.ListResourcesResponse)
        try:
            response = await rpc(api_pb2.ListResourcesRequest(), timeout=self.timeout,
                                 metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        return list(response.resources)

    async def version(self) -> api_pb2.VersionResponse:
        """The server's version (Discovery.Version)."""
        rpc = self._method("Discovery", "Version", api_pb2.VersionRequest(),
                           api_pb2.VersionResponse)
        try:
            result: api_pb2.VersionResponse = await rpc(
                api_pb2.VersionRequest(), timeout=self.timeout, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        return result

    # --- generic ------------------------------------------------------------------------

    def resource(self, kind: str | type[T] | Kind, namespace: str = "default"
                 ) -> ResourceClient[Any]:
        """A ResourceClient for a kind named as users type it (``pods``, ``deploy``), a
        message class, or a Kind."""
        if isinstance(kind, Kind):
            found = kind
        elif isinstance(kind, str):
            found = resource(kind)
        else:
            found = kind_of_message(kind())
        return ResourceClient(self, found, namespace)

    def for_object(self, obj: T) -> ResourceClient[T]:
        """The ResourceClient of ``obj``'s kind and namespace (default "default")."""
        kind = kind_of_message(obj)
        namespace = obj.metadata.namespace or "default"  # type: ignore[attr-defined]
        return ResourceClient(self, kind, namespace)

    # --- typed accessors ----------------------------------------------------------------

    def namespaces(self) -> ResourceClient[core_pb2.Namespace]:
        """Namespaces (cluster-scoped)."""
        return self.resource("namespaces", "")

    def nodes(self) -> ResourceClient[core_pb2.Node]:
        """Nodes (cluster-scoped)."""
        return self.resource("nodes", "")

    def pods(self, namespace: str = "default") -> ResourceClient[core_pb2.Pod]:
        """Pods in ``namespace`` ("" = all, for list and watch)."""
        return self.resource("pods", namespace)

    def services(self, namespace: str = "default") -> ResourceClient[core_pb2.Service]:
        """Services."""
        return self.resource("services", namespace)

    def endpoints(self, namespace: str = "default") -> ResourceClient[core_pb2.Endpoints]:
        """Endpoints."""
        return self.resource("endpoints", namespace)

    def configmaps(self, namespace: str = "default") -> ResourceClient[core_pb2.ConfigMap]:
        """ConfigMaps."""
        return self.resource("configmaps", namespace)

    def secrets(self, namespace: str = "default") -> ResourceClient[core_pb2.Secret]:
        """Secrets."""
        return self.resource("secrets", namespace)

    def events(self, namespace: str = "default") -> ResourceClient[core_pb2.Event]:
        """Events."""
        return self.resource("events", namespace)

    def serviceaccounts(self, namespace: str = "default"
                        ) -> ResourceClient[core_pb2.ServiceAccount]:
        """ServiceAccounts."""
        return self.resource("serviceaccounts", namespace)

    def persistentvolumes(self) -> ResourceClient[core_pb2.PersistentVolume]:
        """PersistentVolumes (cluster-scoped)."""
        return self.resource("persistentvolumes", "")

    def persistentvolumeclaims(self, namespace: str = "default"
                               ) -> ResourceClient[core_pb2.PersistentVolumeClaim]:
        """PersistentVolumeClaims."""
        return self.resource("persistentvolumeclaims", namespace)

    def deployments(self, namespace: str = "default") -> ResourceClient[apps_pb2.Deployment]:
        """Deployments."""
        return self.resource("deployments", namespace)

    def replicasets(self, namespace: str = "default") -> ResourceClient[apps_pb2.ReplicaSet]:
        """ReplicaSets."""
        return self.resource("replicasets", namespace)

    def daemonsets(self, namespace: str = "default") -> ResourceClient[apps_pb2.DaemonSet]:
        """DaemonSets."""
        return self.resource("daemonsets", namespace)

    def statefulsets(self, namespace: str = "default") -> ResourceClient[apps_pb2.StatefulSet]:
        """StatefulSets."""
        return self.resource("statefulsets", namespace)

    def controllerrevisions(self, namespace: str = "default"
                            ) -> ResourceClient[apps_pb2.ControllerRevision]:
        """ControllerRevisions."""
        return self.resource("controllerrevisions", namespace)

    def jobs(self, namespace: str = "default") -> ResourceClient[batch_pb2.Job]:
        """Jobs."""
        return self.resource("jobs", namespace)

    def cronjobs(self, namespace: str = "default") -> ResourceClient[batch_pb2.CronJob]:
        """CronJobs."""
        return self.resource("cronjobs", namespace)

    def horizontalpodautoscalers(self, namespace: str = "default"
                                 ) -> ResourceClient[autoscaling_pb2.HorizontalPodAutoscaler]:
        """HorizontalPodAutoscalers (autoscaling/v2)."""
        return self.resource("horizontalpodautoscalers", namespace)

    def leases(self, namespace: str = "default") -> ResourceClient[coordination_pb2.Lease]:
        """Leases."""
        return self.resource("leases", namespace)

    def poddisruptionbudgets(self, namespace: str = "default"
                             ) -> ResourceClient[policy_pb2.PodDisruptionBudget]:
        """PodDisruptionBudgets (policy/v1)."""
        return self.resource("poddisruptionbudgets", namespace)

    def roles(self, namespace: str = "default") -> ResourceClient[rbac_pb2.Role]:
        """Roles (rbac.authorization.k8s.io/v1)."""
        return self.resource("roles", namespace)

    def clusterroles(self) -> ResourceClient[rbac_pb2.ClusterRole]:
        """ClusterRoles (cluster-scoped)."""
        return self.resource("clusterroles", "")

    def rolebindings(self, namespace: str = "default"
                     ) -> ResourceClient[rbac_pb2.RoleBinding]:
        """RoleBindings (rbac.authorization.k8s.io/v1)."""
        return self.resource("rolebindings", namespace)

    def clusterrolebindings(self) -> ResourceClient[rbac_pb2.ClusterRoleBinding]:
        """ClusterRoleBindings (cluster-scoped)."""
        return self.resource("clusterrolebindings", "")

    async def access_review(self, verb: str, resource: str = "", *, namespace: str = "",
                            group: str = "", subresource: str = "", name: str = "",
                            path: str = "") -> rbac_pb2.SelfSubjectAccessReview:
        """Whether this client's user may do ``verb`` on ``resource`` (in ``group``,
        ``namespace``; "" namespace: all of them), or with ``path``, on a non-resource URL
        (``/healthz``): a SelfSubjectAccessReview the server answers and stores nothing
        of. The answer is ``status.allowed`` (with ``status.reason`` and
        ``status.evaluation_error`` when there is more to say)."""
        review = rbac_pb2.SelfSubjectAccessReview(api_version="authorization.k8s.io/v1",
                                                  kind="SelfSubjectAccessReview")
        if path:
            if resource:
                raise ValueError("access_review: give a resource or a path, not both")
            review.spec.non_resource_attributes.path = path
            review.spec.non_resource_attributes.verb = verb
        else:
            review.spec.resource_attributes.CopyFrom(rbac_pb2.ResourceAttributes(
                namespace=namespace, verb=verb, group=group, resource=resource,
                subresource=subresource, name=name))
        reviews: ResourceClient[rbac_pb2.SelfSubjectAccessReview] = self.resource(
            "selfsubjectaccessreviews", "")
        return await reviews.create(review)

    async def evict(self, namespace: str, pod: str, *, grace_period_seconds: int | None = None,
                    dry_run: bool = False) -> core_pb2.Pod:
        """Evict a pod (pods/eviction): delete it if its PodDisruptionBudget allows.

        Raises ``TooManyRequests`` (RESOURCE_EXHAUSTED) while the budget allows no
        disruption: retry later, as ``navctl drain`` does every 5 s. Returns the pod's
        last state (being deleted)."""
        eviction = policy_pb2.Eviction(api_version="policy/v1", kind="Eviction")
        eviction.metadata.name = pod
        eviction.metadata.namespace = namespace
        if grace_period_seconds is not None:
            eviction.delete_options.grace_period_seconds = grace_period_seconds
        if dry_run:
            eviction.delete_options.dry_run.append("All")
        response = await self.call("Create", api_pb2.CreateRequest(
            resource="pods", namespace=namespace, name=pod, subresource="eviction",
            object=_pack(eviction), dry_run=dry_run))
        return cast(core_pb2.Pod, _decode_any(response.object))

    async def bind(self, namespace: str, pod: str, node: str) -> core_pb2.Pod:
        """Bind a pending pod to a node (pods/binding)."""
        binding = core_pb2.Binding()
        binding.metadata.name = pod
        binding.metadata.namespace = namespace
        binding.target.kind = "Node"
        binding.target.name = node
        response = await self.call("Create", api_pb2.CreateRequest(
            resource="pods", namespace=namespace, name=pod, subresource="binding",
            object=_pack(binding)))
        return cast(core_pb2.Pod, _decode_any(response.object))
