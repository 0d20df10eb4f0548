"""Reconcile one app to one commit, in Flux's order: plan → validate (server-side dry
run) → apply → diff inventory → prune → health → result.

Atomic intent: every object that needs a write is dry-run first; if any is refused the
sync fails listing each refused object and nothing is written. The one exception is
inherent: objects in a Namespace, or of a kind from a CRD, that the same commit creates
cannot be dry-run before that Namespace/CRD exists; they are dry-run right after the
Namespaces and CRDs are applied and before anything else is written.

A no-change resync is cheap: an object whose manifest digest and ownership fingerprint
(uid + the fields `gitops-pipeline` owns, from `managedFields`) match the inventory is
`unchanged` without a request of its own; a few LISTs per kind and namespace fetch the
live fingerprints. If anyone changed, removed or took over a field Git declares, the
fingerprint differs and the object is applied again (drift repaired).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from schemas import AppConfig
from schemas.events import Health, ObjectResult
from schemas.types import CommitSha
from syncer.errors import ObjectError, PermanentSyncError, SyncError, TransientSyncError
from syncer.health import WORKLOAD_KINDS, Workload, wait_healthy
from syncer.inventory import Entry, Inventory, InventoryStore, ObjectKey
from syncer.jsoncodec import canonical_json
from syncer.kube import FIELD_MANAGER, ApiRejected, Cluster, Forbidden, NotFound, ResourceInfo
from syncer.manifests import Manifest
from syncer.planning import CRD_GROUP, Planned, is_stage_zero, plan

JsonObj = dict[str, Any]
T = TypeVar("T")
R = TypeVar("R")
CRD_ESTABLISH_TIMEOUT = 30.0


@dataclass(frozen=True)
class ReconcileOptions:
    """Knobs of one reconcile, taken from the app and `syncer:` settings."""

    health_timeout: float = 60.0
    """0 skips the health wait (the result then carries no health)."""
    write_concurrency: int = 16
    """Requests in flight against the API server at once for one app."""


@dataclass
class ReconcileResult:
    """What one sync did: per-object actions, health, and problems worth reporting."""

    commit: CommitSha
    objects: list[ObjectResult] = field(default_factory=list)
    health: Health | None = None
    problems: list[str] = field(default_factory=list)
    duration_ms: int = 0


def fingerprint(obj: JsonObj) -> str:
    """uid + the field set our manager owns: changes whenever anyone touches our fields."""
    meta = obj.get("metadata") or {}
    owned = [
        entry.get("fieldsV1")
        for entry in meta.get("managedFields") or []
        if entry.get("manager") == FIELD_MANAGER
        and entry.get("operation") == "Apply"
        and not entry.get("subresource")
    ]
    return hashlib.sha256(canonical_json([meta.get("uid"), owned])).hexdigest()[:32]


def _result(item: Planned | Entry, action: str, error: str | None = None) -> ObjectResult:
    if isinstance(item, Planned):
        api_version, kind, namespace, name = (
            item.info.api_version,
            item.kind,
            item.namespace,
            item.name,
        )
    else:
        api_version, kind, namespace, name = (
            item.api_version,
            item.kind,
            item.namespace or None,
            item.name,
        )
    return ObjectResult.model_validate(
        {
            "api_version": api_version,
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "action": action,
            "error": error,
        }
    )


async def _bounded(limit: int, items: Iterable[T], call: Callable[[T], Awaitable[R]]) -> list[R]:
    """`call` on every item, at most `limit` at once; results in item order.

    `limit` workers share one iterator: a task and a semaphore round per item would cost
    more than the request itself on a 1,000-object sync."""
    todo = list(items)
    results: list[R | None] = [None] * len(todo)
    indexes = iter(range(len(todo)))

    async def worker() -> None:
        for i in indexes:
            results[i] = await call(todo[i])

    await asyncio.gather(*(worker() for _ in range(min(limit, len(todo)))))
    return cast(list[R], results)


class Reconciler:
    """Applies commits of apps to one cluster; shared by every app targeting it."""

    def __init__(self, cluster: Cluster, inventories: InventoryStore) -> None:
        self.cluster = cluster
        self.inventories = inventories

    async def applied_commit(self, app_name: str) -> CommitSha | None:
        return (await self.inventories.load(app_name)).commit

    async def mark_commit(self, app_name: str, commit: CommitSha) -> None:
        """Record `commit` as applied when it changed nothing under the app's path."""
        inventory = await self.inventories.load(app_name)
        if inventory.commit != commit:
            inventory.commit = commit
            await self.inventories.save(app_name, inventory)

    async def reconcile(
        self,
        app_name: str,
        app: AppConfig,
        commit: CommitSha,
        manifests: list[Manifest],
        options: ReconcileOptions,
    ) -> ReconcileResult:
        started = time.monotonic()
        result = ReconcileResult(commit)
        planned, errors = await plan(self.cluster, app, manifests)
        if errors:
            raise PermanentSyncError(
                _summary("refused by policy or discovery", errors), objects=errors
            )
        inventory = await self.inventories.load(app_name)
        unchanged, to_apply = await self._split_unchanged(planned, inventory)

        # Validate: a dry run of everything that needs a write, before the first write.
        created_ns = {p.name for p in planned if p.kind == "Namespace" and p.info.group == ""}
        # Namespaces this commit creates: their objects wait for stage 0 without a request.
        missing_ns = frozenset(
            await self._missing_namespaces(
                {p.namespace for p in to_apply if p.namespace in created_ns and p.stage == 1}
            )
        )
        deferred: list[Planned] = []
        dry: dict[ObjectKey, JsonObj] = {}
        errors = []
        outcomes = await _bounded(16, to_apply, lambda p: self._dry_run(p, created_ns, missing_ns))
        for item, outcome in zip(to_apply, outcomes, strict=True):
            if outcome is None:
                deferred.append(item)
            elif isinstance(outcome, ObjectError):
                errors.append(outcome)
            else:
                dry[item.key] = outcome
        if errors:
            raise PermanentSyncError(
                _summary("failed server-side validation", errors), objects=errors
            )

        desired = {p.key for p in planned}
        leaving = [e for k, e in inventory.entries.items() if k not in desired]
        if to_apply:
            # Record intent first: a crash mid-apply still leaves every object owned.
            pending = Inventory(inventory.commit, dict(inventory.entries))
            for item in to_apply:
                pending.entries.setdefault(item.key, item.entry())
            await self.inventories.save(app_name, pending)

        applied: dict[ObjectKey, Entry] = {}
        write_errors: list[ObjectError] = []
        stage0 = [p for p in to_apply if p.stage == 0]
        rest = [p for p in to_apply if p.stage == 1]
        await self._apply_all(stage0, dry, applied, result, write_errors, options)
        if not write_errors:
            await self._wait_crds_established([p for p in stage0 if p.info.group == CRD_GROUP])
            late = await _bounded(16, deferred, lambda p: self._dry_run(p, set()))
            for item, outcome in zip(deferred, late, strict=True):
                if isinstance(outcome, ObjectError):
                    write_errors.append(outcome)
                elif outcome is not None:
                    dry[item.key] = outcome
        if not write_errors:
            await self._apply_all(rest, dry, applied, result, write_errors, options)

        final = Inventory(commit if not write_errors else inventory.commit, {})
        for item in planned:
            if item.key in applied:
                final.entries[item.key] = applied[item.key]
            elif item.key in unchanged:
                final.entries[item.key] = unchanged[item.key]
                result.objects.append(_result(item, "unchanged"))
            else:  # not written because of an error: the next sync must write it
                final.entries[item.key] = item.entry()
        if write_errors:
            for key, entry in inventory.entries.items():
                final.entries.setdefault(key, entry)
            await self.inventories.save(app_name, final)
            transient = any(isinstance(e, _TransientObjectError) for e in write_errors)
            message = _summary("could not be applied", write_errors)
            if transient:
                raise TransientSyncError(message, objects=write_errors)
            raise PermanentSyncError(message, objects=write_errors)

        # Prune what left Git, newest-created kinds first and Namespaces/CRDs last.
        if app.prune and leaving:
            leaving.sort(key=lambda e: is_stage_zero(_entry_info_stub(e)))
            pruned = await _bounded(options.write_concurrency, leaving, self._prune_one)
            for entry, problem in zip(leaving, pruned, strict=True):
                if problem is None:
                    result.objects.append(_result(entry, "pruned"))
                else:
                    final.entries[entry.key] = entry  # retried on the next sync
                    result.objects.append(_result(entry, "failed", problem))
                    result.problems.append(f"{entry.kind} {entry.name}: {problem}")

        # Health, then the fingerprints it read (status writes do not change them).
        workloads = [
            p for p in planned if p.kind in WORKLOAD_KINDS and p.info.group in ("apps", "batch")
        ]
        if options.health_timeout > 0 and workloads:
            report = await wait_healthy(
                self.cluster,
                [Workload(p.info, p.namespace, p.name) for p in workloads],
                timeout=options.health_timeout,
            )
            result.health = report.health
            result.problems.extend(report.problems)
        elif options.health_timeout > 0:
            result.health = "healthy"
        if final.entries != inventory.entries or final.commit != inventory.commit:
            await self.inventories.save(app_name, final)
        result.objects.sort(key=lambda o: (o.namespace or "", o.kind, o.name))
        result.duration_ms = int((time.monotonic() - started) * 1000)
        return result

    # ------------------------------------------------------------------ steps
    async def _split_unchanged(
        self, planned: list[Planned], inventory: Inventory
    ) -> tuple[dict[ObjectKey, Entry], list[Planned]]:
        """Objects whose manifest and our fields are exactly as last applied skip the write."""
        candidates = [
            p
            for p in planned
            if (e := inventory.entries.get(p.key)) is not None
            and e.digest == p.digest
            and e.resource_version
            and not p.from_commit_crd
        ]
        candidate_keys = {p.key for p in candidates}
        groups: dict[tuple[ResourceInfo, str | None], list[Planned]] = defaultdict(list)
        for p in candidates:
            groups[(p.info, p.namespace)].append(p)
        live: dict[ObjectKey, str] = {}

        async def fetch(group: tuple[ResourceInfo, str | None]) -> None:
            info, namespace = group
            members = groups[group]
            try:
                if len(members) <= 2:
                    objs = [await self.cluster.get(info, namespace, p.name) for p in members]
                    found = [o for o in objs if o is not None]
                else:
                    found = await self.cluster.list_objects(info, namespace)
            except Forbidden:
                return  # the account may not read them: their dry runs will say what it may
            for obj in found:
                meta = obj.get("metadata") or {}
                key = (
                    info.group,
                    info.kind,
                    str(meta.get("namespace") or ""),
                    str(meta.get("name")),
                )
                live[key] = fingerprint(obj)

        await _bounded(8, list(groups), fetch)
        unchanged: dict[ObjectKey, Entry] = {}
        to_apply: list[Planned] = []
        for p in planned:
            entry = inventory.entries.get(p.key)
            if (
                p.key in candidate_keys
                and entry is not None
                and live.get(p.key) == entry.resource_version
            ):
                unchanged[p.key] = entry
            else:
                to_apply.append(p)
        return unchanged, to_apply

    async def _missing_namespaces(self, names: set[str | None]) -> set[str]:
        info = await self.cluster.resource("v1", "Namespace")
        wanted = [n for n in names if n]
        try:
            found = await asyncio.gather(*(self.cluster.get(info, None, n) for n in wanted))
        except Forbidden:
            return set()  # the account may not read Namespaces: its dry runs will tell
        return {n for n, obj in zip(wanted, found, strict=True) if obj is None}

    async def _dry_run(
        self, item: Planned, created_ns: set[str], missing: frozenset[str] = frozenset()
    ) -> JsonObj | ObjectError | None:
        """The would-be object; an error for the user; None when it must wait for stage 0."""
        if item.stage == 1 and item.namespace in missing:
            return None
        if item.from_commit_crd:
            try:
                await self.cluster.resource(item.info.api_version, item.kind)
            except SyncError:
                return None
        try:
            status, obj = await self.cluster.apply(
                item.info, item.body, dry_run=True, encoded=item.encoded
            )
        except NotFound as exc:
            if item.namespace in created_ns:
                return None
            return item.error(exc.message)
        except ApiRejected as exc:
            return item.error(exc.message, exc.refusal)
        obj["_existed"] = status != 201
        return obj

    async def _apply_all(
        self,
        items: list[Planned],
        dry: dict[ObjectKey, JsonObj],
        applied: dict[ObjectKey, Entry],
        result: ReconcileResult,
        errors: list[ObjectError],
        options: ReconcileOptions,
    ) -> None:
        async def one(item: Planned) -> None:
            before = dry.get(item.key) or {}
            try:
                status, obj = await self.cluster.apply(item.info, item.body, encoded=item.encoded)
            except SyncError as exc:
                error = item.error(exc.message)
                errors.append(
                    _TransientObjectError(**error.__dict__)
                    if isinstance(exc, TransientSyncError)
                    else error
                )
                result.objects.append(_result(item, "failed", exc.message))
                return
            old_rv = (before.get("metadata") or {}).get("resourceVersion")
            new_rv = (obj.get("metadata") or {}).get("resourceVersion")
            if status == 201 or not before.get("_existed"):
                action = "created"
            elif old_rv == new_rv:
                action = "unchanged"
            else:
                action = "configured"
            applied[item.key] = item.entry(fingerprint(obj))
            result.objects.append(_result(item, action))

        await _bounded(options.write_concurrency, items, one)

    async def _wait_crds_established(self, crds: list[Planned]) -> None:
        deadline = time.monotonic() + CRD_ESTABLISH_TIMEOUT
        for crd in crds:
            while True:
                obj = await self.cluster.get(crd.info, None, crd.name)
                conditions = ((obj or {}).get("status") or {}).get("conditions") or []
                if any(
                    c.get("type") == "Established" and c.get("status") == "True" for c in conditions
                ):
                    self.cluster.forget(str((crd.body.get("spec") or {}).get("group", "")))
                    break
                if time.monotonic() > deadline:
                    raise TransientSyncError(
                        f"CustomResourceDefinition {crd.name} not established after "
                        f"{CRD_ESTABLISH_TIMEOUT:.0f}s",
                        delay=5.0,
                    )
                await asyncio.sleep(0.1)

    async def _prune_one(self, entry: Entry) -> str | None:
        try:
            info = await self.cluster.resource(entry.api_version, entry.kind)
            await self.cluster.delete(info, entry.namespace or None, entry.name)
        except SyncError as exc:
            if "serves no" in exc.message:
                return None  # its kind is gone (CRD deleted), and the object with it
            return exc.message
        return None


@dataclass(frozen=True)
class _TransientObjectError(ObjectError):
    """An object error worth retrying (API 5xx/timeouts after the client's own retries)."""


def _entry_info_stub(entry: Entry) -> ResourceInfo:
    return ResourceInfo(entry.api_version.rpartition("/")[0], "", entry.kind, "", False)


def _summary(what: str, errors: list[ObjectError]) -> str:
    shown = "; ".join(str(e) for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    noun = "object" if len(errors) == 1 else "objects"
    return f"{len(errors)} {noun} {what}: {shown}{more}"
