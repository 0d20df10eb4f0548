"""Reconcile one app to one commit, in Flux's order, through the apply engine
(`syncer.engine`): dry run → each stage in turn (Namespaces, pre-sync hooks, CRDs, the
sync waves, each waited for) → prune → health → post-sync hooks → result. The order and
its reasons are in `syncer.staging` and docs/ordering.md; hooks in `syncer.hooks`.

Atomic intent: every object that needs a write is dry-run first; if any is refused the
sync fails listing each refused object and nothing is written. The one exception is
inherent: objects in a Namespace, or of a kind from a CRD, that the same commit creates
are dry-run right after the Namespaces and CRDs are applied and before they are written.
A sync that fails after that runs the sync-failed hooks and keeps the old commit.

The inventory is read once per sync (by the caller, which also needs its commit), saved
before the first write (intent: a crash mid-apply still leaves every object owned) and
once at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from schemas import AppConfig
from schemas.events import Health, ObjectResult
from schemas.types import CommitSha
from syncer.changeset import ChangeSet
from syncer.desired import Desired
from syncer.engine import Applied, ApplyEngine, DryRun, Pruned
from syncer.errors import PermanentSyncError, RetriesExhausted, SyncError, TransientSyncError
from syncer.health import HealthReport
from syncer.hooks import HookRunner
from syncer.inventory import Entry, Inventory, InventoryStore, ObjectKey
from syncer.kube import Cluster
from syncer.planning import Planned, summary
from syncer.slots import Waiting, no_slot
from syncer.staging import Stage, stages

DEFAULT_HOOK_TIMEOUT = 60.0


@dataclass(frozen=True)
class ReconcileOptions:
    """Knobs of one reconcile, taken from the app and `syncer:` settings."""

    health_timeout: float = 60.0
    """0 skips the health waits (the result then carries no health)."""
    write_concurrency: int = 16
    """Requests in flight against the API server at once for one app."""
    waiting: Waiting = no_slot
    """Marks a wait on the cluster, during which the sync gives its slot back."""

    @property
    def hook_timeout(self) -> float:
        """How long a hook, or the health before post-sync hooks, is waited for: the health
        timeout, or a minute when health waits are off (a hook is always waited for)."""
        return self.health_timeout if self.health_timeout > 0 else DEFAULT_HOOK_TIMEOUT


@dataclass
class ReconcileResult:
    """What one sync did: per-object actions, health, and problems worth reporting."""

    commit: CommitSha
    objects: list[ObjectResult] = field(default_factory=list)
    health: Health | None = None
    problems: list[str] = field(default_factory=list)
    duration_ms: int = 0


class Reconciler:
    """Applies commits of apps to one cluster; shared by every app targeting it."""

    def __init__(self, cluster: Cluster, inventories: InventoryStore) -> None:
        self.cluster = cluster
        self.inventories = inventories

    async def inventory(self, app_name: str) -> Inventory:
        """The app's inventory: read once per sync and handed to `reconcile`."""
        return await self.inventories.load(app_name)

    async def mark_commit(self, app_name: str, inventory: Inventory, commit: CommitSha) -> None:
        """Record `commit` as applied when it changed nothing under the app's path."""
        if inventory.commit != commit:
            await self.inventories.save(app_name, Inventory(commit, dict(inventory.entries)))

    async def reconcile(
        self,
        app_name: str,
        app: AppConfig,
        desired: Desired,
        inventory: Inventory,
        options: ReconcileOptions,
    ) -> ReconcileResult:
        started = time.monotonic()
        engine = ApplyEngine(
            self.cluster, concurrency=options.write_concurrency, waiting=options.waiting
        )
        unchanged = await engine.unchanged(desired.objects, inventory)
        to_apply = [p for p in desired.objects if p.key not in unchanged]
        # Hooks run only when the sync writes something or applies a new commit.
        hooks = desired.hooks if to_apply or inventory.commit != desired.commit else []
        dry = await engine.dry_run([*to_apply, *hooks], commit_namespaces=_namespaces(desired))
        run = _Run(self.inventories, app_name, engine, desired, inventory, options, unchanged)
        run.failed_hooks = [h for h in hooks if _phase(h) == "sync-failed"]
        await run.record_intent()
        for stage in stages(desired.objects, [h for h in hooks if _phase(h) == "pre-sync"]):
            await run.stage(stage, dry)
        pruned = await run.prune(app.prune)
        report = await run.health([h for h in hooks if _phase(h) == "post-sync"])
        await run.save(desired.commit, kept=pruned.kept)
        return ReconcileResult(
            desired.commit,
            objects=run.changes.entries,
            health=report.health if report is not None else None,
            problems=[*pruned.problems, *(report.problems if report is not None else [])],
            duration_ms=int((time.monotonic() - started) * 1000),
        )


@dataclass
class _Run:
    """One sync in progress: what it has written so far, and how to record or fail it."""

    inventories: InventoryStore
    app_name: str
    engine: ApplyEngine
    desired: Desired
    inventory: Inventory
    options: ReconcileOptions
    unchanged: dict[ObjectKey, Entry]
    changes: ChangeSet = field(default_factory=ChangeSet)
    written: dict[ObjectKey, Entry] = field(default_factory=dict)
    failed_hooks: list[Planned] = field(default_factory=list)
    """sync-failed hooks, run by `fail` when the sync fails after its dry run."""

    async def record_intent(self) -> None:
        """Own every object about to be written before writing it."""
        pending = Inventory(self.inventory.commit, dict(self.inventory.entries))
        for item in self.desired.objects:
            if item.key not in self.unchanged:
                pending.entries.setdefault(item.key, item.entry())
        if pending.entries != self.inventory.entries:
            await self.inventories.save(self.app_name, pending)

    async def stage(self, stage: Stage, dry: DryRun) -> None:
        """Run one stage, then what must follow it before the next stage may start."""
        if stage.kind == "hooks":
            await self.hooks(stage.objects)
            return
        todo = [p for p in stage.objects if p.key not in self.unchanged]
        applied = await self.engine.apply(todo, dry, wave=stage.wave)
        for item in stage.objects:
            if item.key in self.unchanged:
                applied.changes.add(item, "unchanged", wave=stage.wave)
        applied.changes.sorted()
        self._record(applied)
        if applied.errors:
            await self.fail(summary("could not be applied", applied.errors), applied)
        if stage.kind == "definitions":
            await self.engine.wait_established(todo)
        if stage.kind in ("namespaces", "definitions") and dry.deferred:
            refused = await self.engine.dry_run_deferred(dry)
            self._record(refused)
            if refused.errors:
                await self.fail(summary("could not be applied", refused.errors), refused)
        if stage.wait and self.options.health_timeout > 0:
            report = await self.engine.wait_healthy(
                stage.objects, timeout=self.options.health_timeout
            )
            if report.health != "healthy":
                await self.fail(
                    f"wave {stage.wave} is {report.health}, later waves were not applied: "
                    + "; ".join(report.problems)
                )

    async def health(self, post_sync: list[Planned]) -> HealthReport | None:
        """The app's health (None when health waits are off), then the post-sync hooks,
        which need a healthy app."""
        if self.options.health_timeout <= 0 and not post_sync:
            return None
        report = await self.engine.wait_healthy(
            self.desired.objects, timeout=self.options.hook_timeout
        )
        if post_sync and report.health != "healthy":
            await self.fail(
                f"post-sync hooks not run: the app is {report.health}: "
                + "; ".join(report.problems)
            )
        await self.hooks(post_sync)
        return report

    async def hooks(self, hooks: list[Planned]) -> None:
        """Run hooks of one phase; the sync fails with the first failure's reason."""
        if not hooks:
            return
        ran = await HookRunner(self.engine, timeout=self.options.hook_timeout).run(hooks)
        self.changes.extend(ran.changes)
        if ran.failure is not None:
            await self.fail(ran.failure)

    async def prune(self, enabled: bool) -> Pruned:
        wanted = {p.key for p in self.desired.objects}
        leaving = [e for k, e in self.inventory.entries.items() if k not in wanted]
        if not (enabled and leaving):
            return Pruned()
        pruned = await self.engine.prune(leaving)
        self.changes.extend(pruned.changes)
        return pruned

    async def save(self, commit: CommitSha, *, kept: list[Entry]) -> None:
        """The inventory of a finished sync: every planned object, and failed prunes kept."""
        final = self._inventory(commit)
        for entry in kept:
            final.entries[entry.key] = entry  # retried on the next sync
        if final.entries != self.inventory.entries or final.commit != self.inventory.commit:
            await self.inventories.save(self.app_name, final)

    async def fail(self, message: str, step: Applied | None = None) -> None:
        """Save what was written (the old commit stays applied), run the sync-failed hooks
        (not after a transient error: the retry may still succeed) and fail with the
        change set."""
        transient = step is not None and step.transient
        failed_hooks, self.failed_hooks = self.failed_hooks, []
        if failed_hooks and not transient:
            ran = await HookRunner(self.engine, timeout=self.options.hook_timeout).run(failed_hooks)
            self.changes.extend(ran.changes)
            if ran.failure is not None:
                message = f"{message} (and {ran.failure})"
        final = self._inventory(self.inventory.commit)
        for key, entry in self.inventory.entries.items():
            final.entries.setdefault(key, entry)
        await self.inventories.save(self.app_name, final)
        errors = step.errors if step is not None else []
        exc: SyncError
        if transient:
            exc = TransientSyncError(message, objects=errors)
        elif step is not None and step.exhausted:
            exc = RetriesExhausted(message, attempts=step.exhausted, objects=errors)
        else:
            exc = PermanentSyncError(message, objects=errors)
        exc.results = list(self.changes.entries)
        raise exc

    def _record(self, applied: Applied) -> None:
        self.changes.extend(applied.changes)
        self.written.update(applied.entries)

    def _inventory(self, commit: CommitSha | None) -> Inventory:
        """Every planned object; those not written yet without state, so the next sync writes."""
        final = Inventory(commit, {})
        for item in self.desired.objects:
            final.entries[item.key] = (
                self.written.get(item.key) or self.unchanged.get(item.key) or item.entry()
            )
        return final


def _phase(hook: Planned) -> str:
    return hook.hook.phase if hook.hook is not None else "sync"


def _namespaces(desired: Desired) -> set[str]:
    """Namespaces the commit itself declares."""
    return {p.name for p in desired.objects if p.kind == "Namespace" and p.info.group == ""}
