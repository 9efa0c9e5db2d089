"""Encryption at rest: the providers, the configuration file and the store wrapper (over
an in-memory store)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.apiserver.encryption import (
    AESCBCProvider,
    AESGCMProvider,
    EncryptingStore,
    EncryptionConfigError,
    Identity,
    Transformer,
    load_config,
)
from services.apiserver.storage import (
    Compare,
    Get,
    KeyValue,
    Op,
    Page,
    Put,
    StoreError,
    StoreEvent,
    TxnResult,
    WatchBatch,
)

K1, K2 = b"1" * 32, b"2" * 16
KEY = b"/registry/secrets/default/db"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("provider", [AESGCMProvider([("k1", K1)]),
                                      AESCBCProvider([("k1", K1)])])
def test_values_are_sealed_with_kubernetes_prefix_and_open_again(provider: Any) -> None:
    sealed = provider.seal(b"password", KEY)
    assert sealed.startswith(f"k8s:enc:{provider.name}:v1:k1:".encode())
    assert b"password" not in sealed
    assert provider.seal(b"password", KEY) != sealed  # a fresh nonce or IV every time
    assert provider.open(sealed, KEY) == b"password"
    assert provider.open(b"plain", KEY) is None  # not this provider's


def test_aesgcm_matches_the_kubernetes_layout_and_binds_the_storage_key() -> None:
    sealed = AESGCMProvider([("k1", K1)]).seal(b"v", KEY)
    body = sealed[len(b"k8s:enc:aesgcm:v1:k1:"):]
    # nonce (12 bytes) then ciphertext and tag, with the storage key as associated data
    assert AESGCM(K1).decrypt(body[:12], body[12:], KEY) == b"v"
    with pytest.raises(StoreError, match="cannot decrypt /registry/secrets/default/other"):
        Transformer((AESGCMProvider([("k1", K1)]),)).open(sealed,
                                                          b"/registry/secrets/default/other")


def test_rotation_reads_old_keys_and_identity_reads_plaintext() -> None:
    old = Transformer((AESGCMProvider([("k1", K1)]),))
    rotated = Transformer((AESGCMProvider([("k2", K2), ("k1", K1)]), Identity()))
    stored = old.seal(b"v", KEY)
    assert rotated.open(stored, KEY) == b"v"
    assert rotated.seal(b"v", KEY).startswith(b"k8s:enc:aesgcm:v1:k2:")
    assert rotated.open(b"from before", KEY) == b"from before"
    with pytest.raises(StoreError, match="no configured provider reads a value stored as "
                                         r"b'k8s:enc:aesgcm:v1'"):
        Transformer((AESCBCProvider([("k9", K2)]),)).open(stored, KEY)
    with pytest.raises(StoreError, match="no configured provider"):
        old.open(b"plaintext", KEY)  # without identity, plaintext is refused


def config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "enc.yaml"
    path.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
                    + body)
    return path


def test_config_selects_resources_and_orders_providers(tmp_path: Path) -> None:
    rules = load_config(config(tmp_path, f"""
resources:
- resources: [secrets, "*.apps"]
  providers:
  - aesgcm: {{keys: [{{name: new, secret: {b64(K1)}}}, {{name: old, secret: {b64(K2)}}}]}}
  - identity: {{}}
- resources: [secrets, configmaps]
  providers: [{{aescbc: {{keys: [{{name: c, secret: {b64(K2)}}}]}}}}]
"""))
    prefixes = {p.decode(): t for p, t in rules}
    assert {"/registry/secrets/", "/registry/deployments/", "/registry/replicasets/",
            "/registry/configmaps/"} <= set(prefixes)
    assert "/registry/pods/" not in prefixes
    first = prefixes["/registry/secrets/"].providers  # the first rule naming it wins
    assert [p.name for p in first] == ["aesgcm", "identity"]
    assert [p.name for p in prefixes["/registry/configmaps/"].providers] == ["aescbc"]


@pytest.mark.parametrize(("body", "words"), [
    ("resources: []\n", "resources: Required value"),
    ("resources: [{resources: [secrets], providers: []}]\n", "providers: Required value"),
    ("resources: [{resources: [widgets], providers: [{identity: {}}]}]\n",
     "'widgets' names no served resource"),
    ("resources: [{resources: [secrets], providers: [{secretbox: {keys: []}}]}]\n",
     "unsupported provider 'secretbox'; supported: aesgcm, aescbc, identity"),
    ("resources: [{resources: [secrets], providers: [{aesgcm: {keys: []}}]}]\n",
     "providers[0].aesgcm.keys: Required value"),
    ("resources: [{resources: [secrets], providers: [{aesgcm: {keys: [{name: a, "
     "secret: '!!'}]}}]}]\n", "keys[0].secret: not valid base64"),
    (f"resources: [{{resources: [secrets], providers: [{{aesgcm: {{keys: [{{name: a, "
     f"secret: {b64(b'x' * 10)}}}]}}}}]}}]\n", "16, 24 or 32 bytes, got 10"),
    ("resources: [{resources: [secrets], providers: [{identity: {}, aesgcm: {}}]}]\n",
     "exactly one provider type per entry"),
])
def test_config_errors_name_the_field(tmp_path: Path, body: str, words: str) -> None:
    with pytest.raises(EncryptionConfigError) as err:
        load_config(config(tmp_path, body))
    assert words in str(err.value)


class MemoryStore:
    """Just enough of Store to watch what reaches it."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.revision = 0
        self.events: list[WatchBatch] = []

    def kv(self, key: bytes) -> KeyValue | None:
        return KeyValue(key, self.data[key], 1, self.revision, 1) if key in self.data else None

    async def get(self, key: bytes, *, revision: int = 0) -> KeyValue | None:
        return self.kv(key)

    async def page(self, start: bytes, end: bytes, *, revision: int = 0,
                   limit: int = 0) -> Page:
        kvs = tuple(kv for k in sorted(self.data) if start <= k < end
                    if (kv := self.kv(k)) is not None)
        return Page(kvs, self.revision, False, len(kvs))

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op],
                  failure: Sequence[Op] = ()) -> TxnResult:
        self.revision += 1
        out: list[KeyValue | None] = []
        events = []
        for op in success:
            if isinstance(op, Put):
                self.data[op.key] = op.value
                kv = self.kv(op.key)
                assert kv is not None
                events.append(StoreEvent("PUT", kv, None))
                out.append(None)
            elif isinstance(op, Get):
                out.append(self.kv(op.key))
        self.events.append(WatchBatch(self.revision, tuple(events)))
        return TxnResult(True, self.revision, tuple(out))

    async def watch(self, start: bytes, end: bytes, *,
                    start_revision: int) -> AsyncIterator[WatchBatch]:
        for batch in self.events:
            yield batch


def test_the_store_wrapper_seals_what_goes_in_and_opens_what_comes_out() -> None:
    inner = MemoryStore()
    store = EncryptingStore(inner, [(b"/registry/secrets/",
                                     Transformer((AESGCMProvider([("k1", K1)]),)))])  # type: ignore[arg-type]

    async def scenario() -> None:
        await store.txn([], [Put(KEY, b"secret"), Put(b"/registry/configmaps/default/c",
                                                      b"config")])
        assert inner.data[KEY].startswith(b"k8s:enc:aesgcm:v1:k1:")
        assert inner.data[b"/registry/configmaps/default/c"] == b"config"
        got = await store.get(KEY)
        assert got is not None and got.value == b"secret"
        page = await store.page(b"/registry/", b"/registry0")
        assert [kv.value for kv in page.kvs] == [b"config", b"secret"]
        read = await store.txn([], [Get(KEY)])
        assert read.kvs[0] is not None and read.kvs[0].value == b"secret"
        seen = [e.kv.value async for b in store.watch(b"/", b"0", start_revision=1)
                for e in b.events]
        assert seen == [b"secret", b"config"]
        with pytest.raises(StoreError, match="value compare on the encrypted key"):
            await store.txn([Compare(KEY, "value", "=", b"secret")], [])

    asyncio.run(scenario())
