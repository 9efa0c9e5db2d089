"""navctl's presentation: ages, column alignment, pod status, table rows, structured
output, describe sections, label changes and error wording. Pure functions only: no
server, a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from navarch._errors import AlreadyExists, FieldViolation, Invalid, NotFound, ServerUnavailable
from navarch._kinds import UnknownKind, resource
from navarch._navctl.columns import format_endpoints, service_external_ip, service_ports
from navarch._navctl.context import parse_duration
from navarch._navctl.describe import Related, describe
from navarch._navctl.errors import NavctlError, error_message
from navarch._navctl.label import MetadataChange, parse_changes, plan_change, split_arguments
from navarch._navctl.podstatus import pod_summary
from navarch._navctl.printers import (
    TableOptions,
    WatchTable,
    list_document,
    object_ref,
    render_table,
    to_json,
    to_yaml,
)
from navarch._navctl.tabwriter import align, align_describe, align_table
from navarch._navctl.values import format_selector, go_duration, human_duration

NOW = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def ts(seconds_ago: float) -> str:
    """An RFC 3339 timestamp ``seconds_ago`` before NOW."""
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, seconds_ago: float = 60, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "creationTimestamp": ts(seconds_ago), **extra}


# --- ages ---------------------------------------------------------------------------------

MINUTE, HOUR, DAY = 60, 3600, 86400


@pytest.mark.parametrize(("seconds", "shown"), [
    (-3, "<invalid>"),
    (-1.5, "0s"),
    (0, "0s"),
    (5, "5s"),
    (119, "119s"),
    (120, "2m"),
    (3 * MINUTE + 12, "3m12s"),
    (9 * MINUTE + 59, "9m59s"),
    (10 * MINUTE + 30, "10m"),
    (179 * MINUTE, "179m"),
    (3 * HOUR, "3h"),
    (5 * HOUR, "5h"),
    (5 * HOUR + 30 * MINUTE, "5h30m"),
    (8 * HOUR + 59 * MINUTE, "8h"),
    (47 * HOUR, "47h"),
    (2 * DAY, "2d"),
    (2 * DAY + 3 * HOUR, "2d3h"),
    (8 * DAY, "8d"),
    (729 * DAY, "729d"),
    (730 * DAY, "2y"),
    (2 * 365 * DAY + 10 * DAY, "2y10d"),
    (9 * 365 * DAY, "9y"),
])
def test_human_duration(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0s"), (5e-7, "500ns"), (1.5e-6, "1.5µs"), (0.75, "750ms"), (0.0105, "10.5ms"),
    (30, "30s"), (10.5, "10.5s"), (59.999, "59.999s"), (60, "1m0s"), (90, "1m30s"),
    (3600, "1h0m0s"), (3725.25, "1h2m5.25s"), (-1.5, "-1.5s"),
])
def test_go_duration(seconds: float, shown: str) -> None:
    assert go_duration(seconds) == shown


@pytest.mark.parametrize(("text", "seconds"), [
    ("0", 0.0), ("30", 30.0), ("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text, "--timeout") == seconds


@pytest.mark.parametrize("text", ["", "abc", "5 s", "1d", "-1s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(NavctlError, match="--timeout"):
        parse_duration(text, "--timeout")


# --- alignment ----------------------------------------------------------------------------

def test_table_columns_are_three_apart_and_last_unpadded() -> None:
    lines = align_table(["NAME\tREADY\tAGE", "web-1\t1/1\t5s", "a\t0/1\t10m"])
    assert lines == [
        "NAME    READY   AGE",
        "web-1   1/1     5s",
        "a       0/1     10m",
    ]


def test_table_cells_are_at_least_six_wide() -> None:
    assert align_table(["A\tB", "x\ty"]) == ["A     B", "x     y"]


def test_describe_alignment_is_per_block_of_consecutive_lines() -> None:
    lines = align_describe([
        "Name:\tweb",
        "Namespace:\tdefault",
        "Containers:",
        "  app:",
        "    Image:\tnginx",
        "    Restart Count:\t0",
        "Events:\t<none>",
    ])
    assert lines == [
        "Name:       web",
        "Namespace:  default",
        "Containers:",
        "  app:",
        "    Image:          nginx",
        "    Restart Count:  0",
        "Events:             <none>",  # consecutive with the lines above: one block
    ]


def test_nested_columns_align_within_their_outer_block() -> None:
    lines = align(["a\tb\tc", "aaaa\tb", "x\tyyyyy\tz"], minwidth=0, padding=1)
    # column 1 of lines 1 and 3 is a block; line 2 has no terminated second cell
    assert lines == ["a    b c", "aaaa b", "x    yyyyy z"]


def test_watch_table_keeps_columns_from_earlier_rows() -> None:
    kind = resource("configmaps")
    table = WatchTable(kind)
    first = table.lines([{"metadata": meta("a-long-name", 5), "data": {"k": "v"}}], NOW)
    later = table.lines([{"metadata": meta("b", 5)}], NOW)
    assert first == ["NAME          DATA   AGE", "a-long-name   1      5s"]
    assert later == ["b             0      5s"]


# --- pod status ----------------------------------------------------------------------------

def pod(status: dict[str, Any] | None = None, *, init: int = 0, containers: int = 1,
        deleting: bool = False, sidecar: bool = False) -> dict[str, Any]:
    metadata = meta("web")
    if deleting:
        metadata["deletionTimestamp"] = ts(1)
    spec: dict[str, Any] = {
        "containers": [{"name": f"c{i}", "image": "img"} for i in range(containers)]}
    if init:
        spec["initContainers"] = [{"name": f"i{i}", "image": "img"} for i in range(init)]
    if sidecar:
        spec.setdefault("initContainers", []).append(
            {"name": "side", "image": "img", "restartPolicy": "Always"})
    return {"metadata": metadata, "spec": spec, "status": status or {}}


def running(name: str = "c0", ready: bool = True, restarts: int = 0) -> dict[str, Any]:
    return {"name": name, "ready": ready, "restartCount": restarts,
            "state": {"running": {"startedAt": ts(30)}}}


def waiting(reason: str, name: str = "c0", restarts: int = 0) -> dict[str, Any]:
    return {"name": name, "ready": False, "restartCount": restarts,
            "state": {"waiting": {"reason": reason}}}


def terminated(exit_code: int, reason: str = "", name: str = "c0") -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": exit_code}
    if reason:
        state["reason"] = reason
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": state}}


@pytest.mark.parametrize(("obj", "status", "ready"), [
    (pod({"phase": "Pending"}), "Pending", "0/1"),
    (pod({"phase": "Pending", "containerStatuses": [waiting("ContainerCreating")]}),
     "ContainerCreating", "0/1"),
    (pod({"phase": "Running", "containerStatuses": [running()]}), "Running", "1/1"),
    (pod({"phase": "Running", "containerStatuses": [running(), waiting("CrashLoopBackOff", "c1")]},
         containers=2), "CrashLoopBackOff", "1/2"),
    (pod({"phase": "Succeeded", "containerStatuses": [terminated(0, "Completed")]}),
     "Completed", "0/1"),
    (pod({"phase": "Failed", "containerStatuses": [terminated(1, "Error")]}), "Error", "0/1"),
    (pod({"phase": "Failed", "containerStatuses": [terminated(137)]}), "ExitCode:137", "0/1"),
    (pod({"phase": "Running", "containerStatuses": [terminated(0, "Completed"),
                                                    running("c1")],
          "conditions": [{"type": "Ready", "status": "False"}]}, containers=2),
     "NotReady", "1/2"),
    (pod({"phase": "Pending", "initContainerStatuses": [waiting("PodInitializing", "i0")]},
         init=2), "Init:0/2", "0/1"),
    (pod({"phase": "Pending", "initContainerStatuses": [
        terminated(0, "Completed", "i0"), waiting("CrashLoopBackOff", "i1")]}, init=2),
     "Init:CrashLoopBackOff", "0/1"),
    (pod({"phase": "Pending", "initContainerStatuses": [terminated(2, "", "i0")]}, init=1),
     "Init:ExitCode:2", "0/1"),
    (pod({"phase": "Running", "containerStatuses": [running()]}, deleting=True),
     "Terminating", "1/1"),
    (pod({"phase": "Succeeded", "containerStatuses": [terminated(0, "Completed")]},
         deleting=True), "Completed", "0/1"),
    (pod({"phase": "Running", "reason": "NodeLost", "containerStatuses": [running()]},
         deleting=True), "Unknown", "1/1"),
    (pod({"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
     "SchedulingGated", "0/1"),
    (pod({"phase": "Running",
          "initContainerStatuses": [{"name": "side", "started": True, "ready": True,
                                     "restartCount": 0, "state": {"running": {}}}],
          "containerStatuses": [running()],
          "conditions": [{"type": "Initialized", "status": "True"}]}, sidecar=True),
     "Running", "2/2"),
])
def test_pod_status(obj: dict[str, Any], status: str, ready: str) -> None:
    summary = pod_summary(obj)
    assert (summary.status, f"{summary.ready}/{summary.total}") == (status, ready)


def test_pod_restarts_show_when_last_restarted() -> None:
    cs = waiting("CrashLoopBackOff", restarts=4)
    cs["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": ts(75)}}
    obj = pod({"phase": "Running", "containerStatuses": [cs]})
    lines = render_table(resource("pods"), [obj], NOW)
    assert lines == [
        "NAME   READY   STATUS             RESTARTS      AGE",
        "web    0/1     CrashLoopBackOff   4 (75s ago)   60s",
    ]


# --- tables ----------------------------------------------------------------------------------

def test_pods_wide_and_all_namespaces() -> None:
    obj = pod({"phase": "Running", "podIP": "10.244.1.5", "containerStatuses": [running()]})
    obj["spec"]["nodeName"] = "node-1"
    options = TableOptions(wide=True, namespace_column=True)
    assert render_table(resource("po"), [obj], NOW, options) == [
        "NAMESPACE   NAME   READY   STATUS    RESTARTS   AGE   IP           NODE     "
        "NOMINATED NODE   READINESS GATES",
        "default     web    1/1     Running   0          60s   10.244.1.5   node-1   "
        "<none>           <none>",
    ]


def deployment(**status: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": meta("web", 3 * HOUR, labels={"app": "web", "tier": "front"}),
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [
                         {"name": "web", "image": "localhost/web:1"},
                         {"name": "log", "image": "localhost/log:2"}]}}},
            "status": status}


def test_deployments_table() -> None:
    d = deployment(readyReplicas=2, updatedReplicas=3, availableReplicas=2)
    assert render_table(resource("deploy"), [d], NOW) == [
        "NAME   READY   UP-TO-DATE   AVAILABLE   AGE",
        "web    2/3     3            2           3h",
    ]
    wide = render_table(resource("deploy"), [d], NOW, TableOptions(wide=True))
    assert wide[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE",
                               "CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["web,log", "localhost/web:1,localhost/log:2", "app=web"]


def test_show_labels_and_kind_prefix() -> None:
    d = deployment()
    lines = render_table(resource("deploy"), [d], NOW,
                         TableOptions(show_labels=True, with_kind=True))
    assert lines[0].split()[-1] == "LABELS"
    assert lines[1].startswith("deployment.apps/web   0/3")
    assert lines[1].endswith("app=web,tier=front")


def test_services_table() -> None:
    svc = {"metadata": meta("web", 2 * DAY), "spec": {
        "type": "NodePort", "clusterIP": "10.96.0.10",
        "ports": [{"port": 80, "nodePort": 30007, "protocol": "TCP"}, {"port": 53,
                                                                      "protocol": "UDP"}]}}
    assert render_table(resource("svc"), [svc], NOW) == [
        "NAME   TYPE       CLUSTER-IP   EXTERNAL-IP   PORT(S)               AGE",
        "web    NodePort   10.96.0.10   <none>        80:30007/TCP,53/UDP   2d",
    ]


@pytest.mark.parametrize(("ports", "shown"), [
    ([], "<none>"),
    ([{"port": 80}], "80/TCP"),
    ([{"port": 80, "nodePort": 30007}], "80:30007/TCP"),
    ([{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}], "80/TCP,53/UDP"),
])
def test_service_ports(ports: list[dict[str, Any]], shown: str) -> None:
    assert service_ports(ports) == shown


@pytest.mark.parametrize(("spec", "status", "shown"), [
    ({"type": "ClusterIP"}, {}, "<none>"),
    ({"type": "ClusterIP", "externalIPs": ["1.2.3.4", "5.6.7.8"]}, {}, "1.2.3.4,5.6.7.8"),
    ({"type": "LoadBalancer"}, {}, "<pending>"),
    ({"type": "LoadBalancer"}, {"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}]}}, "9.9.9.9"),
    ({"type": "ExternalName", "externalName": "db.example.com"}, {}, "db.example.com"),
])
def test_service_external_ip(spec: dict[str, Any], status: dict[str, Any], shown: str) -> None:
    assert service_external_ip({"spec": spec, "status": status}) == shown


def test_endpoints_show_three_then_count_the_rest() -> None:
    subsets = [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 6)],
                "ports": [{"port": 8080}]}]
    assert format_endpoints(subsets) == \
        "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 2 more..."
    assert format_endpoints([]) == "<none>"
    assert format_endpoints([{"addresses": [{"ip": "10.0.0.1"}]}]) == "10.0.0.1"


def test_nodes_table() -> None:
    node = {"metadata": {"name": "n1", "creationTimestamp": ts(DAY),
                         "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "nodeInfo": {"kubeletVersion": "0.1.0"}}}
    other = {"metadata": {"name": "n2", "creationTimestamp": ts(DAY)},
             "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}
    assert render_table(resource("nodes"), [node, other], NOW) == [
        "NAME   STATUS                     ROLES           AGE   VERSION",
        "n1     Ready,SchedulingDisabled   control-plane   24h   0.1.0",
        "n2     NotReady                   <none>          24h   ",
    ]


def test_jobs_and_cronjobs() -> None:
    job = {"metadata": meta("pi", 300), "spec": {"completions": 3},
           "status": {"succeeded": 1, "startTime": ts(200)}}
    done = {"metadata": meta("done", 300), "spec": {"completions": 1},
            "status": {"succeeded": 1, "startTime": ts(200), "completionTime": ts(190),
                       "conditions": [{"type": "Complete", "status": "True"}]}}
    assert render_table(resource("jobs"), [job, done], NOW) == [
        "NAME   STATUS     COMPLETIONS   DURATION   AGE",
        "pi     Running    1/3           3m20s      5m",
        "done   Complete   1/1           10s        5m",
    ]
    cron = {"metadata": meta("tick", 120), "spec": {"schedule": "*/5 * * * *"},
            "status": {"lastScheduleTime": ts(30), "active": [{"name": "tick-1"}]}}
    assert render_table(resource("cj"), [cron], NOW) == [
        "NAME   SCHEDULE      TIMEZONE   SUSPEND   ACTIVE   LAST SCHEDULE   AGE",
        "tick   */5 * * * *   <none>     False     1        30s             2m",
    ]


def test_small_kinds() -> None:
    cm = {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}}
    secret = {"metadata": meta("s"), "type": "Opaque", "data": {"p": "cGFzcw=="}}
    ns = {"metadata": {"name": "team", "creationTimestamp": ts(10)},
          "status": {"phase": "Active"}}
    lease = {"metadata": meta("leader"), "spec": {"holderIdentity": "ctl-1"}}
    assert render_table(resource("cm"), [cm], NOW)[1] == "cfg    2      60s"
    assert render_table(resource("secrets"), [secret], NOW) == [
        "NAME   TYPE     DATA   AGE", "s      Opaque   1      60s"]
    assert render_table(resource("ns"), [ns], NOW)[1] == "team   Active   10s"
    assert render_table(resource("leases"), [lease], NOW)[1] == "leader   ctl-1    60s"
    assert render_table(resource("podtemplates"), [], NOW) == \
        ["NAME   CONTAINERS   IMAGES   POD LABELS"]


def pdb(spec: dict[str, Any], **status: int) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": meta("web", 2 * HOUR), "spec": spec, "status": status}


def test_pdb_table_says_na_for_the_amount_not_set() -> None:
    budgets = [pdb({"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
                   disruptionsAllowed=1),
               pdb({"maxUnavailable": "25%", "selector": {}})]
    assert render_table(resource("pdb"), budgets, NOW) == [
        "NAME   MIN AVAILABLE   MAX UNAVAILABLE   ALLOWED DISRUPTIONS   AGE",
        "web    2               N/A               1                     120m",
        "web    N/A             25%               0                     120m",
    ]


def test_events_table_last_seen_and_object() -> None:
    event = {"metadata": meta("web.1"), "type": "Warning", "reason": "BackOff",
             "involvedObject": {"kind": "Pod", "name": "web"},
             "message": "Back-off restarting failed container ", "count": 3,
             "firstTimestamp": ts(300), "lastTimestamp": ts(20)}
    assert render_table(resource("ev"), [event], NOW) == [
        "LAST SEEN          TYPE      REASON    OBJECT    MESSAGE",
        "20s (x3 over 5m)   Warning   BackOff   pod/web   Back-off restarting failed container",
    ]


def test_hpa_targets() -> None:
    hpa = {"metadata": meta("web"), "spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1,
        "maxReplicas": 5, "metrics": [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]},
        "status": {"currentReplicas": 2, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu",
                                              "current": {"averageUtilization": 45}}}]}}
    assert render_table(resource("hpa"), [hpa], NOW) == [
        "NAME   REFERENCE        TARGETS        MINPODS   MAXPODS   REPLICAS   AGE",
        "web    Deployment/web   cpu: 45%/80%   1         5         2          60s",
    ]


def test_pod_metrics_sum_the_containers() -> None:
    """As metrics-server's table: NAME, then each resource summed, then the window."""
    web = {"metadata": meta("web-1"), "window": "30s", "containers": [
        {"name": "app", "usage": {"cpu": "250m", "memory": "64Mi"}},
        {"name": "sidecar", "usage": {"cpu": "5m", "memory": "1Mi"}}]}
    idle = {"metadata": meta("idle"), "window": "10.500s", "containers": []}
    assert render_table(resource("podmetrics"), [web, idle], NOW) == [
        "NAME    CPU    MEMORY   WINDOW",
        "web-1   255m   65Mi     30s",
        "idle    0      0        10.5s",
    ]


@pytest.mark.parametrize(("selector", "text"), [
    (None, "<none>"),
    ({}, "<none>"),
    ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                           {"key": "canary", "operator": "DoesNotExist"}],
      "matchLabels": {"app": "web"}}, "app=web,!canary,tier in (a,b)"),
])
def test_format_selector(selector: dict[str, Any] | None, text: str) -> None:
    assert format_selector(selector) == text


# --- structured output -------------------------------------------------------------------

def test_list_document_and_yaml() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "cfg", "creationTimestamp": "2024-01-01T00:00:00Z",
                       "resourceVersion": "7"},
          "data": {"script": "echo hi\necho bye\n", "n": "3", "flag": "true", "odd": "a: b"}}
    text = to_yaml(list_document([cm]))
    assert text == (
        "apiVersion: v1\n"
        "items:\n"
        "- apiVersion: v1\n"
        "  data:\n"
        "    flag: \"true\"\n"
        "    n: \"3\"\n"
        "    odd: \"a: b\"\n"
        "    script: |\n"
        "      echo hi\n"
        "      echo bye\n"
        "  kind: ConfigMap\n"
        "  metadata:\n"
        "    creationTimestamp: \"2024-01-01T00:00:00Z\"\n"
        "    name: cfg\n"
        "    resourceVersion: \"7\"\n"
        "kind: List\n"
        "metadata:\n"
        "  resourceVersion: \"\"\n")


def test_json_keeps_schema_order_with_four_space_indents() -> None:
    assert to_json({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}) == (
        '{\n    "apiVersion": "v1",\n    "kind": "Pod",\n    "metadata": {\n'
        '        "name": "p"\n    }\n}')


@pytest.mark.parametrize(("name", "ref"), [
    ("pods", "pod/web"), ("deploy", "deployment.apps/web"), ("svc", "service/web"),
    ("hpa", "horizontalpodautoscaler.autoscaling/web"),
    ("leases", "lease.coordination.k8s.io/web"),
])
def test_object_ref(name: str, ref: str) -> None:
    assert object_ref(resource(name), "web") == ref


# --- describe ----------------------------------------------------------------------------

def test_describe_service_with_endpoints_and_events() -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": meta("web", labels={"app": "web"}),
           "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "selector": {"app": "web"},
                    "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}
    endpoints = {"subsets": [{"addresses": [{"ip": "10.244.1.5"}],
                              "ports": [{"port": 8080, "protocol": "TCP"}]}]}
    event = {"type": "Normal", "reason": "Created", "message": "created",
             "source": {"component": "navctl"}, "firstTimestamp": ts(90)}
    lines = describe(svc, Related(events=[event], endpoints=endpoints), NOW, UTC)
    assert lines == [
        "Name:              web",
        "Namespace:         default",
        "Labels:            app=web",
        "Annotations:       <none>",
        "Selector:          app=web",
        "Type:              ClusterIP",
        "IP:                10.96.0.10",
        "Port:              <unset>  80/TCP",
        "TargetPort:        8080/TCP",
        "Endpoints:         10.244.1.5:8080",
        "Session Affinity:  None",
        "Events:",
        "  Type    Reason   Age   From    Message",
        "  ----    ------   ----  ----    -------",
        "  Normal  Created  90s   navctl  created",
    ]


def test_describe_pod_sections() -> None:
    obj = pod({"phase": "Running", "podIP": "10.244.1.5", "hostIP": "172.30.0.2",
               "startTime": "2024-03-01T11:59:00Z", "qosClass": "BestEffort",
               "podIPs": [{"ip": "10.244.1.5"}], "containerStatuses": [running()],
               "conditions": [{"type": "Ready", "status": "True"}]})
    obj["kind"] = "Pod"
    obj["spec"]["nodeName"] = "node-1"
    obj["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    obj["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{}",
                                      "note": "x"}
    text = "\n".join(describe(obj, Related(), NOW, UTC))
    assert "Node:             node-1/172.30.0.2\n" in text
    assert "Start Time:       Fri, 01 Mar 2024 11:59:00 +0000\n" in text
    assert "Annotations:      note: x\n" in text  # last-applied is not shown
    assert "Status:           Running\n" in text
    assert "IPs:\n  IP:  10.244.1.5\nContainers:\n  c0:\n" in text
    assert "    Port:           80/TCP\n" in text
    assert "    State:          Running\n      Started:      Fri, 01 Mar 2024 11:59:30 +0000\n" \
        in text
    # consecutive lines with cells form one block, as in kubectl's output
    assert ("Conditions:\n  Type           Status\n  Ready          True \n"
            "Volumes:         <none>\nQoS Class:       BestEffort\n") in text
    assert text.endswith("Events:          <none>")


def test_describe_deployment_shows_new_and_old_replica_sets() -> None:
    d = deployment(replicas=3, updatedReplicas=3, availableReplicas=3)
    d["status"]["conditions"] = [{"type": "Available", "status": "True",
                                  "reason": "MinimumReplicasAvailable"}]
    d["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "2"}
    new = {"metadata": {"name": "web-new", "annotations": {
        "deployment.kubernetes.io/revision": "2"}}, "spec": {"replicas": 3},
        "status": {"replicas": 3}}
    old = {"metadata": {"name": "web-old", "annotations": {
        "deployment.kubernetes.io/revision": "1"}}, "spec": {"replicas": 0},
        "status": {"replicas": 1}}
    text = "\n".join(describe(d, Related(replicasets=[new, old]), NOW, UTC))
    assert "Replicas:               3 desired | 3 updated | 3 total | 3 available | " \
           "0 unavailable\n" in text
    assert "RollingUpdateStrategy:  25% max unavailable, 25% max surge\n" in text
    assert "Pod Template:\n  Labels:  <none>\n  Containers:\n   web:\n    Image:        " \
           "localhost/web:1\n" in text
    # the conditions table and the lines after it are one block, as in kubectl's output
    assert ("Conditions:\n  Type           Status  Reason\n  ----           ------  ------\n"
            "  Available      True    MinimumReplicasAvailable\n") in text
    assert "OldReplicaSets:  web-old (1/0 replicas created)\n" in text
    assert "NewReplicaSet:   web-new (3/3 replicas created)\n" in text


def test_describe_node_sums_what_its_pods_request() -> None:
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n1", "creationTimestamp": ts(DAY)},
            "spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": "2", "memory": "1Gi"},
                       "conditions": [{"type": "Ready", "status": "True", "reason": "Ok"}]}}
    big = {"metadata": meta("big"), "spec": {
        "containers": [{"resources": {"requests": {"cpu": "500m", "memory": "256Mi"},
                                      "limits": {"cpu": "1"}}},
                       {"resources": {"requests": {"cpu": "250m"}}}],
        "initContainers": [{"resources": {"requests": {"cpu": "900m"}}}]},
        "status": {"phase": "Running"}}
    done = {"metadata": meta("done"), "status": {"phase": "Succeeded"}}
    lines = describe(node, Related(pods=[big, done]), NOW, UTC)
    assert "Taints:             dedicated=gpu:NoSchedule" in lines
    # the pods table shares its first column with the System Info block above, as in
    # kubectl's output
    start = lines.index("Non-terminated Pods:          (1 in total)")
    assert lines[start + 1:start + 11] == [
        "  Namespace                   Name  CPU Requests  CPU Limits  Memory Requests  "
        "Memory Limits  Age",
        "  ---------                   ----  ------------  ----------  ---------------  "
        "-------------  ---",
        "  default                     big   900m (45%)    1 (50%)     256Mi (25%)      "
        "0 (0%)         60s",
        "Allocated resources:",
        "  (Total limits may be over 100 percent, i.e., overcommitted.)",
        "  Resource           Requests     Limits",
        "  --------           --------     ------",
        "  cpu                900m (45%)   1 (50%)",
        "  memory             256Mi (25%)  0 (0%)",
        "  ephemeral-storage  0 (0%)       0 (0%)",
    ]


def test_describe_pdb_as_kubectl() -> None:
    budget = pdb({"minAvailable": 1, "selector": {"matchLabels": {"app": "rails"}}},
                 disruptionsAllowed=1, currentHealthy=2, desiredHealthy=1, expectedPods=2)
    event = {"type": "Normal", "reason": "NoPods", "message": "No matching pods found",
             "source": {"component": "controllermanager"}, "firstTimestamp": ts(90)}
    assert describe(budget, Related(events=[event]), NOW, UTC) == [
        "Name:           web",
        "Namespace:      default",
        "Min available:  1",
        "Selector:       app=rails",
        "Status:",
        "    Allowed disruptions:  1",
        "    Current:              2",
        "    Desired:              1",
        "    Total:                2",
        "Events:",
        "  Type    Reason  Age   From               Message",
        "  ----    ------  ----  ----               -------",
        "  Normal  NoPods  90s   controllermanager  No matching pods found",
    ]


@pytest.mark.parametrize(("spec", "lines"), [
    ({"maxUnavailable": "25%", "selector": {}},
     ["Max unavailable:  25%", "Selector:         <none>"]),  # {} selects every pod
    ({"minAvailable": "50%"}, ["Min available:  50%", "Selector:       <unset>"]),
])
def test_describe_pdb_amount_and_selector(spec: dict[str, Any], lines: list[str]) -> None:
    text = describe(pdb(spec), Related(), NOW, UTC)
    assert text[2:4] == lines
    assert text[-1] == "Events:                   <none>"


def test_describe_unknown_kind_is_generic() -> None:
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": meta("leader"),
             "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}
    lines = describe(lease, Related(), NOW, UTC)
    assert "Spec:" in lines
    assert "  Holder Identity:         a" in lines
    assert "  Lease Duration Seconds:  15" in lines
    assert lines[-1] == "Events:                    <none>"


# --- rbac ------------------------------------------------------------------------------------

RBAC = "rbac.authorization.k8s.io"


def test_roles_print_name_and_created_at() -> None:
    role = {"metadata": meta("pod-reader", 2 * DAY), "rules": []}
    cluster = {"metadata": {"name": "view", "creationTimestamp": "2024-02-29T08:00:00.5+01:00"}}
    assert render_table(resource("roles"), [role], NOW) == [
        "NAME         CREATED AT", "pod-reader   2024-02-28T12:00:00Z"]
    assert render_table(resource("clusterroles"), [cluster], NOW) == [
        "NAME   CREATED AT", "view   2024-02-29T07:00:00Z"]


def test_bindings_print_the_role_and_wide_the_subjects() -> None:
    binding = {"metadata": meta("admin", HOUR),
               "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "admin"},
               "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "user1"},
                            {"kind": "ServiceAccount", "namespace": "monitoring",
                             "name": "sa-dev"},
                            {"kind": "User", "apiGroup": RBAC, "name": "user2"},
                            {"kind": "Group", "apiGroup": RBAC, "name": "group1"}]}
    bare = {"metadata": meta("readers", 90),
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "pod-reader"}}
    assert render_table(resource("rolebindings"), [binding, bare], NOW) == [
        "NAME      ROLE                AGE", "admin     ClusterRole/admin   60m",
        "readers   Role/pod-reader     90s"]
    assert render_table(resource("clusterrolebindings"), [binding, bare], NOW,
                        TableOptions(wide=True)) == [
        "NAME      ROLE                AGE   USERS          GROUPS   SERVICEACCOUNTS",
        "admin     ClusterRole/admin   60m   user1, user2   group1   monitoring/sa-dev",
        "readers   Role/pod-reader     90s                           ",
    ]


def test_describe_role_as_kubectl() -> None:
    role = {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": meta("pod-reader"),
            "rules": [{"apiGroups": [""], "resources": ["pods"],
                       "verbs": ["get", "watch", "list"]}]}
    assert describe(role, Related(), NOW, UTC) == [
        "Name:         pod-reader",
        "Labels:       <none>",
        "Annotations:  <none>",
        "PolicyRule:",
        "  Resources  Non-Resource URLs  Resource Names  Verbs",
        "  ---------  -----------------  --------------  -----",
        "  pods       []                 []              [get watch list]",
    ]


def test_describe_clusterrole_breaks_rules_down_and_sorts_as_kubectl() -> None:
    """One line per resource and resource name, the verbs of equal ones merged, one line
    per URL and verb; sorted by the Go text of the rule (verbs first: "[get list]" comes
    before "[get]"). A rule without apiGroups shows nothing."""
    role = {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole",
            "metadata": {"name": "mixed", "labels": {"team": "a"}},
            "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"],
                 "verbs": ["get"], "resourceNames": ["web", "api"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                {"apiGroups": ["", "batch"], "resources": ["pods"], "verbs": ["list"]},
                {"nonResourceURLs": ["/healthz", "/logs/*"], "verbs": ["get", "post"]},
                {"resources": ["secrets"], "verbs": ["get"]},
            ]}
    assert describe(role, Related(), NOW, UTC) == [
        "Name:         mixed",
        "Labels:       team=a",
        "Annotations:  <none>",
        "PolicyRule:",
        "  Resources               Non-Resource URLs  Resource Names  Verbs",
        "  ---------               -----------------  --------------  -----",
        "  pods                    []                 []              [get list]",
        "                          [/healthz]         []              [get]",
        "                          [/logs/*]          []              [get]",
        "  deployments.apps/scale  []                 [api]           [get]",
        "  deployments.apps/scale  []                 [web]           [get]",
        "  deployments.apps        []                 [api]           [get]",
        "  deployments.apps        []                 [web]           [get]",
        "  pods.batch              []                 []              [list]",
        "                          [/healthz]         []              [post]",
        "                          [/logs/*]          []              [post]",
    ]


def test_describe_bindings_as_kubectl() -> None:
    binding = {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding",
               "metadata": meta("admin-binding", annotations={"note": "x"}),
               "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "admin"},
               "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "jane"},
                            {"kind": "ServiceAccount", "namespace": "monitoring",
                             "name": "sa-dev"}]}
    assert describe(binding, Related(), NOW, UTC) == [
        "Name:         admin-binding",
        "Labels:       <none>",
        "Annotations:  note: x",
        "Role:",
        "  Kind:  Role",
        "  Name:  admin",
        "Subjects:",
        "  Kind            Name    Namespace",
        "  ----            ----    ---------",
        "  User            jane    ",
        "  ServiceAccount  sa-dev  monitoring",
    ]
    cluster = {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "nobody"},
               "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"}}
    assert describe(cluster, Related(), NOW, UTC)[3:] == [
        "Role:", "  Kind:  ClusterRole", "  Name:  view", "Subjects:",
        "  Kind  Name  Namespace", "  ----  ----  ---------"]


# --- label / annotate ------------------------------------------------------------------------

def test_split_arguments() -> None:
    assert split_arguments(["pods", "web", "a=1", "b-"]) == (["pods", "web"], ["a=1", "b-"])
    assert split_arguments(["pod/web", "a=1"]) == (["pod/web"], ["a=1"])


@pytest.mark.parametrize(("specs", "what", "change"), [
    (["a=1", "b-"], "label", MetadataChange({"a": "1"}, ("b",))),
    (["a="], "label", MetadataChange({"a": ""}, ())),
    (["note=x=y"], "annotation", MetadataChange({"note": "x=y"}, ())),
])
def test_parse_changes(specs: list[str], what: str, change: MetadataChange) -> None:
    assert parse_changes(specs, what) == change


@pytest.mark.parametrize(("specs", "message"), [
    (["a=1=2"], "invalid label spec: a=1=2"),
    (["=1"], "invalid label spec: =1"),
    (["a=1", "a-"], "can not both modify and remove the following label(s) in the same "
                    "command: a"),
    ([], "at least one label update is required"),
])
def test_parse_changes_rejects(specs: list[str], message: str) -> None:
    with pytest.raises(NavctlError) as info:
        parse_changes(specs, "label")
    assert str(info.value) == message


def test_plan_change_refuses_overwrite_without_flag() -> None:
    change = MetadataChange({"tier": "back", "new": "1"}, ())
    outcome = plan_change({"tier": "front"}, change, overwrite=False)
    assert outcome.errors == ("'tier' already has a value (front), and --overwrite is false",)
    allowed = plan_change({"tier": "front"}, change, overwrite=True)
    assert allowed.errors == ()
    assert allowed.patch == {"tier": "back", "new": "1"}


def test_plan_change_removes_and_reports_absent_keys() -> None:
    outcome = plan_change({"a": "1", "b": "2"}, MetadataChange({"a": "1"}, ("b", "zz")), False)
    assert outcome.result == {"a": "1"}
    assert outcome.patch == {"b": None}
    assert outcome.absent == ("zz",)
    assert plan_change({"a": "1"}, MetadataChange({"a": "1"}, ()), False).patch == {}


# --- errors ------------------------------------------------------------------------------

def test_error_messages() -> None:
    assert error_message(NotFound(grpc.StatusCode.NOT_FOUND, 'pods "x" not found',
                                  reason="NotFound")) == \
        'Error from server (NotFound): pods "x" not found'
    assert error_message(AlreadyExists(grpc.StatusCode.ALREADY_EXISTS,
                                       'services "web" already exists')) == \
        'Error from server (AlreadyExists): services "web" already exists'
    assert error_message(UnknownKind('the server doesn\'t have a resource type "foo"')) == \
        'error: the server doesn\'t have a resource type "foo"'
    refused = ServerUnavailable(grpc.StatusCode.UNAVAILABLE,
                                "failed to connect to all addresses; last error: ...")
    assert error_message(refused, "127.0.0.1:1") == (
        "The connection to the server 127.0.0.1:1 was refused - did you specify the right "
        "host or port?")


def test_invalid_object_errors_list_each_field() -> None:
    one = Invalid(grpc.StatusCode.INVALID_ARGUMENT,
                  'Deployment "web" is invalid: spec.replicas: Invalid value: -1: must be '
                  "greater than or equal to 0",
                  (FieldViolation("spec.replicas", "Invalid value: -1: must be greater than "
                                                   "or equal to 0"),), "Invalid")
    assert error_message(one) == ('The Deployment "web" is invalid: spec.replicas: Invalid '
                                  "value: -1: must be greater than or equal to 0")
    grouped = Invalid(grpc.StatusCode.INVALID_ARGUMENT,
                      'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1',
                      (FieldViolation("spec.replicas", "Invalid value: -1"),), "Invalid")
    assert error_message(grouped) == ('The Deployment "web" is invalid: spec.replicas: '
                                      "Invalid value: -1")
    two = Invalid(grpc.StatusCode.INVALID_ARGUMENT, 'Pod "p" is invalid: [...]',
                  (FieldViolation("metadata.name", "Invalid value: \"P\": bad"),
                   FieldViolation("spec.containers[0].image", "Required value")), "Invalid")
    assert error_message(two) == (
        'The Pod "p" is invalid: \n'
        '* metadata.name: Invalid value: "P": bad\n'
        "* spec.containers[0].image: Required value")
