"""What the dashboard reads from the clusters: an app's inventory, its objects' health,
and the diff against Git. Reads only (the diff's apply is a server-side dry run).

Clusters are connected on first use and kept for the dashboard's lifetime; the git
mirrors for diffs live in `<syncer.cache_dir>/ui`, apart from any syncer's on the same
machine (as `gitops diff` keeps its own under `cli`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from schemas import GitopsConfig
from syncer.errors import SyncError
from syncer.gitcache import GitCache
from syncer.health import WORKLOAD_KINDS, assess
from syncer.inventory import Entry, InventoryStore
from syncer.kube import Cluster
from syncer.livediff import LiveDiff, LiveDiffError, diff_live

READ_CONCURRENCY = 16


class LiveReadError(Exception):
    """A cluster or the repository could not be read; the message names which and why."""


@dataclass(frozen=True)
class LiveObject:
    """One object of an app's inventory and what the cluster says about it now."""

    api_version: str
    kind: str
    namespace: str
    name: str
    health: str
    """`healthy`, `progressing`, `degraded` (workloads), `present` or `missing`."""
    reason: str


@dataclass(frozen=True)
class AppObjects:
    commit: str | None
    objects: list[LiveObject]


class LiveReader:
    """Connected clusters and the git cache, shared by every page request."""

    def __init__(self, config: GitopsConfig) -> None:
        self._config = config
        self._clusters: dict[str, Cluster] = {}
        self._connecting = asyncio.Lock()
        self._workdir = Path(os.path.expanduser(config.syncer.cache_dir)) / "ui"
        self._git = GitCache(self._workdir, max_file_bytes=config.syncer.max_file_bytes)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        clusters, self._clusters = list(self._clusters.values()), {}
        for cluster in clusters:
            with contextlib.suppress(Exception):
                await cluster.close()
        await self._git.close()

    async def _cluster(self, name: str) -> Cluster:
        async with self._connecting:
            found = self._clusters.get(name)
            if found is None:
                settings = self._config.clusters.get(name)
                if settings is None:
                    raise LiveReadError(f"cluster '{name}' is not in the configuration")
                try:
                    found = await Cluster.connect(name, settings)
                except SyncError as exc:
                    raise LiveReadError(exc.message) from exc
                self._clusters[name] = found
            return found

    async def objects(self, app: str) -> AppObjects:
        """The app's inventory with each object's live health."""
        spec = self._config.apps[app]
        try:
            cluster = await self._cluster(spec.cluster)
            store = InventoryStore(cluster, self._config.syncer.inventory_namespace)
            inventory = await store.load(app)
            semaphore = asyncio.Semaphore(READ_CONCURRENCY)

            async def one(entry: Entry) -> LiveObject:
                async with semaphore:
                    try:
                        return await _live(cluster, entry)
                    except SyncError as exc:
                        return _object(entry, "unknown", exc.message)

            entries = sorted(inventory.entries.values(), key=lambda e: e.key)
            found = await asyncio.gather(*(one(e) for e in entries))
        except SyncError as exc:
            raise LiveReadError(f"cluster {spec.cluster}: {exc.message}") from exc
        return AppObjects(inventory.commit, list(found))

    async def diff(self, app: str) -> LiveDiff:
        spec = self._config.apps[app]
        cluster = await self._cluster(spec.cluster)
        try:
            return await diff_live(
                self._config, app, git=self._git, cluster=cluster, workdir=self._workdir
            )
        except LiveDiffError as exc:
            raise LiveReadError(str(exc)) from exc


async def _live(cluster: Cluster, entry: Entry) -> LiveObject:
    info = await cluster.resource(entry.api_version, entry.kind)
    obj = await cluster.get(info, entry.namespace or None, entry.name)
    if obj is None:
        health, reason = "missing", "not found in the cluster"
    elif entry.kind in WORKLOAD_KINDS:
        state, reason = assess(obj)
        health = {"ready": "healthy", "waiting": "progressing", "failed": "degraded"}[state]
    else:
        health, reason = "present", ""
    return _object(entry, health, reason)


def _object(entry: Entry, health: str, reason: str) -> LiveObject:
    return LiveObject(entry.api_version, entry.kind, entry.namespace, entry.name, health, reason)
