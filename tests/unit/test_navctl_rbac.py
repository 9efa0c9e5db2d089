"""``navctl auth can-i`` (navarch/_navctl/auth.py) and the client's bearer token
(navarch/_client.py): the arguments as kubectl reads them (pure), and the command and the
token headers against a small in-test gRPC server that records what it is sent and
answers access reviews as it is told."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

import navarch
from navarch._client import resolve_token
from navarch._navctl import main, parse_args
from navarch._navctl.auth import AccessCheck, answer_line, check_for
from navarch._navctl.errors import NavctlError
from navarch.v1 import api_pb2, core_pb2, node_pb2, rbac_pb2

RBAC = "rbac.authorization.k8s.io"


def warning(text: str) -> tuple[str, str]:
    """A can-i warning as kubectl prints it: the line, then an empty one."""
    return (f"Warning: {text}", "")


# --- the arguments -------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "all_namespaces", "subresource", "check"), [
    (["create", "pods"], False, "", AccessCheck("create", "pods", namespace="default")),
    (["get", "replicaset"], False, "",
     AccessCheck("get", "replicasets", "apps", namespace="default")),
    (["list", "deployments.apps"], False, "",
     AccessCheck("list", "deployments", "apps", namespace="default")),
    (["list", "jobs.batch/bar"], False, "",
     AccessCheck("list", "jobs", "batch", name="bar", namespace="default")),
    (["get", "deploy/web"], True, "", AccessCheck("get", "deployments", "apps", name="web")),
    (["get", "Deployments.v1.apps"], False, "",
     AccessCheck("get", "deployments", "apps", namespace="default")),
    (["get", "hpa.v1.autoscaling"], False, "",
     AccessCheck("get", "horizontalpodautoscalers", "autoscaling", namespace="default")),
    (["get", "pods"], True, "log", AccessCheck("get", "pods", subresource="log")),
    (["create", "rolebindings"], False, "",
     AccessCheck("create", "rolebindings", RBAC, namespace="default")),
    (["*", "*"], False, "", AccessCheck("*", "*", namespace="default")),
    (["get", "/logs/"], False, "", AccessCheck("get", namespace="default", path="/logs/")),
    # impersonation's users and groups are not served, and not warned of
    (["impersonate", "users/jane"], False, "",
     AccessCheck("impersonate", "users", name="jane", namespace="default")),
])
def test_can_i_asks_what_kubectl_asks(args: list[str], all_namespaces: bool,
                                      subresource: str, check: AccessCheck) -> None:
    assert check_for(args, namespace="default", all_namespaces=all_namespaces,
                     subresource=subresource) == check


@pytest.mark.parametrize(("args", "all_namespaces", "warnings"), [
    (["get", "invalid"], False, warning("the server doesn't have a resource type 'invalid'")),
    (["get", "Foo.apps/x"], True,
     warning("the server doesn't have a resource type 'foo' in group 'apps'")),
    (["get", "nodes"], False, warning("resource 'nodes' is not namespace scoped")),
    (["get", "nodes"], True, ()),
    (["bind", "clusterroles"], False,
     warning(f"resource 'clusterroles' is not namespace scoped in group '{RBAC}'")),
    (["frob", "pods"], False, warning("verb 'frob' is not a known verb")),
    (["frob", "pods"], True, ()),  # kubectl checks verbs only in one namespace
    (["frob", "nodes"], False, warning("resource 'nodes' is not namespace scoped")
     + warning("verb 'frob' is not a known verb")),
    (["post", "/healthz"], False, ()),
    (["list", "/healthz"], True, warning("verb 'list' is not a known verb")),
    (["approve", "certificatesigningrequests.certificates.k8s.io"], False,
     warning("the server doesn't have a resource type 'certificatesigningrequests' in "
             "group 'certificates.k8s.io'")),
])
def test_can_i_warns_as_kubectl(args: list[str], all_namespaces: bool,
                                warnings: tuple[str, ...]) -> None:
    check = check_for(args, namespace="default", all_namespaces=all_namespaces)
    assert check.warnings == warnings


def test_an_unknown_type_is_asked_about_as_written() -> None:
    check = check_for(["get", "Widgets.example.com/w1"], namespace="ns")
    assert (check.resource, check.group, check.name) == ("Widgets.example.com", "", "w1")


@pytest.mark.parametrize(("args", "subresource", "why"), [
    (["get"], "", "you must specify two arguments: verb resource or verb "
                  "resource/resourceName.\nSee 'navctl auth can-i -h' for help and examples."),
    (["get", "pods", "web"], "", "you must specify two arguments"),
    (["get", "/logs"], "log", "--subresource can not be used with NonResourceURL"),
])
def test_can_i_refuses_as_kubectl(args: list[str], subresource: str, why: str) -> None:
    with pytest.raises(NavctlError) as refused:
        check_for(args, namespace="default", subresource=subresource)
    assert str(refused.value).startswith(why)


@pytest.mark.parametrize(("status", "line"), [
    (rbac_pb2.SubjectAccessReviewStatus(allowed=True, reason="bound"), "yes"),
    (rbac_pb2.SubjectAccessReviewStatus(), "no"),
    (rbac_pb2.SubjectAccessReviewStatus(reason="no binding"), "no - no binding"),
    (rbac_pb2.SubjectAccessReviewStatus(reason="r", evaluation_error="e"), "no - r - e"),
    (rbac_pb2.SubjectAccessReviewStatus(evaluation_error="e"), "no - e"),
])
def test_answer_lines(status: rbac_pb2.SubjectAccessReviewStatus, line: str) -> None:
    assert answer_line(status) == line


def test_can_i_command_line() -> None:
    args = parse_args(["auth", "can-i", "get", "pods", "-n", "prod", "--subresource=log",
                       "-q", "--token=abc"])
    assert (args.action, args.args, args.namespace, args.subresource, args.quiet,
            args.all_namespaces, args.token) == (
        "can-i", ["get", "pods"], "prod", "log", True, False, "abc")
    args = parse_args(["--token", "abc", "auth", "can-i", "-A", "*", "*"])
    assert (args.args, args.all_namespaces, args.token) == (["*", "*"], True, "abc")


# --- against a server ------------------------------------------------------------------------

@dataclass
class FakeApiServer:
    """Records each call's method, request and metadata; answers access reviews with
    ``answer``, streams one event, one log line, one exec exit."""

    answer: rbac_pb2.SubjectAccessReviewStatus = field(
        default_factory=lambda: rbac_pb2.SubjectAccessReviewStatus(allowed=True))
    calls: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)
    address: str = ""

    def _record(self, method: str, request: Any, context: grpc.ServicerContext) -> None:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        self.calls.append((method, request, metadata))

    def create(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        request = api_pb2.CreateRequest.FromString(raw)
        self._record("Create", request, context)
        review = rbac_pb2.SelfSubjectAccessReview()
        request.object.Unpack(review)
        review.status.CopyFrom(self.answer)
        response = api_pb2.ObjectResponse()
        response.object.Pack(review)
        return response.SerializeToString()

    def watch(self, raw: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        self._record("WatchBatches", api_pb2.WatchRequest.FromString(raw), context)
        batch = api_pb2.WatchEventBatch()
        event = batch.events.add(type="ADDED")
        event.object.Pack(core_pb2.Pod(metadata={"name": "web"}))
        yield batch.SerializeToString()

    def logs(self, raw: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        self._record("Logs", node_pb2.ContainerLogsRequest.FromString(raw), context)
        yield node_pb2.LogChunk(data=b"hello\n").SerializeToString()

    def exec(self, inputs: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        self._record("Exec", node_pb2.ExecInput.FromString(next(inputs)), context)
        yield node_pb2.ExecOutput(exit_code=0).SerializeToString()

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        """The services, on raw bytes."""
        return [
            grpc.method_handlers_generic_handler("navarch.v1.Resources", {
                "Create": grpc.unary_unary_rpc_method_handler(self.create),
                "WatchBatches": grpc.unary_stream_rpc_method_handler(self.watch)}),
            grpc.method_handlers_generic_handler("navarch.v1.Pods", {
                "Logs": grpc.unary_stream_rpc_method_handler(self.logs),
                "Exec": grpc.stream_stream_rpc_method_handler(self.exec)}),
        ]


@pytest.fixture
def fake_server() -> Iterator[FakeApiServer]:
    fake = FakeApiServer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers(fake.handlers())
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    fake.address = f"127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.stop(None)


@pytest.fixture(autouse=True)
def no_ambient_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither the environment nor a config file of the machine supplies a token."""
    monkeypatch.delenv("NAVARCH_TOKEN", raising=False)
    monkeypatch.setenv("NAVARCH_CONFIG", str(tmp_path / "absent.json"))


def navctl(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_can_i_yes_no_and_quiet(fake_server: FakeApiServer) -> None:
    server = ("--server", fake_server.address)
    assert navctl(*server, "--token", "s3cret", "auth", "can-i", "get", "deploy/web",
                  "-n", "prod") == (0, "yes\n", "")
    _, request, metadata = fake_server.calls[-1]
    assert (request.resource, request.namespace) == ("selfsubjectaccessreviews", "")
    review = rbac_pb2.SelfSubjectAccessReview()
    request.object.Unpack(review)
    assert (review.api_version, review.kind) == ("authorization.k8s.io/v1",
                                                 "SelfSubjectAccessReview")
    assert review.spec.resource_attributes == rbac_pb2.ResourceAttributes(
        namespace="prod", verb="get", group="apps", resource="deployments", name="web")
    assert metadata["authorization"] == "Bearer s3cret"

    fake_server.answer = rbac_pb2.SubjectAccessReviewStatus(
        reason='no RBAC policy matched')
    assert navctl(*server, "auth", "can-i", "get", "nodes") == (
        1, "no - no RBAC policy matched\n",
        "Warning: resource 'nodes' is not namespace scoped\n\n")
    assert "authorization" not in fake_server.calls[-1][2]
    assert navctl(*server, "auth", "can-i", "get", "nodes", "-A", "-q") == (1, "", "")
    assert navctl(*server, "auth", "can-i", "post", "/healthz") == (
        1, "no - no RBAC policy matched\n", "")
    request = fake_server.calls[-1][1]
    request.object.Unpack(review)
    assert not review.spec.HasField("resource_attributes")
    assert review.spec.non_resource_attributes == rbac_pb2.NonResourceAttributes(
        path="/healthz", verb="post")
    assert navctl(*server, "auth", "can-i", "get") == (
        1, "", "error: you must specify two arguments: verb resource or verb "
               "resource/resourceName.\nSee 'navctl auth can-i -h' for help and examples.\n")


async def test_the_token_goes_with_every_call(fake_server: FakeApiServer) -> None:
    async with navarch.Client(fake_server.address, token="t0ken") as client:
        review = await client.access_review("create", "pods", namespace="default")
        assert review.status.allowed
        async for event in client.pods("default").watch():
            assert event.object.metadata.name == "web"
            break
        chunks = [c async for c in client.pod_logs(
            node_pb2.ContainerLogsRequest(namespace="default", pod="web"))]
        assert chunks == [b"hello\n"]

        async def no_input() -> AsyncIterator[node_pb2.ExecInput]:
            return
            yield  # an async generator that sends nothing

        outputs = [o async for o in client.pod_exec(
            node_pb2.ExecRequest(namespace="default", pod="web", command=["true"]),
            no_input())]
        assert outputs[-1].exit_code == 0
    assert [(method, metadata.get("authorization")) for method, _, metadata in
            fake_server.calls] == [(m, "Bearer t0ken") for m in ("Create", "WatchBatches",
                                                                 "Logs", "Exec")]


async def test_access_review_of_a_path(fake_server: FakeApiServer) -> None:
    async with navarch.Client(fake_server.address) as client:
        await client.access_review("get", path="/healthz")
        with pytest.raises(ValueError, match="a resource or a path"):
            await client.access_review("get", "pods", path="/healthz")
    review = rbac_pb2.SelfSubjectAccessReview()
    fake_server.calls[-1][1].object.Unpack(review)
    assert review.spec.non_resource_attributes.path == "/healthz"
    assert "authorization" not in fake_server.calls[-1][2]


async def test_the_token_is_found_as_the_server_is(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"server": "127.0.0.1:1", "token": "from-config"}))
    monkeypatch.setenv("NAVARCH_CONFIG", str(config))
    assert resolve_token() == "from-config"
    monkeypatch.setenv("NAVARCH_TOKEN", "from-env")
    assert resolve_token() == "from-env"
    assert resolve_token("given") == "given"

    def header(client: navarch.Client) -> list[str]:
        return [v for k, v in client.metadata if k == "authorization"]

    clients = [navarch.Client(), navarch.Client(token="given"),
               navarch.Client(metadata=[("authorization", "Basic x"), ("x-trace", "1")]),
               navarch.Client(metadata=[("authorization", "Basic x")], token="given")]
    try:
        assert [header(c) for c in clients] == [
            ["Bearer from-env"], ["Bearer given"], ["Basic x"], ["Bearer given"]]
        assert ("x-trace", "1") in clients[2].metadata
    finally:
        for c in clients:
            await c.close()
    monkeypatch.delenv("NAVARCH_TOKEN")
    # the config file's token goes to the config file's server only
    assert resolve_token(server="127.0.0.1:1") == "from-config"
    assert resolve_token(server="10.0.0.9:6443") == ""
    elsewhere = navarch.Client("10.0.0.9:6443")
    try:
        assert header(elsewhere) == []
    finally:
        await elsewhere.close()
    config.write_text(json.dumps({"server": "127.0.0.1:1"}))
    assert resolve_token() == ""
