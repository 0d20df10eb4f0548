"""Consuming: sync requests from Kafka to per-app lanes, and offsets back, safely.

* **At-least-once.** A request's offset is committed only after its outcome is
  published. Apps sharing a partition finish out of order, so each partition tracks its
  in-flight offsets and commits only up to the lowest one still running.
* **One app at a time, newest wins.** Each app has a lane: requests queue there while the
  app syncs; when the lane picks up work it takes everything queued, syncs the newest and
  reports the older ones `skipped` ("superseded by newer request ..."). Every request
  still gets exactly one outcome. Lifecycle commands (suspend, resume, rollback) are
  never collapsed: each runs, in the order it arrived.
* **Bounded.** At most `syncer.concurrency` apps sync at once; one waiting for its
  workloads gives its slot back meanwhile (`syncer.slots`).
* **Rebalances.** When partitions are revoked, their lanes are cancelled and awaited
  before the revoke completes (nothing is applied for them afterwards); an outcome already
  being published is let finish and committed; everything else is left uncommitted for the
  new owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from members.commits import Commits
from schemas.events import COMMAND_REASONS, SyncRequested
from syncer.reporting import Outcome
from syncer.slots import Slots

_PUBLISH_PATIENCE = 120.0
"""Seconds an outcome's publication waits out retriable broker errors (a restart)."""

log = logging.getLogger(__name__)

Process = Callable[[SyncRequested], Awaitable[Outcome]]
Publish = Callable[[Outcome], Awaitable[None]]


@dataclass
class _Item:
    tp: TopicPartition
    offset: int
    request: SyncRequested


@dataclass
class _Lane:
    app: str
    queue: list[_Item] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    publishing: asyncio.Task[None] | None = None
    active: set[TopicPartition] = field(default_factory=set)
    """Partitions of the batch being worked on."""


class Dispatcher:
    """Routes requests to app lanes and commits what is finished."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        *,
        process: Process,
        publish: Publish,
        slots: Slots,
        cluster_of: Callable[[str], str],
    ) -> None:
        self._process = process
        self._publish = publish
        self._cluster_of = cluster_of
        self._slots = slots
        self._lanes: dict[str, _Lane] = {}
        self._commits = Commits(consumer)
        self._closed = False

    # ------------------------------------------------------------- intake
    def submit(self, tp: TopicPartition, offset: int, value: bytes | None) -> None:
        tracker = self._commits.track(tp)
        tracker.add(offset)
        try:
            request = SyncRequested.model_validate_json(value or b"")
        except ValidationError as exc:
            # Not ours to answer (no app to key an outcome by): log and move past it.
            log.warning("ignoring malformed sync request at %s@%d: %s", tp, offset, exc)
            tracker.finish(offset)
            return
        lane = self._lanes.setdefault(request.data.app, _Lane(request.data.app))
        lane.queue.append(_Item(tp, offset, request))
        if lane.task is None or lane.task.done():
            self._start(lane)

    def _start(self, lane: _Lane) -> None:
        lane.task = asyncio.create_task(self._run(lane), name=f"syncer-lane-{lane.app}")
        lane.task.add_done_callback(self._lane_done)

    def _lane_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("lane task %s died", task.get_name(), exc_info=task.exception())

    # ------------------------------------------------------------- lanes
    async def _run(self, lane: _Lane) -> None:
        while lane.queue:
            batch, lane.queue = lane.queue, []
            lane.active = {item.tp for item in batch}
            # Lifecycle commands (suspend, resume, rollback) all run, in order; the other
            # requests collapse into the newest of them.
            syncs = [item for item in batch if item.request.data.reason not in COMMAND_REASONS]
            newest = syncs[-1] if syncs else None
            cluster = self._cluster_of(lane.app)
            for item in batch:
                command = item.request.data.reason in COMMAND_REASONS
                if newest is not None and not command and item is not newest:
                    reason = f"superseded by newer request {newest.request.id}"
                    skipped = Outcome(item.request, "skipped", cluster, error=reason)
                    await self._finish(lane, item, skipped)
                    continue
                outcome = await self._run_one(lane, item, cluster)
                await self._finish(lane, item, outcome)
            lane.active = set()

    async def _run_one(self, lane: _Lane, item: _Item, cluster: str) -> Outcome:
        async with self._slots.held():
            try:
                return await self._process(item.request)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not stall the partition
                log.exception("sync of %s crashed", lane.app)
                return Outcome(
                    item.request,
                    "failed",
                    cluster,
                    error=f"internal error in the syncer: {type(exc).__name__}: {exc}",
                )

    async def _finish(self, lane: _Lane, item: _Item, outcome: Outcome) -> None:
        """Publish and commit as one step a revoke waits for instead of cutting it short."""
        lane.publishing = asyncio.create_task(self._publish_and_commit(item, outcome))
        try:
            await asyncio.shield(lane.publishing)
        finally:
            if lane.publishing.done():
                lane.publishing = None

    async def _publish_and_commit(self, item: _Item, outcome: Outcome) -> None:
        await self._publish_until_acked(outcome)
        tracker = self._commits.get(item.tp)
        if tracker is None:
            return  # revoked meanwhile: the new owner re-reads it
        tracker.finish(item.offset)
        await self._commits.commit([item.tp])

    async def _publish_until_acked(self, outcome: Outcome) -> None:
        """Publish, waiting out a broker that is restarting: an outcome is never dropped.

        The request's offset is committed only after this returns, so a syncer stopped
        meanwhile leaves the request to the partition's next owner."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, KafkaError) and e.retriable),
            wait=wait_exponential(multiplier=0.2, max=5.0),
            stop=stop_after_delay(_PUBLISH_PATIENCE),
            before_sleep=lambda state: log.warning(
                "publishing the outcome of %s failed, retrying: %s",
                outcome.request.data.app,
                state.outcome.exception() if state.outcome else "",
            ),
            reraise=True,
        ):
            with attempt:
                await self._publish(outcome)

    # ------------------------------------------------------------- rebalance
    async def revoke(self, tps: set[TopicPartition]) -> None:
        """Stop all work of `tps`; commit what finished; forget their offsets."""
        lanes = [
            lane
            for lane in self._lanes.values()
            if any(item.tp in tps for item in lane.queue) or lane.active & tps
        ]
        for lane in lanes:
            if lane.task is not None and not lane.task.done():
                lane.task.cancel()
        for lane in lanes:
            if lane.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await lane.task
            if lane.publishing is not None:
                with contextlib.suppress(Exception):
                    await lane.publishing
            lane.queue = [item for item in lane.queue if item.tp not in tps]
            lane.publishing = None
            lane.active = set()
        await self._commits.commit([tp for tp in tps if tp in self._commits])
        self._commits.forget(tps)
        for lane in lanes:
            if lane.queue:  # requests of partitions we still own (unusual keying)
                self._start(lane)
            else:
                self._lanes.pop(lane.app, None)

    async def close(self) -> None:
        """Cancel every lane (shutdown); publishes already under way finish. Idempotent."""
        if self._closed:
            return
        self._closed = True
        owned = set(self._commits.partitions())
        for lane in self._lanes.values():
            owned |= lane.active | {item.tp for item in lane.queue}
        await self.revoke(owned)

    def busy(self) -> int:
        return sum(1 for lane in self._lanes.values() if lane.task and not lane.task.done())

    def syncing(self, app: str) -> bool:
        """Whether `app` has a sync running or queued (drift checks skip it meanwhile)."""
        lane = self._lanes.get(app)
        return lane is not None and lane.task is not None and not lane.task.done()


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands revoked partitions to the dispatcher before the group moves them."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        on_assigned: Callable[[set[TopicPartition]], None] | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self._on_assigned = on_assigned

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if revoked:
            log.info(
                "partitions revoked: %s", sorted(f"{tp.topic}:{tp.partition}" for tp in revoked)
            )
            await self._dispatcher.revoke(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned: %s", sorted(f"{tp.topic}:{tp.partition}" for tp in assigned))
        if self._on_assigned is not None:
            self._on_assigned(set(assigned))  # periodic checks follow the partitions
