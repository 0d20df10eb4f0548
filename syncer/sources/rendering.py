"""From an app's files at one commit to the manifest files the syncer loads.

The one entry point, `Renderer.render` (or the cache-less `render_app`), returns a files
dict of the same shape the git cache returns for a plain directory, so rendered output
goes through exactly the same safe loading, ordering, dry run, apply, inventory and
prune as hand-written YAML. A plain directory comes back untouched; a kustomization or
chart is rendered in a snapshot of the commit and comes back as virtual files
(`kustomize://apps/x/build.yaml`, `helm://charts/x/templates/deploy.yaml`).

Renders are cached per (commit, app, render settings): a resync or a drift check of
the same commit does not start Kustomize or Helm again, and a config change to the
values renders afresh.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from schemas.config import AppConfig, SourceKind
from syncer.sources.decryption import Decryptor
from syncer.sources.detect import app_prefix, detect_source
from syncer.sources.helm import render_helm
from syncer.sources.kustomize import render_kustomize
from syncer.sources.snapshot import DEFAULT_MAX_TOTAL_BYTES, Snapshot

TreeReader = Callable[[], Awaitable[Mapping[str, bytes]]]
"""Reads the whole repository tree at the commit (the git cache's `read_files(url,
commit, ".")`); overlays reach `../base` and value files may live anywhere in the repo."""
CacheKey = tuple[str, str, str]

DEFAULT_TIMEOUT = 60.0


def settings_digest(app: AppConfig) -> str:
    """A digest of everything in the app's config that changes what a render produces."""
    relevant = app.model_dump_json(include={"path", "namespace", "source", "helm", "kustomize"})
    return hashlib.sha256(relevant.encode()).hexdigest()[:16]


def _kustomize_name(path: str) -> str:
    return f"kustomize://{app_prefix(path)}build.yaml"


async def render_source(
    kind: SourceKind,
    app: AppConfig,
    tree: Mapping[str, bytes],
    *,
    app_name: str,
    workdir: Path,
    timeout: float = DEFAULT_TIMEOUT,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
) -> dict[str, bytes]:
    """Render a kustomize or helm app from the repository files `tree` (no cache)."""
    async with Snapshot(tree, parent=workdir, max_total_bytes=max_total_bytes) as snapshot:
        if kind == "kustomize":
            options = app.kustomize
            output = await render_kustomize(
                snapshot.root,
                app.path,
                allow_remote_bases=options.allow_remote_bases if options else False,
                timeout=timeout,
            )
            return {_kustomize_name(app.path): output}
        helm = app.helm
        return await render_helm(
            snapshot.root,
            app.path,
            release_name=(helm.release_name if helm else None) or app_name,
            namespace=app.namespace,
            values=helm.values if helm else None,
            value_files=helm.value_files if helm else None,
            timeout=timeout,
        )


async def render_app(
    app: AppConfig,
    files: Mapping[str, bytes],
    *,
    commit: str,
    app_name: str,
    workdir: Path,
    read_tree: TreeReader | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, bytes]:
    """The manifest files of `app` at `commit`, without caching (see `Renderer`).

    `files` are the repo-relative files under the app's path, as the git cache returns
    them; `read_tree`, when given, supplies the whole tree for kustomize and helm apps.
    Raises `SourceRefused`, `RenderError` (permanent) or `RenderTimeout` (transient).
    """
    del commit  # part of the signature for symmetry with `Renderer.render`
    kind = detect_source(app, files.keys())
    if kind == "directory":
        return dict(files)
    tree = await read_tree() if read_tree is not None else files
    return await render_source(kind, app, tree, app_name=app_name, workdir=workdir, timeout=timeout)


class Renderer:
    """Renders apps in snapshots under `workdir`, remembering the last `cache_size` renders.

    One per worker, built by the composition root and shared by all apps; it holds no
    process or file between calls, so there is nothing to close.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        cache_size: int = 128,
        timeout: float = DEFAULT_TIMEOUT,
        max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
        decryptor: Decryptor | None = None,
    ) -> None:
        self.workdir = workdir
        self.decryptor = decryptor or Decryptor(workdir)
        """Decrypts SOPS files before rendering (and refuses them for apps without keys)."""
        self.timeout = timeout
        self.max_total_bytes = max_total_bytes
        self._cache_size = cache_size
        self._cache: OrderedDict[CacheKey, dict[str, bytes]] = OrderedDict()
        self.renders = 0
        """Renders actually run (cache misses); tests and metrics read it."""

    async def render(
        self,
        app: AppConfig,
        files: Mapping[str, bytes],
        *,
        commit: str,
        app_name: str,
        read_tree: TreeReader | None = None,
    ) -> dict[str, bytes]:
        """Like `render_app`, answered from the cache when this commit was rendered before."""
        kind = detect_source(app, files.keys())
        if kind == "directory":
            return await self.decryptor.decrypt(app_name, app, files)
        key = (commit, app_name, settings_digest(app))
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return dict(cached)
        tree = await read_tree() if read_tree is not None else files
        tree = await self.decryptor.decrypt(app_name, app, tree)
        self.renders += 1
        rendered = await render_source(
            kind,
            app,
            tree,
            app_name=app_name,
            workdir=self.workdir,
            timeout=self.timeout,
            max_total_bytes=self.max_total_bytes,
        )
        self.decryptor.refuse_encrypted(app_name, rendered)
        self._cache[key] = rendered
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return dict(rendered)
