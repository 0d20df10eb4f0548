"""One generation of an app set: its branch at one commit → the apps it defines.

resolve the commit → match the globs in its tree → render the template for every match
→ compare with the set's current definitions (`syncer.catalog`) → publish what changed
on the generated-apps topic → request a removal for every app whose match is gone, and a
sync for every new or changed app → report problems (template errors, name clashes)
as one `gitops.appset.failed` event.

Definitions are acknowledged before any request is published, so the owner of a
requested app always finds its definition (`AppCatalog.caught_up`). When one commit
both removes and adds apps (a renamed directory), the additions are requested only
once the removed apps' inventories are gone (bounded by `removal_wait`): the same
objects may move from the old app to the new one, and a late prune of the old app must
not delete what the new one just applied.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

from schemas import GitopsConfig, RepositoryConfig, Topics
from schemas.appsets import CompiledTemplate, GeneratedApp, TemplateProblem, path_variables
from schemas.config import AppConfig, AppSetConfig
from schemas.events import (
    AppDefinitionData,
    AppGenerated,
    AppRemoved,
    AppSetFailed,
    AppSetProblemData,
    SyncReason,
    SyncRequested,
    SyncRequestedData,
)
from schemas.types import AppName, CommitSha, DeliveryId
from syncer.catalog import AppCatalog

log = logging.getLogger(__name__)

AppGone = Callable[[str, AppConfig], Awaitable[bool]]
"""Whether a removed app's inventory is gone from its cluster (its removal ran)."""


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
    steps: dict[str, float] = field(default_factory=dict)
    """Seconds since the start at the end of each step (resolve, match, render, ...)."""

    def step(self, name: str, started: float) -> None:
        self.steps[name] = time.perf_counter() - started


class Generator:
    """Generates sets, one at a time each; shared by every trigger of one syncer."""

    def __init__(
        self,
        *,
        config: GitopsConfig,
        catalog: AppCatalog,
        git: SetSource,
        producer: Producer,
        source: str,
        app_gone: AppGone,
        removal_wait: float = 60.0,
    ) -> None:
        self._config = config
        self._catalog = catalog
        self.git = git
        self._producer = producer
        self._source = source
        self._app_gone = app_gone
        self._removal_wait = removal_wait
        self._topics = Topics(config.kafka.topic_prefix)
        self._locks = {name: asyncio.Lock() for name in config.app_sets}
        self.generated_at: dict[str, CommitSha] = {}
        """The commit each set was last generated from here."""
        self.history: list[Generation] = []
        """Recent generations, newest last (for logs, tests and the benchmark)."""

    def forget(self, name: str) -> None:
        """Another syncer owns the set now; generate it afresh if it comes back."""
        self.generated_at.pop(name, None)

    async def generate(self, name: str, trigger: Trigger | None = None) -> Generation:
        """Generate set `name` at the trigger's commit (the branch head when none)."""
        trigger = trigger or Trigger("manual")
        async with self._locks[name]:
            started = time.perf_counter()
            app_set = self._config.app_sets[name]
            repo = self._config.repositories[app_set.repo]
            commit = await self.git.resolve(repo, app_set.branch, trigger.commit)
            resolved = time.perf_counter() - started
            result = Generation(commit, steps={"resolve": resolved})
            last = self.generated_at.get(name)
            if last is not None and (
                commit == last
                or (
                    trigger.reason == "webhook"
                    and await self.git.is_ancestor(repo.url, commit, last)
                )
            ):
                # A late webhook of an older push; the poll still follows a rewound branch.
                return result
            paths = await self.git.match_paths(
                repo.url,
                commit,
                list(app_set.generator.include),
                list(app_set.generator.exclude),
                directories=app_set.directories is not None,
            )
            result.step("match", started)
            # Compare with every definition published so far: a new owner (after a
            # rebalance) must not publish again what the previous one did.
            await self._catalog.caught_up()
            wanted = await self._render_all(name, app_set, repo.url, commit, paths, result)
            result.step("render", started)
            await self._publish(name, app_set, repo.url, commit, wanted, trigger, result, started)
            self.generated_at[name] = commit
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
        template = CompiledTemplate(name, app_set)
        for path in paths:
            try:
                variables = await self._variables(app_set, url, commit, path)
                app = template.render(variables, source=path)
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
        raw = (await self.git.read_files(url, commit, path)).get(path, b"")
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
        started: float,
    ) -> None:
        current = {n: d for n, d in self._catalog.generated.items() if d.app_set == name}
        definitions: list[tuple[str, bytes]] = []
        requests: list[tuple[str, bytes]] = []
        removals: list[tuple[str, bytes]] = []
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
            removals.append(
                (app_name, self._request(app_name, app_set, trigger, commit, "removed"))
            )
        await self._send(self._topics.generated_apps, definitions)
        if definitions:
            await self._catalog.caught_up()
        result.step("definitions", started)
        # Another set's owner may have defined a name first (every reader keeps it there).
        lost = {
            n: held
            for n in (*result.added, *result.changed)
            if (held := self._catalog.generated.get(n)) is not None and held.app_set != name
        }
        for app_name, held in lost.items():
            result.problems.append(
                f"app '{app_name}' generated by app_sets.{name} from {wanted[app_name].source}"
                f" clashes with the app of app_sets.{held.app_set} from {held.source}:"
                " give one set's template another 'name'"
            )
        requests = [(n, r) for n, r in requests if n not in lost]
        result.added = [n for n in result.added if n not in lost]
        result.changed = [n for n in result.changed if n not in lost]
        await self._send(self._topics.sync_requests, removals)
        if removals and requests:
            await self._removals_done([current[n].settings for n in result.removed], result)
            result.step("removals", started)
        await self._send(self._topics.sync_requests, requests)
        result.step("requests", started)
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

    async def _removals_done(self, removed: list[AppConfig], result: Generation) -> None:
        """Wait (bounded) until the removed apps' inventories are gone from their clusters."""
        deadline = time.monotonic() + self._removal_wait
        waiting = list(zip(result.removed, removed, strict=True))
        while waiting and time.monotonic() < deadline:
            done = await asyncio.gather(*(self._app_gone(n, a) for n, a in waiting))
            waiting = [pair for pair, gone in zip(waiting, done, strict=True) if not gone]
            if waiting:
                await asyncio.sleep(0.1)
        if waiting:
            log.warning(
                "apps %s not removed after %.0fs; requesting the added apps anyway",
                ", ".join(n for n, _ in waiting),
                self._removal_wait,
            )

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
