"""``navarch apiserver``: flags, the gRPC server, health, reflection, metrics, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from navarch import _eventloop as eventloop
from navarch.v1 import node_pb2_grpc

from .auth import (
    AllowAll,
    AnonymousAuthenticator,
    Authenticator,
    Authorizer,
    DenyAll,
    PrivilegedGroup,
    TokenFileAuthenticator,
    Union,
    read_token_file,
)
from .bootstrap_rbac import ensure_bootstrap_policy
from .compactor import Compactor
from .config import ApiServerConfig, host_port
from .encryption import EncryptingStore, load_config
from .grpc_api import DISCOVERY_SERVICE, RESOURCES_SERVICE, ApiService
from .kubernetes_service import KubernetesService, first_service_ip
from .podproxy import PODS_SERVICE, PodProxy
from .rbac import CacheSource, EscalationCheck, RBACAuthorizer
from .resources import Resources
from .storage import EtcdStore, Store, StoreError

__all__ = ["run", "serve"]

log = structlog.get_logger("navarch.apiserver")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024

async def serve(config: ApiServerConfig, stop: asyncio.Event,
                ready: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set."""
    store: Store = EtcdStore(config.store_endpoints)
    if config.encryption_provider_config:  # checked by ApiServerConfig.from_args
        store = EncryptingStore(store, load_config(Path(config.encryption_provider_config)))
    resources = Resources(store, service_cidr=config.service_cluster_ip_range,
                          node_ports=config.service_node_port_range,
                          watch_cache_capacity=config.watch_cache_size)
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 0),
    ])
    authenticator, authorizer = _security(config, resources)
    api = ApiService(resources, authenticator=authenticator, authorizer=authorizer,
                     bookmark_interval=config.watch_bookmark_interval)
    server.add_generic_rpc_handlers(api.handlers())
    pod_proxy = PodProxy(api)
    node_pb2_grpc.add_PodsServicer_to_server(pod_proxy, server)  # type: ignore[no-untyped-call]
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (RESOURCES_SERVICE, DISCOVERY_SERVICE, PODS_SERVICE, health.SERVICE_NAME,
         reflection.SERVICE_NAME),
        server)
    for address in config.listen.split(","):
        server.add_insecure_port(address)
    if config.metrics_listen:
        from prometheus_client import start_http_server

        host, port = host_port("--metrics-listen", config.metrics_listen)
        start_http_server(port, addr=host)
    try:
        await resources.start()
    except StoreError as exc:  # e.g. a value no configured encryption key opens
        log.error("apiserver cannot load the store's objects", error=str(exc))
        await resources.stop()  # the caches already following the store
        await store.close()
        raise SystemExit(1) from None
    await ensure_bootstrap_policy(resources)
    kubernetes_service = KubernetesService(
        resources, service_ip=first_service_ip(config.service_cluster_ip_range),
        port=host_port("--listen", config.listen.split(",")[0])[1],
        advertised=config.advertised(),
        reconcile_endpoints=config.endpoint_reconciler_type == "lease")
    await kubernetes_service.reconcile()
    await server.start()
    for name in ("", RESOURCES_SERVICE, DISCOVERY_SERVICE, PODS_SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    compactor = asyncio.create_task(Compactor(store, config.compaction_interval).run())
    reconciler = asyncio.create_task(kubernetes_service.run())
    namespaces = asyncio.create_task(_every(60.0, resources.ensure_system_namespaces))
    log.info("apiserver serving", listen=config.listen, store=",".join(config.store_endpoints))
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("apiserver stopping")
        await health_servicer.enter_graceful_shutdown()
        for task in (compactor, reconciler, namespaces):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await kubernetes_service.stop()
        await resources.stop()
        await server.stop(grace=2.0)
        await pod_proxy.close()
        await store.close()


def _security(config: ApiServerConfig, resources: Resources
              ) -> tuple[Authenticator, Authorizer]:
    """The authenticator and authorizer the flags ask for; with RBAC, the escalation
    check on role and binding writes too."""
    authenticator: Authenticator = AnonymousAuthenticator()
    if config.token_auth_file:  # checked by ApiServerConfig.from_args
        authenticator = TokenFileAuthenticator(read_token_file(Path(config.token_auth_file)),
                                               anonymous=config.anonymous_auth)
    authorizers: list[Authorizer] = []
    for mode in config.authorization_modes:
        if mode == "AlwaysAllow":
            authorizers.append(AllowAll())
        elif mode == "AlwaysDeny":
            authorizers.append(DenyAll())
        else:
            rbac = RBACAuthorizer(CacheSource(resources.caches))
            authorizers += [PrivilegedGroup(), rbac]
    union = Union(authorizers)
    if "RBAC" in config.authorization_modes:
        resources.admission = EscalationCheck(
            next(a for a in authorizers if isinstance(a, RBACAuthorizer)), union.authorize)
    return authenticator, union


async def _every(seconds: float, job: Callable[[], Awaitable[None]]) -> None:
    """Run ``job`` every ``seconds``; a failure is logged and retried next time."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception:
            log.exception("periodic job failed", job=getattr(job, "__name__", repr(job)))


def run(config: ApiServerConfig) -> int:
    """Run until SIGTERM or SIGINT."""
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, stop)

    eventloop.run(main())
    return 0
