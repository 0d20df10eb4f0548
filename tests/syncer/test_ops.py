"""A syncer answers probes and Prometheus like any other pod in the cluster."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from syncer.service import Syncer
from tests.syncer.conftest import configmap, namespace_yaml

MakeBench = Callable[..., Any]


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_syncer_is_ready_after_joining_and_exposes_sync_metrics(bench: MakeBench) -> None:
    b = await bench()
    b.repo.commit_and_push(
        {"apps/web/ns.yaml": namespace_yaml(b.ns), "apps/web/a.yaml": configmap("a", x="1")}
    )
    async with Syncer(b.config, syncer_id="s1", http_port=0) as syncer:
        assert syncer.ops is not None
        base = f"http://127.0.0.1:{syncer.ops.port}"
        assert (await _get(f"{base}/healthz"))[0] == 200

        await b.request("web")
        await b.outcomes(1)
        deadline = time.monotonic() + 10
        while (await _get(f"{base}/readyz"))[0] != 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        status, body = await _get(f"{base}/readyz")
        assert status == 200, body

        status, metrics = await _get(f"{base}/metrics")
    assert status == 200
    assert 'gitops_syncer_syncs_total{app="web",outcome="succeeded"} 1.0' in metrics
    assert 'gitops_syncer_objects_total{action="created"} 2.0' in metrics
    assert "gitops_syncer_sync_seconds_count" in metrics
    assert "gitops_syncer_fetch_seconds_count 1.0" in metrics


async def test_syncer_is_not_ready_after_it_stopped(bench: MakeBench) -> None:
    b = await bench()
    syncer = Syncer(b.config, syncer_id="s1", http_port=0)
    await syncer.start()
    await syncer.stop()
    ready, reason = syncer.readiness()
    assert not ready
    assert reason == "not consuming"


async def test_a_syncs_api_requests_are_counted_on_metrics_by_method_and_answer(
    bench: MakeBench,
) -> None:
    b = await bench()
    b.repo.commit_and_push(
        {"apps/web/ns.yaml": namespace_yaml(b.ns), "apps/web/a.yaml": configmap("a", x="1")}
    )
    (cluster,) = b.config.clusters
    async with Syncer(b.config, syncer_id="s1", http_port=0) as syncer:
        assert syncer.ops is not None
        await b.request("web")
        await b.outcomes(1)
        _, metrics = await _get(f"http://127.0.0.1:{syncer.ops.port}/metrics")

    counted = {
        line.split("{", 1)[1].split("}", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("gitops_syncer_api_requests_total{")
    }
    # Two objects: each dry-run, then applied (server-side apply is a PATCH).
    applies = counted.get(f'cluster="{cluster}",code="2xx",method="PATCH"', 0)
    assert applies >= 4, counted
    assert counted.get(f'cluster="{cluster}",code="2xx",method="GET"', 0) >= 1, counted
