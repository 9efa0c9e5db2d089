"""``navarch dns`` as a real process over a real API server: Services and Endpoints created
through the SDK become names, answered over UDP and TCP with dnspython; names outside the
cluster go to an upstream (a fake one in this process); SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

import navarch
from tests.api.harness import ApiServerProcess, NavarchProcess
from tests.api.util import eventually, obj, service
from tests.store.cluster import REPO, MemberExited, free_ports

DOMAIN = "cluster.local"


class DnsProcess(NavarchProcess):
    """``navarch dns --listen 127.0.0.1:<free port>``; started means it answers the
    cluster's names (its informers have listed)."""

    subcommand = "dns"

    def serving(self, service: str = "") -> bool:
        """Whether ``dns-version.<domain>`` TXT is answered (SERVFAIL until synced)."""
        if self.proc is not None and self.proc.poll() is not None:
            raise MemberExited(f"dns exited with {self.proc.returncode}:\n{self.log_tail()}")
        q = dns.message.make_query(f"dns-version.{DOMAIN}.", "TXT")
        try:
            r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=0.5)
        except (dns.exception.Timeout, OSError):
            return False
        return r.rcode() == dns.rcode.NOERROR


@pytest.fixture(scope="module")
def upstream_port() -> int:
    """The port of the fake upstream resolver (it runs only inside the tests using it)."""
    return free_ports(1)[0]


@pytest.fixture(scope="module")
def dns_server(apiserver: ApiServerProcess, upstream_port: int,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsProcess]:
    """``navarch dns`` over the module's API server, forwarding to the fake upstream."""
    proc = DnsProcess(tmp_path_factory.mktemp("dns"), [
        "--server", apiserver.address, "--ttl", "0",
        "--upstream", f"127.0.0.1:{upstream_port}"])
    try:
        proc.start()
    except BaseException:
        print(proc.log_tail())
        proc.stop()
        raise
    yield proc
    proc.stop()


# --- helpers ---------------------------------------------------------------------------------


class Resolver:
    """Questions to the DNS process over UDP or TCP."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def udp(self, qname: str, qtype: str = "A", **kw: Any) -> dns.message.Message:
        q = dns.message.make_query(qname, qtype, **kw)
        return await dns.asyncquery.udp(q, "127.0.0.1", port=self.port, timeout=5)

    async def tcp(self, qname: str, qtype: str = "A") -> dns.message.Message:
        q = dns.message.make_query(qname, qtype)
        return await dns.asyncquery.tcp(q, "127.0.0.1", port=self.port, timeout=5)


@pytest.fixture
def resolver(dns_server: DnsProcess) -> Resolver:
    """A resolver asking the module's DNS process."""
    return Resolver(dns_server.port)


def records(response: dns.message.Message, rdtype: str = "",
            section: str = "answer") -> list[str]:
    """The rdata of a section as text, sorted (of one type when given)."""
    rrsets: list[dns.rrset.RRset] = getattr(response, section)
    return sorted(rd.to_text() for rrset in rrsets for rd in rrset
                  if not rdtype or rrset.rdtype == dns.rdatatype.from_text(rdtype))


async def answers(ask: Any, want: list[str], what: str, rdtype: str = "",
                  within: float = 15.0) -> dns.message.Message:
    """Ask until the answer's records are ``want`` (the index follows the API's watch)."""
    async def check() -> dns.message.Message | None:
        r = await ask()
        return r if records(r, rdtype) == sorted(want) and r.rcode() == 0 else None
    return await eventually(check, within, what)


async def rcode_becomes(ask: Any, rcode: int, what: str) -> dns.message.Message:
    async def check() -> dns.message.Message | None:
        r = await ask()
        return r if r.rcode() == rcode else None
    return await eventually(check, 15.0, what)


def endpoints(name: str, ns: str, ready: list[tuple[str, str]],
              not_ready: list[tuple[str, str]] | None = None,
              ports: list[dict[str, Any]] | None = None) -> Any:
    subset: dict[str, Any] = {
        "addresses": [{"ip": ip, **({"hostname": h} if h else {})} for ip, h in ready]}
    if not_ready:
        subset["notReadyAddresses"] = [{"ip": ip, **({"hostname": h} if h else {})}
                                       for ip, h in not_ready]
    if ports:
        subset["ports"] = ports
    return obj({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns}, "subsets": [subset]})


def reverse(ip: str) -> str:
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa."


# --- the tests -------------------------------------------------------------------------------


async def test_clusterip_service(client: navarch.Client, ns: str, resolver: Resolver) -> None:
    ports = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
             {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}]
    svc = await client.services(ns).create(service("web", ns, ports=ports))
    ip = svc.spec.cluster_ip
    name = f"web.{ns}.svc.{DOMAIN}."
    r = await answers(lambda: resolver.udp(name), [ip], "the ClusterIP over UDP")
    assert r.flags & dns.flags.AA and r.answer[0].ttl == 0
    assert records(await resolver.tcp(name)) == [ip]
    # case-insensitive, the question's spelling echoed
    r = await resolver.udp(name.upper())
    assert records(r) == [ip] and r.answer[0].name.to_text() == name.upper()
    # NODATA: the name exists, no AAAA; negative answers carry the SOA
    r = await resolver.udp(name, "AAAA")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    assert [rr.rdtype for rr in r.authority] == [dns.rdatatype.SOA]
    # SRV for named ports, the A record in the additional section
    r = await resolver.udp(f"_http._tcp.{name}", "SRV")
    assert records(r) == [f"0 100 80 {name}"]
    assert records(r, section="additional") == [ip]
    assert records(await resolver.tcp(f"_dns._udp.{name}", "SRV")) == [f"0 100 53 {name}"]
    assert (await resolver.udp(f"_http._udp.{name}", "SRV")).rcode() == dns.rcode.NXDOMAIN
    # PTR of the ClusterIP
    assert records(await resolver.udp(reverse(ip), "PTR")) == [name]
    # names that do not exist
    for missing in (f"nope.{ns}.svc.{DOMAIN}.", f"{ns}.svc.{DOMAIN}.",
                    f"x.web.{ns}.svc.{DOMAIN}."):
        r = await resolver.udp(missing)
        assert r.rcode() == dns.rcode.NXDOMAIN, missing
        assert [rr.rdtype for rr in r.authority] == [dns.rdatatype.SOA]
    # deleted: gone from DNS
    await client.services(ns).delete("web")
    await rcode_becomes(lambda: resolver.udp(name), dns.rcode.NXDOMAIN, "NXDOMAIN after delete")
    assert (await resolver.udp(reverse(ip), "PTR")).rcode() != dns.rcode.NOERROR


async def test_headless_service_and_hostnames(client: navarch.Client, ns: str,
                                              resolver: Resolver) -> None:
    pg = [{"name": "pg", "port": 5432, "protocol": "TCP"}]
    await client.services(ns).create(service(
        "db", ns, clusterIP="None", selector={},
        ports=[{"name": "pg", "port": 5432, "targetPort": 5432}]))
    name = f"db.{ns}.svc.{DOMAIN}."
    await rcode_becomes(lambda: resolver.udp(name), dns.rcode.NXDOMAIN,
                        "NXDOMAIN without ready endpoints")
    ep = await client.endpoints(ns).create(endpoints(
        "db", ns, [("10.244.1.5", "db-0"), ("10.244.2.6", "db-1"), ("10.244.1.9", "")],
        not_ready=[("10.244.3.7", "db-2")], ports=pg))
    await answers(lambda: resolver.udp(name), ["10.244.1.5", "10.244.1.9", "10.244.2.6"],
                  "one A per ready endpoint")
    assert records(await resolver.tcp(f"db-0.{name}")) == ["10.244.1.5"]
    assert records(await resolver.udp(f"10-244-1-9.{name}")) == ["10.244.1.9"]
    assert (await resolver.udp(f"db-2.{name}")).rcode() == dns.rcode.NXDOMAIN
    r = await resolver.udp(f"_pg._tcp.{name}", "SRV")
    assert records(r) == [f"0 33 5432 10-244-1-9.{name}", f"0 33 5432 db-0.{name}",
                          f"0 33 5432 db-1.{name}"]
    assert records(r, section="additional") == ["10.244.1.5", "10.244.1.9", "10.244.2.6"]
    assert records(await resolver.udp(reverse("10.244.1.5"), "PTR")) == [f"db-0.{name}"]
    # db-2 becomes ready, db-0 leaves
    ep.subsets[0].ClearField("not_ready_addresses")
    del ep.subsets[0].addresses[0]
    ep.subsets[0].addresses.add(ip="10.244.3.7", hostname="db-2")
    await client.endpoints(ns).update(ep)
    await answers(lambda: resolver.udp(name), ["10.244.1.9", "10.244.2.6", "10.244.3.7"],
                  "the endpoint change")
    assert records(await resolver.udp(f"db-2.{name}")) == ["10.244.3.7"]
    assert (await resolver.udp(f"db-0.{name}")).rcode() == dns.rcode.NXDOMAIN


async def test_publish_not_ready_addresses(client: navarch.Client, ns: str,
                                           resolver: Resolver) -> None:
    await client.services(ns).create(service(
        "early", ns, clusterIP="None", selector={}, publishNotReadyAddresses=True))
    await client.endpoints(ns).create(endpoints("early", ns, [], [("10.244.5.5", "")]))
    await answers(lambda: resolver.udp(f"early.{ns}.svc.{DOMAIN}."), ["10.244.5.5"],
                  "not-ready addresses published")


async def test_pod_names(resolver: Resolver, ns: str) -> None:
    r = await resolver.udp(f"10-244-7-8.{ns}.pod.{DOMAIN}.")
    assert records(r) == ["10.244.7.8"]
    bad = await resolver.udp(f"10-244-7.{ns}.pod.{DOMAIN}.")
    assert bad.rcode() == dns.rcode.NXDOMAIN


async def test_udp_truncates_tcp_carries_it_all(client: navarch.Client, ns: str,
                                                resolver: Resolver) -> None:
    await client.services(ns).create(service("big", ns, clusterIP="None", selector={}))
    ips = [f"10.244.{i // 200}.{i % 200 + 1}" for i in range(80)]
    await client.endpoints(ns).create(endpoints("big", ns, [(ip, "") for ip in ips]))
    name = f"big.{ns}.svc.{DOMAIN}."
    full = await answers(lambda: resolver.tcp(name), ips, "every address over TCP")
    assert not full.flags & dns.flags.TC
    r = await resolver.udp(name)  # 80 A records do not fit in 512 bytes
    assert r.flags & dns.flags.TC and 0 < len(records(r)) < 80
    r = await resolver.udp(name, use_edns=0, payload=4096)  # they fit in 4096
    assert not r.flags & dns.flags.TC and len(records(r)) == 80


@contextlib.asynccontextmanager
async def fake_upstream(port: int, zone: dict[tuple[str, str], str]
                        ) -> AsyncIterator[list[str]]:
    """A UDP resolver on 127.0.0.1:port answering ``zone`` {(name, type): address},
    NXDOMAIN otherwise; yields the names it was asked."""
    asked: list[str] = []

    class Upstream(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            q = dns.message.from_wire(data)
            question = q.question[0]
            asked.append(question.name.to_text())
            r = dns.message.make_response(q)
            key = (question.name.to_text(), dns.rdatatype.to_text(question.rdtype))
            if key in zone:
                r.answer.append(dns.rrset.from_text(key[0], 60, "IN", key[1], zone[key]))
            else:
                r.set_rcode(dns.rcode.NXDOMAIN)
            self.transport.sendto(r.to_wire(), addr)  # type: ignore[attr-defined]

    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        Upstream, local_addr=("127.0.0.1", port))
    try:
        yield asked
    finally:
        transport.close()


async def test_other_names_go_upstream(client: navarch.Client, ns: str, resolver: Resolver,
                                       upstream_port: int) -> None:
    await client.services(ns).create(obj({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": ns},
        "spec": {"type": "ExternalName", "externalName": "www.example.com"}}))
    name = f"ext.{ns}.svc.{DOMAIN}."
    async with fake_upstream(upstream_port, {("www.example.com.", "A"): "192.0.2.7",
                                             ("example.org.", "A"): "192.0.2.8"}) as asked:
        r = await resolver.udp("example.org.")
        assert r.rcode() == dns.rcode.NOERROR and records(r) == ["192.0.2.8"]
        r = await resolver.tcp("example.org.")
        assert records(r) == ["192.0.2.8"]
        assert (await resolver.udp("nowhere.example.")).rcode() == dns.rcode.NXDOMAIN
        # ExternalName: the CNAME, then the upstream's answer for its target
        r = await answers(lambda: resolver.udp(name), ["192.0.2.7", "www.example.com."],
                          "the ExternalName's CNAME followed")
        assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
        # cluster names never reach the upstream
        before = list(asked)
        await resolver.udp(f"nope.{ns}.svc.{DOMAIN}.")
        assert asked == before
    # the upstream gone: SERVFAIL, not a hang
    r = await resolver.udp("example.org.")
    assert r.rcode() == dns.rcode.SERVFAIL


def run_dns(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "navarch", "dns", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.parametrize(("args", "flag"), [
    (["--listen", "127.0.0.1"], "--listen"),
    (["--ttl", "-5"], "--ttl"),
    (["--upstream", "resolver.example:53"], "--upstream"),
    (["--domain", "bad..domain"], "--domain"),
])
def test_bad_flag_exits_naming_it(args: list[str], flag: str) -> None:
    done = run_dns(*args)
    assert done.returncode == 2
    assert flag in done.stderr and "navarch dns" in done.stderr


def test_sigterm_stops_cleanly(apiserver: ApiServerProcess, tmp_path: Path) -> None:
    proc = DnsProcess(tmp_path, ["--server", apiserver.address])
    proc.start()
    try:
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = proc.proc.wait(timeout=15)
        assert code == 0, proc.log_tail()
        assert time.monotonic() - started < 10
        assert "dns stopping" in proc.log_path.read_text()
    finally:
        proc.stop()
