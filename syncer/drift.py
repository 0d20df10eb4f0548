"""Live drift: does what runs in the cluster still match the last commit we applied?

For each object of the app's last applied commit we ask the API server what applying it
again would produce (server-side apply, `dryRun=All`, our field manager, `force`) and
compare that with the live object. Only fields Git declares can differ that way, and
the server does the merging, defaulting and list-key matching, so we never second-guess
its semantics. Fields the server owns (resourceVersion, managedFields, uid, status, ...)
are dropped from both sides first.

A cheap pre-check skips the dry run: the inventory records a fingerprint of the fields
our manager owns (`syncer.reconcile.fingerprint`); anyone who changes or takes over one
of them changes that fingerprint, so an equal fingerprint means no drift.

Exclusions: `AppConfig.drift_ignore` and the annotation `gitops.dev/drift-ignore` on the
object in Git list field paths (a path also covers everything below it; `[*]` matches
any list item); `gitops.dev/drift: disabled` leaves the whole object out.

Reporting: one `gitops.drift.detected` per check that found drift, keyed by the app on
`<prefix>.sync-events`; with `self_heal` also a `gitops.sync.requested` with reason
`drift`. An identical report for the same app and commit is not repeated by the same
owner while the drift stays the same (a new owner after a rebalance reports it once more);
it is reported again as soon as it changes, or after it was clean in between.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import difflib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

from schemas import AppConfig, GitopsConfig, Topics
from schemas.events import (
    DriftDetected,
    DriftDetectedData,
    DriftedObject,
    SyncRequested,
    SyncRequestedData,
)
from schemas.types import AppName, CommitSha
from syncer.desired import Desired, DesiredState
from syncer.engine import fingerprint
from syncer.errors import SyncError
from syncer.inventory import Inventory, InventoryStore
from syncer.kube import Cluster
from syncer.metrics import SyncerMetrics
from syncer.planning import Planned
from syncer.tenancy import Tenants

JsonObj = dict[str, Any]
log = logging.getLogger(__name__)

IGNORE_ANNOTATION = "gitops.dev/drift-ignore"
"""Comma-separated field paths of this object that drift detection leaves out."""
DRIFT_ANNOTATION = "gitops.dev/drift"
"""`disabled` leaves the whole object out of drift detection."""

_SERVER_METADATA = (
    "resourceVersion",
    "generation",
    "managedFields",
    "uid",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
_SERVER_ANNOTATIONS = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
)
_SEGMENT = re.compile(r"\[[^\]]*\]|[^.\[\]]+")


class DriftCheckError(Exception):
    """A drift check could not run (cluster or git unreachable, commit unreadable)."""


# ------------------------------------------------------------------ comparison


def normalise(obj: JsonObj) -> JsonObj:
    """A copy without what the server sets: the part of an object a user declares."""
    result = copy.deepcopy(obj)
    result.pop("status", None)
    meta = result.get("metadata")
    if isinstance(meta, dict):
        for key in _SERVER_METADATA:
            meta.pop(key, None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            for key in _SERVER_ANNOTATIONS:
                annotations.pop(key, None)
            if not annotations:
                meta.pop("annotations", None)
    return result


def split_path(path: str) -> tuple[str, ...]:
    """`spec.containers[name=ui].image` → ('spec', 'containers', '[name=ui]', 'image')."""
    return tuple(_SEGMENT.findall(path.strip()))


def join_path(segments: Sequence[str]) -> str:
    text = ""
    for segment in segments:
        text += segment if segment.startswith("[") or not text else f".{segment}"
    return text


def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    if len(pattern) > len(path):
        return False
    return all(
        p in (q, "*") or (p == "[*]" and q.startswith("["))
        for p, q in zip(pattern, path, strict=False)
    )


@dataclass(frozen=True)
class IgnoreRules:
    """Field paths left out of the comparison; a path covers everything below it."""

    patterns: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def of(cls, paths: Sequence[str]) -> IgnoreRules:
        return cls(tuple(s for s in (split_path(p) for p in paths) if s))

    def __add__(self, other: IgnoreRules) -> IgnoreRules:
        return IgnoreRules(self.patterns + other.patterns)

    def covers(self, path: tuple[str, ...]) -> bool:
        return any(_matches(pattern, path) for pattern in self.patterns)


def _named(items: list[Any]) -> bool:
    return bool(items) and all(
        isinstance(i, dict) and isinstance(i.get("name"), str) for i in items
    )


def compare(desired: Any, live: Any, ignore: IgnoreRules = IgnoreRules()) -> tuple[list[str], Any]:
    """Field paths where `live` differs from `desired`, and `live` with those fields repaired.

    Lists of objects with a `name` (containers, ports, env) are matched by name and shown
    as `containers[name=ui]`; other lists by index, `args[2]`.
    """
    paths: list[tuple[str, ...]] = []
    merged = _compare(desired, live, (), ignore, paths)
    return [join_path(p) for p in paths], merged


def _compare(
    desired: Any, live: Any, at: tuple[str, ...], ignore: IgnoreRules, out: list[tuple[str, ...]]
) -> Any:
    if at and ignore.covers(at):
        return live
    if isinstance(desired, dict) and isinstance(live, dict):
        merged: JsonObj = {}
        for key in [*live, *(k for k in desired if k not in live)]:
            sub = (*at, str(key))
            if key in desired and key in live:
                merged[key] = _compare(desired[key], live[key], sub, ignore, out)
            elif ignore.covers(sub):
                if key in live:
                    merged[key] = live[key]
            else:
                out.append(sub)
                if key in desired:
                    merged[key] = desired[key]
        return merged
    if isinstance(desired, list) and isinstance(live, list):
        if _named(desired) and _named(live):
            live_by_name = {item["name"]: item for item in live}
            desired_names = {item["name"] for item in desired}
            items: list[Any] = []
            for item in desired:
                sub = (*at, f"[name={item['name']}]")
                if item["name"] in live_by_name:
                    items.append(_compare(item, live_by_name[item["name"]], sub, ignore, out))
                elif not ignore.covers(sub):
                    out.append(sub)
                    items.append(item)
            for item in live:
                if item["name"] not in desired_names:
                    sub = (*at, f"[name={item['name']}]")
                    if ignore.covers(sub):
                        items.append(item)
                    else:
                        out.append(sub)
            return items
        if len(desired) == len(live):
            return [
                _compare(d, lv, (*at, f"[{i}]"), ignore, out)
                for i, (d, lv) in enumerate(zip(desired, live, strict=True))
            ]
    if desired != live:
        out.append(at)
        return desired
    return live


# ------------------------------------------------------------------ detection


@dataclass(frozen=True)
class ObjectDrift:
    """One drifted object: the event's summary plus both sides for a readable diff."""

    summary: DriftedObject
    live: JsonObj | None
    """The live object without server-set fields; None when it is missing."""
    expected: JsonObj
    """What it would be after applying the commit (ignored fields kept as they are live)."""

    def unified_diff(self) -> str:
        """`kubectl diff`-like text: `-` live, `+` what Git says it should be.

        A Secret's values never show: each key of its `data` reads `<redacted>` on both
        sides when the value is the same, and `<redacted, changed>` on Git's side when
        it differs, so the diff says which keys change and nothing of what they hold."""
        label = _label(self.summary)
        live, expected = self.live, self.expected
        if self.summary.kind == "Secret" and self.summary.api_version == "v1":
            live, expected = _masked_secret(live, expected)
        before = _yaml(live) if live is not None else ""
        after = _yaml(expected)
        lines = difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"live/{label}",
            tofile=f"git/{label}",
        )
        return "".join(lines)


SECRET_UNCHANGED = "<redacted>"  # noqa: S105 - a marker, not a password
SECRET_CHANGED = "<redacted, changed>"  # noqa: S105 - a marker


def _masked_secret(live: JsonObj | None, expected: JsonObj) -> tuple[JsonObj | None, JsonObj]:
    """Both sides of a Secret with every value of `data`/`stringData` replaced by a marker."""
    old = _secret_values(live or {})
    masked_live = None
    if live is not None:
        masked_live = {k: v for k, v in live.items() if k not in ("data", "stringData")}
        if old:
            masked_live["data"] = dict.fromkeys(old, SECRET_UNCHANGED)
    new = _secret_values(expected)
    masked = {k: v for k, v in expected.items() if k not in ("data", "stringData")}
    if new:
        masked["data"] = {
            key: SECRET_UNCHANGED if old.get(key) == value else SECRET_CHANGED
            for key, value in new.items()
        }
    return masked_live, masked


def _secret_values(obj: JsonObj) -> dict[str, str]:
    """key -> base64 value of a Secret, `stringData` encoded as the API server stores it."""
    values = {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
    for key, value in (obj.get("stringData") or {}).items():
        values[str(key)] = base64.b64encode(str(value).encode()).decode()
    return values


def _yaml(obj: JsonObj) -> str:
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False)


def _label(obj: DriftedObject) -> str:
    where = f"{obj.namespace}/" if obj.namespace else ""
    return f"{obj.kind}/{where}{obj.name}"


def _identity(obj: DriftedObject) -> tuple[str, ...]:
    """What makes two reports the same: the object, its state and its drifted fields."""
    return (obj.api_version, obj.kind, obj.namespace or "", obj.name, obj.state, *obj.fields)


def _object_rules(body: JsonObj) -> tuple[bool, IgnoreRules]:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    disabled = str(annotations.get(DRIFT_ANNOTATION, "")).strip().lower() == "disabled"
    listed = str(annotations.get(IGNORE_ANNOTATION, ""))
    return disabled, IgnoreRules.of([p for p in listed.split(",") if p.strip()])


def _drifted(item: Planned, state: str, fields: list[str]) -> DriftedObject:
    return DriftedObject.model_validate(
        {
            "api_version": item.info.api_version,
            "kind": item.kind,
            "namespace": item.namespace,
            "name": item.name,
            "state": state,
            "fields": fields,
        }
    )


async def detect(
    cluster: Cluster,
    app: AppConfig,
    desired: Desired,
    inventory: Inventory,
    *,
    thorough: bool = False,
    concurrency: int = 8,
) -> list[ObjectDrift]:
    """Every app object of `desired` whose live state differs from it, in manifest order.

    Hooks are left out: they run around a sync and may be deleted by their policy.
    `thorough` skips the fingerprint pre-check (used by `gitops diff`, which must be
    right even when the inventory is stale).
    """
    planned = desired.objects
    app_rules = IgnoreRules.of(app.drift_ignore)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(item: Planned) -> ObjectDrift | None:
        disabled, rules = _object_rules(item.body)
        if disabled:
            return None
        async with semaphore:
            live = await cluster.get(item.info, item.namespace, item.name)
            if live is None:
                return ObjectDrift(_drifted(item, "missing", []), None, normalise(item.body))
            entry = inventory.entries.get(item.key)
            if (
                not thorough
                and entry is not None
                and entry.digest == item.digest
                and entry.resource_version
                and fingerprint(live) == entry.resource_version
            ):
                return None
            _, would_be = await cluster.apply(item.info, item.body, dry_run=True)
        live_view = normalise(live)
        fields, expected = compare(normalise(would_be), live_view, app_rules + rules)
        if not fields:
            return None
        return ObjectDrift(_drifted(item, "changed", fields), live_view, expected)

    found = await asyncio.gather(*(one(item) for item in planned))
    return [d for d in found if d is not None]


# ------------------------------------------------------------------ the periodic check


class Producer(Protocol):
    """What we need of an aiokafka producer."""

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> object: ...


@dataclass
class DriftResult:
    app: str
    commit: CommitSha | None
    drifted: list[ObjectDrift] = field(default_factory=list)
    reported: bool = False
    """Whether a drift event was published (False when clean or a repeat)."""
    healed: bool = False
    """Whether a sync request with reason `drift` was published."""


class DriftChecker:
    """Checks one app at a time against its last applied commit and reports what it finds."""

    def __init__(
        self,
        *,
        config: GitopsConfig,
        clusters: Mapping[str, Cluster],
        desired: DesiredState,
        producer: Producer,
        source: str,
        metrics: SyncerMetrics | None = None,
        tenants: Tenants | None = None,
        scrub: Callable[[str], str] = str,
    ) -> None:
        self._config = config
        self._clusters = clusters
        self._scrub = scrub
        """Removes values SOPS decryption revealed from the texts a failed check logs."""
        self._tenants = tenants
        """Apps with a ServiceAccount are checked with its rights (syncer.tenancy); the
        inventory is read with the syncer's own."""
        self._desired = desired
        self._producer = producer
        self._source = source
        self._metrics = metrics
        self._topics = Topics(config.kafka.topic_prefix)
        self._stores = {
            name: InventoryStore(cluster, config.syncer.inventory_namespace)
            for name, cluster in clusters.items()
        }
        self._last_report: dict[str, tuple[CommitSha | None, frozenset[tuple[str, ...]]]] = {}

    def forget(self, app: str) -> None:
        """Drop the memory of the last report (the app moved to another owner)."""
        self._last_report.pop(app, None)

    async def check(self, app_name: str) -> DriftResult:
        app = self._config.apps[app_name]
        cluster = self._clusters.get(app.cluster)
        if cluster is None:
            raise DriftCheckError(f"app {app_name}: cluster {app.cluster} is not connected")
        try:
            inventory = await self._stores[app.cluster].load(app_name)
            result = DriftResult(app_name, inventory.commit)
            if inventory.commit is None:
                return result  # never applied: the branch-head poll takes care of it
            acting = (self._tenants.client(app) if self._tenants else None) or cluster
            desired = await self._desired.at(app_name, app, inventory.commit, acting)
            result.drifted = await detect(acting, app, desired, inventory)
        except SyncError as exc:
            raise DriftCheckError(
                self._scrub(f"app {app_name}: drift check failed: {exc.message}")
            ) from exc
        signature = (inventory.commit, frozenset(_identity(d.summary) for d in result.drifted))
        if not result.drifted:
            self._last_report.pop(app_name, None)
            return result
        if self._last_report.get(app_name) == signature:
            return result
        await self._publish(app_name, app, result)
        self._last_report[app_name] = signature
        return result

    async def _publish(self, app_name: str, app: AppConfig, result: DriftResult) -> None:
        key = app_name.encode()
        event = DriftDetected(
            source=self._source,
            subject=app_name,
            data=DriftDetectedData(
                app=AppName(app_name),
                cluster=app.cluster,
                commit=result.commit,
                objects=[d.summary for d in result.drifted],
                self_heal=app.self_heal,
            ),
        )
        await self._producer.send_and_wait(self._topics.sync_events, event.to_bytes(), key=key)
        result.reported = True
        if self._metrics is not None:
            self._metrics.drift.labels(app=app_name).inc()
        names = ", ".join(
            f"{_label(d.summary)} ({d.summary.state}: {', '.join(d.summary.fields) or '-'})"
            for d in result.drifted
        )
        log.info("drift in app %s at %s: %s", app_name, (result.commit or "")[:7], names)
        if not app.self_heal:
            return
        request = SyncRequested(
            source=self._source,
            subject=app_name,
            data=SyncRequestedData(
                app=AppName(app_name),
                repo_url=self._config.repositories[app.repo].url,
                branch=app.branch,
                commit=result.commit,
                reason="drift",
            ),
        )
        await self._producer.send_and_wait(self._topics.sync_requests, request.to_bytes(), key=key)
        result.healed = True
