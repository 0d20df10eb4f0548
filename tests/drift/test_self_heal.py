"""Live drift: a change made in the cluster behind Git's back is found within one interval;
with self-heal it is undone, in detect-only mode it is only reported."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from schemas.events import DriftDetected, SyncRequested, SyncSucceeded
from syncer.service import Syncer
from tests.drift.conftest import edit, events, eventually, synced
from tests.syncer.conftest import K8s, deployment, namespace_yaml

MakeBench = Callable[..., Any]
INTERVAL = 2.0


def deploy(b: Any) -> str:
    return f"/apis/apps/v1/namespaces/{b.ns}/deployments/api"


def app(namespace: str, **overrides: Any) -> dict[str, Any]:
    return {
        "web": {
            "repo": "platform",
            "path": "apps/web",
            "cluster": "dev",
            "namespace": namespace,
            "interval": f"{INTERVAL}s",
            **overrides,
        }
    }


async def applied(k8s: K8s, b: Any, replicas: int = 2) -> bool:
    live = await k8s.get(deploy(b))
    return live is not None and live["spec"]["replicas"] == replicas


async def setup(bench: MakeBench, namespace: str, **overrides: Any) -> Any:
    b = await bench(apps=app(namespace, **overrides))
    files = {
        "apps/web/ns.yaml": namespace_yaml(b.ns),
        "apps/web/api.yaml": deployment("api", replicas=2),
    }
    await asyncio.to_thread(b.repo.commit_and_push, files)
    return b


async def first_sync(b: Any) -> None:
    """Wait for the first sync's outcome: from then on, the inventory names the commit."""
    await eventually(lambda: synced(b.bootstrap, b.topics.sync_events), timeout=30)


async def drift_events(b: Any) -> list[DriftDetected]:
    found = await events(b.bootstrap, b.topics.sync_events)
    return [e for e in found if isinstance(e, DriftDetected)]


async def test_self_heal_restores_a_field_changed_live_and_reports_the_drift(
    bench: MakeBench, k8s: K8s, namespace: str
) -> None:
    b = await setup(bench, namespace, self_heal=True)
    async with Syncer(b.config, syncer_id="s1", periodic_checks=True):
        await first_sync(b)
        assert await applied(k8s, b)
        await edit(k8s, deploy(b), {"spec": {"replicas": 5}})

        (drift,), took = await eventually(lambda: drift_events(b), timeout=INTERVAL * 1.1 + 5)
        assert took <= INTERVAL * 1.1 + 2, f"drift found after {took:.1f}s"
        assert drift.data.self_heal
        (obj,) = drift.data.objects
        assert (obj.kind, obj.namespace, obj.name) == ("Deployment", b.ns, "api")
        assert obj.state == "changed"
        assert obj.fields == ["spec.replicas"]

        await eventually(lambda: applied(k8s, b, replicas=2), timeout=10)
        heal = [
            e
            for e in await events(b.bootstrap, b.topics.sync_requests)
            if isinstance(e, SyncRequested) and e.data.reason == "drift"
        ]
        assert len(heal) == 1 and heal[0].data.commit == drift.data.commit

        async def healed() -> list[SyncSucceeded]:
            found = await events(b.bootstrap, b.topics.sync_events)
            return [e for e in found if isinstance(e, SyncSucceeded) and e.data.reason == "drift"]

        await eventually(healed, timeout=15)
        # Healed, the app stays quiet: what the controllers write after the heal (status,
        # the ReplicaSet scaled back) is no drift.
        await asyncio.sleep(INTERVAL * 2)
        assert len(await drift_events(b)) == 1
        assert await applied(k8s, b, replicas=2)


async def test_detect_only_reports_the_drift_and_keeps_the_live_change(
    bench: MakeBench, k8s: K8s, namespace: str
) -> None:
    b = await setup(bench, namespace, self_heal=False)
    async with Syncer(b.config, syncer_id="s1", periodic_checks=True):
        await first_sync(b)
        assert await applied(k8s, b)
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "x:2"}]}}}}
        await edit(k8s, deploy(b), patch)

        (drift,), took = await eventually(lambda: drift_events(b), timeout=INTERVAL * 1.1 + 5)
        assert took <= INTERVAL * 1.1 + 2, f"drift found after {took:.1f}s"
        assert not drift.data.self_heal
        assert [(o.kind, o.namespace, o.name, o.state, o.fields) for o in drift.data.objects] == [
            (
                "Deployment",
                b.ns,
                "api",
                "changed",
                ["spec.template.spec.containers[name=main].image"],
            )
        ]

        await asyncio.sleep(INTERVAL * 2)  # two more checks: same drift, not re-reported
        assert len(await drift_events(b)) == 1
        live = await k8s.get(deploy(b))
        assert live is not None
        assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "x:2"
        requests = await events(b.bootstrap, b.topics.sync_requests)
        reasons = [e.data.reason for e in requests if isinstance(e, SyncRequested)]
        assert "drift" not in reasons
