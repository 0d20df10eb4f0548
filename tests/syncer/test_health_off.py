"""`syncer.health_timeout: 0` reports an app applied without waiting for its workloads."""

from __future__ import annotations

from syncer.service import Syncer
from tests.support.k8s import K8s, create_namespace
from tests.syncer.conftest import MakeBench
from tests.syncer.test_slots import UNSCHEDULABLE


async def test_with_health_timeout_zero_an_app_succeeds_once_applied_without_health(
    bench: MakeBench, k8s: K8s, namespace: str
) -> None:
    await create_namespace(k8s, namespace)
    b = await bench(
        apps={"app": {"repo": "platform", "cluster": "dev", "namespace": namespace}},
        syncer={"health_timeout": "0s"},
    )
    b.repo.commit_and_push({"deploy.yaml": UNSCHEDULABLE})
    async with Syncer(b.config, syncer_id="s1"):
        await b.request("app")
        [outcome] = await b.outcomes(1, timeout=60)

    assert outcome.type == "gitops.sync.succeeded", outcome
    assert outcome.data.health is None, outcome.data
    assert outcome.data.duration_ms < 10_000, outcome.data
    live = await k8s.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/stuck")
    assert live is not None
