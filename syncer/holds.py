"""Where an app's suspension lives: beside its inventory, in the target cluster.

The hold (`schemas.events.Hold`: reason, pinned commit, since) is the `hold` key of the
app's inventory ConfigMap (`gitops-inventory-<app>` in `syncer.inventory_namespace`),
the place the app's other durable state already lives, so it survives syncer restarts
and rebalances exactly as the inventory does and whoever owns the app next reads it.
It is written by server-side apply under a field manager of its own
(`gitops-pipeline-lifecycle`): the inventory's applies (manager `gitops-pipeline`) never
list `hold`, so neither writer removes the other's keys, and releasing the hold is an
apply that no longer lists it.
"""

from __future__ import annotations

from schemas.events import Hold
from syncer.inventory import configmap_name
from syncer.kube import APPLY_PATCH, Cluster, JsonObj, NotFound, ResourceInfo

FIELD_MANAGER = "gitops-pipeline-lifecycle"
HOLD_KEY = "hold"
_CONFIGMAP = ResourceInfo("", "v1", "ConfigMap", "configmaps", namespaced=True)
_NAMESPACE = ResourceInfo("", "v1", "Namespace", "namespaces", namespaced=False)
_APPLY = [("fieldManager", FIELD_MANAGER), ("force", "true")]


class HoldStore:
    """Reads and writes the holds of the apps of one cluster."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self._cluster = cluster
        self._namespace = namespace

    async def load(self, app: str) -> Hold | None:
        found = await self._cluster.get(_CONFIGMAP, self._namespace, configmap_name(app))
        raw = ((found or {}).get("data") or {}).get(HOLD_KEY)
        return Hold.model_validate_json(raw) if raw else None

    async def save(self, app: str, hold: Hold | None) -> None:
        """Set the hold, or release it (None) by applying without the key (only call that
        for an app that has one: it would otherwise create an empty ConfigMap)."""
        body: JsonObj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": configmap_name(app), "namespace": self._namespace},
            "data": {HOLD_KEY: hold.model_dump_json()} if hold is not None else {},
        }
        try:
            await self._apply(_CONFIGMAP, body)
        except NotFound:
            # The namespace does not exist yet (no sync of any app wrote an inventory);
            # asking first would need the right to read Namespaces, which a syncer
            # confined to its own namespace lacks.
            await self._apply(
                _NAMESPACE,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self._namespace}},
            )
            await self._apply(_CONFIGMAP, body)

    async def _apply(self, info: ResourceInfo, body: JsonObj) -> None:
        meta = body["metadata"]
        await self._cluster.request(
            "PATCH",
            info.path(meta.get("namespace"), meta["name"]),
            query=_APPLY,
            body=body,
            content_type=APPLY_PATCH,
        )
