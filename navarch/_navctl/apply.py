"""``navctl apply -f`` and ``create -f``: manifests from files, directories or stdin.

apply is kubectl's client-side apply. The manifest as applied is kept in the annotation
``kubectl.kubernetes.io/last-applied-configuration``; an update is the three-way JSON merge
patch of (last applied, new manifest, live object): it sets what the manifest says,
removes what an earlier manifest said and this one no longer does, and leaves alone what
only others set (status, defaults, fields of other actors). Applying the same manifest
again sends nothing, or a patch the server finds to change nothing: either way the
object keeps its resourceVersion and navctl says ``unchanged``.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from navarch import _codec
from navarch._errors import AlreadyExists, ApiError, NotFound
from navarch._kinds import Kind, kind_of_message
from navarch._manifests import Manifest, load_manifests
from navarch._navctl.context import Context
from navarch._navctl.errors import NavctlError, error_message
from navarch._navctl.printers import object_ref
from navarch._patch import three_way_merge_patch

__all__ = [
    "LAST_APPLIED", "ManifestTarget", "apply_manifests", "create_manifests",
    "last_applied_text", "manifest_namespace", "manifest_objects", "manifest_target",
    "read_manifests", "with_last_applied",
]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


# --- reading ----------------------------------------------------------------------------

def _files(path: str, recursive: bool) -> list[Path]:
    root = Path(path)
    if not root.exists():
        raise NavctlError(f'the path "{path}" does not exist')
    if root.is_file():
        return [root]
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in root.glob(pattern)
                  if p.is_file() and p.suffix in _MANIFEST_SUFFIXES)


def read_manifests(paths: Sequence[str], recursive: bool = False) -> list[Manifest]:
    """Every object of the files, directories (``*.yaml``, ``*.yml``, ``*.json``; with
    ``recursive`` their subdirectories too) and ``-`` (stdin) in ``paths``, in order.

    Raises ManifestError (naming file, document, line and field) before anything is
    sent, so that a bad file never half-applies.
    """
    if not paths:
        raise NavctlError("must specify one of -f and -k")
    found: list[Manifest] = []
    for path in paths:
        if path == "-":
            found += load_manifests(sys.stdin.read(), "<stdin>")
            continue
        for file in _files(path, recursive):
            found += load_manifests(file.read_text(), str(file))
    if not found:
        raise NavctlError("no objects passed to apply")
    return found


def manifest_namespace(kind: Kind, manifest: Message, ctx: Context) -> str:
    """The namespace an object goes to: its own, else ``-n``; a manifest naming another
    namespace than an explicit ``-n`` is refused, as kubectl refuses it."""
    if not kind.namespaced:
        return ""
    own = manifest.metadata.namespace  # type: ignore[attr-defined]
    if own and ctx.namespace_explicit and own != ctx.namespace:
        raise NavctlError(
            f'the namespace from the provided object "{own}" does not match the namespace '
            f'"{ctx.namespace}". You must pass \'--namespace={own}\' to perform this operation.')
    return str(own or ctx.namespace)


# --- pure apply decisions ----------------------------------------------------------------

def manifest_objects(paths: Sequence[str], recursive: bool, ctx: Context
                     ) -> list[tuple[Kind, str, str]]:
    """(kind, namespace, name) of every object of the manifests (``-f`` of delete,
    patch)."""
    found = []
    for manifest in read_manifests(paths, recursive):
        kind = kind_of_message(manifest.object)
        found.append((kind, manifest_namespace(kind, manifest.object, ctx),
                      manifest.object.metadata.name))  # type: ignore[attr-defined]
    return found


def last_applied_text(raw: dict[str, Any]) -> str:
    """The annotation value recorded for manifest ``raw``: compact JSON with sorted keys
    (as kubectl writes it), without the annotation itself."""
    doc = copy.deepcopy(raw)
    annotations = (doc.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
        if not annotations:
            del doc["metadata"]["annotations"]
    return json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n"


def with_last_applied(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with the last-applied annotation set to itself."""
    doc = copy.deepcopy(raw)
    metadata = doc.setdefault("metadata", {})
    annotations = metadata.get("annotations") or {}
    metadata["annotations"] = {**annotations, LAST_APPLIED: last_applied_text(raw)}
    return doc


def _normalized(doc: dict[str, Any], kind: Kind) -> dict[str, Any]:
    """``doc`` as the server would render it (numbers as numbers, nulls and unset fields
    dropped), so that it compares equal to the live object where they agree."""
    return _codec.to_dict(_codec.from_dict(doc, kind.message))


def apply_patch(kind: Kind, raw: dict[str, Any], live: Message) -> dict[str, Any]:
    """The merge patch that brings ``live`` to manifest ``raw``: empty when nothing is to
    change. Fields of an earlier manifest (the live object's last-applied annotation)
    that ``raw`` drops become nulls; fields only the live object has are kept."""
    current = _codec.to_dict(live)
    modified = _normalized(with_last_applied(raw), kind)
    recorded = live.metadata.annotations.get(LAST_APPLIED)  # type: ignore[attr-defined]
    original: dict[str, Any] | None = None
    if recorded:
        try:
            original = _normalized(json.loads(recorded), kind)
        except (ValueError, _codec.FieldError):
            original = None
    patch: dict[str, Any] = three_way_merge_patch(original, modified, current)
    return _settled(patch, current, original)


def _covers(big: Any, small: Any) -> bool:
    """Whether ``big`` has everything ``small`` has: the same scalars, every member of
    each object (``big`` may have more), lists of the same length element by element."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and _covers(big[k], v)
                                             for k, v in small.items())
    if isinstance(small, list):
        return isinstance(big, list) and len(big) == len(small) and \
            all(_covers(b, s) for b, s in zip(big, small, strict=True))
    return bool(big == small)


def _settled(patch: dict[str, Any], current: Any, original: Any) -> dict[str, Any]:
    """``patch`` without the lists that need no replacing.

    A merge patch replaces a list whole, and the manifest's list lacks what the server
    defaults inside its elements (a container's imagePullPolicy, a port's protocol). A
    list is left out when the live one already has everything the manifest's has and the
    manifest still has everything the last applied one had (so nothing is to be removed
    from an element): kubectl's strategic merge patch sends nothing there either.
    """
    settled: dict[str, Any] = {}
    for key, value in patch.items():
        live = current.get(key) if isinstance(current, dict) else None
        before = original.get(key) if isinstance(original, dict) else None
        if isinstance(value, dict) and isinstance(live, dict):
            nested = _settled(value, live, before)
            if nested:
                settled[key] = nested
        elif isinstance(value, list) and _covers(live, value) and \
                (before is None or _covers(value, before)):
            continue
        else:
            settled[key] = value
    return settled


# --- commands ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ManifestTarget:
    manifest: Manifest
    kind: Kind
    namespace: str
    name: str

    @property
    def ref(self) -> str:
        """``deployment.apps/web``."""
        return object_ref(self.kind, self.name)

    def body(self, raw: dict[str, Any]) -> Message:
        """``raw`` (the manifest, or it with last-applied) as the object to create, in the
        target's namespace."""
        body: Message = _codec.from_dict(raw, self.kind.message)
        if self.kind.namespaced:
            body.metadata.namespace = self.namespace  # type: ignore[attr-defined]
        return body


def manifest_target(manifest: Manifest, ctx: Context) -> ManifestTarget:
    kind = kind_of_message(manifest.object)
    name = manifest.object.metadata.name  # type: ignore[attr-defined]
    if not name:
        raise NavctlError(f"{manifest.source}: document {manifest.document}: "
                          "metadata.name: Required value (navctl apply needs a name)")
    return ManifestTarget(manifest, kind, manifest_namespace(kind, manifest.object, ctx), name)


def _suffix(dry_run: str) -> str:
    return {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")


async def _apply_one(ctx: Context, target: ManifestTarget, dry_run: str) -> str:
    """Create or patch one object; returns ``created``, ``configured`` or ``unchanged``."""
    resource = ctx.client().resource(target.kind, target.namespace)
    server_dry = dry_run == "server"
    try:
        live = await resource.get(target.name)
    except NotFound:
        body = target.body(with_last_applied(target.manifest.raw))
        if dry_run != "client":
            await resource.create(body, dry_run=server_dry)
        return "created"
    if LAST_APPLIED not in live.metadata.annotations:
        ctx.warn(f"Warning: resource {target.kind.resource}/{target.name} is missing the "
                 f"{LAST_APPLIED} annotation which is required by navctl apply. navctl apply "
                 "should only be used on resources created declaratively by either navctl "
                 "create --save-config or navctl apply. The missing annotation will be "
                 "patched automatically.")
    patch = apply_patch(target.kind, target.manifest.raw, live)
    if not patch:
        return "unchanged"
    if dry_run == "client":
        return "configured"
    result = await resource.patch(target.name, patch, dry_run=server_dry)
    same = result.metadata.resource_version == live.metadata.resource_version
    return "unchanged" if same and not server_dry else "configured"


async def apply_manifests(ctx: Context, manifests: Iterable[Manifest],
                          dry_run: str = "none") -> None:
    """Apply each object, printing ``deployment.apps/web created|configured|unchanged``;
    an object that fails is reported and the others still applied."""
    for manifest in manifests:
        try:
            target = manifest_target(manifest, ctx)
            verb = await _apply_one(ctx, target, dry_run)
        except (ApiError, NavctlError, _codec.FieldError) as exc:
            ctx.fail(error_message(exc, ctx.address))
            continue
        ctx.print(f"{target.ref} {verb}{_suffix(dry_run)}")


async def create_manifests(ctx: Context, manifests: Iterable[Manifest], *,
                           save_config: bool = False, dry_run: str = "none") -> None:
    """Create each object, printing ``service/web created``; AlreadyExists and other
    failures are reported per object."""
    for manifest in manifests:
        try:
            target = manifest_target(manifest, ctx)
            body = target.body(with_last_applied(manifest.raw) if save_config
                               else manifest.raw)
            if dry_run != "client":
                resource = ctx.client().resource(target.kind, target.namespace)
                await resource.create(body, dry_run=dry_run == "server")
        except (AlreadyExists, ApiError, NavctlError, _codec.FieldError) as exc:
            ctx.fail(error_message(exc, ctx.address))
            continue
        ctx.print(f"{target.ref} created{_suffix(dry_run)}")
