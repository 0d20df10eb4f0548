"""Worker: one sync request in, one outcome out.

resolve the commit → skip if it is older than what is applied, or if the push changed
nothing under the app's path → the desired state (read, render, parse, plan:
`syncer.desired`) → reconcile. The app's inventory is read once, here, and handed on.
The whole sync runs again only for sync-level transient causes (`TransientSyncError`:
git host unreachable, a CRD not yet established), up to `syncer.max_attempts`, within the
sync's time budget (`syncer.retrying`); single API requests are retried where they are
made. A failure that outlasted its retries also goes to the dead-letter topic. Permanent
failures fail at once. Git cache errors become sync errors through
`syncer.desired.git_failure`, the one conversion.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from schemas import AppConfig, GitopsConfig, RepositoryConfig
from schemas.events import ObjectResult, SyncRequested
from schemas.types import CommitSha
from syncer.desired import DesiredState, GitFiles, git_failure
from syncer.errors import (
    ObjectError,
    PermanentSyncError,
    RetriesExhausted,
    SyncError,
    TransientSyncError,
)
from syncer.giterrors import GitError
from syncer.metrics import SyncerMetrics
from syncer.reconcile import ReconcileOptions, Reconciler
from syncer.reporting import Outcome
from syncer.retrying import RetryPolicy
from syncer.slots import Slots, no_slot
from syncer.sources import detect_source
from syncer.tenancy import Tenants
from syncer.verification import CommitVerifier, SignedCommit

log = logging.getLogger(__name__)


class GitSource(GitFiles, Protocol):
    """What the worker needs from the git cache (`syncer.gitcache.GitCache`)."""

    async def is_ancestor(self, url: str, ancestor: CommitSha, descendant: CommitSha) -> bool: ...

    async def changed_paths(
        self, url: str, before: CommitSha, after: CommitSha
    ) -> list[str] | None: ...

    async def commit_signature(self, url: str, commit: CommitSha) -> tuple[bytes | None, bytes]: ...


@dataclass(frozen=True)
class _Skip:
    """Why a request needs no sync; `applied`: the commit counts as applied all the same."""

    reason: str
    applied: bool = False


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
        desired: DesiredState,
        tenants: Tenants | None = None,
        retry: RetryPolicy | None = None,
        verifier: CommitVerifier | None = None,
        metrics: SyncerMetrics | None = None,
        slots: Slots | None = None,
    ) -> None:
        self._metrics = metrics
        self._slots = slots
        self._config = config
        self._git = git
        self._reconcilers = reconcilers
        self._tenants = tenants
        """Apps with a ServiceAccount act through it (`syncer.tenancy`)."""
        self._retry = retry or RetryPolicy.from_settings(config.syncer)
        self._desired = desired
        work = Path(config.syncer.cache_dir).expanduser()
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
        outcome: Outcome
        attempts = 0
        try:
            with self._retry.budget():
                async for attempt in self._retry.syncs():
                    with attempt:
                        attempts += 1
                        outcome = await self._attempt(request, app)
        except TransientSyncError as exc:
            outcome = self._failure(request, app, exc)
            outcome.error = (
                f"{exc.message} (gave up after {attempts} attempts, syncer.max_attempts)"
            )
            outcome.dead_letter = (exc.message, attempts)
        except RetriesExhausted as exc:
            outcome = self._failure(request, app, exc)
            outcome.dead_letter = (exc.message, exc.attempts)
        except PermanentSyncError as exc:
            outcome = self._failure(request, app, exc)
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        return self._scrubbed(outcome)

    def _scrubbed(self, outcome: Outcome) -> Outcome:
        """The outcome without any value a SOPS decryption revealed (an API server's
        refusal may quote a field's value)."""
        scrub = self._desired.scrub
        if outcome.error:
            outcome.error = scrub(outcome.error)
        if outcome.dead_letter is not None:
            outcome.dead_letter = (scrub(outcome.dead_letter[0]), outcome.dead_letter[1])
        outcome.objects = [
            o.model_copy(update={"error": scrub(o.error)}) if o.error else o
            for o in outcome.objects
        ]
        return outcome

    def _failure(self, request: SyncRequested, app: AppConfig, exc: SyncError) -> Outcome:
        return Outcome(
            request,
            "failed",
            cluster=app.cluster,
            commit=CommitSha(exc.commit) if exc.commit else None,
            objects=exc.results or [_failed(e) for e in exc.objects],
            error=exc.message,
        )

    async def _attempt(self, request: SyncRequested, app: AppConfig) -> Outcome:
        name = request.data.app
        reconciler = self._reconcilers.get(app.cluster)
        if reconciler is not None and self._tenants is not None:
            reconciler = self._tenants.reconciler(app, reconciler)
        if reconciler is None:
            raise PermanentSyncError(f"app {name!r} refers to unknown cluster {app.cluster!r}")
        repo = self._desired.repository(name, app)
        fetch_started = time.monotonic()
        commit = await self._desired.resolve(name, app, request.data.commit)
        if self._metrics is not None:
            self._metrics.fetch_seconds.observe(time.monotonic() - fetch_started)
        try:
            await self._verify(app.repo, repo, commit)
            inventory = await reconciler.inventory(name)
            skip = await self._skip(request, app, repo.url, commit, inventory.commit)
            if skip is not None:
                if skip.applied:
                    await reconciler.mark_commit(name, inventory, commit)
                return Outcome(request, "skipped", app.cluster, commit=commit, error=skip.reason)
            desired = await self._desired.at(name, app, commit, reconciler.cluster)
            log.info("syncing app %s to %s (%d objects)", name, commit[:12], len(desired.objects))
            options = ReconcileOptions(
                health_timeout=self._config.syncer.health_timeout.total_seconds(),
                waiting=self._slots.waiting if self._slots is not None else no_slot,
            )
            result = await reconciler.reconcile(name, app, desired, inventory, options)
        except GitError as exc:
            raise _at(git_failure(exc), commit) from exc
        except SyncError as exc:
            raise _at(exc, commit) from None
        return Outcome(
            request,
            "succeeded",
            app.cluster,
            commit=commit,
            objects=result.objects,
            health=result.health,
            error="; ".join(result.problems) or None,
        )

    async def _skip(
        self,
        request: SyncRequested,
        app: AppConfig,
        url: str,
        commit: CommitSha,
        applied: CommitSha | None,
    ) -> _Skip | None:
        """Why this request needs no sync: an older commit, or nothing changed under the path."""
        if applied is None or applied == commit:
            return None
        # Going back in history is what a rollback asks for, and nothing else may do it.
        if request.data.reason != "rollback" and await self._git.is_ancestor(url, commit, applied):
            return _Skip(f"commit {commit[:12]} is older than applied {applied[:12]}")
        before = request.data.before
        if before is not None and before == applied:
            changed = await self._git.changed_paths(url, before, commit)
            if (
                changed is not None
                and not any(under(p, app.path) for p in changed)
                and await self._is_directory_app(app, url, commit)
            ):
                return _Skip(f"no change under {app.path}", applied=True)
        return None

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


def _at(exc: SyncError, commit: CommitSha) -> SyncError:
    exc.commit = commit
    return exc


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
