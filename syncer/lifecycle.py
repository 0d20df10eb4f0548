"""Lifecycle gating in front of the worker: holds (suspend, rollback) and `depends_on`.

Every request passes here before the worker sees it:

* **Commands.** `suspend` records a hold and applies nothing; `rollback` records a hold
  pinned to its commit, then applies that commit (the worker lets only a rollback go
  back in history); `resume` releases the hold and syncs the branch head. Holds live
  beside the app's inventory (`syncer.holds`), so they survive restarts and rebalances.
* **Holds.** While an app is held, every other request (webhook, poll, drift, dependency)
  is `skipped` with the reason `suspended: <why>`; only a `manual` request with `force`
  applies anyway.
* **Dependencies.** An app syncs only when each app in its `depends_on` is ready: its
  last sync succeeded and was healthy at the commit its branch points at now (its status
  from `syncer.appstatus`, its head from one `ls-remote`). Otherwise the request is
  `skipped` with `waiting for <app>` and the app's status says what it waits for. When
  a status record arrives that makes those dependencies ready, the syncer that owns the
  waiting app asks for it again (reason `dependency`), so waiting costs no polling and
  works across syncers. Nothing else is re-synced: a change to one app of a healthy
  chain syncs that app only.

After each outcome the owner publishes the app's status when it changed, before the
request's offset is committed, so a crash re-runs the request rather than losing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from schemas import GitopsConfig, Topics
from schemas.events import AppStatus, AppStatusData, Hold, SyncRequested, SyncRequestedData
from schemas.types import AppName, CommitSha
from syncer.appstatus import StatusView
from syncer.background import Background
from syncer.errors import SyncError, TransientSyncError
from syncer.giterrors import GitError, TransientGitError
from syncer.heads import HeadSource, branch_head
from syncer.holds import HoldStore
from syncer.ownership import Ownership
from syncer.reporting import Outcome

log = logging.getLogger(__name__)

Process = Callable[[SyncRequested], Awaitable[Outcome]]
Publish = Callable[[Outcome], Awaitable[None]]
LOAD_TIMEOUT = 30.0
"""Longest wait for the app-status topic's first read before deciding on dependencies."""


class AppliedCommits(Protocol):
    """The commit an app's inventory records (`syncer.polling.InventoryCommits`)."""

    async def applied(self, app: str) -> CommitSha | None: ...


class Producer(Protocol):
    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> object: ...


@dataclass(frozen=True)
class _Note:
    """What the gate learned about a request, for the status published with its outcome."""

    hold: Hold | None
    waiting_for: dict[AppName, CommitSha | None]
    worked: bool
    """The worker ran (its skip may have recorded an unchanged commit)."""


class Lifecycle(Background):
    """Wraps the worker's `process` and the reporter's `publish` of one syncer.

    Its task wakes the apps waiting for dependencies that became ready.
    """

    task_name = "syncer-lifecycle"
    failure = "dependency wake-ups stopped"

    def __init__(
        self,
        *,
        config: GitopsConfig,
        process: Process,
        publish: Publish,
        holds: Mapping[str, HoldStore],
        view: StatusView,
        heads: HeadSource,
        applied: AppliedCommits,
        producer: Producer,
        ownership: Ownership,
        source: str,
    ) -> None:
        self._config = config
        self._process = process
        self._publish = publish
        self._holds = holds
        self._view = view
        self._heads = heads
        self._applied = applied
        self._producer = producer
        self._ownership = ownership
        self._source = source
        self._topics = Topics(config.kafka.topic_prefix)
        self._notes: dict[str, _Note] = {}
        self._own: dict[str, AppStatusData] = {}
        """Statuses this syncer published for apps it owns (newer than their echo)."""
        self._asked: set[str] = set()
        """Waiting apps asked again whose answer has not come yet."""
        self._bootstrapped: set[str] = set()
        self._held: dict[str, Hold | None] = {}
        """Holds of owned apps as last read or written; only the owner writes them."""
        self._held_generation = -1
        self._due: set[str] = set()
        self._wake = asyncio.Event()
        view.listen(self._on_status)

    # ------------------------------------------------------------------ the gate
    async def process(self, request: SyncRequested) -> Outcome:
        name = request.data.app
        app = self._config.apps.get(name)
        store = self._holds.get(app.cluster) if app is not None else None
        if app is None or store is None:
            return await self._process(request)  # the worker names what is unknown
        try:
            outcome, note = await self._gate(request, store)
        except (SyncError, GitError) as exc:
            # The API and git clients already retried what is transient (bounded); what
            # still fails is final here, and a transient cause goes to the dead letters as
            # the worker's give-ups do (the next poll asks again).
            message = getattr(exc, "message", None) or str(exc)
            outcome = Outcome(request, "failed", app.cluster, error=message)
            if isinstance(exc, TransientSyncError | TransientGitError):
                outcome.dead_letter = (message, 1)
            return outcome
        self._notes[request.id] = note
        return outcome

    async def _gate(self, request: SyncRequested, store: HoldStore) -> tuple[Outcome, _Note]:
        data = request.data
        cluster = self._config.apps[data.app].cluster
        hold = await self._hold(data.app, store)
        if data.reason == "suspend":
            hold = Hold(reason=data.note or "no reason given", since=_now())
            await self._set_hold(data.app, store, hold)
            log.info("app %s suspended: %s", data.app, hold.reason)
            return _held(request, cluster, hold), _Note(hold, {}, worked=False)
        if data.reason == "rollback":
            if data.commit is None:
                error = "a rollback needs the commit to go back to (gitops rollback APP --to SHA)"
                return Outcome(request, "failed", cluster, error=error), _Note(hold, {}, False)
            hold = Hold(reason=f"rollback to {data.commit[:12]}", commit=data.commit, since=_now())
            await self._set_hold(data.app, store, hold)
            log.info("app %s held: %s", data.app, hold.reason)
            return await self._process(request), _Note(hold, {}, worked=True)
        if data.reason == "resume":
            if hold is not None:
                await self._set_hold(data.app, store, None)
                log.info("app %s resumed", data.app)
            hold = None
        elif hold is not None and not (data.reason == "manual" and data.force):
            return _held(request, cluster, hold), _Note(hold, {}, worked=False)
        waiting = await self._blockers(data.app)
        if waiting:
            error = f"waiting for {', '.join(waiting)}"
            return Outcome(request, "skipped", cluster, error=error), _Note(hold, waiting, False)
        return await self._process(request), _Note(hold, {}, worked=True)

    async def _hold(self, app: str, store: HoldStore) -> Hold | None:
        """The app's hold: read from the cluster once per ownership, then kept here, since
        only the app's owner writes it and ownership changes drop what was kept."""
        if self._held_generation != self._ownership.generation:
            self._held, self._held_generation = {}, self._ownership.generation
        if app not in self._held:
            self._held[app] = await store.load(app)
        return self._held[app]

    async def _set_hold(self, app: str, store: HoldStore, hold: Hold | None) -> None:
        self._held.pop(app, None)
        await store.save(app, hold)
        self._held[app] = hold

    async def _blockers(self, name: str) -> dict[AppName, CommitSha | None]:
        """The dependencies not ready at their branch head, with the commit each is at."""
        deps = self._config.apps[name].depends_on
        if not deps:
            return {}
        await self._view_loaded()
        blocked: dict[AppName, CommitSha | None] = {}
        heads: dict[str, Mapping[str, CommitSha]] = {}
        for dep in deps:
            status = self.status_of(dep)
            if dep not in self._config.apps:  # a generated app not (or no longer) known
                blocked[AppName(dep)] = None
                continue
            if status is None:
                await self._ask_unknown(dep)
            if status is None or not status.ready or status.commit is None:
                blocked[AppName(dep)] = None
                continue
            spec = self._config.apps[dep]
            if spec.repo not in heads:
                heads[spec.repo] = await self._heads.ls_remote(self._config.repositories[spec.repo])
            if branch_head(heads[spec.repo], spec.branch) != status.commit:
                blocked[AppName(dep)] = status.commit
        return blocked

    async def _ask_unknown(self, dep: str) -> None:
        """A dependency nobody published a status for yet (it never synced since this
        version ran): ask for one sync of its branch head, once, so it reports one."""
        if dep in self._bootstrapped:
            return
        self._bootstrapped.add(dep)
        spec = self._config.apps[dep]
        url = self._config.repositories[spec.repo].url
        data = SyncRequestedData(
            app=AppName(dep), repo_url=url, branch=spec.branch, reason="dependency"
        )
        request = SyncRequested(source=self._source, subject=dep, data=data)
        await self._send_request(request)

    # ------------------------------------------------------------------ statuses
    async def _view_loaded(self) -> bool:
        """Whether every status published before this syncer started has been read (a
        status computed before that would start from nothing and overwrite the app's)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._view.loaded(), LOAD_TIMEOUT)
        return self._view.is_loaded()

    def status_of(self, app: str) -> AppStatusData | None:
        """The newest status this syncer knows for `app`."""
        return self._own.get(app) or self._view.get(app)

    async def publish(self, outcome: Outcome) -> None:
        """Publish the outcome, then the app's status if the outcome changed it."""
        await self._publish(outcome)
        note = self._notes.pop(outcome.request.id, None)
        if note is None:
            return
        app = outcome.request.data.app
        self._asked.discard(app)
        if not await self._view_loaded():
            log.warning("app %s: statuses not read yet, its status is left as it was", app)
            return
        previous = self.status_of(app)
        status = await self._status_after(previous, outcome, note)
        if status != previous:
            event = AppStatus(source=self._source, subject=app, data=status)
            await self._producer.send_and_wait(
                self._topics.app_status, event.to_bytes(), key=app.encode()
            )
        self._own[app] = status
        self._on_status(status)

    async def _status_after(
        self, previous: AppStatusData | None, outcome: Outcome, note: _Note
    ) -> AppStatusData:
        commit = previous.commit if previous else None
        ready = previous.ready if previous else False
        if outcome.kind == "succeeded":
            commit, ready = outcome.commit, outcome.health in ("healthy", None)
        elif outcome.kind == "failed":
            ready = False
        elif (
            note.worked
            and outcome.commit is not None
            and outcome.commit != commit
            and await self._applied.applied(outcome.request.data.app) == outcome.commit
        ):
            commit = outcome.commit  # a push that changed nothing under the app's path
        data = outcome.request.data
        return AppStatusData(
            app=data.app,
            cluster=outcome.cluster,
            commit=commit,
            ready=ready,
            hold=note.hold,
            waiting_for=note.waiting_for,
            waiting=data if note.waiting_for else None,
        )

    # ------------------------------------------------------------------ wake-ups
    def _on_status(self, status: AppStatusData) -> None:
        """A record arrived: the apps waiting for it may now go."""
        affected = [
            s.app
            for s in self._known()
            if status.app in s.waiting_for or (s.app == status.app and s.waiting_for)
        ]
        self._schedule(affected)

    def _known(self) -> list[AppStatusData]:
        names = {s.app for s in self._view.all()} | set(self._own)
        return [s for n in names if (s := self.status_of(n)) is not None]

    def _schedule(self, apps: Sequence[str]) -> None:
        if apps:
            self._due.update(apps)
            self._wake.set()

    async def _run(self) -> None:
        await self._view_loaded()
        generation = -1
        while True:
            if self._ownership.generation != generation:
                generation = self._ownership.generation
                self._own = {a: s for a, s in self._own.items() if self._ownership.owns(a)}
                self._asked = {a for a in self._asked if self._ownership.owns(a)}
                self._due.update(s.app for s in self._known() if s.waiting_for)
            due, self._due = self._due, set()
            self._wake.clear()
            for app in sorted(due):
                try:
                    await self._wake_if_ready(app)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - one app must not stop the others
                    log.warning("asking again for %s failed: %s", app, exc)
                    self._due.add(app)
            changed = asyncio.ensure_future(self._ownership.changed())
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({changed, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
                woken.cancel()

    async def _wake_if_ready(self, app: str) -> None:
        status = self.status_of(app)
        if (
            status is None
            or status.waiting is None
            or not status.waiting_for
            or app in self._asked
            or not self._ownership.owns(app)
        ):
            return
        for dep, past in status.waiting_for.items():
            dep_status = self.status_of(dep)
            if dep_status is None or not dep_status.ready or dep_status.commit == past:
                return
        self._asked.add(app)
        request = SyncRequested(
            source=self._source,
            subject=app,
            data=status.waiting.model_copy(update={"reason": "dependency"}),
        )
        log.info("app %s: %s ready, sync requested again", app, ", ".join(status.waiting_for))
        await self._send_request(request)

    async def _send_request(self, request: SyncRequested) -> None:
        await self._producer.send_and_wait(
            self._topics.sync_requests, request.to_bytes(), key=request.data.app.encode()
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _held(request: SyncRequested, cluster: str, hold: Hold) -> Outcome:
    return Outcome(request, "skipped", cluster, error=f"suspended: {hold.reason}")
