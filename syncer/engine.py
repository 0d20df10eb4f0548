"""The apply engine: server-side apply operations on one cluster, each returning what it did.

Shaped after Flux's `ssa.ResourceManager`: `dry_run` every object before the first write
(refusals fail the sync and nothing is written), `apply` a stage and get a change set,
`wait_established` for the CRDs a stage created, `wait_healthy` for a stage's workloads,
`prune` what left Git. The engine keeps no state between calls and writes nothing into
the objects it sends or reads; the reconcile decides the order (`syncer.reconcile`).

A no-change resync is cheap: `unchanged` finds the objects whose manifest digest and
ownership fingerprint (uid + the fields `gitops-pipeline` owns, from `managedFields`)
match the inventory, with a few LISTs per kind and namespace and no request per object.
If anyone changed, removed or took over a field Git declares, the fingerprint differs
and the object is applied again (drift repaired).

Objects in a Namespace, or of a kind from a CRD, that the same commit creates cannot be
dry-run before that Namespace or CRD exists: `dry_run` defers them, and the reconcile
dry-runs them (`dry_run_deferred`) right after the Namespaces and CRDs are applied and
before anything else is written.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from schemas.events import ObjectAction
from syncer.changeset import ChangeSet
from syncer.errors import (
    ObjectError,
    PermanentSyncError,
    RetriesExhausted,
    SyncError,
    TransientSyncError,
)
from syncer.health import WORKLOAD_KINDS, HealthReport, Workload, wait_healthy
from syncer.inventory import Entry, Inventory, ObjectKey
from syncer.jsoncodec import canonical_json
from syncer.kube import FIELD_MANAGER, ApiRejected, Cluster, Forbidden, NotFound, ResourceInfo
from syncer.planning import CRD_GROUP, Planned, is_stage_zero, summary
from syncer.slots import Waiting, no_slot

JsonObj = dict[str, Any]
T = TypeVar("T")
R = TypeVar("R")
CRD_ESTABLISH_TIMEOUT = 30.0
DRY_RUN_CONCURRENCY = 16


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


async def bounded(limit: int, items: Iterable[T], call: Callable[[T], Awaitable[R]]) -> list[R]:
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


@dataclass(frozen=True, slots=True)
class Preview:
    """What the server's dry run said about one object, kept beside it (never in it)."""

    existed: bool
    resource_version: str


@dataclass
class DryRun:
    """The dry run of a whole commit: a preview per object, and who had to wait."""

    previews: dict[ObjectKey, Preview] = field(default_factory=dict)
    deferred: list[Planned] = field(default_factory=list)
    """Objects in a Namespace or of a CRD kind the commit creates: dry-run once it exists."""


@dataclass
class Applied:
    """What applying one stage did."""

    changes: ChangeSet = field(default_factory=ChangeSet)
    entries: dict[ObjectKey, Entry] = field(default_factory=dict)
    """Inventory entries of the objects written, with their new fingerprints."""
    errors: list[ObjectError] = field(default_factory=list)
    transient: bool = False
    """Whether any error is worth running the sync again for (a resourceVersion race)."""
    exhausted: int = 0
    """The most tries of a write whose retries were spent (`RetriesExhausted`), or 0."""


@dataclass
class Pruned:
    """What pruning did; `kept` are the entries whose deletion failed (tried again next sync)."""

    changes: ChangeSet = field(default_factory=ChangeSet)
    kept: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def workloads(items: Iterable[Planned]) -> list[Workload]:
    """The objects whose readiness `wait_healthy` can tell (Deployments, Jobs, ...)."""
    return [
        Workload(p.info, p.namespace, p.name)
        for p in items
        if p.kind in WORKLOAD_KINDS and p.info.group in ("apps", "batch")
    ]


class ApplyEngine:
    """Server-side apply operations against one cluster for one sync."""

    def __init__(
        self, cluster: Cluster, *, concurrency: int = 16, waiting: Waiting = no_slot
    ) -> None:
        self.cluster = cluster
        self.concurrency = concurrency
        self.waiting = waiting
        """Wraps each wait on controllers, so the sync's slot is free meanwhile."""

    # ------------------------------------------------------------------ unchanged
    async def unchanged(
        self, planned: list[Planned], inventory: Inventory
    ) -> dict[ObjectKey, Entry]:
        """Objects whose manifest and our fields are exactly as last applied (no write needed)."""
        candidates = [
            p
            for p in planned
            if (e := inventory.entries.get(p.key)) is not None
            and e.digest == p.digest
            and e.resource_version
            and not p.from_commit_crd
        ]
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

        await bounded(8, list(groups), fetch)
        return {
            p.key: inventory.entries[p.key]
            for p in candidates
            if live.get(p.key) == inventory.entries[p.key].resource_version
        }

    # ------------------------------------------------------------------ dry run
    async def dry_run(self, items: list[Planned], *, commit_namespaces: set[str]) -> DryRun:
        """Dry-run every object; `PermanentSyncError` naming each refused one.

        `commit_namespaces` are the Namespaces the commit declares: objects in one that does
        not exist yet wait for it (`DryRun.deferred`) without a request of their own."""
        missing = frozenset(
            await self._missing_namespaces(
                {
                    p.namespace
                    for p in items
                    if p.namespace in commit_namespaces and not is_stage_zero(p.info)
                }
            )
        )
        outcomes = await bounded(
            DRY_RUN_CONCURRENCY, items, lambda p: self._preview(p, commit_namespaces, missing)
        )
        result = DryRun()
        errors: list[ObjectError] = []
        for item, outcome in zip(items, outcomes, strict=True):
            if outcome is None:
                result.deferred.append(item)
            elif isinstance(outcome, ObjectError):
                errors.append(outcome)
            else:
                result.previews[item.key] = outcome
        if errors:
            raise PermanentSyncError(
                summary("failed server-side validation", errors), objects=errors
            )
        return result

    async def dry_run_deferred(self, dry: DryRun) -> Applied:
        """Dry-run what waited for a Namespace or CRD that is now applied; a change set of
        the refused ones (`failed`). Objects whose kind is still not served keep waiting."""
        outcomes = await bounded(
            DRY_RUN_CONCURRENCY, dry.deferred, lambda p: self._preview(p, set())
        )
        result = Applied()
        waiting: list[Planned] = []
        for item, outcome in zip(dry.deferred, outcomes, strict=True):
            if outcome is None:
                waiting.append(item)
            elif isinstance(outcome, ObjectError):
                result.errors.append(outcome)
                result.changes.add(item, "failed", outcome.message, wave=item.wave)
            else:
                dry.previews[item.key] = outcome
        dry.deferred = waiting
        return result

    async def _missing_namespaces(self, names: set[str | None]) -> set[str]:
        wanted = sorted(n for n in names if n)
        info = await self.cluster.resource("v1", "Namespace")
        try:
            found = await asyncio.gather(*(self.cluster.get(info, None, n) for n in wanted))
        except Forbidden:
            return set()  # the account may not read Namespaces: its dry runs will tell
        return {n for n, obj in zip(wanted, found, strict=True) if obj is None}

    async def _preview(
        self, item: Planned, commit_namespaces: set[str], missing: frozenset[str] = frozenset()
    ) -> Preview | ObjectError | None:
        """The dry run of one object; an error for the user; None when it must wait."""
        if not is_stage_zero(item.info) and item.namespace in missing:
            return None
        if item.from_commit_crd:
            try:
                await self.cluster.resource(item.info.api_version, item.kind)
            except SyncError:
                return None
        body, encoded = (item.body, item.encoded) if item.hook is None else _as_new(item)
        try:
            status, obj = await self.cluster.apply(item.info, body, dry_run=True, encoded=encoded)
        except NotFound as exc:
            if item.namespace in commit_namespaces:
                return None
            return item.error(exc.message)
        except ApiRejected as exc:
            return item.error(exc.message, exc.refusal)
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        return Preview(existed=status != 201, resource_version=version)

    # ------------------------------------------------------------------ apply
    async def apply(self, items: list[Planned], dry: DryRun, *, wave: int | None = None) -> Applied:
        """Server-side apply `items`; created / configured / unchanged / failed per object."""
        result = Applied()

        async def one(item: Planned) -> None:
            preview = dry.previews.get(item.key)
            try:
                status, obj = await self.cluster.apply(item.info, item.body, encoded=item.encoded)
            except SyncError as exc:
                refusal = exc.refusal if isinstance(exc, ApiRejected) else None
                result.errors.append(item.error(exc.message, refusal))
                result.transient = result.transient or isinstance(exc, TransientSyncError)
                if isinstance(exc, RetriesExhausted):
                    result.exhausted = max(result.exhausted, exc.attempts)
                result.changes.add(item, "failed", exc.message, wave=wave, refused=refusal)
                return
            version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            action: ObjectAction
            if status == 201 or preview is None or not preview.existed:
                action = "created"
            elif preview.resource_version == version:
                action = "unchanged"
            else:
                action = "configured"
            result.entries[item.key] = item.entry(fingerprint(obj))
            result.changes.add(item, action, wave=wave)

        await bounded(self.concurrency, items, one)
        result.changes.sorted()
        return result

    async def wait_established(self, crds: list[Planned]) -> None:
        """Until each CRD serves its kind (bounded); its group's discovery is then refreshed."""
        async with self.waiting():
            await self._established(crds)

    async def _established(self, crds: list[Planned]) -> None:
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

    # ------------------------------------------------------------------ wait
    async def wait_healthy(self, items: Iterable[Planned], *, timeout: float) -> HealthReport:
        """The readiness of the workloads among `items`, waited for up to `timeout`."""
        found = workloads(items)
        if not found:
            return HealthReport("healthy", [])
        async with self.waiting():
            return await wait_healthy(self.cluster, found, timeout=timeout)

    # ------------------------------------------------------------------ prune
    async def prune(self, entries: list[Entry]) -> Pruned:
        """Delete objects that left Git, newest kinds first and Namespaces/CRDs last."""
        ordered = sorted(entries, key=lambda e: is_stage_zero(_entry_info_stub(e)))
        problems = await bounded(self.concurrency, ordered, self._delete)
        result = Pruned()
        for entry, problem in zip(ordered, problems, strict=True):
            if problem is None:
                result.changes.add(entry, "pruned")
            else:
                result.kept.append(entry)
                refused = problem.refusal if isinstance(problem, ApiRejected) else None
                result.changes.add(entry, "failed", problem.message, refused=refused)
                result.problems.append(f"{entry.kind} {entry.name}: {problem.message}")
        result.changes.sorted()
        return result

    async def _delete(self, entry: Entry) -> SyncError | None:
        """None when the object is gone; else why it could not be deleted (an RBAC
        refusal of the app's account carries who was refused what)."""
        try:
            info = await self.cluster.resource(entry.api_version, entry.kind)
            await self.cluster.delete(info, entry.namespace or None, entry.name)
        except SyncError as exc:
            if "serves no" in exc.message:
                return None  # its kind is gone (CRD deleted), and the object with it
            return exc
        return None


def _as_new(item: Planned) -> tuple[JsonObj, bytes]:
    """A hook's body under a scratch name: hooks are created afresh on every run, so the
    dry run validates a create (a Job's immutable spec on the live one does not matter)."""
    name = f"{item.name[:54].rstrip('.-')}-{item.digest[:8]}"
    body = {**item.body, "metadata": {**item.body["metadata"], "name": name}}
    return body, b""


def is_crd(item: Planned) -> bool:
    return item.info.group == CRD_GROUP and item.kind == "CustomResourceDefinition"


def _entry_info_stub(entry: Entry) -> ResourceInfo:
    return ResourceInfo(entry.api_version.rpartition("/")[0], "", entry.kind, "", False)
