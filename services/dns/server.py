"""``navarch dns``: the cluster DNS server — flags, the informers that feed the index, and
the UDP and TCP listeners.

Flow::

    API server ──list+watch──▶ Services, Endpoints informers ──set/delete──▶ ClusterIndex
    client ──UDP/TCP──▶ DnsServer.start(wire) ──records.answer (pure)──▶ reply ──▶ client
                              └─ a name outside the domain ──▶ --upstream ──▶ reply
                                 (SERVFAIL without one, or when it does not answer)

Contracts:
- Every answer comes from memory; no API call is made per query. Until both informers
  have listed once, questions about the cluster's names (and reverse names) are answered
  SERVFAIL rather than with a wrong NXDOMAIN that resolvers would cache.
- The index is changed only by informer handlers and read only by query handlers, all on
  one event loop: a query sees each object before or after a change, never half of it.
- UDP answers fit in 512 bytes or the client's EDNS payload size, truncated with TC set
  otherwise; TCP carries the full answer (several queries per connection, in order).
- SIGTERM/SIGINT: the listeners close, forwarded queries in flight are dropped, the
  informers stop, the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, cast

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import structlog
from prometheus_client import Counter

from services.daemon import ConfigError, run_until_signal

from .records import Answer, ClusterIndex, Zone, answer

__all__ = ["DnsConfig", "DnsServer", "add_arguments", "main", "query_error", "reply",
           "serve", "to_wire", "udp_limit"]

log = structlog.get_logger("navarch.dns")

REQUESTS = Counter("navarch_dns_requests_total", "DNS responses sent, by transport and rcode",
                   ["transport", "rcode"])
FORWARDS = Counter("navarch_dns_forward_total", "Questions sent to the upstream, by outcome",
                   ["outcome"])

TCP_IDLE_SECONDS = 10.0  # a TCP connection with no query for this long is closed
UPSTREAM_TIMEOUT = 2.0
OUR_PAYLOAD = 1232  # EDNS payload we advertise (DNS flag day 2020)
_REVERSE = (dns.name.from_text("in-addr.arpa"), dns.name.from_text("ip6.arpa"))


# --- flags ---------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``navarch dns``."""
    p.add_argument("--server", default="",
                   help="the API server, HOST:PORT (default: $NAVARCH_SERVER, then the "
                   "navctl config file)")
    p.add_argument("--listen", default="0.0.0.0:53",
                   help="HOST:PORT to answer DNS on, over UDP and TCP; several, "
                   "comma-separated (IPv6 as [ADDR]:PORT)")
    p.add_argument("--domain", default="cluster.local", help="the cluster domain")
    p.add_argument("--ttl", type=int, default=5,
                   help="seconds answers (and negative answers) may be cached, 0-3600")
    p.add_argument("--upstream", default="",
                   help="IP:PORT of a resolver for names outside the cluster domain "
                   "(none: SERVFAIL for them)")
    p.add_argument("--metrics-listen", default="",
                   help="HOST:PORT to serve Prometheus metrics on (off when empty)")


def _address(flag: str, value: str) -> tuple[str, int]:
    """(IP, port) of an ``IP:PORT`` or ``[IPv6]:PORT`` flag value."""
    host, sep, port = value.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{flag}: expected IP:PORT, got {value!r}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"{flag}: {host!r} in {value!r} is not an IP address") from None
    return host, int(port)


def _text(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class DnsConfig:
    """The validated flags of ``navarch dns``."""

    server: str
    listen: tuple[tuple[str, int], ...]
    domain: str = "cluster.local"
    ttl: int = 5
    upstream: tuple[str, int] | None = None
    metrics_listen: str = ""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DnsConfig:
        """Validate the parsed flags; ConfigError naming the flag otherwise."""
        listen = tuple(_address("--listen", v) for v in args.listen.split(",") if v.strip())
        if not listen:
            raise ConfigError("--listen: give at least one IP:PORT")
        domain = args.domain.strip().rstrip(".").lower()
        try:
            if not domain:
                raise ValueError("empty")
            dns.name.from_text(domain)
        except (ValueError, dns.exception.DNSException):
            raise ConfigError(f"--domain: {args.domain!r} is not a DNS name such as "
                              "cluster.local") from None
        if not 0 <= args.ttl <= 3600:
            raise ConfigError(f"--ttl: expected 0 to 3600 seconds, got {args.ttl}")
        upstream = _address("--upstream", args.upstream) if args.upstream else None
        if args.metrics_listen:
            from services.apiserver.config import host_port
            host_port("--metrics-listen", args.metrics_listen)
        return cls(args.server, listen, domain, args.ttl, upstream, args.metrics_listen)


# --- messages (pure) -----------------------------------------------------------------------


def query_error(query: dns.message.Message) -> dns.rcode.Rcode | None:
    """The error rcode a query gets without being looked up, None when it can be.

    Only standard queries of one question are answered (NOTIMP for other opcodes,
    FORMERR for other counts or a meta type asked); EDNS versions above 0 get BADVERS,
    classes other than IN and zone transfers REFUSED."""
    if query.opcode() != dns.opcode.QUERY:
        return dns.rcode.NOTIMP
    if len(query.question) != 1:
        return dns.rcode.FORMERR
    if query.edns > 0:
        return dns.rcode.BADVERS
    q = query.question[0]
    if q.rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR) \
            or q.rdclass not in (dns.rdataclass.IN, dns.rdataclass.ANY):
        return dns.rcode.REFUSED
    if dns.rdatatype.is_metatype(q.rdtype) and q.rdtype != dns.rdatatype.ANY:
        return dns.rcode.FORMERR
    return None


def reply(query: dns.message.Message, result: Answer | dns.rcode.Rcode, *,
          recursion_available: bool = False) -> dns.message.Message:
    """The response to ``query``: ``result``'s sections and rcode, or just an rcode.
    Authoritative when it answers from the cluster's names; EDNS when the query had it."""
    response = dns.message.make_response(query, recursion_available=recursion_available,
                                         our_payload=OUR_PAYLOAD)
    if isinstance(result, Answer):
        response.set_rcode(result.rcode)
        if result.rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            response.flags |= dns.flags.AA
        response.answer = list(result.answer)
        response.authority = list(result.authority)
        response.additional = list(result.additional)
    else:
        response.set_rcode(result)
    return response


def udp_limit(query: dns.message.Message) -> int:
    """The largest UDP response the client takes: 512 bytes, or its EDNS payload size."""
    return max(512, query.payload) if query.edns >= 0 else 512


def to_wire(response: dns.message.Message, max_size: int = 65535) -> bytes:
    """The response in wire format, at most ``max_size`` bytes (512 at least).

    Too big: the additional and authority sections go, then answer records from the end,
    until it fits, and TC is set — a client honouring TC asks again over TCP, one ignoring
    it still gets a usable prefix of the answer."""
    try:
        return response.to_wire(max_size=max_size)
    except dns.exception.TooBig:
        pass
    records = [(rrset.name, rrset.ttl, rd) for rrset in response.answer for rd in rrset]

    def render(count: int) -> bytes | None:
        short = dns.message.Message(id=response.id)
        short.flags = response.flags | dns.flags.TC
        short.question = list(response.question)
        if response.edns >= 0:
            short.use_edns(response.edns, response.ednsflags, response.payload,
                           options=list(response.options))
        short.set_rcode(response.rcode())
        for name, ttl, rd in records[:count]:
            short.find_rrset(short.answer, name, dns.rdataclass.IN, rd.rdtype,
                             create=True).add(rd, ttl)
        try:
            return short.to_wire(max_size=max_size)
        except dns.exception.TooBig:
            return None

    best = render(0)  # a question always fits in 512 bytes
    assert best is not None
    # render(low) fits: find the largest count that does, knowing that a record takes 12
    # bytes at least (a compressed name, type, class, TTL and length)
    low, high = 0, min(len(records), max_size // 12)
    while low < high:
        mid = (low + high + 1) // 2
        wire = render(mid)
        if wire is None:
            high = mid - 1
        else:
            low, best = mid, wire
    return best


def _formerr(wire: bytes) -> bytes | None:
    """FORMERR for a message that does not parse but has a query's header; None (drop it)
    for anything shorter or already a response."""
    if len(wire) < 12 or wire[2] & 0x80:
        return None
    flags = 0x8000 | (wire[2] & 0x79) << 8  # QR, the opcode and RD echoed
    return wire[:2] + (flags | dns.rcode.FORMERR).to_bytes(2, "big") + bytes(8)


# --- the server ----------------------------------------------------------------------------


@dataclass
class Pending:
    """A query the upstream has to help answer: forwarded whole (``partial`` None), or a
    cluster answer ending in a CNAME out of the domain, to follow there."""

    query: dns.message.Message
    partial: Answer | None
    tcp: bool


class DnsServer:
    """Answers DNS messages from the index; asks the upstream for the rest.

    ``start`` does everything that needs no network and is called straight from the
    socket callbacks; only a ``Pending`` result costs a task (``finish``)."""

    def __init__(self, config: DnsConfig, index: ClusterIndex) -> None:
        self.config = config
        self.index = index
        self.zone = Zone.of(config.domain, config.ttl)
        self.synced = False
        self._rotation = 0

    def start(self, wire: bytes, tcp: bool) -> bytes | Pending | None:
        """The response to one message, a Pending for the upstream, or None to drop it."""
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # every way a message can be malformed
            return self._count(_formerr(wire), "tcp" if tcp else "udp", "FORMERR")
        if query.flags & dns.flags.QR:
            return None
        problem = query_error(query)
        if problem is not None:
            return self._render(query, reply(query, problem), tcp)
        question = query.question[0]
        qname = question.name
        if not self.synced and (qname.is_subdomain(self.zone.domain)
                                or any(qname.is_subdomain(r) for r in _REVERSE)):
            return self._render(query, reply(query, dns.rcode.SERVFAIL), tcp)
        self._rotation += 1
        try:
            result = answer(self.index, self.zone, qname, question.rdtype, self._rotation)
        except Exception:  # a bug costs one answer, never the listener
            log.exception("answering failed", name=qname.to_text(),
                          type=dns.rdatatype.to_text(question.rdtype))
            return self._render(query, reply(query, dns.rcode.SERVFAIL), tcp)
        if result.forward or (result.chase is not None and self.config.upstream):
            if self.config.upstream is None:
                return self._render(query, reply(query, dns.rcode.SERVFAIL), tcp)
            return Pending(query, None if result.forward else result, tcp)
        return self._render(query, self._reply(query, result), tcp)

    async def finish(self, pending: Pending) -> bytes:
        """The response to a Pending query, once the upstream answered (or did not)."""
        query = pending.query
        if pending.partial is None:
            upstream = await self._ask_upstream(query)
            if upstream is None:
                return self._render(query, reply(query, dns.rcode.SERVFAIL), pending.tcp)
            return self._render(query, upstream, pending.tcp)
        response = self._reply(query, pending.partial)
        assert pending.partial.chase is not None
        rdtype = query.question[0].rdtype
        followed = await self._ask_upstream(
            dns.message.make_query(pending.partial.chase, rdtype))
        if followed is not None and followed.rcode() in (dns.rcode.NOERROR,
                                                         dns.rcode.NXDOMAIN):
            response.answer.extend(followed.answer)
            response.set_rcode(followed.rcode())
        return self._render(query, response, pending.tcp)

    def _reply(self, query: dns.message.Message, result: Answer) -> dns.message.Message:
        return reply(query, result, recursion_available=self.config.upstream is not None)

    def _render(self, query: dns.message.Message, response: dns.message.Message,
                tcp: bool) -> bytes:
        wire = to_wire(response, 65535 if tcp else udp_limit(query))
        out = self._count(wire, "tcp" if tcp else "udp", dns.rcode.to_text(response.rcode()))
        assert out is not None
        return out

    @staticmethod
    def _count(wire: bytes | None, transport: str, rcode: str) -> bytes | None:
        if wire is not None:
            REQUESTS.labels(transport, rcode).inc()
        return wire

    async def _ask_upstream(self, query: dns.message.Message) -> dns.message.Message | None:
        """The upstream's response (over TCP when UDP comes back truncated), None when it
        does not answer in time."""
        assert self.config.upstream is not None
        host, port = self.config.upstream
        try:
            response = await dns.asyncquery.udp(query, host, timeout=UPSTREAM_TIMEOUT,
                                                port=port, ignore_unexpected=True)
            if response.flags & dns.flags.TC:
                response = await dns.asyncquery.tcp(query, host, timeout=UPSTREAM_TIMEOUT,
                                                    port=port)
        except Exception as exc:  # timeouts, refusals, malformed or mismatched replies
            FORWARDS.labels("error").inc()
            log.debug("upstream did not answer", upstream=f"{host}:{port}", error=str(exc))
            return None
        FORWARDS.labels("answered").inc()
        return response


class _UdpProtocol(asyncio.DatagramProtocol):
    """One UDP listener: answers in the datagram callback, forwards through tasks."""

    def __init__(self, server: DnsServer, tasks: set[asyncio.Task[None]]) -> None:
        self.server = server
        self.tasks = tasks
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        out = self.server.start(data, tcp=False)
        if isinstance(out, Pending):
            task = asyncio.create_task(self._forward(out, addr))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif out is not None and self.transport is not None:
            self.transport.sendto(out, addr)

    async def _forward(self, pending: Pending, addr: tuple[str | Any, int]) -> None:
        out = await self.server.finish(pending)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(out, addr)


async def _serve_tcp_connection(server: DnsServer, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
    """Length-prefixed queries answered in order until EOF, an error or idleness."""
    try:
        while True:
            async with asyncio.timeout(TCP_IDLE_SECONDS):
                size = int.from_bytes(await reader.readexactly(2), "big")
                data = await reader.readexactly(size)
            out = server.start(data, tcp=True)
            if isinstance(out, Pending):
                out = await server.finish(out)
            if out is None:
                return
            writer.write(len(out).to_bytes(2, "big") + out)
            await writer.drain()
    except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
        return
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


# --- the daemon ----------------------------------------------------------------------------


def _watch(index: ClusterIndex, client: Any) -> list[Any]:
    """Informers on every namespace's Services and Endpoints, feeding ``index``."""
    from navarch import Informer

    services = Informer(
        client.services(""),
        on_add=index.set_service,
        on_update=lambda _old, new: index.set_service(new),
        on_delete=lambda old: index.delete_service(old.metadata.namespace, old.metadata.name))
    endpoints = Informer(
        client.endpoints(""),
        on_add=index.set_endpoints,
        on_update=lambda _old, new: index.set_endpoints(new),
        on_delete=lambda old: index.delete_endpoints(old.metadata.namespace,
                                                     old.metadata.name))
    return [services, endpoints]


async def _bind(server: DnsServer, listen: tuple[str, int], tasks: set[asyncio.Task[None]],
                connections: set[asyncio.Task[None]]
                ) -> tuple[asyncio.DatagramTransport, asyncio.Server]:
    loop = asyncio.get_running_loop()
    host, port = listen

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                            ) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        try:
            await _serve_tcp_connection(server, reader, writer)
        finally:
            connections.discard(task)

    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(server, tasks), local_addr=(host, port))
        try:
            tcp = await asyncio.start_server(on_connection, host, port)
        except OSError:
            transport.close()
            raise
    except OSError as exc:
        raise SystemExit(f"navarch dns: --listen {_text(listen)}: {exc.strerror or exc}"
                         ) from None
    return transport, tcp


async def serve(config: DnsConfig, stop: asyncio.Event) -> None:
    """Answer DNS on ``config.listen`` from the API server's Services and Endpoints until
    ``stop`` is set."""
    import navarch

    index = ClusterIndex(serial_base=int(time.time()))
    server = DnsServer(config, index)
    tasks: set[asyncio.Task[None]] = set()
    connections: set[asyncio.Task[None]] = set()
    bound = []
    try:
        for listen in config.listen:
            bound.append(await _bind(server, listen, tasks, connections))
    except BaseException:
        for transport, tcp in bound:
            transport.close()
            tcp.close()
        raise
    if config.metrics_listen:
        from prometheus_client import start_http_server

        from services.apiserver.config import host_port
        host, port = host_port("--metrics-listen", config.metrics_listen)
        start_http_server(port, addr=host)
    client = navarch.Client(config.server or None)
    informers = _watch(index, client)
    for informer in informers:
        informer.start()

    async def synced() -> None:
        await asyncio.gather(*(i.synced.wait() for i in informers))
        server.synced = True
        log.info("dns serving the cluster's names", services=len(index.services),
                 endpoints=len(index.endpoints))

    waiting = asyncio.create_task(synced())
    log.info("dns started", listen=[_text(a) for a in config.listen], domain=config.domain,
             ttl=config.ttl, upstream=_text(config.upstream) if config.upstream else "")
    try:
        await stop.wait()
    finally:
        log.info("dns stopping")
        for transport, tcp in bound:
            transport.close()
            tcp.close()
        await _cancel([waiting, *tasks, *connections])
        for _transport, tcp in bound:
            await tcp.wait_closed()
        for informer in informers:
            await informer.stop()
        await client.close()


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def main(args: argparse.Namespace) -> int:
    """Run ``navarch dns`` until SIGTERM/SIGINT; the exit status."""
    try:
        config = DnsConfig.from_args(args)
    except ValueError as exc:
        print(f"navarch dns: {exc}", file=sys.stderr)
        return 2

    def run(stop: asyncio.Event) -> Awaitable[None]:
        return serve(config, stop)

    return run_until_signal(run)
