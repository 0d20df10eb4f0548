"""The generator's schedule: which app sets this syncer generates, and when.

Each set is owned by the syncer that owns the partition of the set's name (the rule of
`syncer.ownership`), so exactly one member reads its branch and writes its definitions.
It generates (`syncer.generation`) when it starts owning the set, when a push to the
set's branch may have added or removed a match (read from `<prefix>.push-events`, which
the receiver publishes for every verified push), and when a poll of the branch head
every `interval` finds a commit it has not generated from (webhooks get lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from schemas import GitopsConfig, Topics
from schemas.config import AppSetConfig
from schemas.events import PushReceived, parse_event
from syncer.background import Background
from syncer.generation import Generator, Trigger
from syncer.gitglob import within
from syncer.heads import branch_head, branch_ref
from syncer.ownership import Ownership
from syncer.topicreader import TopicReader

log = logging.getLogger(__name__)

JITTER = 0.1


def affects(app_set: AppSetConfig, path: str) -> bool:
    """Whether a change of `path` can add, remove or change an app of this set."""
    return any(within(path, glob) for glob in app_set.generator.include)


class PushReader(TopicReader):
    """Pushes from now on (a missed one is caught by the poll), handed to `on_push`."""

    task_name = "syncer-appsets-pushes"
    failure = "an app set task stopped"

    def __init__(self, config: GitopsConfig, on_push: Callable[[PushReceived], None]) -> None:
        super().__init__(
            bootstrap=config.kafka.bootstrap,
            topic=Topics(config.kafka.topic_prefix).push_events,
            client_id=f"{config.kafka.client_id}-appsets",
            from_start=False,
            metadata_timeout=0.0,
        )
        self._on_push = on_push

    async def start(self) -> None:
        """Return once reading began: a push published afterwards is seen."""
        await super().start()
        try:
            await self.opened()
        except BaseException:
            await self.stop()
            raise

    def take(self, record: ConsumerRecord[bytes, bytes]) -> None:
        with contextlib.suppress(ValidationError):
            event = parse_event(record.value)
            if isinstance(event, PushReceived):
                self._on_push(event)


class AppSetGenerator(Background):
    """Generates the sets this syncer owns; an async context manager.

    Its task is the schedule; the push reader starts a task per push that concerns a set.
    """

    task_name = "syncer-appsets-schedule"
    failure = "an app set task stopped"

    def __init__(
        self,
        *,
        config: GitopsConfig,
        generator: Generator,
        ownership: Ownership,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self.generator = generator
        self._git = generator.git
        self._ownership = ownership
        self._clock = clock
        self._topics = Topics(config.kafka.topic_prefix)
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self._due: dict[str, float] = {}
        self._ownership_seen = -1
        self._pushed: list[asyncio.Task[None]] = []
        self._pushes = PushReader(config, self._on_push)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self.running:
            return
        await self._pushes.start()
        await super().start()

    async def stop(self) -> None:
        """Cancel the schedule, close the push reader, cancel what pushes started; safe
        to call twice."""
        await super().stop()
        await self._pushes.stop()
        pushed, self._pushed = self._pushed, []
        for task in pushed:
            task.cancel()
        for task in pushed:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------------ triggers
    def _on_push(self, push: PushReceived) -> None:
        data = push.data
        if data.deleted or data.after is None:
            return
        for name, app_set in self._config.app_sets.items():
            if (
                app_set.repo in data.repositories
                and data.ref == branch_ref(app_set.branch)
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
                self._pushed.append(task)
                task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._pushed.remove(task)

    async def _run(self) -> None:
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
                self.generator.forget(name)

    async def _guarded(self, name: str, trigger: Trigger | None) -> None:
        try:
            if trigger is None:
                await self._poll(name)
            else:
                await self.generator.generate(name, trigger)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one failing set must not stop the others
            log.warning("app set %s: generation failed: %s", name, exc)

    async def _poll(self, name: str) -> None:
        app_set = self._config.app_sets[name]
        last = self.generator.generated_at.get(name)
        if last is None:
            await self.generator.generate(name, Trigger("poll"))
            return
        heads = await self._git.ls_remote(self._config.repositories[app_set.repo])
        head = branch_head(heads, app_set.branch)
        if head is not None and head != last:
            await self.generator.generate(name, Trigger("poll", head))
