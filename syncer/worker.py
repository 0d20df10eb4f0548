"""Worker: one sync request in, one outcome out.

resolve the commit → skip if it is older than what is applied, or if the push changed
nothing under the app's path → read the files → render → reconcile. Transient failures
(git host, API server) are retried with backoff up to `syncer.max_attempts`; then the
outcome is a failure that also goes to the dead-letter topic. Permanent failures fail at
once. Errors from the git cache are converted here, the only place that sees them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from schemas import AppConfig, GitopsConfig, RepositoryConfig
from schemas.events import ObjectResult, SyncRequested
from schemas.types import CommitSha
from syncer.errors import ObjectError, PermanentSyncError, SyncError, TransientSyncError
from syncer.giterrors import GitError, TransientGitError
from syncer.manifests import RenderCache
from syncer.metrics import SyncerMetrics
from syncer.reconcile import ReconcileOptions, Reconciler
from syncer.reporting import Outcome
from syncer.sources import Renderer, detect_source
from syncer.tenancy import Tenants
from syncer.verification import CommitVerifier, SignedCommit

log = logging.getLogger(__name__)


class GitSource(Protocol):
    """What the worker needs from the git cache (`syncer.gitcache.GitCache`)."""

    async def resolve(
        self, repo: RepositoryConfig, branch: str, commit: CommitSha | None = None
    ) -> CommitSha: ...

    async def read_files(self, url: str, commit: CommitSha, path: str) -> dict[str, bytes]: ...

    async def is_ancestor(self, url: str, ancestor: CommitSha, descendant: CommitSha) -> bool: ...

    async def changed_paths(
        self, url: str, before: CommitSha, after: CommitSha
    ) -> list[str] | None: ...

    async def commit_signature(self, url: str, commit: CommitSha) -> tuple[bytes | None, bytes]: ...


class _Skip(Exception):
    def __init__(self, reason: str, commit: CommitSha) -> None:
        super().__init__(reason)
        self.reason = reason
        self.commit = commit


def under(path: str, app_path: str) -> bool:
    """Whether repository path `path` lies inside the app directory `app_path`."""
    root = app_path.strip("/")
    return root in ("", ".") or path == root or path.startswith(root + "/")


class Worker:
    """Turns requests into outcomes; shared by every app of one syncer."""

    def __init__(
        self,
        *,
        config: GitopsConfig,
        git: GitSource,
        reconcilers: Mapping[str, Reconciler],
        tenants: Tenants | None = None,
        max_delay: float = 30.0,
        renderer: Renderer | None = None,
        verifier: CommitVerifier | None = None,
        metrics: SyncerMetrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._config = config
        self._git = git
        self._reconcilers = reconcilers
        self._tenants = tenants
        """Apps with a ServiceAccount act through it (`syncer.tenancy`)."""
        self._max_delay = max_delay
        self._renders = RenderCache()
        work = Path(config.syncer.cache_dir).expanduser()
        self._renderer = renderer or Renderer(work / "snapshots")
        self._verifier = verifier or CommitVerifier(work / "verify")

    async def process(self, request: SyncRequested) -> Outcome:
        started = time.monotonic()
        name = request.data.app
        app = self._config.apps.get(name)
        if app is None:
            return Outcome(
                request,
                "failed",
                cluster="",
                error=f"app {name!r} is not in this syncer's configuration; add it under apps:",
            )
        attempts = self._config.syncer.max_attempts
        outcome: Outcome
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(attempts),
                wait=self._wait,
                retry=retry_if_exception_type(TransientSyncError),
                reraise=True,
            ):
                with attempt:
                    outcome = await self._attempt(request, app)
        except TransientSyncError as exc:
            outcome = self._failure(request, app, exc)
            outcome.error = f"{exc.message} (gave up after {attempts} attempts)"
            outcome.dead_letter = (exc.message, attempts)
        except PermanentSyncError as exc:
            outcome = self._failure(request, app, exc)
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        return self._scrubbed(outcome)

    def _scrubbed(self, outcome: Outcome) -> Outcome:
        """The outcome without any value a SOPS decryption revealed (an API server's
        refusal may quote a field's value)."""
        scrub = self._renderer.decryptor.scrub
        if outcome.error:
            outcome.error = scrub(outcome.error)
        if outcome.dead_letter is not None:
            outcome.dead_letter = (scrub(outcome.dead_letter[0]), outcome.dead_letter[1])
        outcome.objects = [
            o.model_copy(update={"error": scrub(o.error)}) if o.error else o
            for o in outcome.objects
        ]
        return outcome

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        base = exc.delay if isinstance(exc, TransientSyncError) else 1.0
        return float(min(self._max_delay, base * 2 ** (state.attempt_number - 1)))

    def _failure(self, request: SyncRequested, app: AppConfig, exc: SyncError) -> Outcome:
        return Outcome(
            request,
            "failed",
            cluster=app.cluster,
            commit=CommitSha(exc.commit) if exc.commit else None,
            objects=[_failed(e) for e in exc.objects],
            error=exc.message,
        )

    async def _attempt(self, request: SyncRequested, app: AppConfig) -> Outcome:
        name = request.data.app
        repo = self._config.repositories.get(app.repo)
        reconciler = self._reconcilers.get(app.cluster)
        if reconciler is not None and self._tenants is not None:
            reconciler = self._tenants.reconciler(app, reconciler)
        if repo is None or reconciler is None:
            missing = f"repository {app.repo!r}" if repo is None else f"cluster {app.cluster!r}"
            raise PermanentSyncError(f"app {name!r} refers to unknown {missing}")
        try:
            fetch_started = time.monotonic()
            commit = await self._git.resolve(repo, app.branch, request.data.commit)
            if self._metrics is not None:
                self._metrics.fetch_seconds.observe(time.monotonic() - fetch_started)
            await self._verify(app.repo, repo, commit)
            await self._check_skips(request, app, repo.url, commit, reconciler)
            files = await self._git.read_files(repo.url, commit, app.path)
            # Kustomize and Helm apps become YAML here; plain directories pass unchanged.
            tree = functools.partial(self._git.read_files, repo.url, commit, ".")
            files = await self._renderer.render(
                app, files, commit=commit, app_name=name, read_tree=tree
            )
        except _Skip as skip:
            return Outcome(request, "skipped", app.cluster, commit=skip.commit, error=skip.reason)
        except TransientGitError as exc:
            raise TransientSyncError(str(exc), delay=1.0) from exc
        except GitError as exc:
            raise PermanentSyncError(str(exc)) from exc
        except SyncError as exc:
            exc.commit = commit
            raise
        try:
            manifests = await asyncio.to_thread(self._renders.render, files)
        except SyncError as exc:
            exc.commit = commit
            raise
        log.info("syncing app %s to %s (%d objects)", name, commit[:12], len(manifests))
        options = ReconcileOptions(
            health_timeout=self._config.syncer.health_timeout.total_seconds()
        )
        try:
            result = await reconciler.reconcile(name, app, commit, manifests, options)
        except SyncError as exc:
            exc.commit = commit
            raise
        return Outcome(
            request,
            "succeeded",
            app.cluster,
            commit=commit,
            objects=result.objects,
            health=result.health,
            error="; ".join(result.problems) or None,
        )

    async def _check_skips(
        self,
        request: SyncRequested,
        app: AppConfig,
        url: str,
        commit: CommitSha,
        reconciler: Reconciler,
    ) -> None:
        applied = await reconciler.applied_commit(request.data.app)
        if applied is None or applied == commit:
            return
        # Going back in history is what a rollback asks for, and nothing else may do it.
        if request.data.reason != "rollback" and await self._git.is_ancestor(url, commit, applied):
            raise _Skip(f"commit {commit[:12]} is older than applied {applied[:12]}", commit)
        before = request.data.before
        if before is not None and before == applied:
            changed = await self._git.changed_paths(url, before, commit)
            if (
                changed is not None
                and not any(under(p, app.path) for p in changed)
                and await self._is_directory_app(app, url, commit)
            ):
                await reconciler.mark_commit(request.data.app, commit)
                raise _Skip(f"no change under {app.path}", commit)

    async def _verify(self, repo_name: str, repo: RepositoryConfig, commit: CommitSha) -> None:
        """Refuse commits not signed by the repository's allowed keys (when it has `verify`)."""
        if repo.verify is None:
            return
        signature, payload = await self._git.commit_signature(repo.url, commit)
        signer = await self._verifier.verify(
            repo.verify, commit, SignedCommit(signature, payload), repository=repo_name
        )
        log.info("commit %s of %s is signed by %s", commit[:12], repo_name, signer)

    async def _is_directory_app(self, app: AppConfig, url: str, commit: CommitSha) -> bool:
        """Only a plain directory depends on nothing outside its path (an overlay's base
        or a chart's value file may live anywhere in the repository)."""
        files = await self._git.read_files(url, commit, app.path)
        return detect_source(app, files.keys()) == "directory"


def _failed(error: ObjectError) -> ObjectResult:
    return ObjectResult(
        api_version=error.api_version,
        kind=error.kind,
        namespace=error.namespace,
        name=error.name,
        action="failed",
        error=error.message,
        refused=error.refusal,
    )
