"""``navctl rollout status`` for DaemonSets and StatefulSets (navarch/_navctl/rollout.py):
kubectl's status viewers, message by message."""

from __future__ import annotations

import pytest

from navarch._navctl.errors import NavctlError
from navarch._navctl.rollout import daemonset_status_message, statefulset_status_message
from navarch.v1 import apps_pb2


def daemonset(generation: int = 2, observed: int = 2, desired: int = 3, updated: int = 3,
              available: int = 3) -> apps_pb2.DaemonSet:
    ds = apps_pb2.DaemonSet()
    ds.metadata.name, ds.metadata.generation = "agent", generation
    ds.spec.update_strategy.type = "RollingUpdate"
    st = ds.status
    st.observed_generation, st.desired_number_scheduled = observed, desired
    st.updated_number_scheduled, st.number_available = updated, available
    return ds


@pytest.mark.parametrize(("ds", "line", "done"), [
    (daemonset(observed=1), "Waiting for daemon set spec update to be observed...", False),
    (daemonset(updated=1), 'Waiting for daemon set "agent" rollout to finish: 1 out of 3 new '
                           "pods have been updated...", False),
    (daemonset(available=2), 'Waiting for daemon set "agent" rollout to finish: 2 of 3 '
                             "updated pods are available...", False),
    (daemonset(), 'daemon set "agent" successfully rolled out', True),
])
def test_daemonset(ds: apps_pb2.DaemonSet, line: str, done: bool) -> None:
    assert daemonset_status_message(ds) == (line, done)


def statefulset(replicas: int = 3, ready: int = 3, updated: int = 3,
                partition: int | None = 0, revisions: tuple[str, str] = ("web-1", "web-1"),
                observed: int = 2) -> apps_pb2.StatefulSet:
    sts = apps_pb2.StatefulSet()
    sts.metadata.name, sts.metadata.generation = "web", 2
    sts.spec.replicas = replicas
    sts.spec.update_strategy.type = "RollingUpdate"
    if partition is not None:
        sts.spec.update_strategy.rolling_update.partition = partition
    st = sts.status
    st.observed_generation, st.ready_replicas = observed, ready
    st.updated_replicas, st.current_replicas = updated, ready
    st.current_revision, st.update_revision = revisions
    return sts


@pytest.mark.parametrize(("sts", "line", "done"), [
    (statefulset(observed=0), "Waiting for statefulset spec update to be observed...", False),
    (statefulset(ready=2), "Waiting for 1 pods to be ready...", False),
    (statefulset(updated=1, partition=1), "Waiting for partitioned roll out to finish: 1 out "
                                          "of 2 new pods have been updated...", False),
    (statefulset(), "partitioned roll out complete: 3 new pods have been updated...", True),
    (statefulset(partition=None, revisions=("web-1", "web-2"), updated=1),
     "waiting for statefulset rolling update to complete 1 pods at revision web-2...", False),
    (statefulset(partition=None), "statefulset rolling update complete 3 pods at revision "
                                  "web-1...", True),
])
def test_statefulset(sts: apps_pb2.StatefulSet, line: str, done: bool) -> None:
    assert statefulset_status_message(sts) == (line, done)


def test_on_delete_has_no_rollout_status() -> None:
    sts = statefulset()
    sts.spec.update_strategy.type = "OnDelete"
    with pytest.raises(NavctlError, match="only available for RollingUpdate strategy type"):
        statefulset_status_message(sts)
    ds = daemonset()
    ds.spec.update_strategy.type = "OnDelete"
    with pytest.raises(NavctlError, match="only available for RollingUpdate strategy type"):
        daemonset_status_message(ds)
