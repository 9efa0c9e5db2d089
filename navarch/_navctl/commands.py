"""``navctl describe``, ``scale``, ``api-resources``, ``version``, ``cluster-info`` and
``create namespace``:
the thin layer that fetches what the pure printers need."""

from __future__ import annotations

import argparse
import platform
from typing import Any

from google.protobuf.message import Message

import navarch
from navarch._errors import NotFound
from navarch._kinds import Kind, resource
from navarch._navctl.context import Context
from navarch._navctl.describe import Related, describe
from navarch._navctl.errors import NavctlError, error_message
from navarch._navctl.get import no_resources_message
from navarch._navctl.printers import object_ref, to_json, to_yaml
from navarch._navctl.tabwriter import align_table
from navarch._navctl.targets import object_dict, parse_targets
from navarch._navctl.values import Obj, dig, format_selector
from navarch.v1 import api_pb2, core_pb2

__all__ = [
    "api_resource_lines", "cluster_service_lines", "related_for", "run_api_resources",
    "run_cluster_info", "run_create_namespace", "run_describe", "run_scale", "run_version",
]


# --- describe ------------------------------------------------------------------------------

def _event_selector(obj: Obj) -> str:
    parts = [f"involvedObject.name={dig(obj, 'metadata.name', '')}"]
    namespace = dig(obj, "metadata.namespace", "")
    if namespace:
        parts.append(f"involvedObject.namespace={namespace}")
    parts.append(f"involvedObject.kind={obj.get('kind', '')}")
    return ",".join(parts)


def _owned_by(obj: Obj, owner: Obj) -> bool:
    uid = dig(owner, "metadata.uid")
    return any(ref.get("uid") == uid and ref.get("controller")
               for ref in dig(obj, "metadata.ownerReferences", []))


async def _list(ctx: Context, kind: str, namespace: str, *, label_selector: str = "",
                field_selector: str = "") -> list[Obj]:
    found = await ctx.client().resource(kind, namespace).list_all(
        label_selector=label_selector, field_selector=field_selector)
    return [object_dict(resource(kind), o) for o in found.items]


async def related_for(ctx: Context, obj: Obj) -> Related:
    """The events of ``obj`` and the objects its describer shows with it."""
    namespace = str(dig(obj, "metadata.namespace", ""))
    events = await _list(ctx, "events", namespace, field_selector=_event_selector(obj))
    kind = obj.get("kind")
    endpoints: Obj | None = None
    replicasets: list[Obj] = []
    pods: list[Obj] = []
    if kind == "Service":
        try:
            found = await ctx.client().endpoints(namespace).get(dig(obj, "metadata.name"))
            endpoints = object_dict(resource("endpoints"), found)
        except NotFound:
            endpoints = None
    elif kind == "Deployment":
        replicasets = [rs for rs in await _list(ctx, "replicasets", namespace)
                       if _owned_by(rs, obj)]
    elif kind in ("ReplicaSet", "StatefulSet", "DaemonSet", "Job"):
        selector = format_selector(dig(obj, "spec.selector"))
        candidates = await _list(ctx, "pods", namespace,
                                 label_selector="" if selector == "<none>" else selector)
        pods = [p for p in candidates if _owned_by(p, obj)]
    elif kind == "Node":
        pods = await _list(ctx, "pods", "",
                           field_selector=f"spec.nodeName={dig(obj, 'metadata.name', '')}")
    return Related(events, endpoints, replicasets, pods)


async def _describe_targets(ctx: Context, kind: Kind, names: tuple[str, ...],
                            selector: str) -> list[Message]:
    client = ctx.client().resource(kind, ctx.namespace)
    if not names:
        listed = await client.list_all(label_selector=selector)
        if not listed.items:
            ctx.warn(no_resources_message(ctx.namespace, kind.namespaced))
        return list(listed.items)
    found: list[Message] = []
    for name in names:
        try:
            found.append(await client.get(name))
        except NotFound as exc:
            # as kubectl: a name that matches no object describes those it prefixes
            listed = await client.list_all()
            matches = [o for o in listed.items if o.metadata.name.startswith(name)]
            if not matches:
                ctx.fail(error_message(exc, ctx.address))
            found += matches
    return found


async def run_describe(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl describe``."""
    selection = parse_targets(args.targets)
    first = True
    for kind, names in selection.groups:
        for obj in await _describe_targets(ctx, kind, names, args.selector):
            doc = object_dict(kind, obj)
            lines = describe(doc, await related_for(ctx, doc), ctx.now())
            if not first:
                ctx.print("", "")
            first = False
            ctx.print(*lines)


# --- scale ---------------------------------------------------------------------------------

async def run_scale(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl scale``: through the scale subresource; ``--current-replicas`` is checked
    against the object and pinned with its resourceVersion."""
    if args.replicas is None or args.replicas < 0:
        raise NavctlError("The --replicas=COUNT flag is required, and COUNT must be greater "
                          "than or equal to 0")
    selection = parse_targets(args.targets)
    if not selection.named:
        raise NavctlError("resource(s) were provided, but no name was specified")
    for kind, names in selection.groups:
        if "scale" not in kind.subresources:
            raise NavctlError(f"no scaler has been implemented for {kind.kind} "
                              f"({kind.resource} have no scale subresource)")
        client = ctx.client().resource(kind, ctx.namespace)
        for name in names:
            version = args.resource_version or ""
            if args.current_replicas is not None and args.current_replicas >= 0:
                current = await client.get_scale(name)
                if current.spec.replicas != args.current_replicas:
                    raise NavctlError(f"Expected replicas to be {args.current_replicas}, "
                                      f"was {current.spec.replicas}")
                version = version or current.metadata.resource_version
            await client.scale(name, args.replicas, resource_version=version)
            ctx.print(f"{object_ref(kind, name)} scaled")


# --- discovery -----------------------------------------------------------------------------

def _preferred(resources: list[api_pb2.APIResource]) -> list[api_pb2.APIResource]:
    """One entry per group and resource: the version the SDK stores (kubectl shows the
    preferred version only)."""
    chosen: dict[tuple[str, str], api_pb2.APIResource] = {}
    for res in resources:
        key = (res.group, res.name)
        try:
            storage = resource(f"{res.name}.{res.group}" if res.group else res.name)
            preferred = storage.version == res.version
        except LookupError:
            preferred = False
        if key not in chosen or preferred:
            chosen[key] = res
    return sorted(chosen.values(), key=lambda r: (r.group, r.name))


def api_resource_lines(resources: list[api_pb2.APIResource], *, wide: bool = False,
                       headers: bool = True) -> list[str]:
    """The ``api-resources`` table."""
    raw = ["NAME\tSHORTNAMES\tAPIVERSION\tNAMESPACED\tKIND" + ("\tVERBS" if wide else "")]
    raw = raw if headers else []
    for res in _preferred(resources):
        version = f"{res.group}/{res.version}" if res.group else res.version
        cells = [res.name, ",".join(res.short_names), version,
                 "true" if res.namespaced else "false", res.kind]
        if wide:
            cells.append(f"[{' '.join(sorted(res.verbs))}]")
        raw.append("\t".join(cells))
    return align_table(raw)


async def run_api_resources(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl api-resources``."""
    found = await ctx.client().api_resources()
    if args.namespaced is not None:
        want = args.namespaced == "true"
        found = [r for r in found if r.namespaced == want]
    if args.api_group is not None:
        found = [r for r in found if r.group == args.api_group]
    if args.output == "name":
        ctx.print(*(f"{r.name}.{r.group}" if r.group else r.name for r in _preferred(found)))
        return
    ctx.print(*api_resource_lines(found, wide=args.output == "wide",
                                  headers=not args.no_headers))


CLUSTER_SERVICE = "kubernetes.io/cluster-service"


def cluster_service_lines(services: list[core_pb2.Service]) -> list[str]:
    """One line per cluster service, as kubectl cluster-info names them (the
    ``kubernetes.io/name`` label, else the Service's name). kubectl links to the API
    server's service proxy, which Navarch does not serve: the line gives the ClusterIP
    and the first port instead (name/protocol), which pods reach directly."""
    lines = []
    for svc in sorted(services, key=lambda s: s.metadata.name):
        name = svc.metadata.labels.get("kubernetes.io/name") or svc.metadata.name
        spec = svc.spec
        where = spec.cluster_ip or "<none>"
        if spec.ports:
            port = spec.ports[0]
            label = f"{port.name}/{port.protocol or 'TCP'}" if port.name else (
                port.protocol or "TCP")
            where = f"{where}:{port.port} ({label})"
        lines.append(f"{name} is running at {where} (Service kube-system/{svc.metadata.name})")
    return lines


async def run_cluster_info(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl cluster-info``: where the control plane and the cluster services (the
    kube-system Services labelled kubernetes.io/cluster-service=true) are."""
    del args
    services = await ctx.client().services("kube-system").list(
        label_selector=f"{CLUSTER_SERVICE}=true")
    ctx.print(f"Navarch control plane is running at {ctx.address}",
              *cluster_service_lines(list(services.items)), "",
              "To further debug and diagnose cluster problems, use 'navctl get events -A', "
              "'navctl describe nodes' and 'navctl get pods -n kube-system'.")


def _client_version() -> dict[str, Any]:
    return {"version": navarch.__version__, "pythonVersion": platform.python_version(),
            "platform": f"{platform.system().lower()}/{platform.machine()}"}


async def run_version(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl version``: Client Version, then Server Version."""
    doc: dict[str, Any] = {"clientVersion": _client_version()}
    server: api_pb2.VersionResponse | None = None
    if not args.client:
        server = await ctx.client().version()
        doc["serverVersion"] = {"version": server.version, "gitCommit": server.git_commit,
                                "pythonVersion": server.python_version,
                                "platform": server.platform}
    if args.output == "json":
        ctx.print(to_json(doc))
    elif args.output == "yaml":
        ctx.print(to_yaml(doc).rstrip("\n"))
    else:
        ctx.print(f"Client Version: {navarch.__version__}")
        if server is not None:
            ctx.print(f"Server Version: {server.version}")


async def run_create_namespace(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl create namespace NAME``."""
    namespace = core_pb2.Namespace(api_version="v1", kind="Namespace")
    namespace.metadata.name = args.name
    await ctx.client().namespaces().create(namespace, dry_run=args.dry_run == "server")
    ctx.print(f"namespace/{args.name} created")
