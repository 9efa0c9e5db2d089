"""Encryption at rest (Kubernetes' EncryptionConfiguration, apiserver.config.k8s.io/v1):
the values of chosen resources (Secrets, typically) are encrypted before they reach the
store, so that the store's disks, snapshots and backups never hold them in clear.

    --encryption-provider-config FILE
    apiVersion: apiserver.config.k8s.io/v1
    kind: EncryptionConfiguration
    resources:
    - resources: [secrets]            # or "configmaps", "*.apps", "*.*"
      providers:                      # the first writes; every one can read
      - aesgcm: {keys: [{name: key2, secret: <base64 of 16, 24 or 32 bytes>}, ...]}
      - aescbc: {keys: [...]}
      - identity: {}                  # plaintext (reads what was stored before)

A stored value is ``k8s:enc:<provider>:v1:<key name>:`` followed by the ciphertext, as
Kubernetes writes it, so a store written by either can be read by the other with the
same keys:

- ``aesgcm``: a random 12-byte nonce, then AES-GCM of the value, authenticated with the
  storage key (a value moved to another key does not decrypt);
- ``aescbc``: a random 16-byte IV, then AES-CBC of the PKCS#7-padded value.

Reads try the providers in order by prefix; a value with no known prefix is read by
``identity`` only if it is configured, otherwise it is an error naming the key (nothing
is served unverified). Rotating a key: put the new key first (new writes use it), then
rewrite every object (``navctl get secrets -A -o json | navctl replace -f -``, or any
update), then drop the old key. The layer wraps the ``Store`` (``EncryptingStore``), so
every read, write and watch event of the API server goes through it, and nothing above
it ever sees ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from navarch._kinds import KINDS

from .objects import PREFIX
from .storage import (
    Compare,
    KeyValue,
    Op,
    Page,
    Put,
    Store,
    StoreError,
    StoreEvent,
    TxnResult,
    WatchBatch,
)

__all__ = ["EncryptingStore", "EncryptionConfigError", "Provider", "Transformer",
           "load_config"]

_MAGIC = b"k8s:enc:"


class EncryptionConfigError(ValueError):
    """The configuration file cannot be used; the message names the field."""


class Provider:
    """One way of storing values: ``prefix`` + sealed bytes."""

    name = ""

    def seal(self, plain: bytes, key: bytes) -> bytes:
        """The stored form of ``plain`` (for the storage key ``key``)."""
        raise NotImplementedError

    def open(self, stored: bytes, key: bytes) -> bytes | None:
        """The plaintext, or None when this provider did not write ``stored``."""
        raise NotImplementedError


class Identity(Provider):
    """Values in clear (no prefix)."""

    name = "identity"

    def seal(self, plain: bytes, key: bytes) -> bytes:
        """``plain`` itself."""
        return plain

    def open(self, stored: bytes, key: bytes) -> bytes | None:
        """``stored`` when it carries no encryption prefix."""
        return None if stored.startswith(_MAGIC) else stored


class _Keyed(Provider):
    """A provider with named keys; the first one seals, any one opens."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        self.keys = list(keys)

    def _prefix(self, key_name: str) -> bytes:
        return _MAGIC + f"{self.name}:v1:{key_name}:".encode()

    def seal(self, plain: bytes, key: bytes) -> bytes:
        """Sealed with the first key."""
        name, secret = self.keys[0]
        return self._prefix(name) + self._seal(secret, plain, key)

    def open(self, stored: bytes, key: bytes) -> bytes | None:
        """Opened with the key its prefix names; None when no key of this provider did."""
        for name, secret in self.keys:
            prefix = self._prefix(name)
            if stored.startswith(prefix):
                return self._open(secret, stored[len(prefix):], key)
        return None

    def _seal(self, secret: bytes, plain: bytes, key: bytes) -> bytes:
        raise NotImplementedError

    def _open(self, secret: bytes, sealed: bytes, key: bytes) -> bytes:
        raise NotImplementedError


class AESGCMProvider(_Keyed):
    """AES-GCM, a random 96-bit nonce per value, the storage key as associated data."""

    name = "aesgcm"

    def _seal(self, secret: bytes, plain: bytes, key: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(secret).encrypt(nonce, plain, key)

    def _open(self, secret: bytes, sealed: bytes, key: bytes) -> bytes:
        return AESGCM(secret).decrypt(sealed[:12], sealed[12:], key)


class AESCBCProvider(_Keyed):
    """AES-CBC with PKCS#7 padding and a random IV per value (Kubernetes' aescbc)."""

    name = "aescbc"

    def _seal(self, secret: bytes, plain: bytes, key: bytes) -> bytes:
        iv = os.urandom(16)
        padder = padding.PKCS7(128).padder()
        padded = padder.update(plain) + padder.finalize()
        enc = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
        return iv + enc.update(padded) + enc.finalize()

    def _open(self, secret: bytes, sealed: bytes, key: bytes) -> bytes:
        if len(sealed) < 32 or len(sealed) % 16:
            raise ValueError("the ciphertext is not a whole number of AES blocks")
        dec = Cipher(algorithms.AES(secret), modes.CBC(sealed[:16])).decryptor()
        padded = dec.update(sealed[16:]) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()


_PROVIDERS: dict[str, type[_Keyed]] = {"aesgcm": AESGCMProvider, "aescbc": AESCBCProvider}


@dataclass(frozen=True)
class Transformer:
    """The providers of one set of resources."""

    providers: tuple[Provider, ...]

    def seal(self, plain: bytes, key: bytes) -> bytes:
        """What to store."""
        return self.providers[0].seal(plain, key)

    def open(self, stored: bytes, key: bytes) -> bytes:
        """What was stored, in clear; StoreError naming the key when no provider can."""
        for provider in self.providers:
            try:
                found = provider.open(stored, key)
            except Exception as exc:  # a wrong key or damaged value: say which key
                raise StoreError(f"cannot decrypt {key.decode(errors='replace')} with "
                                 f"{provider.name}: {exc or type(exc).__name__}") from None
            if found is not None:
                return found
        head = stored[:40].split(b":")[:4]
        raise StoreError(f"cannot decrypt {key.decode(errors='replace')}: no configured "
                         f"provider reads a value stored as {b':'.join(head)!r}")


def _resource_prefixes(name: str, where: str) -> list[bytes]:
    """The storage prefixes one entry of ``resources`` names: "secrets", "deployments.apps",
    "*.apps" (a whole group), "*." (the core group) or "*.*" (everything)."""
    resource, _, group = name.partition(".")
    matched = [k for k in KINDS if k.storage and (
        (resource == "*" or k.resource == resource)
        and (group == "*" or k.group == group or (not group and resource != "*"
                                                    and not k.group)))]
    if not matched:
        raise EncryptionConfigError(f"{where}: {name!r} names no served resource (e.g. "
                                    "secrets, configmaps, deployments.apps, *.apps, *.*)")
    return [PREFIX + k.resource.encode() + b"/" for k in matched]


def _keys(entry: Any, where: str) -> list[tuple[str, bytes]]:
    keys = entry.get("keys") if isinstance(entry, dict) else None
    if not isinstance(keys, list) or not keys:
        raise EncryptionConfigError(f"{where}.keys: Required value: at least one key")
    out = []
    for i, k in enumerate(keys):
        at = f"{where}.keys[{i}]"
        if not isinstance(k, dict) or not k.get("name") or not k.get("secret"):
            raise EncryptionConfigError(f"{at}: name and secret are required")
        try:
            secret = base64.b64decode(str(k["secret"]), validate=True)
        except (binascii.Error, ValueError):
            raise EncryptionConfigError(f"{at}.secret: not valid base64") from None
        if len(secret) not in (16, 24, 32):
            raise EncryptionConfigError(f"{at}.secret: an AES key is 16, 24 or 32 bytes, "
                                        f"got {len(secret)}")
        if ":" in str(k["name"]):
            raise EncryptionConfigError(f"{at}.name: may not contain ':'")
        out.append((str(k["name"]), secret))
    return out


def load_config(path: Path) -> list[tuple[bytes, Transformer]]:
    """(storage prefix, transformer) for each configured resource, from the file."""
    where = f"encryption provider config {path}"
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise EncryptionConfigError(f"{where}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "EncryptionConfiguration":
        raise EncryptionConfigError(f"{where}: kind: expected EncryptionConfiguration")
    if doc.get("apiVersion") != "apiserver.config.k8s.io/v1":
        raise EncryptionConfigError(f"{where}: apiVersion: expected apiserver.config.k8s.io/v1")
    rules: list[tuple[bytes, Transformer]] = []
    seen: set[bytes] = set()
    for i, rule in enumerate(doc.get("resources") or []):
        at = f"{where}: resources[{i}]"
        names = rule.get("resources") if isinstance(rule, dict) else None
        providers_doc = rule.get("providers") if isinstance(rule, dict) else None
        if not isinstance(names, list) or not names:
            raise EncryptionConfigError(f"{at}.resources: Required value")
        if not isinstance(providers_doc, list) or not providers_doc:
            raise EncryptionConfigError(f"{at}.providers: Required value")
        providers: list[Provider] = []
        for j, p in enumerate(providers_doc):
            pat = f"{at}.providers[{j}]"
            if not isinstance(p, dict) or len(p) != 1:
                raise EncryptionConfigError(f"{pat}: exactly one provider type per entry")
            (kind, body), = p.items()
            if kind == "identity":
                providers.append(Identity())
            elif kind in _PROVIDERS:
                providers.append(_PROVIDERS[kind](_keys(body, f"{pat}.{kind}")))
            else:
                raise EncryptionConfigError(f"{pat}: unsupported provider {kind!r}; "
                                            "supported: aesgcm, aescbc, identity")
        transformer = Transformer(tuple(providers))
        for name in names:
            for prefix in _resource_prefixes(str(name), f"{at}.resources"):
                if prefix not in seen:  # the first rule naming a resource wins
                    seen.add(prefix)
                    rules.append((prefix, transformer))
    if not rules:
        raise EncryptionConfigError(f"{where}: resources: Required value")
    return rules


class EncryptingStore:
    """A ``Store`` whose values under the configured prefixes are sealed on the way in
    and opened on the way out."""

    def __init__(self, inner: Store, rules: Sequence[tuple[bytes, Transformer]]) -> None:
        self.inner = inner
        self.rules = list(rules)

    def _for(self, key: bytes) -> Transformer | None:
        for prefix, transformer in self.rules:
            if key.startswith(prefix):
                return transformer
        return None

    def _open(self, kv: KeyValue | None) -> Any:
        if kv is None or not kv.value:
            return kv
        t = self._for(kv.key)
        return kv if t is None else replace(kv, value=t.open(kv.value, kv.key))

    def _seal(self, op: Op) -> Op:
        if isinstance(op, Put):
            t = self._for(op.key)
            if t is not None:
                return Put(op.key, t.seal(op.value, op.key), op.lease)
        return op

    async def get(self, key: bytes, *, revision: int = 0) -> KeyValue | None:
        """Store.get, opened."""
        found: KeyValue | None = self._open(await self.inner.get(key, revision=revision))
        return found

    async def page(self, start: bytes, end: bytes, *, revision: int = 0,
                   limit: int = 0) -> Page:
        """Store.page, opened."""
        page = await self.inner.page(start, end, revision=revision, limit=limit)
        return replace(page, kvs=tuple(self._open(kv) for kv in page.kvs))

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op],
                  failure: Sequence[Op] = ()) -> TxnResult:
        """Store.txn with Puts sealed (a value compare on a sealed key cannot hold: the
        stored bytes differ every time, so it is refused)."""
        for c in compares:
            if c.target == "value" and self._for(c.key) is not None:
                raise StoreError(f"a value compare on the encrypted key {c.key!r}")
        result = await self.inner.txn(compares, [self._seal(o) for o in success],
                                      [self._seal(o) for o in failure])
        return replace(result, kvs=tuple(self._open(kv) for kv in result.kvs))

    async def watch(self, start: bytes, end: bytes, *,
                    start_revision: int) -> AsyncIterator[WatchBatch]:
        """Store.watch, every event opened."""
        async for batch in self.inner.watch(start, end, start_revision=start_revision):
            yield replace(batch, events=tuple(
                StoreEvent(e.type, self._open(e.kv), self._open(e.prev_kv))
                for e in batch.events))

    async def current_revision(self) -> int:
        """Store.current_revision."""
        return await self.inner.current_revision()

    async def compact(self, revision: int) -> None:
        """Store.compact."""
        await self.inner.compact(revision)

    async def close(self) -> None:
        """Store.close."""
        await self.inner.close()
