"""Decrypt an app's SOPS-encrypted files before they are rendered, and keep their secrets
out of everything the syncer says.

An app with `decryption: {provider: sops, ...}` gets each SOPS file of its commit
decrypted (`syncer.sources.sops`) before Kustomize, Helm or the manifest loader sees it;
an app without one, or a file its keys do not open, fails the sync naming the file, so
ciphertext is never applied. The age identities come from a Secret in
`syncer.inventory_namespace` of the app's cluster (its `*.agekey` entries, as Flux names
them), read with the syncer's own rights, or from `keys: {file|env}`.

Every value that was encrypted is remembered (with its base64 forms, since a Secret's
`data` is base64 on one side and plain on the other), and `scrub` replaces them in any
text before it leaves the process: sync events, logs, `gitops diff`. Decrypted files
are cached in memory by their ciphertext, so a resync of an unchanged commit starts no
`sops` process.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from schemas import AppConfig
from syncer.kube import Cluster, ResourceInfo
from syncer.sources.detect import app_prefix
from syncer.sources.sops import SOPS, DecryptionError, decrypt, documents, encrypted

KEY_SUFFIX = ".agekey"
"""Entries of the keys Secret holding age identities (Flux's convention)."""
REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 4
"""Shorter values are not scrubbed from texts: they would mangle every message."""
PARALLEL = 4
"""`sops` processes at once for one app (each is a ~50 ms process start, mostly waiting)."""
_SECRET = ResourceInfo("", "v1", "Secret", "secrets", namespaced=True)


class Decryptor:
    """One per syncer process (built by the composition root), shared by every app."""

    def __init__(
        self,
        workdir: Path,
        *,
        clusters: Mapping[str, Cluster] | None = None,
        namespace: str = "gitops-system",
        binary: str = SOPS,
        cache_size: int = 256,
    ) -> None:
        self._home = workdir / "sops-home"
        self._clusters = clusters or {}
        self._namespace = namespace
        self._binary = binary
        self._cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._revealed: set[str] = set()
        self.decrypted = 0
        """Files `sops` actually decrypted (cache misses); tests read it."""

    async def decrypt(
        self, app_name: str, app: AppConfig, files: Mapping[str, bytes]
    ) -> dict[str, bytes]:
        """`files` with every SOPS file decrypted.

        A file under the app's path must decrypt; one elsewhere (a kustomize app reads
        the whole tree) may belong to another app and is left as it is when the keys do
        not open it; should the render include it anyway, `refuse_encrypted` stops it."""
        found = [path for path, content in files.items() if encrypted(path, content)]
        if not found:
            return dict(files)
        if app.decryption is None:
            raise DecryptionError(
                f"{found[0]} is SOPS-encrypted but app {app_name} has no decryption settings; "
                "add `decryption: {provider: sops, secret: NAME}` to the app"
            )
        identities = await self._identities(app_name, app)
        prefix = app_prefix(app.path)
        slots = asyncio.Semaphore(PARALLEL)

        async def one(path: str) -> bytes:
            async with slots:
                try:
                    return await self._one(path, files[path], identities)
                except DecryptionError:
                    if path.startswith(prefix):
                        raise
                    return files[path]

        plain = await asyncio.gather(*(one(path) for path in found))
        return {**files, **dict(zip(found, plain, strict=True))}

    def refuse_encrypted(self, app_name: str, files: Mapping[str, bytes]) -> None:
        """Fail when rendered output still holds a SOPS document (never apply ciphertext)."""
        for path, content in files.items():
            if encrypted(path, content):
                raise DecryptionError(
                    f"{path} holds a SOPS-encrypted document that app {app_name}'s keys did "
                    "not decrypt (a file from outside the app's path?)"
                )

    def scrub(self, text: str) -> str:
        """`text` with every value any decryption revealed replaced by `<redacted>`."""
        if not self._revealed or not text:
            return text
        for secret in sorted(self._revealed, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    async def _one(self, path: str, content: bytes, identities: str) -> bytes:
        key = (hashlib.sha256(content).hexdigest(), hashlib.sha256(identities.encode()).hexdigest())
        plain = self._cache.get(key)
        if plain is not None:
            self._cache.move_to_end(key)
            return plain
        plain = await decrypt(
            path, content, identities=identities, home=self._home, binary=self._binary
        )
        self.decrypted += 1
        for before, after in zip(documents(content), documents(plain), strict=False):
            self._remember(before, after)
        self._cache[key] = plain
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return plain

    def _remember(self, before: Any, after: Any) -> None:
        """Record the plaintext of every value that was `ENC[...]` in the file."""
        if isinstance(before, str) and before.startswith("ENC["):
            for form in _forms(str(after)):
                self._revealed.add(form)
        elif isinstance(before, dict) and isinstance(after, dict):
            for key, value in before.items():
                if key != "sops" and key in after:
                    self._remember(value, after[key])
        elif isinstance(before, list) and isinstance(after, list):
            for old, new in zip(before, after, strict=False):
                self._remember(old, new)

    async def _identities(self, app_name: str, app: AppConfig) -> str:
        settings = app.decryption
        assert settings is not None  # noqa: S101 - checked by the caller
        if settings.keys is not None:
            try:
                return settings.keys.resolve().get_secret_value()
            except ValueError as exc:
                raise DecryptionError(f"app {app_name}: decryption keys: {exc}") from None
        assert settings.secret is not None  # noqa: S101 - one of the two, by the schema
        where = f"Secret {self._namespace}/{settings.secret}"
        cluster = self._clusters.get(app.cluster)
        if cluster is None:
            raise DecryptionError(
                f"app {app_name}: its decryption keys are in {where} of cluster {app.cluster}, "
                "which this process is not connected to"
            )
        found = await cluster.get(_SECRET, self._namespace, settings.secret)
        if found is None:
            raise DecryptionError(
                f"app {app_name}: decryption keys {where} not found in cluster {app.cluster}"
            )
        keys = [
            value
            for name, value in sorted((found.get("data") or {}).items())
            if name.endswith(KEY_SUFFIX)
        ]
        if not keys:
            raise DecryptionError(
                f"app {app_name}: {where} has no `*{KEY_SUFFIX}` entry holding an age identity"
            )
        return "\n".join(base64.b64decode(value).decode("utf-8").strip() for value in keys)


def _forms(value: str) -> set[str]:
    """The value, its base64 encoding, and its base64 decoding when it is text."""
    forms = {value, base64.b64encode(value.encode()).decode()}
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if decoded.isprintable():
        forms.add(decoded)
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}
