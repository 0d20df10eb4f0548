"""Dispatching: records from both topics to per-rule, per-app lanes, and offsets back, safely.

* **At-least-once.** A record's offset is committed only once every notification it
  triggered was delivered, given up (and that published) or superseded; a notifier killed
  at any moment re-reads what was not finished and sends it again. Commit statuses are
  keyed by context, so a repeat overwrites; chat messages may repeat.
* **One lane per rule and app, newest wins.** A lane sends one notification at a time in
  arrival order; when it picks up work it takes everything queued and, per commit, sends
  only the newest (a burst of outcomes for one commit is one status, one message).
* **A status never goes back.** `pending` for a request is not sent once that request's
  outcome was read: requests wait until the sync-events partition of the same number was
  read to its end (both topics are keyed by app and co-partitioned, and the range
  assignor gives partition N of both to one member), so a re-read outcome is seen first.
  Across restarts the same holds because an outcome's offset is committed only after its
  request's offset was: an outcome already committed has no request left to re-read.
* **Rebalances.** Revoked partitions' lanes are cancelled and awaited before the revoke
  completes; what finished is committed; the rest is the new owner's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from members.commits import Commits
from notifier.moments import Moment, moment_of
from notifier.rules import rules_for
from schemas import Topics
from schemas.config import NotificationRule
from schemas.events import parse_event

log = logging.getLogger(__name__)

Send = Callable[[NotificationRule, Moment], Awaitable[None]]
Superseded = Callable[[NotificationRule], None]
CaughtUp = Callable[[TopicPartition], bool]

HOLD_LIMIT = 5.0
"""Longest a request waits for its sync-events partition to be read to the end."""
ANSWERED_MEMORY = 50_000
"""Request ids whose outcome was read, remembered to drop their late `pending`."""


@dataclass
class _Record:
    tp: TopicPartition
    offset: int
    moment: Moment
    round: int
    arrived: float
    open_works: int


@dataclass
class _Work:
    record: _Record
    rule: NotificationRule


@dataclass
class _Lane:
    key: tuple[str, str]
    queue: list[_Work] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    partitions: set[TopicPartition] = field(default_factory=set)


class Dispatcher:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        *,
        topics: Topics,
        rules: Sequence[NotificationRule],
        send: Send,
        superseded: Superseded,
    ) -> None:
        self._topics = topics
        self._rules = list(rules)
        self._send = send
        self._superseded = superseded
        self._commits = Commits(consumer)
        self._caught_up_round: dict[TopicPartition, int] = {}
        self._answered: OrderedDict[str, None] = OrderedDict()
        self._requests: dict[str, tuple[TopicPartition, int]] = {}
        self._held: list[_Record] = []
        self._deferred: list[_Record] = []
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._round = 0
        self._closed = False

    # ------------------------------------------------------------- intake
    def assigned(self, tp: TopicPartition, position: int) -> None:
        self._commits.track(tp).start_at(position)

    def submit(self, tp: TopicPartition, offset: int, value: bytes | None) -> None:
        offsets = self._commits.track(tp)
        offsets.add(offset)
        try:
            event = parse_event(value or b"")
        except ValidationError as exc:
            log.warning("ignoring a malformed record at %s@%d: %s", tp, offset, exc)
            offsets.finish(offset)
            return
        moment = moment_of(event)
        if moment is None:
            offsets.finish(offset)
            return
        rules = rules_for(self._rules, moment)
        record = _Record(tp, offset, moment, self._round, time.monotonic(), len(rules))
        if moment.kind == "requested":
            self._requests[event.id] = (tp, offset)
        elif moment.final and moment.request_id:
            self._answered[moment.request_id] = None
            while len(self._answered) > ANSWERED_MEMORY:
                self._answered.popitem(last=False)
        if not rules:
            self._record_done(record)
        elif moment.kind == "requested":
            self._held.append(record)
        else:
            self._enqueue(record, rules)

    def _partner(self, tp: TopicPartition) -> TopicPartition:
        other = (
            self._topics.sync_events
            if tp.topic == self._topics.sync_requests
            else self._topics.sync_requests
        )
        return TopicPartition(other, tp.partition)

    def _read_past(self, tp: TopicPartition, rounds_after: int) -> bool:
        """Whether `tp` was read to its end in a round later than `rounds_after`."""
        if tp not in self._commits:
            return True  # not ours: the assignment is not co-partitioned, nothing to wait for
        return self._caught_up_round.get(tp, -1) > rounds_after

    # ------------------------------------------------------------- each poll round
    async def tick(self, caught_up: CaughtUp) -> None:
        """After each poll: release held requests, finish deferred outcomes, commit."""
        self._round += 1
        for tp in self._commits.partitions():
            if caught_up(tp):
                self._caught_up_round[tp] = self._round
        now = time.monotonic()
        held, self._held = self._held, []
        for record in held:
            if self._read_past(self._partner(record.tp), record.round):
                self._release(record)
            elif now - record.arrived > HOLD_LIMIT:
                log.info("sync-events not read to its end in %ss; releasing", HOLD_LIMIT)
                self._release(record)
            else:
                self._held.append(record)
        deferred, self._deferred = self._deferred, []
        for record in deferred:
            self._record_done(record)
        await self._commit()

    def _release(self, record: _Record) -> None:
        if record.moment.request_id in self._answered:
            rules = rules_for(self._rules, record.moment)
            for rule in rules:
                self._superseded(rule)
            self._finish(record)
            return
        self._enqueue(record, rules_for(self._rules, record.moment))

    # ------------------------------------------------------------- lanes
    def _enqueue(self, record: _Record, rules: Sequence[NotificationRule]) -> None:
        for rule in rules:
            self._enqueue_one(_Work(record, rule))

    def _enqueue_one(self, work: _Work) -> None:
        key = (work.rule.name, work.record.moment.app)
        lane = self._lanes.setdefault(key, _Lane(key))
        lane.queue.append(work)
        lane.partitions.add(work.record.tp)
        if lane.task is None or lane.task.done():
            lane.task = asyncio.create_task(self._run(lane), name=f"notifier-lane-{key}")
            lane.task.add_done_callback(_lane_done)

    async def _run(self, lane: _Lane) -> None:
        while lane.queue:
            batch, lane.queue = lane.queue, []
            newest: dict[str | None, _Work] = {}
            for work in batch:
                older = newest.pop(work.record.moment.commit, None)
                if older is not None:
                    self._superseded(older.rule)
                    self._work_done(older)
                newest[work.record.moment.commit] = work
            for work in newest.values():
                moment = work.record.moment
                if moment.kind == "requested" and moment.request_id in self._answered:
                    self._superseded(work.rule)
                else:
                    await self._send(work.rule, moment)
                self._work_done(work)

    def _work_done(self, work: _Work) -> None:
        work.record.open_works -= 1
        if work.record.open_works <= 0:
            self._record_done(work.record)

    def _record_done(self, record: _Record) -> None:
        """All its notifications ended; an outcome still waits until its request is committed."""
        moment = record.moment
        if moment.final and moment.request_id and not self._request_settled(record):
            self._deferred.append(record)
            return
        self._finish(record)

    def _request_settled(self, record: _Record) -> bool:
        requests_tp = self._partner(record.tp)
        if not self._read_past(requests_tp, record.round + 1):
            return False  # the request may be uncommitted and still unread
        assert record.moment.request_id is not None  # noqa: S101 - checked by the caller
        seen = self._requests.get(record.moment.request_id)
        return seen is None or self._commits.committed(seen[0]) > seen[1]

    def _finish(self, record: _Record) -> None:
        offsets = self._commits.get(record.tp)
        if offsets is not None:
            offsets.finish(record.offset)

    # ------------------------------------------------------------- commits
    async def _commit(self, tps: Sequence[TopicPartition] | None = None) -> None:
        await self._commits.commit(tps)
        self._requests = {
            rid: (tp, off)
            for rid, (tp, off) in self._requests.items()
            if self._commits.committed(tp) <= off
        }

    # ------------------------------------------------------------- rebalance
    async def revoke(self, tps: set[TopicPartition]) -> None:
        """Stop all work of `tps`, commit what finished, forget their offsets."""
        lanes = [lane for lane in self._lanes.values() if lane.partitions & tps]
        for lane in lanes:
            if lane.task is not None and not lane.task.done():
                lane.task.cancel()
        for lane in lanes:
            if lane.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await lane.task
            self._lanes.pop(lane.key, None)
        self._held = [r for r in self._held if r.tp not in tps]
        self._deferred = [r for r in self._deferred if r.tp not in tps]
        await self._commit([tp for tp in tps if tp in self._commits])
        self._commits.forget(tps)
        for tp in tps:
            self._caught_up_round.pop(tp, None)
        self._requests = {rid: v for rid, v in self._requests.items() if v[0] not in tps}
        for lane in lanes:  # works of partitions still owned (not expected with app keys)
            for work in lane.queue:
                if work.record.tp not in tps:
                    self._enqueue_one(work)

    async def close(self) -> None:
        """Cancel every lane (shutdown), commit what finished. Idempotent."""
        if self._closed:
            return
        self._closed = True
        owned = set(self._commits.partitions())
        for lane in self._lanes.values():
            owned |= lane.partitions
        await self.revoke(owned)

    def busy(self) -> int:
        return sum(1 for lane in self._lanes.values() if lane.task and not lane.task.done())


def _lane_done(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("lane task %s died", task.get_name(), exc_info=task.exception())
