"""Branch-head polling: commits reach the cluster even when no webhook arrives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from syncer.service import Syncer
from tests.drift.conftest import eventually
from tests.syncer.conftest import K8s, configmap, namespace_yaml

MakeBench = Callable[..., Any]
INTERVAL = 2.0


async def color(k8s: K8s, namespace: str, expected: str) -> bool:
    live = await k8s.get(f"/api/v1/namespaces/{namespace}/configmaps/settings")
    return live is not None and live["data"]["color"] == expected


async def test_a_commit_pushed_without_a_webhook_is_applied_within_one_interval(
    bench: MakeBench, k8s: K8s, namespace: str
) -> None:
    web = {"repo": "platform", "path": "apps/web", "cluster": "dev", "interval": "2s"}
    b = await bench(apps={"web": {**web, "namespace": namespace}})
    files = {
        "apps/web/ns.yaml": namespace_yaml(b.ns),
        "apps/web/cm.yaml": configmap("settings", color="blue"),
    }
    await asyncio.to_thread(b.repo.commit_and_push, files)
    async with Syncer(b.config, syncer_id="s1", periodic_checks=True):
        await eventually(lambda: color(k8s, b.ns, "blue"), timeout=20)  # first check on assignment
        await asyncio.to_thread(
            b.repo.commit_and_push, {"apps/web/cm.yaml": configmap("settings", color="green")}
        )
        _, took = await eventually(lambda: color(k8s, b.ns, "green"), timeout=INTERVAL * 1.1 + 5)
        assert took <= INTERVAL * 1.1 + 2, f"applied {took:.1f}s after the push"
