"""Slots bound the syncs that work at once, not the ones waiting for their workloads."""

from __future__ import annotations

from syncer.service import Syncer
from tests.support.k8s import K8s, create_namespace
from tests.syncer.conftest import MakeBench, configmap

UNSCHEDULABLE = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: stuck
spec:
  replicas: 1
  selector:
    matchLabels: {app: stuck}
  template:
    metadata:
      labels: {app: stuck}
    spec:
      nodeSelector: {no-such-node: "true"}
      containers:
        - name: main
          image: nginx:1.27
"""


async def test_an_app_waiting_for_its_rollout_does_not_hold_up_another_apps_sync(
    bench: MakeBench, k8s: K8s, namespace: str
) -> None:
    await create_namespace(k8s, namespace)
    app = {"repo": "platform", "cluster": "dev", "namespace": namespace}
    b = await bench(
        apps={"slow": {**app, "path": "apps/slow"}, "quick": {**app, "path": "apps/quick"}},
        syncer={"concurrency": 1, "health_timeout": "20s"},
    )
    b.repo.commit_and_push(
        {"apps/slow/deploy.yaml": UNSCHEDULABLE, "apps/quick/settings.yaml": configmap("quick")}
    )
    async with Syncer(b.config, syncer_id="s1"):
        await b.request("slow")
        await b.request("quick")
        outcomes = await b.outcomes(2, timeout=90)

    order = [(o.data.app, o.type) for o in outcomes]
    assert order == [("quick", "gitops.sync.succeeded"), ("slow", "gitops.sync.succeeded")]
    slow = outcomes[1].data
    assert slow.health == "progressing", slow
    assert outcomes[0].data.duration_ms < 10_000, outcomes[0].data
