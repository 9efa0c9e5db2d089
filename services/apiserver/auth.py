"""Who is calling, and may they: the one place every request passes before any verb runs.

``grpc_api.py`` calls ``Authenticator.authenticate`` with the request's metadata, then
``Authorizer.authorize`` with Kubernetes-style request attributes.

Authentication (``--token-auth-file``): a bearer token in the ``authorization`` metadata
(``Bearer <token>``), looked up in Kubernetes' static token file (CSV: token, user, uid,
"group1,group2"). A token that is not in the file is refused (UNAUTHENTICATED); a request
without one is ``system:anonymous`` in group ``system:unauthenticated`` unless
``--anonymous-auth=false``. Authenticated users are also in ``system:authenticated``.
Without a token file everybody is anonymous.

Authorization (``--authorization-mode``, a comma-separated list tried in order, as
Kubernetes' union authorizer): ``AlwaysAllow`` (the default), ``AlwaysDeny``, ``RBAC``
(``rbac.py``). With RBAC, members of ``system:masters`` are allowed everything before any
rule is read, as in Kubernetes.
"""

from __future__ import annotations

import csv
import hmac
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = [
    "ANONYMOUS", "AUTHENTICATED", "CURRENT_USER", "MASTERS", "AllowAll", "AnonymousAuthenticator",
    "Attributes", "Authenticator", "Authorizer", "Decision", "DenyAll", "PrivilegedGroup",
    "TokenFileAuthenticator", "TokenFileError", "Union", "UserInfo", "read_token_file",
]

ANONYMOUS = "system:anonymous"
UNAUTHENTICATED = "system:unauthenticated"
AUTHENTICATED = "system:authenticated"
MASTERS = "system:masters"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated caller."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""


#: The caller of the request being served (set by the gRPC layer's gate), for checks
#: that need it deeper down, such as RBAC's escalation check on role writes.
CURRENT_USER: ContextVar[UserInfo | None] = ContextVar("navarch_current_user", default=None)


@dataclass(frozen=True)
class Attributes:
    """What a request does, as Kubernetes' authorizers see it."""

    verb: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    api_group: str = ""
    path: str = ""  # a non-resource request (resource ""): its URL path, e.g. "/version"

    @property
    def resource_request(self) -> bool:
        """A request on a resource, not on a URL path."""
        return bool(self.resource)


@dataclass(frozen=True)
class Decision:
    """An authorizer's answer; ``reason`` explains a denial."""

    allowed: bool
    reason: str = ""


class Authenticator(Protocol):
    """Turns request metadata into a user, or None when the credentials are not valid."""

    def authenticate(self, metadata: Sequence[tuple[str, str | bytes]]) -> UserInfo | None:
        """The caller, or None to answer UNAUTHENTICATED."""


class Authorizer(Protocol):
    """Decides whether a user may perform a request."""

    def authorize(self, user: UserInfo, attributes: Attributes) -> Decision:
        """Allow or deny, with a reason."""


class AnonymousAuthenticator:
    """Everybody is ``system:anonymous`` (no token file configured)."""

    def authenticate(self, metadata: Sequence[tuple[str, str | bytes]]) -> UserInfo | None:
        """Always the anonymous user."""
        return UserInfo(ANONYMOUS, (UNAUTHENTICATED,))


class TokenFileError(ValueError):
    """The token file cannot be used; the message names the file and the line."""


def read_token_file(path: Path) -> dict[str, UserInfo]:
    """Kubernetes' static token file: CSV lines ``token,user,uid[,"group1,group2"]``.
    Empty tokens are skipped; a later duplicate wins (both as Kubernetes does)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise TokenFileError(f"token file '{path}': {exc.strerror or exc}") from None
    tokens: dict[str, UserInfo] = {}
    for number, record in enumerate(csv.reader(text.splitlines()), start=1):
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        if len(record) < 3:
            raise TokenFileError(f"token file '{path}' must have at least 3 columns (token, "
                                 f"user name, user uid), found {len(record)} on line {number}")
        token, name, uid = record[0], record[1], record[2]
        if not token:
            continue
        groups = tuple(g for g in record[3].split(",") if g) if len(record) > 3 else ()
        tokens[token] = UserInfo(name, groups, uid)
    return tokens


def _bearer(metadata: Sequence[tuple[str, str | bytes]]) -> str | None:
    """The bearer token of the request; None without an authorization header; "" for a
    header that is not a bearer token."""
    for key, value in metadata:
        if key.lower() != "authorization":
            continue
        text = value.decode() if isinstance(value, bytes) else value
        scheme, _, token = text.strip().partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""
    return None


class TokenFileAuthenticator:
    """Bearer tokens from a static token file; anonymous requests allowed or not."""

    def __init__(self, tokens: dict[str, UserInfo], *, anonymous: bool = True) -> None:
        self.tokens = tokens
        self.anonymous = anonymous

    def authenticate(self, metadata: Sequence[tuple[str, str | bytes]]) -> UserInfo | None:
        """The token's user (with ``system:authenticated``), anonymous without a token
        when allowed, else None."""
        token = _bearer(metadata)
        if token is None:
            return UserInfo(ANONYMOUS, (UNAUTHENTICATED,)) if self.anonymous else None
        found = None
        for known, user in self.tokens.items():  # compare every token in constant time
            if hmac.compare_digest(known.encode(), token.encode()):
                found = user
        if found is None:
            return None
        groups = found.groups if AUTHENTICATED in found.groups else (
            *found.groups, AUTHENTICATED)
        return UserInfo(found.name, groups, found.uid)


class AllowAll:
    """Allows every request (``--authorization-mode=AlwaysAllow``, the default)."""

    def authorize(self, user: UserInfo, attributes: Attributes) -> Decision:
        """Always allowed."""
        return Decision(True)


class DenyAll:
    """Denies every request (``AlwaysDeny``)."""

    def authorize(self, user: UserInfo, attributes: Attributes) -> Decision:
        """Never allowed."""
        return Decision(False)


class PrivilegedGroup:
    """Allows members of ``system:masters``, without reading any rule (Kubernetes puts
    the same authorizer first whenever RBAC is on)."""

    def authorize(self, user: UserInfo, attributes: Attributes) -> Decision:
        """Allowed for system:masters; no opinion (denied) otherwise."""
        return Decision(MASTERS in user.groups)


class Union:
    """Tries each authorizer in order; the first that allows decides (Kubernetes'
    union authorizer: RBAC has no deny rules, so a denial is "no opinion")."""

    def __init__(self, authorizers: Sequence[Authorizer]) -> None:
        self.authorizers = tuple(authorizers)

    def authorize(self, user: UserInfo, attributes: Attributes) -> Decision:
        """Allowed when any authorizer allows; else the last one's reason."""
        decision = Decision(False)
        for authorizer in self.authorizers:
            decision = authorizer.authorize(user, attributes)
            if decision.allowed:
                return decision
        return decision
