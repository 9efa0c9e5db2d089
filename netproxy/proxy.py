"""``navarch proxy``: the kube-proxy of a node. Runs inside the node's network namespace.

    informers: Services, Endpoints ─▶ dirty Service keys ─┐
               Nodes ─▶ routes dirty ─────────────────────┤
                                                          ▼
    sync loop (at most one sync per --min-sync-period):
        first sync, drift (the kernel's ruleset generation moved), or --sync-period
            ─▶ full sync: every chain rewritten, stale ones deleted   (one transaction)
        otherwise ─▶ the dirty Services' chains and elements only     (one transaction)
        ─▶ UDP conntrack entries of removed endpoints deleted
        ─▶ pod routes to the other nodes (host-gw or VXLAN) synced

Contracts:
- Nothing is written before the informers have synced, so a restarted proxy never
  programs an empty view over the rules the kernel still holds: traffic keeps flowing
  while the proxy is down, and the first sync repairs what changed meanwhile.
- Stopping leaves rules and routes in place; ``--cleanup`` removes them and exits.
- A refused transaction changes nothing; it is retried at the next sync as a full one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import time
from dataclasses import dataclass
from typing import Any

import structlog

from netproxy import conntrack
from netproxy.nftnl import NftError
from netproxy.programmer import Programmer, SyncResult
from netproxy.ruleset import ServicePort, rules_for, service_ports

log = structlog.get_logger("navarch.proxy")


class ConfigError(ValueError):
    """A flag value that cannot be used; the message names the flag."""


@dataclass(frozen=True)
class ProxyConfig:
    server: str
    node_name: str
    cluster_cidr: str
    mode: str  # host-gw, vxlan or none
    listen: str = ""
    min_sync_period: float = 0.1
    sync_period: float = 3600.0
    drift_check_interval: float = 1.0
    cleanup: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ProxyConfig:
        import socket

        if args.cluster_cidr:
            try:
                ipaddress.IPv4Network(args.cluster_cidr)
            except ValueError:
                raise ConfigError(f"--cluster-cidr: {args.cluster_cidr!r} is not an IPv4 "
                                  "network such as 10.244.0.0/16") from None
        for flag, value in (("--min-sync-period", args.min_sync_period),
                            ("--sync-period", args.sync_period),
                            ("--drift-check-interval", args.drift_check_interval)):
            if value < 0:
                raise ConfigError(f"{flag}: {value:g} is negative; seconds >= 0 are accepted")
        if args.listen:
            from services.apiserver.config import host_port

            try:
                host_port("--listen", args.listen)
            except ValueError as err:
                raise ConfigError(str(err)) from None
        return cls(args.server, args.node_name or socket.gethostname(), args.cluster_cidr,
                   args.mode, args.listen, args.min_sync_period, args.sync_period,
                   args.drift_check_interval, args.cleanup)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default="", help="the API server, HOST:PORT")
    p.add_argument("--node-name", default="", help="this node's name (default: hostname)")
    p.add_argument("--listen", default="",
                   help="HOST:PORT of the gRPC health service (SERVING once the first sync "
                   "is done); none when empty")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16",
                   help="the pod network: traffic to a ClusterIP from outside it is "
                   "masqueraded ('' to masquerade none)")
    p.add_argument("--mode", choices=("host-gw", "vxlan", "none"), default="host-gw",
                   help="how pods reach pods on other nodes: routes via the node (host-gw, "
                   "the nodes share a link), a VXLAN overlay, or none")
    p.add_argument("--min-sync-period", type=float, default=0.1,
                   help="seconds between two syncs at least (changes are batched)")
    p.add_argument("--sync-period", type=float, default=3600.0,
                   help="seconds between full syncs, a safety net: the generation check "
                   "already repairs other writers' changes within --drift-check-interval")
    p.add_argument("--drift-check-interval", type=float, default=1.0,
                   help="seconds between checks of the kernel's ruleset generation")
    p.add_argument("--cleanup", action="store_true",
                   help="remove Navarch's nftables table and pod routes, then exit")


def sync_kind(need_full: bool, pending: bool, since_full: float, period: float) -> str:
    """"full", "partial" or "" (nothing to do). A periodic full sync (10k Services: ~2 s)
    waits until no change is pending so that it never delays one; a needed one (start,
    drift, a refused transaction) does not wait."""
    if need_full or (period > 0 and since_full >= period and not pending):
        return "full"
    return "partial" if pending else ""


class Proxy:
    def __init__(self, client: Any, cfg: ProxyConfig, programmer: Programmer,
                 routes: Any = None) -> None:
        from navarch._informer import Informer

        self.client = client
        self.cfg = cfg
        self.programmer = programmer
        self.routes = routes
        self.services: Any = Informer(client.services(""))
        self.endpoints: Any = Informer(client.endpoints(""))
        self.nodes: Any = Informer(client.nodes()) if routes is not None else None
        self.dirty: set[str] = set()
        self.routes_dirty = True
        self.need_full = True
        self.wake = asyncio.Event()
        self.last_full = 0.0
        self.syncs = 0
        self.first_sync = asyncio.Event()
        self.background: list[asyncio.Task[None]] = []
        # per Service key: UDP (endpoint ip, port)s and served UDP VIPs, for conntrack
        self._udp: dict[str, tuple[set[tuple[str, int]], set[tuple[str, int]]]] = {}

    def _mark(self, obj: Any) -> None:
        self.dirty.add(f"{obj.metadata.namespace}/{obj.metadata.name}")
        self.wake.set()

    def _mark_nodes(self, *_: Any) -> None:
        self.routes_dirty = True
        self.wake.set()

    async def start_informers(self) -> list[asyncio.Task[None]]:
        tasks = []
        for informer in (self.services, self.endpoints):
            await informer.add_handlers(on_add=self._mark, on_update=lambda o, n: self._mark(n),
                                        on_delete=self._mark)
            tasks.append(informer.start())
        if self.nodes is not None:
            await self.nodes.add_handlers(on_add=self._mark_nodes,
                                          on_update=self._mark_nodes,
                                          on_delete=self._mark_nodes)
            tasks.append(self.nodes.start())
        await self.services.wait_synced()
        await self.endpoints.wait_synced()
        if self.nodes is not None:
            await self.nodes.wait_synced()
        return tasks

    # --- one sync ------------------------------------------------------------------------
    def _ports(self, keys: set[str] | None) -> dict[str, list[ServicePort] | None]:
        """The service ports of every Service (``keys`` None) or of ``keys``; None for a
        key whose Service is gone."""
        if keys is None:
            endpoints = {f"{ep.metadata.namespace}/{ep.metadata.name}": ep
                         for ep in self.endpoints.list()}
            return {key: service_ports(svc, endpoints.get(key))
                    for svc in self.services.list()
                    for key in (f"{svc.metadata.namespace}/{svc.metadata.name}",)}
        out: dict[str, list[ServicePort] | None] = {}
        for key in keys:
            ns, name = key.split("/", 1)
            svc = self.services.get(name, ns)
            out[key] = None if svc is None else service_ports(svc, self.endpoints.get(name, ns))
        return out

    def _udp_changes(self, ports: dict[str, list[ServicePort] | None], full: bool
                     ) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
        """Remember each Service's UDP endpoints and served VIPs; return the endpoints that
        went away and the VIPs that started being served (their conntrack entries are
        stale)."""
        new: dict[str, tuple[set[tuple[str, int]], set[tuple[str, int]]]] = {}
        for key, sps in ports.items():
            eps: set[tuple[str, int]] = set()
            served: set[tuple[str, int]] = set()
            for sp in sps or ():
                if sp.protocol != "udp":
                    continue
                eps.update((e.ip, e.port) for e in sp.endpoints)
                if sp.endpoints:
                    served.add((sp.cluster_ip, sp.port))
            new[key] = (eps, served)
        gone: set[tuple[str, int]] = set()
        now_served: set[tuple[str, int]] = set()
        for key, (eps, served) in new.items():
            old_eps, old_served = self._udp.get(key, (set(), set()))
            gone |= old_eps - eps
            now_served |= served - old_served
        if full:
            for key in set(self._udp) - set(new):
                gone |= self._udp[key][0]
            self._udp = {}
        for key, value in new.items():
            if value[0] or value[1]:
                self._udp[key] = value
            else:
                self._udp.pop(key, None)
        return gone, now_served

    async def sync_once(self) -> SyncResult | None:
        full = sync_kind(self.need_full, bool(self.dirty),
                         time.monotonic() - self.last_full, self.cfg.sync_period) == "full"
        keys: set[str] | None = None if full else set(self.dirty)
        self.dirty.clear()
        result: SyncResult | None = None
        if full or keys:
            ports = self._ports(keys)
            node, cidr = self.cfg.node_name, self.cfg.cluster_cidr or None
            changes = {key: None if sps is None else rules_for(sps, node, cidr)
                       for key, sps in ports.items()}
            gone, served = self._udp_changes(ports, full)
            try:
                if full:
                    desired = {k: v for k, v in changes.items() if v is not None}
                    result = await asyncio.to_thread(self.programmer.full_sync, desired)
                    self.last_full = time.monotonic()
                    self.need_full = False
                else:
                    result = await asyncio.to_thread(self.programmer.sync, changes)
            except (NftError, OSError) as err:
                log.error("sync failed; the next one is full", error=str(err))
                self.need_full = True
                result = None
            else:
                self.syncs += 1
                log.debug("synced", kind=result.kind, services=result.services,
                          messages=result.messages,
                          seconds=round(result.encode_seconds + result.commit_seconds, 4))
                if gone or served:
                    try:
                        n = await asyncio.to_thread(conntrack.flush_udp, gone, served)
                    except Exception as err:
                        log.warning("conntrack flush failed", error=str(err))
                    else:
                        if n:
                            log.info("deleted stale UDP conntrack entries", count=n)
        if self.routes is not None and self.routes_dirty and self.nodes is not None:
            self.routes_dirty = False
            try:
                await self.routes.sync(self.nodes.list())  # it logs each change
            except Exception as err:
                log.error("route sync failed; retried at the next drift check", error=str(err))
                self.routes_dirty = True
        if self.syncs and not (self.routes is not None and self.routes_dirty):
            self.first_sync.set()  # rules and routes are both in: health says SERVING
        return result

    async def run(self) -> None:
        tasks = await self.start_informers()
        log.info("informers synced", services=len(self.services.list()),
                 endpoints=len(self.endpoints.list()))
        last = 0.0
        next_drift_check = 0.0
        try:
            while True:
                wait = self.cfg.min_sync_period - (time.monotonic() - last)
                if wait > 0:
                    await asyncio.sleep(wait)
                now = time.monotonic()
                if now >= next_drift_check and not self.need_full:
                    next_drift_check = now + self.cfg.drift_check_interval
                    try:
                        drifted = await asyncio.to_thread(self.programmer.drifted)
                    except OSError as err:
                        log.error("cannot read the ruleset generation", error=str(err))
                        drifted = True
                    if drifted:
                        log.info("the ruleset changed under us: full sync")
                        self.need_full = True
                        self.routes_dirty = True
                self.wake.clear()
                await self.sync_once()
                last = time.monotonic()
                if self.dirty or self.need_full:
                    continue
                timeout = max(0.05, min(self.cfg.drift_check_interval,
                                        next_drift_check - time.monotonic()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout)
        finally:
            for task in tasks:
                task.cancel()


def _route_syncer(cfg: ProxyConfig) -> Any:
    if cfg.mode == "none":
        return None
    from netproxy.routes import RouteSyncer

    return RouteSyncer(cfg.node_name, cfg.mode)


async def serve(cfg: ProxyConfig, stop: asyncio.Event) -> None:
    from navarch import Client
    from services.daemon import run_until_stopped

    programmer = Programmer(cluster_cidr=cfg.cluster_cidr or None)
    if cfg.cleanup:
        removed = programmer.cleanup()
        routes = _route_syncer(cfg)
        if routes is not None:
            await routes.cleanup()
        log.info("cleaned up", table_removed=removed)
        programmer.close()
        return
    client = Client(cfg.server) if cfg.server else Client()
    proxy = Proxy(client, cfg, programmer, _route_syncer(cfg))
    server = await _health_server(cfg.listen, proxy) if cfg.listen else None
    try:
        await run_until_stopped(proxy.run(), stop, "proxy")
    finally:
        if server is not None:
            await server.stop(grace=0.5)
        programmer.close()
        close = getattr(client, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


async def _health_server(listen: str, proxy: Proxy) -> Any:
    """gRPC health: NOT_SERVING until the first sync has been committed."""
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(listen)
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)

    async def serving() -> None:
        await proxy.first_sync.wait()
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)

    proxy.background.append(asyncio.create_task(serving()))
    return server


def run(cfg: ProxyConfig) -> int:
    """Run until SIGTERM or SIGINT; the rules stay in the kernel."""
    from services.daemon import run_until_signal

    # pyroute2's asyncio netlink sockets are datagram endpoints uvloop refuses
    return run_until_signal(lambda stop: serve(cfg, stop), allow_uvloop=False)
