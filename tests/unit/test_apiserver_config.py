"""``navarch apiserver`` flags: what a server advertises for the kubernetes Service, the
flag errors, and where automatic ClusterIPs come from (the static band kept free)."""

from __future__ import annotations

import argparse
import ipaddress
import random

import pytest

from services.apiserver.allocators import ServiceAllocator
from services.apiserver.config import ApiServerConfig, ConfigError, add_arguments
from services.apiserver.kubernetes_service import first_service_ip


def config(*flags: str) -> ApiServerConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return ApiServerConfig.from_args(parser.parse_args(
        ["--store-endpoints", "127.0.0.1:2379", *flags]))


@pytest.mark.parametrize(("flags", "advertised"), [
    ((), None),
    (("--listen", "127.0.0.1:6443,172.30.0.1:6443"), ("172.30.0.1", 6443)),
    (("--listen", "0.0.0.0:6443"), None),
    (("--listen", "localhost:6443,[fd00::1]:7443"), ("fd00::1", 7443)),
    (("--listen", "0.0.0.0:6443", "--advertise-address", "192.0.2.7"), ("192.0.2.7", 6443)),
    (("--listen", "127.0.0.1:6443,192.0.2.7:7443", "--advertise-address", "192.0.2.7"),
     ("192.0.2.7", 7443)),
])
def test_advertised_address(flags: tuple[str, ...], advertised: tuple[str, int] | None
                            ) -> None:
    assert config(*flags).advertised() == advertised


@pytest.mark.parametrize(("flags", "message"), [
    (("--advertise-address", "node-1"), "--advertise-address: expected an IP address"),
    (("--advertise-address", "127.0.0.1"), "--advertise-address: 127.0.0.1 cannot be reached"),
    (("--advertise-address", "0.0.0.0"), "--advertise-address: 0.0.0.0 cannot be reached"),
    (("--endpoint-reconciler-type", "master-count"),
     "--endpoint-reconciler-type: expected lease or none"),
])
def test_bad_flags_are_named(flags: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(*flags)


@pytest.mark.parametrize(("cidr", "first"), [
    ("10.96.0.0/12", "10.96.0.1"), ("10.0.0.0/24", "10.0.0.1"), ("fd00:10::/108", "fd00:10::1"),
])
def test_first_service_ip(cidr: str, first: str) -> None:
    assert first_service_ip(cidr) == first


@pytest.mark.parametrize(("cidr", "lowest"), [
    ("10.96.0.0/12", 256),  # the band: min(max(16, size / 16), 256)
    ("10.0.0.0/24", 16),
    ("10.0.0.0/28", 1),  # too small to keep a band: every address is picked from
])
def test_automatic_cluster_ips_keep_out_of_the_static_band(cidr: str, lowest: int) -> None:
    allocator = ServiceAllocator(None, cidr, (30000, 32767),  # type: ignore[arg-type]
                                 rng=random.Random(7))
    network = ipaddress.ip_network(cidr)
    offsets = {int(ipaddress.ip_address(allocator._pick_ip())) - int(network.network_address)
               for _ in range(2000)}
    assert min(offsets) >= lowest
    assert max(offsets) <= network.num_addresses - 2
    if network.num_addresses <= 256:
        assert min(offsets) == lowest  # the whole allowed range is used
