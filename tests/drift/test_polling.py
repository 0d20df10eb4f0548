"""Branch-head polling: commits reach the cluster even when no webhook arrives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from syncer.service import Syncer
from tests.drift.conftest import eventually
from tests.syncer.conftest import K8s, configmap

MakeBench = Callable[..., Any]
INTERVAL = 2.0
SETTINGS = "/api/v1/namespaces/default/configmaps/settings"


async def color(k8s: K8s, expected: str) -> bool:
    live = await k8s.get(SETTINGS)
    return live is not None and live["data"]["color"] == expected


async def test_a_commit_pushed_without_a_webhook_is_applied_within_one_interval(
    bench: MakeBench, k8s: K8s
) -> None:
    apps = {"web": {"repo": "platform", "path": "apps/web", "cluster": "dev", "interval": "2s"}}
    b = await bench(apps=apps)
    await asyncio.to_thread(
        b.repo.commit_and_push, {"apps/web/cm.yaml": configmap("settings", color="blue")}
    )
    async with Syncer(b.config, syncer_id="s1", periodic_checks=True):
        await eventually(lambda: color(k8s, "blue"), timeout=20)  # first check on assignment
        await asyncio.to_thread(
            b.repo.commit_and_push, {"apps/web/cm.yaml": configmap("settings", color="green")}
        )
        _, took = await eventually(lambda: color(k8s, "green"), timeout=INTERVAL * 1.1 + 5)
        assert took <= INTERVAL * 1.1 + 2, f"applied {took:.1f}s after the push"
