"""Raw reads of a Kubernetes API server, as a user with kubectl would check."""

from __future__ import annotations

import json
from typing import Any

from kubernetes_asyncio.client import ApiClient


class K8s:
    """GETs through the real kubernetes_asyncio client, answers as plain dicts."""

    def __init__(self, api: ApiClient, inventory_namespace: str = "gitops-system") -> None:
        self.api = api
        self.inventory_namespace = inventory_namespace

    async def get(self, path: str) -> dict[str, Any] | None:
        response = await self.api.call_api(
            path, "GET", auth_settings=["BearerToken"], _preload_content=False
        )
        try:
            if response.status == 404:
                return None
            assert response.status == 200, await response.text()
            body: dict[str, Any] = await response.json()
            return body
        finally:
            response.release()

    async def names(self, path: str) -> list[str]:
        listing = await self.get(path) or {}
        return sorted(item["metadata"]["name"] for item in listing.get("items", []))

    async def configmaps(self, namespace: str) -> dict[str, dict[str, str]]:
        """name -> data of every ConfigMap in `namespace`."""
        listing = await self.get(f"/api/v1/namespaces/{namespace}/configmaps") or {}
        return {
            item["metadata"]["name"]: item.get("data") or {} for item in listing.get("items", [])
        }

    async def inventory(self, app: str) -> tuple[str, set[tuple[str, str, str]]]:
        """(applied commit, {(kind, namespace, name)}) of the app's inventory ConfigMap."""
        path = f"/api/v1/namespaces/{self.inventory_namespace}/configmaps/gitops-inventory-{app}"
        found = await self.get(path)
        assert found is not None, f"no inventory for app {app}"
        data = found["data"]
        entries = {(e["k"], e["ns"], e["n"]) for e in json.loads(data["objects"])}
        return data["commit"], entries


async def create_namespace(k8s: K8s, name: str) -> None:
    """Create a namespace of the test's own up front, as an admin would before a sync."""
    response = await k8s.api.call_api(
        "/api/v1/namespaces",
        "POST",
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        auth_settings=["BearerToken"],
        _preload_content=False,
    )
    try:
        assert response.status == 201, await response.text()
    finally:
        response.release()


async def create(k8s: K8s, path: str, body: dict[str, Any]) -> None:
    """POST one object as the bed's admin (RBAC objects a cluster admin sets up)."""
    response = await k8s.api.call_api(
        path, "POST", body=body, auth_settings=["BearerToken"], _preload_content=False
    )
    try:
        assert response.status == 201, await response.text()
    finally:
        response.release()
