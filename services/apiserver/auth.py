"""Who is calling, and may they: the one place every request passes before any verb runs.

``grpc_api.py`` calls ``Authenticator.authenticate`` with the request's metadata, then
``Authorizer.authorize`` with Kubernetes-style request attributes. The defaults let
everybody in as an anonymous user; mTLS, tokens and RBAC plug in here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "AllowAll", "AnonymousAuthenticator", "Attributes", "Authenticator", "Authorizer",
    "Decision", "UserInfo",
]


@dataclass(frozen=True)
class UserInfo:
    """An authenticated caller."""

    name: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attributes:
    """What a request does, as Kubernetes' authorizers see it."""

    verb: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    api_group: str = ""


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
    """Everybody is ``system:anonymous`` (until authentication is configured)."""

    def authenticate(self, metadata: Sequence[tuple[str, str | bytes]]) -> UserInfo | None:
        """Always the anonymous user."""
        return UserInfo("system:anonymous", ("system:unauthenticated",))


class AllowAll:
    """Allows every request (until RBAC is configured)."""

    def authorize(self, user: UserInfo, attributes: Attributes) -> Decision:
        """Always allowed."""
        return Decision(True)
