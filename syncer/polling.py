"""The periodic checks: branch-head polls and live drift checks, for what this syncer owns.

Webhooks get lost, so every `interval` (±10% jitter, so a fleet of apps does not poll in
lock-step) the scheduler asks the git server for branch heads and publishes a
`gitops.sync.requested` with reason `poll` for every app whose head differs from its last
applied commit; and it runs a drift check (`syncer.drift`) for each app.

Who checks what follows Kafka partition ownership (`syncer.ownership`), so with N syncers
each check runs on exactly one of them and moves with the partitions on a rebalance:

* **Drift** of an app belongs to the owner of the app's partition (the same syncer that
  applies the app, so it can skip apps it is syncing right now and reuse its git cache).
* **Branch heads** are polled per *repository*: one ls-remote answers for every app of
  that repository, so the owner of the partition of the repository's name polls it for
  all of them. Keying the poll by app instead would make each syncer list every
  repository (its apps are spread over all partitions), so git traffic would grow with
  the number of syncers; keyed by repository it stays one request per repository per
  round however many syncers run. The request it publishes is keyed by the app, so the
  app's owner applies it as usual.

A newly owned repository or app is checked at once (its previous owner may have died
before its last round). A head already requested is not requested again while that sync
is pending (until the inventory shows it applied, the head moves, or `pending_rounds`
rounds pass without it being applied — a lost or failed request is then asked again).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from schemas import GitopsConfig, RepositoryConfig, Topics
from schemas.events import SyncRequested, SyncRequestedData
from schemas.types import AppName, CommitSha
from syncer.background import Background
from syncer.desired import DesiredState, GitFiles
from syncer.drift import DriftChecker, DriftCheckError, Producer
from syncer.heads import HeadSource, branch_head
from syncer.inventory import InventoryStore
from syncer.kube import Cluster
from syncer.metrics import SyncerMetrics
from syncer.ownership import Ownership
from syncer.tenancy import Tenants

log = logging.getLogger(__name__)

JITTER = 0.1
"""Each next check is `interval` times a random factor in [1 - JITTER, 1 + JITTER]."""


class GitCacheLike(HeadSource, GitFiles, Protocol):
    """Heads and commit files: what `syncer.gitcache.GitCache` offers."""


class AppliedCommits(Protocol):
    """The commit last applied for an app, or None when it never was."""

    async def applied(self, app: str) -> CommitSha | None: ...


class InventoryCommits:
    """Last applied commits read from the inventories in the target clusters."""

    def __init__(self, config: GitopsConfig, clusters: Mapping[str, Cluster]) -> None:
        self._config = config
        self._stores = {
            name: InventoryStore(cluster, config.syncer.inventory_namespace)
            for name, cluster in clusters.items()
        }

    async def applied(self, app: str) -> CommitSha | None:
        store = self._stores.get(self._config.apps[app].cluster)
        if store is None:
            return None
        return (await store.load(app)).commit


@dataclass
class PollStats:
    """Counters for tests, logs and the benchmark."""

    head_polls: int = 0
    """ls-remote calls made (one per repository per round)."""
    poll_requests: int = 0
    drift_checks: int = 0
    drift_reports: int = 0
    errors: int = 0
    polled_repos: dict[str, int] = field(default_factory=dict)
    checked_apps: dict[str, int] = field(default_factory=dict)


@dataclass
class _Pending:
    sha: CommitSha
    rounds: int = 0


class Poller(Background):
    """Schedules head polls per repository and drift checks per app, for what we own.

    An async context manager running one background task; `run_due()` runs whatever is
    due now (tests and the benchmark call it directly with their own clock).
    """

    task_name = "syncer-poller"
    failure = "the poller stopped unexpectedly"

    def __init__(
        self,
        *,
        config: GitopsConfig,
        ownership: Ownership,
        heads: HeadSource,
        applied: AppliedCommits,
        producer: Producer,
        drift: DriftChecker | None = None,
        busy: Callable[[str], bool] = lambda app: False,
        source: str = "/gitops/syncer",
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        concurrency: int = 16,
        pending_rounds: int = 5,
        apps_version: Callable[[], int] | None = None,
    ) -> None:
        self._config = config
        self._ownership = ownership
        self._heads = heads
        self._applied = applied
        self._producer = producer
        self._drift = drift
        self._busy = busy
        self._source = source
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._slots = asyncio.Semaphore(concurrency)
        self._pending_rounds = pending_rounds
        self._topics = Topics(config.kafka.topic_prefix)
        self._apps_version = apps_version or (lambda: 0)
        """Changes when `config.apps` does (apps generated by app sets come and go)."""
        self._repo_apps: dict[str, list[str]] = {}
        self._repo_due: dict[str, float] = {}
        self._app_due: dict[str, float] = {}
        self._pending: dict[str, _Pending] = {}
        self._generation: tuple[int, int] | None = None
        self.stats = PollStats()

    # ------------------------------------------------------------------ scheduling
    def _interval(self, repo: str | None = None, app: str | None = None) -> float:
        apps = self._config.apps
        if app is not None:
            return apps[app].interval.total_seconds()
        return min(apps[a].interval.total_seconds() for a in self._repo_apps[repo or ""])

    def _next(self, now: float, interval: float) -> float:
        return now + interval * self._rng.uniform(1 - JITTER, 1 + JITTER)

    def _follow_ownership(self, now: float) -> None:
        """Start what we newly own at once; drop what we lost."""
        seen = (self._ownership.generation, self._apps_version())
        if seen == self._generation:
            return
        self._generation = seen
        self._group_apps()
        for repo in self._repo_apps:
            if self._ownership.owns(repo):
                self._repo_due.setdefault(repo, now)
            elif self._repo_due.pop(repo, None) is not None:
                for app in self._repo_apps[repo]:
                    self._pending.pop(app, None)
        for app in self._config.apps:
            if self._ownership.owns(app):
                self._app_due.setdefault(app, now)
            elif self._app_due.pop(app, None) is not None and self._drift is not None:
                self._drift.forget(app)

    def _group_apps(self) -> None:
        """Apps by repository, and no schedule left for an app or repository gone."""
        self._repo_apps = {}
        for name, app in self._config.apps.items():
            self._repo_apps.setdefault(app.repo, []).append(name)
        for repo in [r for r in self._repo_due if r not in self._repo_apps]:
            del self._repo_due[repo]
        for gone in [a for a in self._app_due if a not in self._config.apps]:
            del self._app_due[gone]
            self._pending.pop(gone, None)
            if self._drift is not None:
                self._drift.forget(gone)

    def next_due(self) -> float | None:
        dues = [*self._repo_due.values(), *self._app_due.values()]
        return min(dues) if dues else None

    async def run_due(self) -> None:
        """Run every check that is due now, then schedule each one's next run."""
        now = self._clock()
        self._follow_ownership(now)
        repos = [r for r, due in self._repo_due.items() if due <= now]
        apps = [a for a, due in self._app_due.items() if due <= now]
        for repo in repos:
            self._repo_due[repo] = self._next(now, self._interval(repo=repo))
        for app in apps:
            self._app_due[app] = self._next(now, self._interval(app=app))
        await asyncio.gather(
            *(self._guarded(self._poll_repo, repo) for repo in repos),
            *(self._guarded(self._check_drift, app) for app in apps),
        )

    async def _run(self) -> None:
        while True:
            await self.run_due()
            due = self.next_due()
            delay = 1.0 if due is None else max(0.0, due - self._clock())
            changed = asyncio.ensure_future(self._ownership.changed())
            try:
                await asyncio.wait({changed}, timeout=delay)
            finally:
                changed.cancel()

    async def _guarded(self, check: Callable[[str], Awaitable[None]], name: str) -> None:
        async with self._slots:
            try:
                await check(name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one failing repo or app must not stop the others
                self.stats.errors += 1
                log.warning("periodic check of %s failed: %s", name, exc)

    # ------------------------------------------------------------------ the checks
    async def _poll_repo(self, repo_name: str) -> None:
        repo = self._config.repositories[repo_name]
        heads = await self._heads.ls_remote(repo)
        self.stats.head_polls += 1
        self.stats.polled_repos[repo_name] = self.stats.polled_repos.get(repo_name, 0) + 1
        await asyncio.gather(
            *(self._compare_head(app, repo, heads) for app in self._repo_apps[repo_name])
        )

    async def _compare_head(
        self, app_name: str, repo: RepositoryConfig, heads: Mapping[str, CommitSha]
    ) -> None:
        app = self._config.apps[app_name]
        head = branch_head(heads, app.branch)
        if head is None:
            log.warning("app %s: branch %s not found on %s", app_name, app.branch, repo.url)
            return
        pending = self._pending.get(app_name)
        if pending is not None and pending.sha == head:
            pending.rounds += 1
            if pending.rounds < self._pending_rounds:
                applied = await self._applied.applied(app_name)
                if applied == head:
                    self._pending.pop(app_name, None)
                return
        applied = await self._applied.applied(app_name)
        if applied == head:
            self._pending.pop(app_name, None)
            return
        request = SyncRequested(
            source=self._source,
            subject=app_name,
            data=SyncRequestedData(
                app=AppName(app_name),
                repo_url=repo.url,
                branch=app.branch,
                commit=head,
                reason="poll",
            ),
        )
        await self._producer.send_and_wait(
            self._topics.sync_requests, request.to_bytes(), key=app_name.encode()
        )
        self._pending[app_name] = _Pending(head)
        self.stats.poll_requests += 1
        log.info(
            "app %s: branch %s is at %s, applied %s: sync requested",
            app_name,
            app.branch,
            head[:12],
            (applied or "nothing")[:12],
        )

    async def _check_drift(self, app_name: str) -> None:
        if self._drift is None or self._busy(app_name):
            return
        self.stats.drift_checks += 1
        self.stats.checked_apps[app_name] = self.stats.checked_apps.get(app_name, 0) + 1
        try:
            result = await self._drift.check(app_name)
        except DriftCheckError as exc:
            self.stats.errors += 1
            log.warning("%s", exc)
            return
        if result.reported:
            self.stats.drift_reports += 1


def build_poller(
    *,
    config: GitopsConfig,
    git: GitCacheLike,
    clusters: Mapping[str, Cluster],
    producer: Producer,
    ownership: Ownership,
    tenants: Tenants | None = None,
    source: str,
    desired: DesiredState,
    busy: Callable[[str], bool] = lambda app: False,
    metrics: SyncerMetrics | None = None,
    apps_version: Callable[[], int] | None = None,
) -> Poller:
    """The poller of one syncer process, wired the way the composition root needs it."""
    drift = DriftChecker(
        config=config,
        clusters=clusters,
        tenants=tenants,
        desired=desired,
        scrub=desired.scrub,
        producer=producer,
        source=source,
        metrics=metrics,
    )
    return Poller(
        config=config,
        ownership=ownership,
        heads=git,
        applied=InventoryCommits(config, clusters),
        producer=producer,
        drift=drift,
        busy=busy,
        source=source,
        apps_version=apps_version,
    )
