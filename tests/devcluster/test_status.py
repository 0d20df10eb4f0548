"""The status and scale subresources, and the workload controllers: the emulator's
stand-ins against kube-controller-manager, kube-scheduler and kwok's nodes on the bed."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes_asyncio.client import ApiClient, AppsV1Api, BatchV1Api, CoreV1Api

from devcluster import DevCluster
from tests.devcluster.conftest import Kubectl, emulator_differs, emulator_only
from tests.devcluster.manifests import deployment

SETTLE = 30.0
"""Seconds a rollout or a Job may take on the bed (the emulator's take 0.2 s)."""


async def _wait_available(apps: AppsV1Api, name: str, ns: str, timeout: float = SETTLE) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        dep = await apps.read_namespaced_deployment(name, ns)
        for cond in (dep.status.conditions if dep.status else None) or []:
            if cond.type == "Available" and cond.status == "True":
                return True
        await asyncio.sleep(0.05)
    return False


async def test_spec_write_does_not_change_status(k8s_api: ApiClient, ns: str) -> None:
    """api-conventions.md#spec-and-status: writes to the main resource ignore status."""
    apps = AppsV1Api(k8s_api)
    body = deployment(namespace=ns)
    body["status"] = {"replicas": 99}
    created = await apps.create_namespaced_deployment(ns, body)
    assert (created.status.replicas if created.status else None) != 99


async def test_status_write_does_not_change_spec(k8s_api: ApiClient, ns: str) -> None:
    """The /status subresource changes status only; spec and generation stay."""
    apps = AppsV1Api(k8s_api)
    await apps.create_namespaced_deployment(ns, deployment(namespace=ns))
    patched = await apps.patch_namespaced_deployment_status(
        "web", ns, {"spec": {"replicas": 9}, "status": {"replicas": 7}}
    )
    assert patched.spec.replicas == 2
    assert patched.status.replicas == 7
    assert patched.metadata.generation == 1


async def test_deployment_becomes_available(k8s_api: ApiClient, ns: str) -> None:
    """Deployment status: after the rollout, observedGeneration, readyReplicas and the
    Available condition report the new generation as ready."""
    apps = AppsV1Api(k8s_api)
    await apps.create_namespaced_deployment(ns, deployment(namespace=ns))
    assert await _wait_available(apps, "web", ns)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE
    while True:  # Available comes with the first ready pod; all of them follow
        dep = await apps.read_namespaced_deployment("web", ns)
        if dep.status.ready_replicas == 2 or loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert dep.status.observed_generation == dep.metadata.generation
    assert dep.status.ready_replicas == 2


@emulator_differs(
    "the emulator writes workload status itself and makes no ReplicaSets or Pods: "
    "`kubectl get pods` shows none on gitops up"
)
async def test_an_available_deployment_runs_its_pods_through_a_replica_set(
    k8s_api: ApiClient, ns: str
) -> None:
    apps, core = AppsV1Api(k8s_api), CoreV1Api(k8s_api)
    await apps.create_namespaced_deployment(ns, deployment(namespace=ns))
    assert await _wait_available(apps, "web", ns)
    sets = (await apps.list_namespaced_replica_set(ns, label_selector="app=web")).items
    assert [(r.metadata.owner_references[0].kind, r.spec.replicas) for r in sets] == [
        ("Deployment", 2)
    ]
    pods = (await core.list_namespaced_pod(ns, label_selector="app=web")).items
    owners = {
        (p.metadata.owner_references[0].kind, p.metadata.owner_references[0].name) for p in pods
    }
    assert (len(pods), owners) == (2, {("ReplicaSet", sets[0].metadata.name)})


@emulator_differs(
    "the emulator runs no scheduler and no pods: every Deployment becomes Available after "
    "ready_delay, whatever its nodeSelector; a gitops up user's workloads never run anyway"
)
async def test_deployment_whose_pods_cannot_be_scheduled_stays_unavailable(
    k8s_api: ApiClient, ns: str
) -> None:
    """Pods no node can take stay Pending (PodScheduled False, Unschedulable): the
    rollout is observed and the Deployment is not Available."""
    apps, core = AppsV1Api(k8s_api), CoreV1Api(k8s_api)
    body = deployment(namespace=ns)
    body["spec"]["template"]["spec"]["nodeSelector"] = {"gitops.dev/no-such-node": "true"}
    await apps.create_namespaced_deployment(ns, body)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE
    while loop.time() < deadline:
        dep = await apps.read_namespaced_deployment("web", ns)
        conditions = {c.type: c.status for c in (dep.status and dep.status.conditions) or []}
        assert conditions.get("Available") != "True", "a Deployment nothing runs is Available"
        pods = (await core.list_namespaced_pod(ns, label_selector="app=web")).items
        reasons = [
            c.reason
            for pod in pods
            for c in (pod.status.conditions or [])
            if c.type == "PodScheduled" and c.status == "False"
        ]
        if len(reasons) == 2 and dep.status.observed_generation == 1:
            assert reasons == ["Unschedulable", "Unschedulable"]
            assert not dep.status.ready_replicas
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the rollout was never observed with its pods unschedulable")


@emulator_only("ready_delay is the emulator's knob; on the bed a rollout takes what it takes")
async def test_new_generation_is_not_ready_immediately(
    devcluster: DevCluster, k8s_api: ApiClient, ns: str
) -> None:
    """A spec change starts a new rollout: updatedReplicas lags until the delay passes."""
    devcluster.settings.ready_delay = 0.5
    apps = AppsV1Api(k8s_api)
    await apps.create_namespaced_deployment(ns, deployment(namespace=ns))
    await asyncio.sleep(0.05)
    dep = await apps.read_namespaced_deployment("web", ns)
    assert dep.status.updated_replicas == 0


@emulator_only("the never-ready annotation is the emulator's knob (the bed: nodeSelector)")
async def test_never_ready_annotation_keeps_workload_unready(k8s_api: ApiClient, ns: str) -> None:
    """The never-ready knob (annotation) keeps a Deployment unavailable, for health timeouts."""
    apps = AppsV1Api(k8s_api)
    body = deployment(namespace=ns)
    body["metadata"]["annotations"] = {"devcluster.gitops.dev/never-ready": "true"}
    await apps.create_namespaced_deployment(ns, body)
    assert not await _wait_available(apps, "web", ns, timeout=0.6)


@emulator_only("DevCluster.settings is the emulator's knob")
async def test_never_ready_python_knob(devcluster: DevCluster, k8s_api: ApiClient, ns: str) -> None:
    """The never-ready knob is also settable from Python on the DevCluster."""
    devcluster.settings.never_ready.add(("Deployment", ns, "web"))
    apps = AppsV1Api(k8s_api)
    await apps.create_namespaced_deployment(ns, deployment(namespace=ns))
    assert not await _wait_available(apps, "web", ns, timeout=0.6)


async def test_job_completes(k8s_api: ApiClient, ns: str) -> None:
    """Jobs reach the Complete condition with succeeded == completions."""
    batch = BatchV1Api(k8s_api)
    job: Any = {
        "metadata": {"name": "once"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "run", "image": "busybox:1"}],
                }
            }
        },
    }
    await batch.create_namespaced_job(ns, job)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE
    while loop.time() < deadline:
        got = await batch.read_namespaced_job("once", ns)
        conds = {c.type: c.status for c in (got.status.conditions or [])} if got.status else {}
        if conds.get("Complete") == "True":
            assert got.status.succeeded == 1
            return
        await asyncio.sleep(0.05)
    raise AssertionError("job never completed")


async def test_scale_subresource(k8s_api: ApiClient, ns: str) -> None:
    """/scale reads and writes spec.replicas as an autoscaling/v1 Scale."""
    apps = AppsV1Api(k8s_api)
    await apps.create_namespaced_deployment(ns, deployment(namespace=ns))
    scale = await apps.read_namespaced_deployment_scale("web", ns)
    assert scale.spec.replicas == 2
    assert scale.status.selector == "app=web"
    await apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 4}})
    assert (await apps.read_namespaced_deployment("web", ns)).spec.replicas == 4


async def test_kubectl_scale(kubectl: Kubectl, k8s_api: ApiClient, ns: str) -> None:
    """`kubectl scale` works through the scale subresource."""
    apps = AppsV1Api(k8s_api)
    await apps.create_namespaced_deployment(ns, deployment(namespace=ns))
    result = await kubectl("scale", "deployment/web", "--replicas=3")
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "deployment.apps/web scaled"
    assert (await apps.read_namespaced_deployment("web", ns)).spec.replicas == 3
