"""Node IPAM: the CidrSet (table-driven) and the controller over a fake API."""

from __future__ import annotations

import pytest

from navarch.v1 import core_pb2
from services.controllers.nodeipam import CidrSet, NodeIpamController
from tests.unit.workload_harness import Harness


@pytest.mark.parametrize(("cluster", "mask", "used", "want"), [
    ("10.244.0.0/16", 24, [], ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]),
    ("10.244.0.0/16", 24, ["10.244.0.0/24", "10.244.2.0/24"],
     ["10.244.1.0/24", "10.244.3.0/24", "10.244.4.0/24"]),
    ("10.0.0.0/30", 31, [], ["10.0.0.0/31", "10.0.0.2/31", None]),
    ("10.0.0.0/30", 31, ["10.0.0.2/31"], ["10.0.0.0/31", None, None]),
    ("10.0.0.0/30", 31, ["192.168.0.0/31", "10.0.0.0/24"], ["10.0.0.0/31", "10.0.0.2/31",
                                                            None]),  # foreign: ignored
    ("fd00::/120", 124, [], ["fd00::/124", "fd00::10/124", "fd00::20/124"]),
])
def test_cidrset_allocates_in_order_skipping_used(cluster: str, mask: int, used: list[str],
                                                  want: list[str | None]) -> None:
    cidrs = CidrSet(cluster, mask)
    for c in used:
        cidrs.occupy(c)
    assert [cidrs.allocate() for _ in want] == want


def test_cidrset_release_makes_room_and_rejects_bad_masks() -> None:
    cidrs = CidrSet("10.0.0.0/30", 31)
    a, b = cidrs.allocate(), cidrs.allocate()
    assert cidrs.allocate() is None
    assert a is not None and b is not None
    cidrs.release(a)
    assert cidrs.allocate() == a
    with pytest.raises(ValueError, match="does not fit"):
        CidrSet("10.0.0.0/16", 8)


def node(name: str, cidr: str = "") -> core_pb2.Node:
    n = core_pb2.Node(api_version="v1", kind="Node")
    n.metadata.name = name
    n.spec.pod_cidr = cidr
    if cidr:
        n.spec.pod_cidrs.append(cidr)
    return n


@pytest.mark.asyncio
async def test_nodes_get_free_cidrs_existing_ones_kept_and_released_on_delete() -> None:
    h = Harness(NodeIpamController, [node("a", "10.9.0.0/24"), node("b")])
    h.ctx.options.update(cluster_cidr="10.9.0.0/23", node_cidr_mask_size=24)
    await h.start()
    try:
        by_name = {n.metadata.name: n for n in h.client.stored("nodes")}
        assert by_name["b"].spec.pod_cidr == "10.9.1.0/24"
        assert list(by_name["b"].spec.pod_cidrs) == ["10.9.1.0/24"]
        assert h.client.writes() == [("patch", "nodes", "b")]
        await h.client.nodes().create(node("c"))
        await h.step()
        assert h.reasons() == ["CIDRNotAvailable"]
        assert h.client.stored("nodes")[2].spec.pod_cidr == ""
        await h.client.nodes().delete("a")
        await h.advance(30)
        assert h.client.stored("nodes")[1].spec.pod_cidr == "10.9.0.0/24"
    finally:
        await h.stop()
