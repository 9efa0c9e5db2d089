"""Objects made from flags, as kubectl's generators make them: ``run``, ``create
deployment``, ``create configmap``, ``create secret generic``, ``create
poddisruptionbudget``, and (built in roles.py) ``create role``, ``clusterrole``,
``rolebinding`` and ``clusterrolebinding``.

The builders are pure: flags in, an object in Kubernetes JSON form out (the same shape
kubectl would send). The commands create it (or print it with ``-o yaml|json|name`` and
``--dry-run``) and say ``pod/NAME created``.

- ``run NAME --image=IMG``: one Pod labelled ``run=NAME`` (``--labels`` replaces that),
  its container named NAME; words after ``--`` are the container's args (its command
  with ``--command``); ``--env``, ``--port``, ``--restart`` (Always, OnFailure, Never),
  ``--image-pull-policy``.
- ``create deployment NAME --image=IMG [--image=IMG2] [--replicas=1] [--port=P] [-- CMD]``:
  labels, selector and template labels ``app=NAME``; one container per image, named after
  the image (``registry/x/agnhost:2.39`` → ``agnhost``); the command after ``--`` goes to
  the single container.
- ``create configmap NAME`` and ``create secret generic NAME``: ``--from-literal=k=v``,
  ``--from-file=[key=]path`` (a directory: each regular file in it), ``--from-env-file``;
  a file that is not UTF-8 goes to a ConfigMap's binaryData. Secret values are base64,
  ``--type`` (default Opaque).
- ``create poddisruptionbudget NAME --selector=SEL (--min-available=N|N% |
  --max-unavailable=N|N%)`` (alias ``pdb``): the selector is required (``=`` and ``==``
  go to matchLabels, ``in``, ``notin``, ``KEY``, ``!KEY`` to matchExpressions), and
  exactly one of the two amounts, a number or a percentage; kubectl's wording when not.
  A refusal from the server reads ``failed to create poddisruptionbudgets: ...``
  (``failed to create rolebinding: ...`` and ``clusterrolebinding`` likewise).
"""

from __future__ import annotations

import argparse
import base64
import re
from pathlib import Path
from typing import Any

import grpc

from navarch import _codec
from navarch._errors import ApiError
from navarch._kinds import Kind, resource
from navarch._labels import SelectorError, parse_label_selector
from navarch._navctl.context import Context
from navarch._navctl.errors import NavctlError, error_message
from navarch._navctl.expose import print_made
from navarch._navctl.printers import object_ref
from navarch._navctl.roles import Generated, binding_from, clusterrole_from, comma_list, role_from

__all__ = [
    "configmap_from", "deployment_from", "label_selector_from", "pdb_from", "pod_from",
    "run_generated", "secret_from",
]

Obj = dict[str, Any]
_RESTART = ("Always", "OnFailure", "Never")
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_COUNT_OR_PERCENT = re.compile(r"[0-9]+%?")  # 10, 30%; not 10Gb (fullmatch)
_NOT_ANSWERED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                 grpc.StatusCode.UNAUTHENTICATED)  # worded as every command words them
_EXPRESSION_OPERATORS = {"in": "In", "notin": "NotIn", "exists": "Exists", "!": "DoesNotExist"}


def container_name(image: str) -> str:
    """The container name kubectl derives from an image: its last path part without tag
    or digest, made a valid DNS label."""
    base = image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    name = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-")
    return name[:63] or "container"


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise NavctlError(f"invalid {flag} {value!r}: expected KEY=VALUE")
        out[key] = val
    return out


def _labels(text: str) -> dict[str, str]:
    return _pairs([p for p in text.split(",") if p], "--labels") if text else {}


def pod_from(name: str, image: str, *, args: list[str], command: bool, env: list[str],
             port: int | None, labels: str, restart: str, pull_policy: str) -> Obj:
    """The Pod ``navctl run`` makes."""
    if not image:
        raise NavctlError("--image is required")
    if restart not in _RESTART:
        raise NavctlError(f'invalid restart policy: {restart}: use one of "Always", '
                          '"OnFailure", "Never"')
    container: Obj = {"name": name, "image": image}
    if args:
        container["command" if command else "args"] = list(args)
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in _pairs(env, "--env").items()]
    if port:
        container["ports"] = [{"containerPort": port}]
    if pull_policy:
        container["imagePullPolicy"] = pull_policy
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": _labels(labels) or {"run": name}},
            "spec": {"containers": [container], "restartPolicy": restart,
                     "dnsPolicy": "ClusterFirst"}}


def deployment_from(name: str, images: list[str], *, replicas: int, port: int | None,
                    command: list[str]) -> Obj:
    """The Deployment ``navctl create deployment`` makes."""
    if not images:
        raise NavctlError("required flag(s) \"image\" not set")
    if command and len(images) > 1:
        raise NavctlError("cannot specify multiple --image options and command")
    if replicas < 0:
        raise NavctlError("--replicas must be 0 or more")
    containers = []
    for image in images:
        container: Obj = {"name": container_name(image), "image": image}
        if command:
            container["command"] = list(command)
        if port:
            container["ports"] = [{"containerPort": port}]
        containers.append(container)
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": containers}}}}


def _sources(literals: list[str], files: list[str], env_files: list[str]
             ) -> list[tuple[str, bytes]]:
    """(key, content) of every source, in order; NavctlError names a bad one."""
    out: list[tuple[str, bytes]] = []
    for literal in literals:
        key, sep, value = literal.partition("=")
        if not sep or not key:
            raise NavctlError(f"invalid literal source {literal}, expected key=value")
        out.append((key, value.encode()))
    for spec in files:
        key, sep, path_text = spec.partition("=")
        if not sep:
            key, path_text = "", spec
        path = Path(path_text)
        if path.is_dir():
            if key:
                raise NavctlError(f"cannot give a key name for a directory path: {spec}")
            out += [(f.name, f.read_bytes()) for f in sorted(path.iterdir()) if f.is_file()]
        else:
            try:
                out.append((key or path.name, path.read_bytes()))
            except OSError as exc:
                raise NavctlError(f"error reading {path_text}: {exc.strerror}") from None
    for env_file in env_files:
        try:
            lines = Path(env_file).read_text().splitlines()
        except OSError as exc:
            raise NavctlError(f"error reading {env_file}: {exc.strerror}") from None
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise NavctlError(f"{env_file}:{number}: expected KEY=VALUE, got {line!r}")
            out.append((key, value.encode()))
    seen: set[str] = set()
    for key, _ in out:
        if not _KEY.match(key):
            raise NavctlError(f'"{key}" is not a valid key name: a valid config key must '
                              "consist of alphanumeric characters, '-', '_' or '.'")
        if key in seen:
            raise NavctlError(f"cannot add key {key}, another key by that name already "
                              "exists")
        seen.add(key)
    return out


def configmap_from(name: str, literals: list[str], files: list[str],
                   env_files: list[str]) -> Obj:
    """The ConfigMap ``navctl create configmap`` makes."""
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    for key, content in _sources(literals, files, env_files):
        try:
            data[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode()
    doc: Obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    if data:
        doc["data"] = data
    if binary:
        doc["binaryData"] = binary
    return doc


def secret_from(name: str, literals: list[str], files: list[str], env_files: list[str],
                secret_type: str) -> Obj:
    """The Secret ``navctl create secret generic`` makes."""
    data = {key: base64.b64encode(content).decode()
            for key, content in _sources(literals, files, env_files)}
    doc: Obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                "type": secret_type or "Opaque"}
    if data:
        doc["data"] = data
    return doc


def label_selector_from(text: str) -> Obj:
    """A LabelSelector from selector text, as kubectl's ``metav1.ParseToLabelSelector``:
    ``k=v`` and ``k==v`` go to matchLabels, ``in``, ``notin``, ``k`` and ``!k`` to
    matchExpressions; ``!=``, ``>`` and ``<`` are refused."""
    try:
        parsed = parse_label_selector(text)
    except SelectorError as exc:
        raise NavctlError(f"couldn't parse the selector string \"{text}\": {exc}") from None
    labels: dict[str, str] = {}
    expressions: list[Obj] = []
    for req in parsed.requirements:
        if req.operator == "=":
            labels[req.key] = req.values[0]
        elif req.operator in _EXPRESSION_OPERATORS:
            expression: Obj = {"key": req.key, "operator": _EXPRESSION_OPERATORS[req.operator]}
            if req.values:
                expression["values"] = list(req.values)
            expressions.append(expression)
        elif req.operator in ("gt", "lt"):
            raise NavctlError(f"\"{req.operator}\" isn't supported in label selectors")
        else:
            raise NavctlError(f'"{req.operator}" is not a valid label selector operator')
    selector: Obj = {}
    if labels:
        selector["matchLabels"] = labels
    if expressions:
        selector["matchExpressions"] = expressions
    return selector


def pdb_from(name: str, selector: str, *, min_available: str, max_unavailable: str) -> Obj:
    """The PodDisruptionBudget ``navctl create poddisruptionbudget`` makes."""
    if not name:
        raise NavctlError("name must be specified")
    if not selector:
        raise NavctlError("a selector must be specified")
    if not min_available and not max_unavailable:
        raise NavctlError("one of min-available or max-unavailable must be specified")
    if min_available and max_unavailable:
        raise NavctlError("min-available and max-unavailable cannot be both specified")
    if min_available and not _COUNT_OR_PERCENT.fullmatch(min_available):
        raise NavctlError("invalid format specified for min-available")
    if max_unavailable and not _COUNT_OR_PERCENT.fullmatch(max_unavailable):
        raise NavctlError("invalid format specified for max-unavailable")
    spec: Obj = {"selector": label_selector_from(selector)}
    if min_available:
        spec["minAvailable"] = _codec.int_or_string(min_available)
    else:
        spec["maxUnavailable"] = _codec.int_or_string(max_unavailable)
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name}, "spec": spec}


# --- the commands ---------------------------------------------------------------------

def _build(args: argparse.Namespace) -> tuple[Kind, Generated]:
    what = args.generate
    if what == "pod":
        return resource("pods"), Generated(pod_from(
            args.name, args.image, args=args.after_dashes, command=args.command_flag,
            env=args.env, port=args.port, labels=args.labels, restart=args.restart,
            pull_policy=args.image_pull_policy))
    if what == "deployment":
        return resource("deployments"), Generated(deployment_from(
            args.name, args.image, replicas=args.replicas, port=args.port,
            command=args.after_dashes))
    if what == "configmap":
        return resource("configmaps"), Generated(configmap_from(
            args.name, args.from_literal, args.from_file, args.from_env_file))
    if what == "poddisruptionbudget":
        return resource("poddisruptionbudgets"), Generated(pdb_from(
            args.name, args.selector, min_available=args.min_available,
            max_unavailable=args.max_unavailable))
    if what in ("role", "clusterrole"):
        return _build_role(args)
    if what in ("rolebinding", "clusterrolebinding"):
        kind = resource(what)
        return kind, Generated(binding_from(
            kind.kind, args.name, role=getattr(args, "role", ""),
            clusterrole=args.clusterrole, users=args.user, groups=args.group,
            service_accounts=args.serviceaccount))
    return resource("secrets"), Generated(secret_from(
        args.name, args.from_literal, args.from_file, args.from_env_file, args.type))


def _build_role(args: argparse.Namespace) -> tuple[Kind, Generated]:
    verbs, resources = comma_list(args.verb), comma_list(args.resource)
    if args.generate == "role":
        return resource("roles"), role_from(args.name, verbs=verbs, resources=resources,
                                            resource_names=args.resource_name)
    return resource("clusterroles"), clusterrole_from(
        args.name, verbs=verbs, resources=resources, resource_names=args.resource_name,
        non_resource_urls=comma_list(args.non_resource_url),
        aggregation_rule=args.aggregation_rule)


# The generators whose refusals kubectl wraps: ``error: failed to create <what>: ...``.
_WRAPPED_REFUSALS = {"poddisruptionbudgets": "poddisruptionbudgets",
                     "rolebindings": "rolebinding",
                     "clusterrolebindings": "clusterrolebinding"}


def _refusal(kind: Kind, exc: ApiError, server: str) -> str:
    """How a create the server refused reads. kubectl's ``create poddisruptionbudget``
    wraps the server's words: ``error: failed to create poddisruptionbudgets: ...``, and
    ``create rolebinding|clusterrolebinding`` as ``failed to create rolebinding: ...``."""
    what = _WRAPPED_REFUSALS.get(kind.resource)
    if what is None or exc.code in _NOT_ANSWERED:
        return error_message(exc, server)
    text = exc.message
    problems = [f"{v.field}: {v.description}" if v.field else v.description
                for v in exc.violations]
    if problems and text.endswith("is invalid"):
        text += ": " + (problems[0] if len(problems) == 1 else f"[{', '.join(problems)}]")
    return f"error: failed to create {what}: {text}"


async def run_generated(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl run`` and ``navctl create deployment|configmap|secret generic|
    poddisruptionbudget|role|clusterrole|rolebinding|clusterrolebinding``."""
    kind, made_from_flags = _build(args)
    ctx.warn(*made_from_flags.warnings)
    doc = made_from_flags.object
    if kind.namespaced:
        doc["metadata"]["namespace"] = ctx.namespace
    try:
        body = _codec.from_dict(doc, kind.message)
    except _codec.FieldError as exc:
        raise NavctlError(str(exc)) from None
    made: Any = body
    if args.dry_run != "client":
        try:
            made = await ctx.client().resource(kind, ctx.namespace).create(
                body, dry_run=args.dry_run == "server")
        except ApiError as exc:
            ctx.fail(_refusal(kind, exc, ctx.address))
            return
    suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(args.dry_run, "")
    print_made(ctx, kind, _codec.to_dict(made), args.output,
               f"{object_ref(kind, args.name)} created{suffix}")
