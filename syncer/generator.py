"""The generator: turn an app set's branch into app definitions, on the set's owner only.

Each set is owned by the syncer that owns the partition of the set's name (the rule of
`syncer.ownership`), so exactly one member reads its branch and writes its definitions.
It generates when it starts owning the set, when a push to the set's branch may have
added or removed a match (read from `<prefix>.push-events`, which the receiver publishes
for every verified push), and when a poll of the branch head every `interval` finds a
commit it has not generated from (webhooks get lost).

One generation: resolve the commit → match the globs in its tree → render the template
for every match → compare with the set's current definitions (`syncer.catalog`) →
publish what changed on the generated-apps topic, then a sync request for every new or
changed app and a `removed` request for every app whose match is gone → report
problems (template errors, name clashes) as one `gitops.appset.failed` event. Definitions
are published and acknowledged before any request, so the owner of a requested app can
always find its definition (`AppCatalog.caught_up`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self

import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from schemas import GitopsConfig, RepositoryConfig, Topics
from schemas.appsets import GeneratedApp, TemplateProblem, path_variables, render_app
from schemas.config import AppSetConfig
from schemas.events import (
    AppDefinitionData,
    AppGenerated,
    AppRemoved,
    AppSetFailed,
    AppSetProblemData,
    PushReceived,
    SyncReason,
    SyncRequested,
    SyncRequestedData,
    parse_event,
)
from schemas.types import AppName, CommitSha, DeliveryId
from syncer.catalog import AppCatalog
from syncer.gitglob import within
from syncer.ownership import Ownership

log = logging.getLogger(__name__)

JITTER = 0.1


class SetSource(Protocol):
    """What generation needs from the git cache (`syncer.gitcache.GitCache`)."""

    async def resolve(
        self, repo: RepositoryConfig, branch: str, commit: CommitSha | None = None
    ) -> CommitSha: ...

    async def ls_remote(self, repo: RepositoryConfig) -> Mapping[str, CommitSha]: ...

    async def match_paths(
        self,
        url: str,
        commit: CommitSha,
        include: list[str],
        exclude: list[str],
        *,
        directories: bool,
    ) -> list[str]: ...

    async def read_files(self, url: str, commit: CommitSha, path: str) -> dict[str, bytes]: ...

    async def is_ancestor(self, url: str, ancestor: CommitSha, descendant: CommitSha) -> bool: ...


class Producer(Protocol):
    async def send(self, topic: str, value: bytes | None, key: bytes) -> asyncio.Future[Any]: ...


@dataclass(frozen=True)
class Trigger:
    """Why a set is generated, carried into the requests it publishes."""

    reason: SyncReason
    commit: CommitSha | None = None
    delivery_id: DeliveryId | None = None


@dataclass
class Generation:
    """What one generation found and published."""

    commit: CommitSha
    apps: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


def affects(app_set: AppSetConfig, path: str) -> bool:
    """Whether a change of `path` can add, remove or change an app of this set."""
    return any(within(path, glob) for glob in app_set.generator.include)


class AppSetGenerator:
    """Generates the sets this syncer owns; an async context manager with two tasks."""

    def __init__(
        self,
        *,
        config: GitopsConfig,
        catalog: AppCatalog,
        git: SetSource,
        producer: Producer,
        ownership: Ownership,
        source: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._catalog = catalog
        self._git = git
        self._producer = producer
        self._ownership = ownership
        self._source = source
        self._clock = clock
        self._topics = Topics(config.kafka.topic_prefix)
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self._locks = {name: asyncio.Lock() for name in config.app_sets}
        self._generated_at: dict[str, CommitSha] = {}
        self._due: dict[str, float] = {}
        self._ownership_seen = -1
        self._tasks: list[asyncio.Task[None]] = []
        self._pushes: AIOKafkaConsumer | None = None
        self.history: list[Generation] = []
        """Recent generations, newest last (for logs, tests and the benchmark)."""

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._tasks:
            return
        self._pushes = await self._open_pushes()
        self._tasks = [
            asyncio.create_task(self._schedule(), name="syncer-appsets-schedule"),
            asyncio.create_task(self._watch_pushes(), name="syncer-appsets-pushes"),
        ]
        for task in self._tasks:
            task.add_done_callback(_log_unexpected_exit)

    async def stop(self) -> None:
        """Cancel both tasks and close the push reader; safe to call twice."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pushes, self._pushes = self._pushes, None
        if pushes is not None:
            with contextlib.suppress(KafkaError, OSError):
                await pushes.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ triggers
    async def _open_pushes(self) -> AIOKafkaConsumer:
        """Read pushes from now on (a missed one is caught by the poll), without a group."""
        topic = self._topics.push_events
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._config.kafka.bootstrap,
            client_id=f"{self._config.kafka.client_id}-appsets",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
            ]
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            for tp in partitions:
                await consumer.position(tp)
        except BaseException:
            with contextlib.suppress(KafkaError, OSError):
                await consumer.stop()
            raise
        return consumer

    async def _watch_pushes(self) -> None:
        assert self._pushes is not None  # noqa: S101 - opened by start()
        while True:
            batch = await self._pushes.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    with contextlib.suppress(ValidationError):
                        event = parse_event(record.value)
                        if isinstance(event, PushReceived):
                            self._on_push(event)

    def _on_push(self, push: PushReceived) -> None:
        data = push.data
        if data.deleted or data.after is None:
            return
        for name, app_set in self._config.app_sets.items():
            if (
                app_set.repo in data.repositories
                and data.ref == f"refs/heads/{app_set.branch}"
                and self._ownership.owns(name)
                and (
                    data.changed_paths is None
                    or any(affects(app_set, p) for p in data.changed_paths)
                )
            ):
                trigger = Trigger("webhook", data.after, data.delivery_id)
                task = asyncio.create_task(
                    self._guarded(name, trigger), name=f"syncer-appsets-push-{name}"
                )
                self._tasks.append(task)
                task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)

    async def _schedule(self) -> None:
        while True:
            now = self._clock()
            self._follow_ownership(now)
            due = [name for name, at in self._due.items() if at <= now]
            for name in due:
                interval = self._config.app_sets[name].interval.total_seconds()
                self._due[name] = now + interval * self._rng.uniform(1 - JITTER, 1 + JITTER)
            await asyncio.gather(*(self._guarded(name, None) for name in due))
            wait = min(self._due.values(), default=now + 1.0) - self._clock()
            changed = asyncio.ensure_future(self._ownership.changed())
            try:
                await asyncio.wait({changed}, timeout=max(0.0, min(wait, 5.0)))
            finally:
                changed.cancel()

    def _follow_ownership(self, now: float) -> None:
        if self._ownership.generation == self._ownership_seen:
            return
        self._ownership_seen = self._ownership.generation
        for name in self._config.app_sets:
            if self._ownership.owns(name):
                self._due.setdefault(name, now)
            else:
                self._due.pop(name, None)
                self._generated_at.pop(name, None)

    async def _guarded(self, name: str, trigger: Trigger | None) -> None:
        try:
            await (self.generate(name, trigger) if trigger else self._poll(name))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one failing set must not stop the others
            log.warning("app set %s: generation failed: %s", name, exc)

    async def _poll(self, name: str) -> None:
        app_set = self._config.app_sets[name]
        if name in self._generated_at:
            heads = await self._git.ls_remote(self._config.repositories[app_set.repo])
            head = heads.get(f"refs/heads/{app_set.branch}")
            if head is None or head == self._generated_at[name]:
                return
            await self.generate(name, Trigger("poll", head))
        else:
            await self.generate(name, Trigger("poll"))

    # ------------------------------------------------------------------ generation
    async def generate(self, name: str, trigger: Trigger | None = None) -> Generation:
        """Generate set `name` at the trigger's commit (the branch head when none)."""
        trigger = trigger or Trigger("manual")
        async with self._locks[name]:
            started = time.perf_counter()
            app_set = self._config.app_sets[name]
            repo = self._config.repositories[app_set.repo]
            commit = await self._git.resolve(repo, app_set.branch, trigger.commit)
            result = Generation(commit)
            last = self._generated_at.get(name)
            if last is not None and (
                commit == last
                or (
                    trigger.reason == "webhook"
                    and await self._git.is_ancestor(repo.url, commit, last)
                )
            ):
                # A late webhook of an older push; the poll still follows a rewound branch.
                return result
            paths = await self._git.match_paths(
                repo.url,
                commit,
                list(app_set.generator.include),
                list(app_set.generator.exclude),
                directories=app_set.directories is not None,
            )
            wanted = await self._render_all(name, app_set, repo.url, commit, paths, result)
            await self._publish(name, app_set, repo.url, commit, wanted, trigger, result)
            self._generated_at[name] = commit
            result.seconds = time.perf_counter() - started
            self.history = [*self.history[-99:], result]
            log.info(
                "app set %s at %s: %d apps, %d added, %d changed, %d removed, %d problems",
                name,
                commit[:12],
                result.apps,
                len(result.added),
                len(result.changed),
                len(result.removed),
                len(result.problems),
            )
            return result

    async def _render_all(
        self,
        name: str,
        app_set: AppSetConfig,
        url: str,
        commit: CommitSha,
        paths: list[str],
        result: Generation,
    ) -> dict[str, GeneratedApp]:
        wanted: dict[str, GeneratedApp] = {}
        for path in paths:
            try:
                variables = await self._variables(app_set, url, commit, path)
                app = render_app(name, app_set, variables, source=path)
            except TemplateProblem as exc:
                key = f".{exc.key}" if exc.key else ""
                result.problems.append(f"app_sets.{name}.template{key}: {exc.message} ({path})")
                continue
            clash = self._clash(name, app, wanted.get(app.name))
            if clash:
                result.problems.append(clash)
                continue
            wanted[app.name] = app
        result.apps = len(wanted)
        return wanted

    async def _variables(
        self, app_set: AppSetConfig, url: str, commit: CommitSha, path: str
    ) -> dict[str, Any]:
        if app_set.files is None:
            return path_variables(path)
        raw = (await self._git.read_files(url, commit, path)).get(path, b"")
        try:
            keys = yaml.safe_load(raw) or {}
        except yaml.YAMLError as exc:
            raise TemplateProblem("", f"{path} is not valid YAML: {exc}") from None
        if not isinstance(keys, dict):
            raise TemplateProblem("", f"{path} must hold a YAML mapping of keys")
        directory = path.rpartition("/")[0] or "."
        own = path_variables(directory, filename=path)
        return {**{str(k): v for k, v in keys.items()}, "file": keys, **own}

    def _clash(self, name: str, app: GeneratedApp, twin: GeneratedApp | None) -> str | None:
        where = f"app '{app.name}' generated by app_sets.{name} from {app.source}"
        if app.name in self._catalog.configured:
            return (
                f"{where} clashes with apps.{app.name}:"
                " set 'name' in the template or exclude the path"
            )
        other = self._catalog.generated.get(app.name)
        if other is not None and other.app_set != name:
            return (
                f"{where} clashes with the app of app_sets.{other.app_set} from {other.source}:"
                " give one set's template another 'name'"
            )
        if twin is not None:
            return (
                f"{where} clashes with the one from {twin.source} of the same set:"
                " set 'name' in the template"
            )
        return None

    async def _publish(
        self,
        name: str,
        app_set: AppSetConfig,
        url: str,
        commit: CommitSha,
        wanted: dict[str, GeneratedApp],
        trigger: Trigger,
        result: Generation,
    ) -> None:
        current = {n: d for n, d in self._catalog.generated.items() if d.app_set == name}
        definitions: list[tuple[str, bytes]] = []
        requests: list[tuple[str, bytes]] = []
        for app_name, app in sorted(wanted.items()):
            known = current.get(app_name)
            if known is not None and known.settings == app.app and known.source == app.source:
                continue
            (result.changed if known is not None else result.added).append(app_name)
            data = self._definition(app_name, name, commit, app.source, url, app.app)
            event = AppGenerated(source=self._source, subject=app_name, data=data)
            definitions.append((app_name, event.to_bytes()))
            requests.append(
                (app_name, self._request(app_name, app_set, trigger, commit, trigger.reason))
            )
        for app_name, known in sorted(current.items()):
            if app_name in wanted:
                continue
            result.removed.append(app_name)
            data = self._definition(app_name, name, commit, known.source, url, known.settings)
            gone = AppRemoved(
                source=self._source,
                subject=app_name,
                data=data.model_copy(update={"prune": app_set.prune}),
            )
            definitions.append((app_name, gone.to_bytes()))
            requests.append(
                (app_name, self._request(app_name, app_set, trigger, commit, "removed"))
            )
        await self._send(self._topics.generated_apps, definitions)
        await self._send(self._topics.sync_requests, requests)
        if result.problems:
            problem = AppSetFailed(
                source=self._source,
                subject=name,
                data=AppSetProblemData(
                    app_set=name,
                    repo_url=url,
                    branch=app_set.branch,
                    commit=commit,
                    error="\n".join(result.problems),
                ),
            )
            await self._send(self._topics.sync_events, [(name, problem.to_bytes())])
            log.warning("app set %s at %s: %s", name, commit[:12], "; ".join(result.problems))
        if definitions:
            await self._catalog.caught_up()

    def _definition(
        self, app: str, set_name: str, commit: CommitSha, source: str, url: str, settings: Any
    ) -> AppDefinitionData:
        return AppDefinitionData(
            app=AppName(app),
            app_set=set_name,
            commit=commit,
            source=source,
            repo_url=url,
            settings=settings,
        )

    def _request(
        self,
        app: str,
        app_set: AppSetConfig,
        trigger: Trigger,
        commit: CommitSha,
        reason: SyncReason,
    ) -> bytes:
        request = SyncRequested(
            source=self._source,
            subject=app,
            data=SyncRequestedData(
                app=AppName(app),
                repo_url=self._config.repositories[app_set.repo].url,
                branch=app_set.branch,
                commit=commit,
                reason=reason,
                delivery_id=trigger.delivery_id,
            ),
        )
        return request.to_bytes()

    async def _send(self, topic: str, messages: list[tuple[str, bytes]]) -> None:
        """Send all, then wait for every acknowledgement (batched, in order per key)."""
        futures = [
            await self._producer.send(topic, value, key=key.encode()) for key, value in messages
        ]
        await asyncio.gather(*futures)


def _log_unexpected_exit(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("an app set task stopped", exc_info=task.exception())
