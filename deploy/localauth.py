"""Credentials of a local cluster: one bearer token per component, as kubeadm gives each
component its own identity, so that the API server can run with RBAC; and the key that
encrypts Secrets in the store.

    <run-dir>/auth/tokens.csv        the API server's --token-auth-file (mode 0600)
    <run-dir>/auth/encryption.yaml   its --encryption-provider-config: Secrets sealed
                                     with AES-GCM (a random 256-bit key), identity to
                                     read what was stored before (mode 0600)

| who | user | groups | bound by the bootstrap policy to |
|---|---|---|---|
| you (navctl, the SDK) | admin | system:masters | everything |
| controllers | system:kube-controller-manager | | system:kube-controller-manager |
| scheduler | system:kube-scheduler | | system:kube-scheduler |
| agent of node-N | system:node:node-N | system:nodes | system:node |
| simulated nodes | system:node:simnodes | system:nodes | system:node |
| proxy | system:kube-proxy | | system:node-proxier |
| cluster DNS | system:navarch-dns | | system:kube-dns |

A component finds its token in ``$NAVARCH_TOKEN`` (``env_for``), which ``navarch.Client``
reads; tokens never appear on a command line. The file is made once per run directory and
kept across ``up``/``down`` (a node added later gets its line then).
"""

from __future__ import annotations

import base64
import csv
import io
import os
import secrets
from pathlib import Path

from services.apiserver.auth import read_token_file

__all__ = ["ADMIN", "COMPONENTS", "ensure_encryption_config", "ensure_tokens", "env_for",
           "node_user", "token_file", "token_of", "write_private"]

ADMIN = "admin"
#: component name -> (user, groups)
COMPONENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": (ADMIN, ("system:masters",)),
    "controllers": ("system:kube-controller-manager", ()),
    "scheduler": ("system:kube-scheduler", ()),
    "simnodes": ("system:node:simnodes", ("system:nodes",)),
    "proxy": ("system:kube-proxy", ()),
    "dns": ("system:navarch-dns", ()),
}


def node_user(node: str) -> tuple[str, tuple[str, ...]]:
    """The identity of a node's agent, as Kubernetes names kubelets."""
    return f"system:node:{node}", ("system:nodes",)


def token_file(run_dir: Path) -> Path:
    """Where the run directory keeps the API server's token file."""
    return run_dir / "auth" / "tokens.csv"


def _read(path: Path) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    """user -> (token, uid, groups), read as the API server reads the file."""
    if not path.exists():
        return {}
    return {user.name: (token, user.uid, user.groups)
            for token, user in read_token_file(path).items()}


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, readable by its owner only (mode 0600) from the
    first byte: written to a sibling, then renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


def ensure_tokens(run_dir: Path, nodes: list[str]) -> Path:
    """The token file with a line for every component and node (made, or completed)."""
    path = token_file(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    known = _read(path)
    wanted = [*COMPONENTS.values(), *(node_user(n) for n in nodes)]
    for user, groups in wanted:
        if user not in known:
            known[user] = (secrets.token_hex(32), secrets.token_hex(8), groups)  # never "-..."
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for user, (token, uid, groups) in known.items():
        writer.writerow([token, user, uid, ",".join(groups)])
    write_private(path, out.getvalue())
    return path


def token_of(run_dir: Path, user: str) -> str:
    """The token of ``user`` in the run directory's file ("" when there is none)."""
    found = _read(token_file(run_dir)).get(user)
    return found[0] if found else ""


def env_for(run_dir: Path, user: str) -> dict[str, str]:
    """The environment of a process that acts as ``user``."""
    return dict(os.environ, NAVARCH_TOKEN=token_of(run_dir, user))


def ensure_encryption_config(run_dir: Path) -> Path:
    """The encryption configuration of the run directory (made once, with a random key)."""
    path = run_dir / "auth" / "encryption.yaml"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    body = ("apiVersion: apiserver.config.k8s.io/v1\n"
            "kind: EncryptionConfiguration\n"
            "resources:\n"
            "- resources: [secrets]\n"
            "  providers:\n"
            f"  - aesgcm: {{keys: [{{name: key1, secret: {key}}}]}}\n"
            "  - identity: {}\n")
    write_private(path, body)
    return path
