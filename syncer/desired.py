"""Desired state: what Git says an app should be at one commit, read the same way by
every part that asks (the worker before it applies, drift detection, `gitops diff`).

resolve the commit → read the files under the app path → render (Kustomize, Helm, plain
YAML) → parse into manifests → plan (discovery, default namespace, policy, sync waves
and hooks). Each step lives in its own module; this one only chains them and converts
the git cache's errors into sync errors, the one place that does for these reads.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Protocol

from schemas import AppConfig, GitopsConfig, RepositoryConfig
from schemas.types import CommitSha
from syncer.errors import PermanentSyncError, SyncError, TransientSyncError
from syncer.giterrors import GitError, TransientGitError
from syncer.kube import Cluster
from syncer.manifests import Manifest, RenderCache
from syncer.planning import Planned, plan, summary
from syncer.sources import Renderer


class GitFiles(Protocol):
    """What reading a commit needs from the git cache (`syncer.gitcache.GitCache`)."""

    async def resolve(
        self, repo: RepositoryConfig, branch: str, commit: CommitSha | None = None
    ) -> CommitSha: ...

    async def read_files(self, url: str, commit: CommitSha, path: str) -> dict[str, bytes]: ...


@dataclass(frozen=True)
class Desired:
    """An app's objects at one commit, planned and ready for the apply engine."""

    commit: CommitSha
    objects: list[Planned]
    """The app's own objects (hooks excluded), in manifest order."""
    hooks: list[Planned]
    """Objects annotated `gitops.dev/hook`: run around a sync, never pruned or diffed."""

    @classmethod
    def of(cls, commit: CommitSha, planned: list[Planned]) -> Desired:
        """Split a plan into the app's objects and its hooks."""
        return cls(
            commit,
            [p for p in planned if p.hook is None],
            [p for p in planned if p.hook is not None],
        )


def git_failure(exc: GitError) -> SyncError:
    """A git cache error as the sync error that carries its retry policy."""
    if isinstance(exc, TransientGitError):
        return TransientSyncError(str(exc), delay=1.0)
    return PermanentSyncError(str(exc))


class DesiredState:
    """Reads desired states of apps from Git; one per process part that needs them.

    Owns the parse cache, so a resync or a drift check of an unchanged commit costs no
    YAML parsing; `renderer` is shared (its snapshots and render cache are on disk).
    """

    def __init__(self, *, config: GitopsConfig, git: GitFiles, renderer: Renderer) -> None:
        self._config = config
        self._git = git
        self._renderer = renderer
        self._parsed = RenderCache()

    def scrub(self, text: str) -> str:
        """`text` without any value a SOPS decryption of these reads revealed."""
        return self._renderer.decryptor.scrub(text)

    def repository(self, app_name: str, app: AppConfig) -> RepositoryConfig:
        repo = self._config.repositories.get(app.repo)
        if repo is None:
            raise PermanentSyncError(f"app {app_name!r} refers to unknown repository {app.repo!r}")
        return repo

    async def resolve(self, app_name: str, app: AppConfig, commit: CommitSha | None) -> CommitSha:
        """The full sha of `commit`, or of the branch head when None (fetched if needed)."""
        repo = self.repository(app_name, app)
        try:
            return await self._git.resolve(repo, app.branch, commit)
        except GitError as exc:
            raise git_failure(exc) from exc

    async def manifests(self, app_name: str, app: AppConfig, commit: CommitSha) -> list[Manifest]:
        """Read, render and parse the app's files at `commit` (already resolved)."""
        repo = self.repository(app_name, app)
        try:
            files = await self._git.read_files(repo.url, commit, app.path)
            # Kustomize and Helm apps become YAML here; plain directories pass unchanged.
            tree = functools.partial(self._git.read_files, repo.url, commit, ".")
            files = await self._renderer.render(
                app, files, commit=commit, app_name=app_name, read_tree=tree
            )
        except GitError as exc:
            raise _at(git_failure(exc), commit) from exc
        except SyncError as exc:
            raise _at(exc, commit) from None
        try:
            return await asyncio.to_thread(self._parsed.render, files)
        except SyncError as exc:
            raise _at(exc, commit) from None

    async def at(
        self, app_name: str, app: AppConfig, commit: CommitSha, cluster: Cluster
    ) -> Desired:
        """The whole step for a known commit: make sure it is cached, read, render, parse, plan.

        Raises `PermanentSyncError` listing every object refused by discovery or policy.
        """
        commit = await self.resolve(app_name, app, commit)
        manifests = await self.manifests(app_name, app, commit)
        return await planned(cluster, app, commit, manifests)


async def planned(
    cluster: Cluster, app: AppConfig, commit: CommitSha, manifests: list[Manifest]
) -> Desired:
    """The plan step alone, for manifests at hand; `PermanentSyncError` listing every
    object refused by discovery or policy."""
    objects, errors = await plan(cluster, app, manifests)
    if errors:
        raise _at(
            PermanentSyncError(summary("refused by policy or discovery", errors), objects=errors),
            commit,
        )
    return Desired.of(commit, objects)


def _at(exc: SyncError, commit: CommitSha) -> SyncError:
    exc.commit = commit
    return exc
