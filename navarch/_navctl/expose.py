"""``navctl expose``: a new Service in front of a Deployment, ReplicaSet, Pod or Service,
built as kubectl builds it.

    TYPE NAME (fetched) | -f FILE (read, not fetched) ─▶ check_exposable
        ─▶ service_for(object, ExposeOptions)       pure: the Service document
             selector   --selector, else the object's (pod_selector)
             ports      --port (comma-separated), else the object's (exposed_ports);
                        protocols from the object's ports unless --protocol
             labels     --labels, else the object's; name: --name, else the object's
        ─▶ create (--dry-run=server: validated, not stored; client: not sent)
        ─▶ ``service/NAME exposed`` or -o yaml|json|name

Everything above the create is a pure function of the object (in its Kubernetes JSON
form) and the flags, tested without a server.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from navarch import _codec
from navarch._errors import ApiError
from navarch._kinds import Kind, kind_of_message, resource
from navarch._navctl.apply import manifest_namespace, read_manifests
from navarch._navctl.context import Context
from navarch._navctl.errors import NavctlError, error_message
from navarch._navctl.printers import object_ref, to_json, to_yaml
from navarch._navctl.targets import object_dict, parse_targets
from navarch._navctl.values import Obj, dig, items

__all__ = [
    "ExposeOptions", "Target", "add_expose_arguments", "check_exposable", "exposed_ports",
    "parse_label_spec", "pod_selector", "port_protocols", "print_made", "run_expose",
    "service_for", "targets_of",
]

# kubectl's list: pod, service, replicationcontroller, deployment, replicaset (Navarch
# serves no ReplicationController).
_EXPOSABLE = frozenset({("", "Pod"), ("", "Service"), ("apps", "Deployment"),
                        ("apps", "ReplicaSet")})
_NAME_MAX = 63  # a Service name is a DNS-1035 label
_AFFINITIES = ("None", "ClientIP")
_PORT = re.compile(r"[+-]?\d+")
_OUTPUTS = ("yaml", "json", "name")
_NO_RESOURCES = ("You must provide one or more resources by argument or filename.\n"
                 "Example resource specifications include:\n"
                 "   '-f rsrc.yaml'\n"
                 "   '--filename=rsrc.json'\n"
                 "   '<resource> <name>'\n"
                 "   '<resource>'")


@dataclass(frozen=True)
class ExposeOptions:
    """The flags that shape the Service; "" means not given.

    ``port`` may list several ports (``80,443``); ``target_port`` is a number or the name
    of a container port; ``cluster_ip`` "None" asks for a headless Service.
    """

    port: str = ""
    target_port: str = ""
    protocol: str = ""
    type: str = ""
    name: str = ""
    selector: str = ""
    labels: str = ""
    cluster_ip: str = ""
    session_affinity: str = ""
    external_ip: str = ""


def add_expose_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``expose`` other than the targets, ``-f`` and ``--dry-run``."""
    parser.add_argument("--port", default="",
                        help="the port the service serves on (default: the ports of the "
                             "exposed object)")
    parser.add_argument("--target-port", default="",
                        help="the number or name of the pods' port to send to (default: "
                             "the port)")
    parser.add_argument("--protocol", default="",
                        help="TCP, UDP or SCTP (default: the exposed ports', else TCP)")
    parser.add_argument("--type", default="",
                        help="ClusterIP (the default), NodePort or LoadBalancer")
    parser.add_argument("--name", default="",
                        help="the name of the service (default: the exposed object's)")
    parser.add_argument("--selector", default="",
                        help="k=v[,k=v...]: the pods the service sends to (default: the "
                             "exposed object's selector)")
    parser.add_argument("-l", "--labels", default="",
                        help="k=v[,k=v...]: the service's labels (default: the exposed "
                             "object's)")
    parser.add_argument("--cluster-ip", default="",
                        help="the service's virtual IP (default: allocated); None for a "
                             "headless service")
    parser.add_argument("--session-affinity", default="", help="None or ClientIP")
    parser.add_argument("--external-ip", default="",
                        help="an extra IP address, not managed by the cluster, at which "
                             "nodes accept the service's traffic")
    parser.add_argument("-o", "--output", choices=_OUTPUTS, help="output format")


def options_from_args(args: argparse.Namespace) -> ExposeOptions:
    """The ExposeOptions of a parsed command line."""
    return ExposeOptions(
        port=args.port, target_port=args.target_port, protocol=args.protocol,
        type=args.type, name=args.name, selector=args.selector, labels=args.labels,
        cluster_ip=args.cluster_ip, session_affinity=args.session_affinity,
        external_ip=args.external_ip)


# --- pure parts ----------------------------------------------------------------------------

def check_exposable(kind: Kind) -> None:
    """Raises NavctlError unless a Service can be made for objects of ``kind``."""
    if (kind.group, kind.kind) not in _EXPOSABLE:
        group_kind = f"{kind.kind}.{kind.group}" if kind.group else kind.kind
        raise NavctlError(f"cannot expose a {group_kind}")


def _go_requirements(expressions: Sequence[Mapping[str, Any]]) -> str:
    """matchExpressions as kubectl quotes them: ``[{Key:tier Operator:In Values:[a b]}]``."""
    shown = [f"{{Key:{e.get('key', '')} Operator:{e.get('operator', '')} "
             f"Values:[{' '.join(e.get('values') or [])}]}}" for e in expressions]
    return f"[{' '.join(shown)}]"


def _no_selector(reason: str) -> NavctlError:
    return NavctlError(f"couldn't retrieve selectors via --selector flag or introspection: "
                       f"{reason}")


def pod_selector(obj: Obj) -> dict[str, str]:
    """The pods ``obj`` stands for, as Service selector labels: a Pod's labels, a Service's
    selector, a Deployment's or ReplicaSet's ``matchLabels`` (refused when it also has
    ``matchExpressions``, which a Service selector cannot say). NavctlError otherwise."""
    kind = obj.get("kind")
    if kind == "Pod":
        labels = dig(obj, "metadata.labels", {})
        if not labels:
            raise _no_selector("the pod has no labels and cannot be exposed")
        return dict(labels)
    if kind == "Service":
        selector = dig(obj, "spec.selector", {})
        if not selector:
            raise _no_selector("the service has no pod selector set")
        return dict(selector)
    match_labels = dig(obj, "spec.selector.matchLabels", {})
    if not match_labels:
        raise _no_selector(f"invalid {str(kind).lower()}: no selectors, therefore cannot "
                           "be exposed")
    expressions = items(obj, "spec.selector.matchExpressions")
    if expressions:
        raise _no_selector(f'couldn\'t convert expressions - "{_go_requirements(expressions)}"'
                           " to map-based selector format")
    return dict(match_labels)


def _declared_ports(obj: Obj) -> list[tuple[int, str]]:
    """(port, protocol) of every port ``obj`` declares, in order: a Service's ports, else
    the container ports of its pod spec (init containers do not serve)."""
    if obj.get("kind") == "Service":
        return [(int(p.get("port", 0)), p.get("protocol") or "TCP")
                for p in items(obj, "spec.ports")]
    spec = obj.get("spec") if obj.get("kind") == "Pod" else dig(obj, "spec.template.spec")
    return [(int(p.get("containerPort", 0)), p.get("protocol") or "TCP")
            for c in items(spec, "containers") for p in c.get("ports") or []]


def exposed_ports(obj: Obj) -> list[int]:
    """The port numbers ``obj`` serves on, each once, in the order declared."""
    return list(dict.fromkeys(port for port, _ in _declared_ports(obj)))


def port_protocols(obj: Obj) -> dict[int, list[str]]:
    """The protocols ``obj`` serves each port number with (53: TCP and UDP)."""
    found: dict[int, list[str]] = {}
    for port, protocol in _declared_ports(obj):
        if protocol not in found.setdefault(port, []):
            found[port].append(protocol)
    return found


def parse_label_spec(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` (equality only, as a Service selector is) as a map; NavctlError for a
    part that is not ``key=value``."""
    labels: dict[str, str] = {}
    for part in text.split(","):
        pieces = part.split("=")
        if len(pieces) != 2:
            raise NavctlError(f"unexpected label spec: {part}")
        if not pieces[0]:
            raise NavctlError("unexpected empty label key")
        labels[pieces[0]] = pieces[1]
    return labels


def _port_number(text: str) -> int:
    if not _PORT.fullmatch(text):
        raise NavctlError(f'invalid port "{text}" in --port: a port number such as 80 is '
                          "expected")
    return int(text)


def _service_ports(obj: Obj, options: ExposeOptions) -> list[Obj]:
    """The Service's ports: one per port number (named port-1, port-2... when several),
    or one per protocol of a port served with several (port-1-tcp, port-1-udp)."""
    if options.port:
        numbers = [_port_number(text) for text in options.port.split(",")]
    else:
        numbers = exposed_ports(obj)
        if not numbers and options.cluster_ip != "None":
            raise NavctlError("couldn't find port via --port flag or introspection")
    protocols = port_protocols(obj)
    ports: list[Obj] = []
    for index, number in enumerate(numbers, start=1):
        name = f"port-{index}" if len(numbers) > 1 else ""
        served = [options.protocol] if options.protocol else protocols.get(number, ["TCP"])
        for protocol in served:
            port: Obj = {"port": number, "protocol": protocol}
            if len(served) > 1:
                port["name"] = f"port-{index}-{protocol.lower()}"
            elif name:
                port["name"] = name
            port["targetPort"] = _codec.int_or_string(options.target_port) \
                if options.target_port else number
            ports.append(port)
    return ports


def service_for(obj: Obj, options: ExposeOptions) -> Obj:
    """The Service (Kubernetes JSON form, no namespace) that exposes ``obj``; NavctlError
    when no selector or port can be found or a flag is malformed."""
    selector = parse_label_spec(options.selector) if options.selector else pod_selector(obj)
    ports = _service_ports(obj, options)
    labels = parse_label_spec(options.labels) if options.labels else \
        dict(dig(obj, "metadata.labels", {}))
    name = options.name or str(dig(obj, "metadata.name", ""))[:_NAME_MAX]
    if not name:
        raise NavctlError("name must be specified")
    metadata: Obj = {"name": name}
    if labels:
        metadata["labels"] = labels
    spec: Obj = {"ports": ports, "selector": selector} if ports else {"selector": selector}
    if options.external_ip:
        spec["externalIPs"] = [options.external_ip]
    if options.type:
        spec["type"] = options.type
    if options.session_affinity:
        if options.session_affinity not in _AFFINITIES:
            raise NavctlError(f"unknown session affinity: {options.session_affinity}")
        spec["sessionAffinity"] = options.session_affinity
    if options.cluster_ip:
        spec["clusterIP"] = options.cluster_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def exposed_message(name: str, dry_run: str) -> str:
    """``service/web exposed``, with kubectl's ``(dry run)`` or ``(server dry run)``."""
    suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")
    return f"service/{name} exposed{suffix}"


# --- command -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """An object a command acts on: named (to be fetched) or read from a manifest
    (``obj``)."""

    kind: Kind
    namespace: str
    name: str
    obj: Obj | None = None


def targets_of(ctx: Context, args: argparse.Namespace, verb: str) -> list[Target]:
    """The objects ``TYPE NAME``, ``TYPE/NAME`` or ``-f FILE`` name (kubectl's rules)."""
    if args.filename:
        if args.targets:
            raise NavctlError("when paths, URLs, or stdin is provided as input, you may not "
                              "specify resource arguments as well")
        try:
            manifests = read_manifests(args.filename, args.recursive)
        except NavctlError as exc:
            if str(exc) == "no objects passed to apply":
                raise NavctlError(f"no objects passed to {verb}") from exc
            raise
        found = []
        for manifest in manifests:
            kind = kind_of_message(manifest.object)
            doc = object_dict(kind, manifest.object)
            found.append(Target(kind, manifest_namespace(kind, manifest.object, ctx),
                                 str(dig(doc, "metadata.name", "")), doc))
        return found
    if not args.targets:
        raise NavctlError(_NO_RESOURCES)
    selection = parse_targets(args.targets)
    if not selection.named:
        raise NavctlError("resource(s) were provided, but no name was specified")
    return [Target(kind, ctx.namespace, name)
            for kind, names in selection.groups for name in names]


async def _expose_one(ctx: Context, target: Target, options: ExposeOptions,
                      dry_run: str) -> Obj:
    """The Service made for ``target``: as the server stored it (or would, for a server
    dry run), or as built (client dry run)."""
    check_exposable(target.kind)
    obj = target.obj
    if obj is None:
        fetched = await ctx.client().resource(target.kind, target.namespace).get(target.name)
        obj = object_dict(target.kind, fetched)
    doc = service_for(obj, options)
    services = resource("services")
    body = _codec.from_dict(doc, services.message)
    if dry_run == "client":
        if ctx.namespace_explicit:  # as kubectl: the namespace shows when -n was given
            body.metadata.namespace = target.namespace
        return object_dict(services, body)
    body.metadata.namespace = target.namespace
    created = await ctx.client().resource(services, target.namespace).create(
        body, dry_run=dry_run == "server")
    return object_dict(services, created)


def print_made(ctx: Context, kind: Kind, obj: Obj, output: str | None, message: str) -> None:
    """An object a command made, as ``-o yaml|json|name`` asks, else ``message``."""
    if output == "yaml":
        ctx.print(to_yaml(obj).rstrip("\n"))
    elif output == "json":
        ctx.print(to_json(obj))
    elif output == "name":
        ctx.print(object_ref(kind, str(dig(obj, "metadata.name", ""))))
    else:
        ctx.print(message)


async def run_expose(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl expose``: one Service per object named; an object that cannot be exposed
    is reported and the others still are."""
    options = options_from_args(args)
    for target in targets_of(ctx, args, "expose"):
        try:
            service = await _expose_one(ctx, target, options, args.dry_run)
        except (ApiError, NavctlError, _codec.FieldError) as exc:
            ctx.fail(error_message(exc, ctx.address))
            continue
        name = str(dig(service, "metadata.name", ""))
        print_made(ctx, resource("services"), service, args.output,
                   exposed_message(name, args.dry_run))
