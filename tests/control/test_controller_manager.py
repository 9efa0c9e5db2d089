"""The controller manager as a process: it serves health, elects a leader through a
Lease, and a standby takes over when the leader dies."""

from __future__ import annotations

import pytest

import navarch
from tests.control.conftest import Daemons
from tests.store.cluster import wait_for

SERVICE = "navarch.v1.Controllers"


@pytest.mark.asyncio
async def test_standby_takes_over_when_the_leader_is_killed(
        daemons: Daemons, client: navarch.Client) -> None:
    lease = f"cm-{id(daemons) & 0xffff:x}"
    args = ("--lease-name", lease, "--leader-elect-lease-duration", "3",
            "--leader-elect-renew-deadline", "2", "--leader-elect-retry-period", "0.5",
            "--controllers", "")
    first = daemons.start("controllers", *args, "--identity", "first", name="cm1")
    wait_for(lambda: first.serving(SERVICE), 20, "the first replica to lead")
    second = daemons.start("controllers", *args, "--identity", "second", name="cm2")
    held = await client.leases("kube-system").get(lease)
    assert held.spec.holder_identity == "first"
    assert not second.serving(SERVICE)
    first.kill()
    wait_for(lambda: second.serving(SERVICE), 10, "the standby to take over")
    held = await client.leases("kube-system").get(lease)
    assert held.spec.holder_identity == "second"
    assert held.spec.lease_transitions == 1
