"""``navctl auth can-i VERB [TYPE | TYPE/NAME | NONRESOURCEURL]``, as kubectl's
(k8s.io/kubectl/pkg/cmd/auth/cani.go): a SelfSubjectAccessReview the server answers.

    navctl auth can-i create pods                 # yes (exit 0) or no (exit 1)
    navctl auth can-i list deployments.apps -n prod
    navctl auth can-i get pods --subresource=log
    navctl auth can-i get /healthz                # a non-resource URL
    navctl auth can-i '*' '*' -A -q               # the exit code only

``check_for`` (pure) turns the arguments into the review's attributes and kubectl's
warnings: the type resolved through the served kinds (short names, singulars,
``TYPE.GROUP``, ``TYPE.VERSION.GROUP``), ``Warning: the server doesn't have a resource
type 'x'`` when none matches (except ``users`` and ``groups``, which impersonation names),
``Warning: resource 'nodes' is not namespace scoped`` without ``-A``, ``Warning: verb 'x'
is not a known verb``. Each warning is followed by an empty line, as kubectl prints
them. ``answer_line`` words the answer: ``yes``, or ``no`` and `` - <reason>`` when the
server gives one. ``--list`` (SelfSubjectRulesReview) is not served.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from navarch._kinds import Kind
from navarch._navctl.context import Context
from navarch._navctl.errors import NavctlError
from navarch._navctl.targets import resource_in_group
from navarch.v1 import rbac_pb2

__all__ = ["AccessCheck", "answer_line", "check_for", "run_auth"]

# kubectl's resourceVerbs and nonResourceURLVerbs.
RESOURCE_VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete",
                            "deletecollection", "use", "bind", "impersonate", "*", "approve",
                            "sign", "escalate", "attest"})
NON_RESOURCE_VERBS = frozenset({"get", "put", "post", "head", "options", "delete", "patch",
                                "*"})
# Resources the server knows of without serving them (impersonation's users and groups).
_NON_STANDARD = frozenset({"users", "groups"})


@dataclass(frozen=True)
class AccessCheck:
    """What to ask the server: a request on a resource, or (``path``) on a non-resource
    URL; with the warnings to print first."""

    verb: str
    resource: str = ""
    group: str = ""
    subresource: str = ""
    name: str = ""
    namespace: str = ""
    path: str = ""
    warnings: tuple[str, ...] = ()


def _warning(text: str) -> tuple[str, ...]:
    """A warning as kubectl's warning printer writes can-i's (their text ends with a
    newline, and the printer adds another)."""
    return (f"Warning: {text}", "")


def _resource_for(text: str) -> tuple[str, str, Kind | None, tuple[str, ...]]:
    """kubectl's resourceFor: (resource, group, kind, warnings) for a TYPE argument."""
    if text == "*":
        return "*", "", None, ()
    lower = text.lower()
    kind = None
    if lower.count(".") >= 2:  # resource.version.group
        name, version, group = lower.split(".", 2)
        kind = resource_in_group(name, group, version)
    name, _, group = lower.partition(".")
    kind = kind or resource_in_group(name, group)
    if kind is not None:
        return kind.resource, kind.group, kind, ()
    if (f"{name}.{group}" if group else name) in _NON_STANDARD:
        return text, "", None, ()
    if group:
        return text, "", None, _warning(
            f"the server doesn't have a resource type '{name}' in group '{group}'")
    return text, "", None, _warning(f"the server doesn't have a resource type '{name}'")


def check_for(args: list[str], *, namespace: str, all_namespaces: bool = False,
              subresource: str = "") -> AccessCheck:
    """The review ``navctl auth can-i ARGS`` asks for (``namespace`` is ``-n``'s, unused
    with ``all_namespaces``). Raises NavctlError as kubectl refuses the arguments."""
    if len(args) != 2:
        raise NavctlError("you must specify two arguments: verb resource or verb "
                          "resource/resourceName.\n"
                          "See 'navctl auth can-i -h' for help and examples.")
    verb, target = args
    ns = "" if all_namespaces else namespace
    if target.startswith("/"):
        if subresource:
            raise NavctlError("--subresource can not be used with NonResourceURL")
        warnings = () if verb in NON_RESOURCE_VERBS else _warning(
            f"verb '{verb}' is not a known verb")
        return AccessCheck(verb, namespace=ns, path=target, warnings=warnings)
    type_text, _, name = target.partition("/")
    resource, group, kind, warnings = _resource_for(type_text)
    if resource and not all_namespaces:
        if kind is not None and not kind.namespaced:
            warnings += _warning(f"resource '{resource}' is not namespace scoped" +
                                 (f" in group '{group}'" if group else ""))
        if verb not in RESOURCE_VERBS:
            warnings += _warning(f"verb '{verb}' is not a known verb")
    return AccessCheck(verb, resource, group, subresource, name, ns, warnings=warnings)


def answer_line(status: rbac_pb2.SubjectAccessReviewStatus) -> str:
    """``yes``; or ``no``, then `` - <reason>`` and `` - <evaluation error>`` when the
    server gave them."""
    if status.allowed:
        return "yes"
    line = "no"
    if status.reason:
        line += f" - {status.reason}"
    if status.evaluation_error:
        line += f" - {status.evaluation_error}"
    return line


async def run_auth(ctx: Context, args: argparse.Namespace) -> None:
    """``navctl auth can-i``: prints the answer (unless ``-q``); exit 1 for no."""
    check = check_for(args.args, namespace=ctx.namespace, all_namespaces=args.all_namespaces,
                      subresource=args.subresource)
    ctx.warn(*check.warnings)
    review = await ctx.client().access_review(
        check.verb, check.resource, namespace=check.namespace, group=check.group,
        subresource=check.subresource, name=check.name, path=check.path)
    if not args.quiet:
        ctx.print(answer_line(review.status))
    if not review.status.allowed:
        ctx.exit_code = 1
