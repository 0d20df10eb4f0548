"""Requests for generated apps: find their definition first, and carry out removals.

A generated app's request can reach its owner just before the owner's catalog has read
the app's definition (they travel on two topics); the set's owner acknowledged the
definition before it published the request, so waiting for the catalog to catch up is
enough. A `removed` request deletes an app whose directory or file left its set's
branch: with the set's `prune: true` every object the app's inventory lists is deleted
(namespaced objects first, Namespaces and CRDs last), otherwise they are left in place
and reported `orphaned`; either way the inventory goes, so nothing owns them any more.
It runs on the app's own lane, like any request of the app, so it never races a sync.

A push that removes a generated app's directory also touches the app's path, so the
receiver requests a sync of it just before its set's owner requests the removal: a
request for a commit where the app's source is gone is skipped, not failed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol

from schemas import AppConfig, GitopsConfig, RepositoryConfig
from schemas.events import ObjectResult, SyncRequested
from schemas.types import CommitSha
from syncer.catalog import AppCatalog
from syncer.consuming import Process
from syncer.errors import SyncError
from syncer.giterrors import GitError
from syncer.inventory import Entry
from syncer.kube import Cluster
from syncer.reconcile import Reconciler
from syncer.reporting import Outcome
from syncer.tenancy import Tenants

LAST_KINDS = ("Namespace", "CustomResourceDefinition")
"""Deleted after everything else: deleting them first would take their contents along
before those could be reported one by one."""


class SourceCheck(Protocol):
    """What the check for a removed source needs from the git cache."""

    async def resolve(
        self, repo: RepositoryConfig, branch: str, commit: CommitSha | None = None
    ) -> CommitSha: ...

    async def match_paths(
        self,
        url: str,
        commit: CommitSha,
        include: list[str],
        exclude: list[str],
        *,
        directories: bool,
    ) -> list[str]: ...


class GeneratedRequests:
    """Wraps the worker's `process` for the apps app sets generate."""

    def __init__(
        self,
        *,
        catalog: AppCatalog,
        reconcilers: dict[str, Reconciler],
        process: Process,
        git: SourceCheck,
        config: GitopsConfig,
        tenants: Tenants | None = None,
    ) -> None:
        self._tenants = tenants
        """A removed app's objects are deleted as its ServiceAccount (`syncer.tenancy`)."""
        self._catalog = catalog
        self._reconcilers = reconcilers
        self._process = process
        self._git = git
        self._config = config

    async def process(self, request: SyncRequested) -> Outcome:
        name = request.data.app
        # The removal (or the definition) was published before this request: read it first.
        if name not in self._catalog.apps or request.data.reason == "removed":
            await self._catalog.caught_up()
        if request.data.reason == "removed":
            return await self._remove(request)
        gone = self._catalog.removed.get(name)
        if name not in self._catalog.apps and gone is not None:
            return Outcome(
                request,
                "skipped",
                gone.settings.cluster,
                error=f"app {name} left app_sets.{gone.app_set} at commit {gone.commit[:12]}",
            )
        left = await self._source_gone(request)
        if left is not None:
            return left
        return await self._process(request)

    async def _source_gone(self, request: SyncRequested) -> Outcome | None:
        """A skip when the commit asked for no longer holds the generated app's source."""
        definition = self._catalog.generated.get(request.data.app)
        if definition is None or request.data.commit is None:
            return None
        settings = definition.settings
        repo = self._config.repositories.get(settings.repo)
        app_set = self._config.app_sets.get(definition.app_set)
        if repo is None or app_set is None:
            return None
        try:
            commit = await self._git.resolve(repo, settings.branch, request.data.commit)
            found = await self._git.match_paths(
                repo.url,
                commit,
                [definition.source],
                [],
                directories=app_set.directories is not None,
            )
        except GitError:
            return None  # the worker meets the same error and reports it with its retries
        if found:
            return None
        return Outcome(
            request,
            "skipped",
            settings.cluster,
            commit=commit,
            error=(
                f"{definition.source} is not in commit {commit[:12]}:"
                f" app_sets.{definition.app_set} removes app {request.data.app}"
            ),
        )

    async def _remove(self, request: SyncRequested) -> Outcome:
        started = time.monotonic()
        name = request.data.app
        gone = self._catalog.removed.get(name)
        if gone is None:
            live = self._catalog.apps.get(name)
            return Outcome(
                request,
                "skipped",
                live.cluster if live else "",
                error=f"app {name} is generated again; not removed",
            )
        cluster = gone.settings.cluster
        reconciler = self._reconcilers.get(cluster)
        if reconciler is None:
            return Outcome(request, "failed", cluster, error=f"unknown cluster {cluster!r}")
        store = reconciler.inventories
        try:
            inventory = await store.load(name)
            entries = sorted(inventory.entries.values(), key=lambda e: e.kind in LAST_KINDS)
            if gone.prune:
                acting = (
                    self._tenants.reconciler(gone.settings, reconciler)
                    if self._tenants
                    else reconciler
                )
                objects = [await _delete(acting.cluster, entry) for entry in entries]
            else:
                objects = [_result(entry, "orphaned") for entry in entries]
            failed = [o for o in objects if o.action == "failed"]
            if failed:
                inventory.entries = {
                    e.key: e for e, o in zip(entries, objects, strict=True) if o.action == "failed"
                }
                await store.save(name, inventory)
            else:
                await store.delete(name)
        except SyncError as exc:
            return Outcome(request, "failed", cluster, commit=gone.commit, error=exc.message)
        outcome = Outcome(
            request,
            "failed" if failed else "succeeded",
            cluster,
            commit=gone.commit,
            objects=objects,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        if failed:
            outcome.error = f"app {name} removed, but {len(failed)} objects could not be deleted"
        elif not gone.prune and objects:
            outcome.error = (
                f"app {name} removed; {len(objects)} objects left in the cluster, orphaned"
                f" (app_sets.{gone.app_set} does not prune)"
            )
        return outcome


async def inventory_gone(reconcilers: Mapping[str, Reconciler], app: str, spec: AppConfig) -> bool:
    """Whether a removed app's inventory is gone (its removal ran), for `syncer.generation`."""
    reconciler = reconcilers.get(spec.cluster)
    if reconciler is None:
        return True
    inventory = await reconciler.inventories.load(app)
    return inventory.commit is None and not inventory.entries


async def _delete(cluster: Cluster, entry: Entry) -> ObjectResult:
    try:
        info = await cluster.resource(entry.api_version, entry.kind)
        await cluster.delete(info, entry.namespace or None, entry.name)
    except SyncError as exc:
        if "serves no" in exc.message:
            return _result(entry, "pruned")  # its kind is gone (CRD deleted), the object with it
        return _result(entry, "failed", exc.message)
    return _result(entry, "pruned")


def _result(entry: Entry, action: str, error: str | None = None) -> ObjectResult:
    return ObjectResult.model_validate(
        {
            "api_version": entry.api_version,
            "kind": entry.kind,
            "namespace": entry.namespace or None,
            "name": entry.name,
            "action": action,
            "error": error,
        }
    )
