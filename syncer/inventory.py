"""What an app owns, kept in the target cluster so pruning survives restarts and is exact.

One ConfigMap per app, `gitops-inventory-<app>` in `syncer.inventory_namespace`, holds the
last applied commit and one entry per owned object: its identity (group via apiVersion,
kind, namespace, name), a digest of the manifest we applied and the resourceVersion the
server answered. The digest plus resourceVersion let a no-change resync skip objects
nobody touched (same manifest, same live version) without re-applying them, while any
drift (a new resourceVersion) still gets a real apply. Objects whose deletion failed stay
listed, so the next sync tries again; nothing the inventory does not list is ever pruned.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from schemas.types import CommitSha
from syncer.jsoncodec import canonical_json, compact_json
from syncer.kube import Cluster, Forbidden, ResourceInfo

FORMAT = "gitops-pipeline/inventory/v1"
_NAMESPACE_KIND = ResourceInfo("", "v1", "Namespace", "namespaces", namespaced=False)
_CONFIGMAP_KIND = ResourceInfo("", "v1", "ConfigMap", "configmaps", namespaced=True)

ObjectKey = tuple[str, str, str, str]
"""(group, kind, namespace or '', name): how the inventory identifies an object."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One owned object."""

    api_version: str
    kind: str
    namespace: str
    name: str
    digest: str = ""
    resource_version: str = ""

    @property
    def key(self) -> ObjectKey:
        return (self.api_version.rpartition("/")[0], self.kind, self.namespace, self.name)

    def to_json(self) -> dict[str, str]:
        return {
            "v": self.api_version,
            "k": self.kind,
            "ns": self.namespace,
            "n": self.name,
            "h": self.digest,
            "rv": self.resource_version,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Entry:
        return cls(
            str(raw["v"]),
            str(raw["k"]),
            str(raw.get("ns") or ""),
            str(raw["n"]),
            str(raw.get("h") or ""),
            str(raw.get("rv") or ""),
        )

    def without_state(self) -> Entry:
        """The identity only: the next sync must apply it for real."""
        return replace(self, digest="", resource_version="")


@dataclass
class Inventory:
    """The objects an app owns and the commit applied last."""

    commit: CommitSha | None = None
    entries: dict[ObjectKey, Entry] = field(default_factory=dict)


def digest(body: dict[str, Any]) -> str:
    """A stable fingerprint of a manifest as applied (key order does not matter)."""
    return hashlib.sha256(canonical_json(body)).hexdigest()[:32]


def configmap_name(app: str) -> str:
    """`gitops-inventory-<app>`, made a valid object name whatever the app key is."""
    slug = re.sub(r"[^a-z0-9-]+", "-", app.lower()).strip("-") or "app"
    name = f"gitops-inventory-{slug}"
    if slug != app or len(name) > 253:
        name = f"{name[:200]}-{hashlib.sha256(app.encode()).hexdigest()[:10]}"
    return name


class InventoryStore:
    """Reads and writes inventories of one cluster."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self._cluster = cluster
        self._namespace = namespace
        self._namespace_ready = False

    async def load(self, app: str) -> Inventory:
        found = await self._cluster.get(_CONFIGMAP_KIND, self._namespace, configmap_name(app))
        if found is None:
            return Inventory()
        data = found.get("data") or {}
        raw_entries = orjson.loads(data.get("objects") or "[]")
        entries = [Entry.from_json(raw) for raw in raw_entries]
        commit = data.get("commit") or None
        return Inventory(
            CommitSha(commit) if commit else None, {entry.key: entry for entry in entries}
        )

    async def save(self, app: str, inventory: Inventory) -> None:
        await self._ensure_namespace()
        entries = sorted(inventory.entries.values(), key=lambda e: e.key)
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": configmap_name(app),
                "namespace": self._namespace,
                "labels": {"app.kubernetes.io/managed-by": "gitops-pipeline"},
                "annotations": {"gitops.dev/app": app, "gitops.dev/format": FORMAT},
            },
            "data": {
                "commit": inventory.commit or "",
                "objects": compact_json([e.to_json() for e in entries]).decode(),
            },
        }
        await self._cluster.apply(_CONFIGMAP_KIND, body)

    async def delete(self, app: str) -> None:
        """Forget an app that no longer exists (its app set's directory left Git)."""
        await self._cluster.delete(_CONFIGMAP_KIND, self._namespace, configmap_name(app))

    async def _ensure_namespace(self) -> None:
        if self._namespace_ready:
            return
        try:
            missing = await self._cluster.get(_NAMESPACE_KIND, None, self._namespace) is None
        except Forbidden:
            # A syncer with rights only in its own namespace (the chart's impersonation
            # mode) cannot read Namespaces; its namespace exists, or the write says so.
            missing = False
        if missing:
            await self._cluster.apply(
                _NAMESPACE_KIND,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self._namespace}},
            )
        self._namespace_ready = True
