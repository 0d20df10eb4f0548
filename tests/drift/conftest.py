"""Drift and polling test bench: the syncer bench (the bed's kube-apiserver and Kafka,
a git server) plus helpers to change live objects as a person with kubectl would and to
wait for effects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from schemas.events import AnyEvent, SyncSucceeded, parse_event
from tests.support.kafka import read_topic
from tests.syncer.conftest import K8s, bench, cluster, inventory_namespace, k8s, kubeconfig

__all__ = ["bench", "cluster", "inventory_namespace", "k8s", "kubeconfig"]

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float, every: float = 0.1
) -> tuple[T, float]:
    """Poll `probe` until it returns a value; return it and the seconds it took."""
    started = time.monotonic()
    while True:
        found = await probe()
        if found:
            return found, time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"nothing after {timeout:.1f}s")
        await asyncio.sleep(every)


async def edit(k8s: K8s, path: str, patch: dict[str, Any], manager: str = "kubectl-edit") -> None:
    """Change a live object with another field manager, as `kubectl edit` does: a strategic
    merge patch (lists of containers, ports, env merge by name), manager `kubectl-edit`."""
    response = await k8s.api.call_api(
        path,
        "PATCH",
        query_params=[("fieldManager", manager)],
        header_params={"Content-Type": "application/strategic-merge-patch+json"},
        body=patch,
        auth_settings=["BearerToken"],
        _preload_content=False,
    )
    try:
        assert response.status == 200, await response.text()
    finally:
        response.release()


async def events(bootstrap: str, topic: str, timeout: float = 2.0) -> list[AnyEvent]:
    """Every event on `topic` so far."""
    records = await read_topic(bootstrap, topic, timeout=timeout, idle=0.5)
    return [parse_event(r.value) for r in records]


async def synced(bootstrap: str, topic: str) -> list[SyncSucceeded]:
    """The sync successes on `topic` so far (a first sync has written its inventory)."""
    return [e for e in await events(bootstrap, topic) if isinstance(e, SyncSucceeded)]
