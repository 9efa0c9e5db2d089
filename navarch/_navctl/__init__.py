"""navctl: Navarch's kubectl.

    navctl apply -f web.yaml                      # create or update, idempotent
    navctl get deploy,svc -o wide                 # tables as kubectl prints them
    navctl describe pod web-7d4b9                 # sections, then the object's events
    navctl scale deploy/web --replicas=3
    navctl delete -f web.yaml                     # and wait until the objects are gone

Commands, flags, table columns and messages follow kubectl's, so that people who know
kubectl know navctl. The server comes from ``--server``, else $NAVARCH_SERVER, else the
config file that ``navarch up`` writes (see ``navarch.resolve_server``); the bearer token
from ``--token``, else $NAVARCH_TOKEN, else the config file's ``token``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO

from navarch._codec import FieldError
from navarch._errors import ApiError
from navarch._kinds import UnknownKind, resource
from navarch._labels import SelectorError
from navarch._manifests import ManifestError
from navarch._navctl.apply import apply_manifests, create_manifests, read_manifests
from navarch._navctl.commands import (
    run_api_resources,
    run_cluster_info,
    run_create_namespace,
    run_describe,
    run_scale,
    run_version,
)
from navarch._navctl.context import DEFAULT_TIMEOUT, Context, parse_duration
from navarch._navctl.delete import run_delete
from navarch._navctl.errors import NavctlError, error_message
from navarch._navctl.explain import ExplainError, explain
from navarch._navctl.get import add_get_arguments, run_get
from navarch._navctl.label import run_metadata

__all__ = ["build_parser", "main", "parse_args", "run"]

Command = Callable[[Context, argparse.Namespace], Awaitable[None]]
_DRY_RUN = ("none", "client", "server")


def _bool(text: str) -> bool:
    value = text.lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}: use true or false")


def _global_flags(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The global flags, accepted before and after the command (as kubectl accepts them).
    On subcommands their defaults are suppressed so they do not override the main ones."""
    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value
    parser.add_argument("--server", "-s", default=default(None), metavar="HOST:PORT",
                        help="the API server (default: $NAVARCH_SERVER, else the config file)")
    parser.add_argument("-n", "--namespace", default=default(None),
                        help='the namespace (default "default")')
    parser.add_argument("--request-timeout", default=default("0"), metavar="DURATION",
                        help="how long to wait for one request (e.g. 30s); 0 for the "
                             "default; also ends --watch")
    parser.add_argument("--token", default=default(None),
                        help="bearer token for authentication to the API server (default: "
                             "$NAVARCH_TOKEN, else the config file's)")


def _dry_run_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", nargs="?", const="client", default="none",
                        choices=_DRY_RUN, help="none, client (send nothing) or server "
                                               "(validate on the server, store nothing)")


def _files_flags(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("-f", "--filename", action="append", default=[], required=required,
                        help="a manifest file, a directory of them, or - for stdin")
    parser.add_argument("-R", "--recursive", action="store_true",
                        help="read the directories of -f recursively")


def _apply(ctx: Context, args: argparse.Namespace) -> Awaitable[None]:
    return apply_manifests(ctx, read_manifests(args.filename, args.recursive), args.dry_run)


async def _create(ctx: Context, args: argparse.Namespace) -> None:
    if getattr(args, "create_command", None) == "namespace":
        await run_create_namespace(ctx, args)
        return
    await create_manifests(ctx, read_manifests(args.filename, args.recursive),
                           save_config=args.save_config, dry_run=args.dry_run)


async def _explain(ctx: Context, args: argparse.Namespace) -> None:
    parts = args.target.split(".")
    # the longest prefix naming a resource wins: "deployments.apps.spec" is apps' spec
    for end in range(len(parts), 1, -1):
        try:
            kind = resource(".".join(parts[:end]))
        except UnknownKind:
            continue
        break
    else:
        kind, end = resource(parts[0]), 1
    ctx.print(*explain(kind, parts[end:], recursive=args.recursive))


def _label(ctx: Context, args: argparse.Namespace) -> Awaitable[None]:
    return run_metadata(ctx, args, "label")


def _annotate(ctx: Context, args: argparse.Namespace) -> Awaitable[None]:
    return run_metadata(ctx, args, "annotation")


def _command(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
             run: Command, help_text: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    _global_flags(parser, suppress=True)
    parser.set_defaults(run=run)
    return parser


def _add_apply_create(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _command(sub, "apply", _apply, "Create or update objects from manifests "
                                       "(client-side apply, idempotent)")
    _files_flags(p)
    _dry_run_flag(p)
    p = _command(sub, "create", _create, "Create objects from manifests (create -f FILE), "
                                         "or: create namespace|deployment|configmap|"
                                         "secret generic|poddisruptionbudget|role|"
                                         "clusterrole|rolebinding|clusterrolebinding NAME "
                                         "[flags]")
    _files_flags(p)
    _dry_run_flag(p)
    p.add_argument("--save-config", action="store_true",
                   help="record the manifest for later `navctl apply`")
    from navarch._navctl.diff import run_diff

    p = _command(sub, "diff", run_diff, "Show what apply -f would change (exit 1 when "
                                        "something would)")
    _files_flags(p)
    p = _command(sub, "run", _create, "Run a pod: run NAME --image=IMAGE [flags] [-- ARGS...]")
    p.add_argument("name")  # parsed by _generator_parser("pod"); this one is for --help


def _create_namespace_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="navctl create namespace",
                                     description="Create a namespace")
    _global_flags(parser, suppress=True)
    parser.add_argument("name")
    _dry_run_flag(parser)
    parser.set_defaults(run=_create, create_command="namespace")
    return parser


def _rbac_flags(parser: argparse.ArgumentParser, what: str) -> None:
    """The flags of ``create role|clusterrole|rolebinding|clusterrolebinding``, as
    kubectl's (``--verb``, ``--resource`` and ``--non-resource-url`` take commas)."""
    if what in ("role", "clusterrole"):
        parser.add_argument("--verb", action="append", default=[],
                            help="verbs that apply to the resources of the rule (get,list...)")
        parser.add_argument("--resource", action="append", default=[],
                            help="resources the rule applies to: pods, rs.apps, pods/log, *")
        parser.add_argument("--resource-name", action="append", default=[],
                            help="a name the rule is limited to (repeat for more)")
    if what == "clusterrole":
        parser.add_argument("--non-resource-url", action="append", default=[],
                            help="a partial URL the user should have access to (/logs/*)")
        parser.add_argument("--aggregation-rule", action="append", default=[],
                            help="k=v[,k=v]: combine the rules of the ClusterRoles with "
                                 "these labels")
    if what in ("rolebinding", "clusterrolebinding"):
        parser.add_argument("--clusterrole", default="",
                            help="the ClusterRole the binding refers to")
        if what == "rolebinding":
            parser.add_argument("--role", default="", help="the Role the binding refers to")
        parser.add_argument("--user", action="append", default=[],
                            help="a user to bind the role to (repeat for more)")
        parser.add_argument("--group", action="append", default=[],
                            help="a group to bind the role to (repeat for more)")
        parser.add_argument("--serviceaccount", action="append", default=[],
                            help="NAMESPACE:NAME, a service account to bind the role to "
                                 "(repeat for more)")


_RBAC_GENERATED = ("role", "clusterrole", "rolebinding", "clusterrolebinding")


def _generator_parser(what: str) -> argparse.ArgumentParser:
    """``navctl run`` and ``navctl create deployment|configmap|secret generic|
    poddisruptionbudget|role|clusterrole|rolebinding|clusterrolebinding``."""
    from navarch._navctl.generators import run_generated

    prog = {"pod": "navctl run", "deployment": "navctl create deployment",
            "configmap": "navctl create configmap",
            "secret": "navctl create secret generic",
            "poddisruptionbudget": "navctl create poddisruptionbudget",
            **{name: f"navctl create {name}" for name in _RBAC_GENERATED}}[what]
    parser = argparse.ArgumentParser(prog=prog, description=f"{prog} NAME [flags]")
    _global_flags(parser, suppress=True)
    parser.add_argument("name")
    _dry_run_flag(parser)
    parser.add_argument("-o", "--output", choices=("yaml", "json", "name"))
    if what in ("pod", "deployment"):
        parser.add_argument("--image", action="append" if what == "deployment" else "store",
                            default=[] if what == "deployment" else "",
                            help="the container image" + (" (repeat for more containers)"
                                                          if what == "deployment" else ""))
        parser.add_argument("--port", type=int, default=None,
                            help="the port the container exposes")
    if what == "pod":
        parser.add_argument("--env", action="append", default=[], help="KEY=VALUE")
        parser.add_argument("--labels", "-l", default="", help="k=v[,k=v...] (default run=NAME)")
        parser.add_argument("--restart", default="Always", help="Always, OnFailure or Never")
        parser.add_argument("--command", dest="command_flag", action="store_true",
                            help="the words after -- are the command, not its args")
        parser.add_argument("--image-pull-policy", default="")
    if what == "deployment":
        parser.add_argument("--replicas", type=int, default=1)
    if what in ("configmap", "secret"):
        parser.add_argument("--from-literal", action="append", default=[], help="KEY=VALUE")
        parser.add_argument("--from-file", action="append", default=[],
                            help="[KEY=]PATH: a file, or every file of a directory")
        parser.add_argument("--from-env-file", action="append", default=[],
                            help="a file of KEY=VALUE lines")
    if what == "secret":
        parser.add_argument("--type", default="Opaque")
    if what == "poddisruptionbudget":
        parser.add_argument("--selector", default="",
                            help="the pods the budget covers (a label selector; required)")
        parser.add_argument("--min-available", default="",
                            help="the number or percentage of the pods that must stay "
                                 "available")
        parser.add_argument("--max-unavailable", default="",
                            help="the number or percentage of the pods that may be "
                                 "unavailable")
    _rbac_flags(parser, what)
    parser.set_defaults(run=run_generated, generate=what, after_dashes=[])
    return parser


_GENERATED = {("create", "deployment"): "deployment", ("create", "deploy"): "deployment",
              ("create", "configmap"): "configmap", ("create", "cm"): "configmap",
              ("create", "secret"): "secret",
              ("create", "poddisruptionbudget"): "poddisruptionbudget",
              ("create", "pdb"): "poddisruptionbudget",
              **{("create", name): name for name in _RBAC_GENERATED}}


def _add_reading(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_get_arguments(_command(sub, "get", run_get, "Display one or many objects"))
    p = _command(sub, "describe", run_describe, "Show details of objects, with their events")
    p.add_argument("targets", nargs="+", metavar="TYPE [NAME_PREFIX] | TYPE/NAME")
    p.add_argument("-l", "--selector", default="", help="label selector")
    p = _command(sub, "explain", _explain, "Documentation of a kind and its fields")
    p.add_argument("target", metavar="TYPE[.FIELD.PATH]")
    p.add_argument("--recursive", action="store_true", help="print every nested field")
    p = _command(sub, "api-resources", run_api_resources, "The resources the server serves")
    p.add_argument("-o", "--output", choices=("wide", "name"))
    p.add_argument("--namespaced", choices=("true", "false"))
    p.add_argument("--api-group")
    p.add_argument("--no-headers", action="store_true")
    from navarch._navctl.auth import run_auth

    p = _command(sub, "auth", run_auth, "Inspect authorization: auth can-i VERB [TYPE | "
                                        "TYPE/NAME | NONRESOURCEURL]")
    p.add_argument("action", choices=("can-i",))
    p.add_argument("args", nargs="*", metavar="VERB [TYPE | TYPE/NAME | NONRESOURCEURL]")
    p.add_argument("-A", "--all-namespaces", action="store_true",
                   help="check the action in all namespaces")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print nothing: the exit code is the answer")
    p.add_argument("--subresource", default="", help="a subresource such as log or scale")
    _command(sub, "cluster-info", run_cluster_info,
             "Where the control plane and the cluster services run")
    p = _command(sub, "version", run_version, "Client and server versions")
    p.add_argument("--client", action="store_true", help="only the client version")
    p.add_argument("-o", "--output", choices=("json", "yaml"))


def _add_writing(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _command(sub, "delete", run_delete, "Delete objects")
    p.add_argument("targets", nargs="*", metavar="TYPE [NAME...] | TYPE/NAME")
    _files_flags(p)
    _dry_run_flag(p)
    p.add_argument("-l", "--selector", default="")
    p.add_argument("--field-selector", default="")
    p.add_argument("--all", action="store_true", help="every object of the kinds")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--grace-period", type=int, default=-1,
                   help="seconds the object has to terminate (-1: its own default)")
    p.add_argument("--now", action="store_true", help="same as --grace-period=1")
    p.add_argument("--force", action="store_true", help="delete at once (grace period 0)")
    p.add_argument("--wait", type=_bool, nargs="?", const=True, default=True,
                   help="wait until the objects are gone (default true)")
    p.add_argument("--timeout", default="0s", help="how long to wait (0: grace period + 1m)")
    p.add_argument("--cascade", default="background",
                   help="background, foreground or orphan: what happens to dependents")
    p.add_argument("--ignore-not-found", action="store_true")
    p = _command(sub, "scale", run_scale, "Set the replicas of a Deployment, ReplicaSet or "
                                          "StatefulSet")
    p.add_argument("targets", nargs="+", metavar="TYPE NAME | TYPE/NAME")
    p.add_argument("--replicas", type=int)
    p.add_argument("--current-replicas", type=int, default=-1,
                   help="only scale if the replicas are this many now")
    p.add_argument("--resource-version", default="")
    from navarch._navctl.expose import add_expose_arguments, run_expose

    p = _command(sub, "expose", run_expose, "Expose a Deployment, ReplicaSet, Pod or "
                                            "Service as a new Service")
    p.add_argument("targets", nargs="*", metavar="TYPE NAME | TYPE/NAME")
    _files_flags(p)
    _dry_run_flag(p)
    add_expose_arguments(p)
    from navarch._navctl.autoscale import add_autoscale_arguments, run_autoscale

    p = _command(sub, "autoscale", run_autoscale, "Create a HorizontalPodAutoscaler for a "
                                                  "Deployment, ReplicaSet or StatefulSet")
    p.add_argument("targets", nargs="*", metavar="TYPE NAME | TYPE/NAME")
    _files_flags(p)
    _dry_run_flag(p)
    add_autoscale_arguments(p)
    from navarch._navctl.rollout import run_rollout, run_set_image

    p = _command(sub, "rollout", run_rollout, "Manage a rollout: status, history, undo, "
                                              "pause, resume, restart")
    p.add_argument("action", choices=("status", "history", "undo", "pause", "resume",
                                      "restart"))
    p.add_argument("targets", nargs="+", metavar="TYPE NAME | TYPE/NAME")
    p.add_argument("--to-revision", type=int, default=0,
                   help="undo: the revision to roll back to (default: the previous one)")
    p.add_argument("--revision", type=int, default=0,
                   help="history: show the pod template of this revision")
    p.add_argument("-w", "--watch", type=_bool, nargs="?", const=True, default=True,
                   help="status: wait until the rollout finishes (default true)")
    p.add_argument("--timeout", default="0s",
                   help="status: how long to wait before giving up, e.g. 30s or 5m "
                        "(default 0s: no limit)")
    from navarch._navctl.patch import run_patch

    p = _command(sub, "patch", run_patch, "Update fields of an object with a strategic merge "
                                          "patch, a JSON merge patch or a JSON patch")
    p.add_argument("targets", nargs="*", metavar="TYPE NAME | TYPE/NAME")
    p.add_argument("-p", "--patch", default="", help="the patch (JSON or YAML)")
    p.add_argument("--patch-file", default="", help="a file holding the patch")
    p.add_argument("--type", default="strategic", help="strategic (default), merge or json")
    p.add_argument("--subresource", default="", choices=("", "status", "scale"))
    p.add_argument("-f", "--filename", action="append", default=[],
                   help="patch the objects these manifests name")
    p.add_argument("-o", "--output", choices=("yaml", "json", "name"))
    _dry_run_flag(p)
    from navarch._navctl.edit import run_edit

    p = _command(sub, "edit", run_edit, "Edit an object in $KUBE_EDITOR or $EDITOR (else vi) "
                                        "and save it back")
    p.add_argument("targets", nargs="+", metavar="TYPE NAME | TYPE/NAME")
    from navarch._navctl.wait import run_wait

    p = _command(sub, "wait", run_wait, "Wait until objects meet a condition")
    p.add_argument("targets", nargs="+", metavar="TYPE NAME | TYPE/NAME")
    p.add_argument("--for", dest="for_", default="", metavar="CONDITION",
                   help="delete, create, condition=TYPE[=STATUS] or jsonpath='{PATH}'[=VALUE]")
    p.add_argument("--timeout", default="30s",
                   help="how long to wait for all of them (0s: check once; negative: a week)")
    p.add_argument("-l", "--selector", default="")
    p.add_argument("--field-selector", default="")
    p.add_argument("--all", action="store_true", help="every object of the types given")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    from navarch._navctl.drain import run_cordon, run_drain

    for name, unschedulable in (("cordon", True), ("uncordon", False)):
        p = _command(sub, name, run_cordon, "Mark nodes as unschedulable" if unschedulable
                     else "Mark nodes as schedulable")
        p.add_argument("nodes", nargs="*", metavar="NODE")
        p.add_argument("-l", "--selector", default="", help="the nodes, by label")
        p.set_defaults(unschedulable=unschedulable)
        _dry_run_flag(p)
    p = _command(sub, "drain", run_drain, "Cordon nodes, then evict their pods so that "
                                          "their controllers recreate them elsewhere")
    p.add_argument("nodes", nargs="*", metavar="NODE")
    p.add_argument("-l", "--selector", default="", help="the nodes, by label")
    p.add_argument("--pod-selector", default="", help="only the pods with these labels")
    p.add_argument("--ignore-daemonsets", action="store_true",
                   help="leave DaemonSet-managed pods alone instead of refusing")
    p.add_argument("--delete-emptydir-data", "--delete-local-data", action="store_true",
                   dest="delete_emptydir_data",
                   help="delete pods with emptyDir volumes (their data is lost)")
    p.add_argument("--force", action="store_true",
                   help="also remove pods that no controller manages (they do not come "
                        "back)")
    p.add_argument("--grace-period", type=int, default=-1,
                   help="seconds each pod gets to stop (-1: its own grace period)")
    p.add_argument("--timeout", default="0s",
                   help="how long to wait for the pods to go (0s: no limit)")
    p.add_argument("--disable-eviction", action="store_true",
                   help="delete instead of evicting: PodDisruptionBudgets are not "
                        "consulted")
    _dry_run_flag(p)
    p = _command(sub, "set", run_set_image, "Update a field of objects: set image "
                                            "TYPE/NAME CONTAINER=IMAGE...")
    p.add_argument("what", metavar="image")
    p.add_argument("args", nargs="+", metavar="TYPE/NAME CONTAINER=IMAGE")
    for name, run, what in (("label", _label, "labels"), ("annotate", _annotate,
                                                         "annotations")):
        p = _command(sub, name, run, f"Update the {what} of objects: KEY=VALUE sets, "
                                     "KEY- removes")
        p.add_argument("args", nargs="+", metavar="TYPE NAME KEY=VALUE|KEY-")
        p.add_argument("--overwrite", action="store_true",
                       help="allow changing existing values")
        p.add_argument("-l", "--selector", default="")
        p.add_argument("--all", action="store_true")
        p.add_argument("--list", action="store_true", help=f"print the {what}")
        p.add_argument("--resource-version", default="",
                       help="only update if the object is at this resourceVersion")


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="navctl", description="navctl controls a Navarch cluster (as kubectl does "
                                   "a Kubernetes one).")
    _global_flags(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_apply_create(sub)
    _add_reading(sub)
    _add_writing(sub)
    from navarch._navctl.podio import add_arguments as add_pod_io

    add_pod_io(sub, _command)
    return parser, dict(sub.choices)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of navctl (its help lists the commands)."""
    return _build()[0]


_GLOBAL_VALUE_FLAGS = frozenset({"--server", "-s", "-n", "--namespace", "--request-timeout",
                                 "--token"})
_GLOBAL_DESTS = ("server", "namespace", "request_timeout", "token")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line parsed as kubectl's is: global flags before or after the command,
    and options mixed freely with names (``get pod -n demo web``)."""
    top, commands = _build()
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        index += 2 if argv[index] in _GLOBAL_VALUE_FLAGS else 1
    head = list(argv[:index])
    if index >= len(argv) or argv[index] not in commands or {"-h", "--help"} & set(head):
        return top.parse_args(argv)  # usage errors and help, worded by argparse
    command, rest = argv[index], list(argv[index + 1:])
    parser = commands[command]
    generated = ""
    if command == "create" and rest[:1] in (["namespace"], ["ns"]):
        parser, rest = _create_namespace_parser(), rest[1:]
    elif command == "create" and (command, rest[0] if rest else "") in _GENERATED:
        generated = _GENERATED[(command, rest[0])]
        rest = rest[1:]
        if generated == "secret":
            if rest[:1] != ["generic"]:
                raise SystemExit("error: navctl create secret makes generic secrets only: "
                                 "navctl create secret generic NAME --from-literal=k=v")
            rest = rest[1:]
        parser = _generator_parser(generated)
    elif command == "run":
        generated = "pod"
        parser = _generator_parser("pod")
    after_dashes: list[str] = []
    if (command == "exec" or generated in ("pod", "deployment")) and "--" in rest:
        cut = rest.index("--")  # exec POD [flags] -- COMMAND [ARGS...], and run's args
        rest, after_dashes = rest[:cut], rest[cut + 1:]
    args = parser.parse_intermixed_args(rest)
    if command == "exec":
        args.exec_command = [*args.exec_command, *after_dashes]
    elif generated:
        args.after_dashes = after_dashes
    globals_only = argparse.ArgumentParser(prog="navctl", add_help=False)
    _global_flags(globals_only, suppress=False)
    given = globals_only.parse_args(head)
    for dest in _GLOBAL_DESTS:
        if not hasattr(args, dest):
            setattr(args, dest, getattr(given, dest))
    args.command = command
    return args


_USER_ERRORS = (ApiError, NavctlError, ManifestError, UnknownKind, ExplainError, FieldError,
                SelectorError)


async def run(ctx: Context, args: argparse.Namespace) -> int:
    """Run the parsed command; 0, or 1 after printing the errors."""
    try:
        await args.run(ctx, args)
    except _USER_ERRORS as exc:
        ctx.fail(error_message(exc, ctx.address or ctx.server or ""))
    finally:
        await ctx.close()
    return 1 if ctx.failed else ctx.exit_code


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """The ``navctl`` command."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    ctx = Context(server=args.server, namespace=args.namespace or "default",
                  namespace_explicit=args.namespace is not None, token=args.token,
                  out=out or sys.stdout, err=err or sys.stderr)
    try:
        timeout = parse_duration(args.request_timeout, "--request-timeout")
    except NavctlError as exc:
        ctx.warn(error_message(exc))
        return 1
    if timeout:
        ctx.timeout, ctx.watch_timeout = timeout, timeout
    else:
        ctx.timeout = DEFAULT_TIMEOUT
    try:
        return asyncio.run(run(ctx, args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`navctl get ... | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
