"""Hooks: objects of the commit run around a sync instead of being applied with the app.

A hook runs by being created afresh: a live object of the same name left by an earlier
run is deleted first (and waited for until it is gone), so a Job's immutable spec never
blocks a re-run. It is then waited for: a Job until it completes or fails (its reason
becomes the sync's error), a Deployment, StatefulSet or DaemonSet until it is ready,
anything else is done once applied. Its delete policy then says whether it stays for
inspection: `hook-succeeded` deletes it after success, `hook-failed` after failure,
`before-hook-creation` (the default) leaves it until the next run. Hooks of one phase run
in the order of their waves, those of one wave together.

Hooks are not app objects: they are never in the inventory, never pruned and never
diffed. They run only on a sync that writes something or applies a new commit, so a
no-change resync does not repeat a migration.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from schemas.events import ObjectAction
from syncer.changeset import ChangeSet
from syncer.engine import ApplyEngine, bounded
from syncer.errors import SyncError
from syncer.health import WORKLOAD_KINDS, assess, poll_intervals
from syncer.planning import Planned


@dataclass
class HookRun:
    """What running the hooks of one phase did; `failure` says why it failed, if it did."""

    changes: ChangeSet = field(default_factory=ChangeSet)
    failure: str | None = None


def _label(item: Planned) -> str:
    where = f"{item.namespace}/" if item.namespace else ""
    return f"{item.kind} {where}{item.name}"


class HookRunner:
    """Runs hooks through the apply engine, each bounded by `timeout` seconds."""

    def __init__(self, engine: ApplyEngine, *, timeout: float) -> None:
        self._engine = engine
        self._cluster = engine.cluster
        self._timeout = timeout

    async def run(self, hooks: list[Planned]) -> HookRun:
        """Run `hooks` (one phase) wave by wave; stop after the first wave with a failure."""
        result = HookRun()
        for wave in sorted({h.wave for h in hooks}):
            members = [h for h in hooks if h.wave == wave]
            outcomes = await bounded(self._engine.concurrency, members, self._one)
            failures: list[str] = []
            ran = ChangeSet()
            for item, problem in zip(members, outcomes, strict=True):
                action: ObjectAction = "created" if problem is None else "failed"
                ran.add(item, action, problem, wave=wave)
                if problem is not None:
                    failures.append(f"{_label(item)}: {problem}")
            result.changes.extend(ran.sorted())
            if failures:
                assert members[0].hook is not None  # noqa: S101 - only hooks get here
                result.failure = f"{members[0].hook.phase} hook failed: " + "; ".join(failures)
                return result
        return result

    async def _one(self, item: Planned) -> str | None:
        """Run one hook; None when it succeeded, else why it did not."""
        assert item.hook is not None  # noqa: S101 - only hooks get here
        try:
            await self._remove(item)
            await self._cluster.apply(item.info, item.body, encoded=item.encoded)
            async with self._engine.waiting():
                problem = await self._wait(item)
            policies = item.hook.delete_policies
            if (problem is None and "hook-succeeded" in policies) or (
                problem is not None and "hook-failed" in policies
            ):
                await self._cluster.delete(item.info, item.namespace, item.name)
        except SyncError as exc:
            return exc.message
        return problem

    async def _remove(self, item: Planned) -> None:
        """Delete what an earlier run left, and wait until the name is free again."""
        if not await self._cluster.delete(item.info, item.namespace, item.name):
            return
        deadline = time.monotonic() + self._timeout
        intervals = poll_intervals()
        while await self._cluster.get(item.info, item.namespace, item.name) is not None:
            if time.monotonic() > deadline:
                raise SyncError(
                    f"the previous run's object is still being deleted after {self._timeout:.0f}s"
                )
            await asyncio.sleep(next(intervals))

    async def _wait(self, item: Planned) -> str | None:
        """Until the hook is done: a Job complete, a workload ready; its failure reason."""
        if item.kind not in WORKLOAD_KINDS or item.info.group not in ("apps", "batch"):
            return None
        deadline = time.monotonic() + self._timeout
        why = "not found"
        intervals = poll_intervals()
        while time.monotonic() <= deadline:
            live = await self._cluster.get(item.info, item.namespace, item.name)
            if live is not None:
                state, why = assess(live)
                if state == "ready":
                    return None
                if state == "failed":
                    return why
            await asyncio.sleep(next(intervals))
        return f"not done after {self._timeout:.0f}s ({why})"
