"""The status subresource and the workload stand-in controllers."""

from __future__ import annotations

import asyncio

from kubernetes_asyncio.client import ApiClient, AppsV1Api, BatchV1Api

from devcluster import DevCluster
from tests.devcluster.manifests import deployment


async def _wait_available(apps: AppsV1Api, name: str, timeout: float = 3.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        dep = await apps.read_namespaced_deployment(name, "default")
        for cond in (dep.status.conditions if dep.status else None) or []:
            if cond.type == "Available" and cond.status == "True":
                return True
        await asyncio.sleep(0.05)
    return False


async def test_spec_write_does_not_change_status(k8s_api: ApiClient) -> None:
    """api-conventions.md#spec-and-status: writes to the main resource ignore status."""
    apps = AppsV1Api(k8s_api)
    body = deployment()
    body["status"] = {"replicas": 99}
    created = await apps.create_namespaced_deployment("default", body)
    assert (created.status.replicas if created.status else None) != 99


async def test_status_write_does_not_change_spec(k8s_api: ApiClient) -> None:
    """The /status subresource changes status only; spec and generation stay."""
    apps = AppsV1Api(k8s_api)
    await apps.create_namespaced_deployment("default", deployment())
    patched = await apps.patch_namespaced_deployment_status(
        "web", "default", {"spec": {"replicas": 9}, "status": {"replicas": 7}}
    )
    assert patched.spec.replicas == 2
    assert patched.status.replicas == 7
    assert patched.metadata.generation == 1


async def test_deployment_becomes_available(k8s_api: ApiClient) -> None:
    """Deployment status: after the rollout, observedGeneration, readyReplicas and the
    Available condition report the new generation as ready."""
    apps = AppsV1Api(k8s_api)
    await apps.create_namespaced_deployment("default", deployment())
    assert await _wait_available(apps, "web")
    dep = await apps.read_namespaced_deployment("web", "default")
    assert dep.status.observed_generation == dep.metadata.generation
    assert dep.status.ready_replicas == 2


async def test_new_generation_is_not_ready_immediately(
    devcluster: DevCluster, k8s_api: ApiClient
) -> None:
    """A spec change starts a new rollout: updatedReplicas lags until the delay passes."""
    devcluster.settings.ready_delay = 0.5
    apps = AppsV1Api(k8s_api)
    await apps.create_namespaced_deployment("default", deployment())
    await asyncio.sleep(0.05)
    dep = await apps.read_namespaced_deployment("web", "default")
    assert dep.status.updated_replicas == 0


async def test_never_ready_annotation_keeps_workload_unready(k8s_api: ApiClient) -> None:
    """The never-ready knob (annotation) keeps a Deployment unavailable, for health timeouts."""
    apps = AppsV1Api(k8s_api)
    body = deployment()
    body["metadata"]["annotations"] = {"devcluster.gitops.dev/never-ready": "true"}
    await apps.create_namespaced_deployment("default", body)
    assert not await _wait_available(apps, "web", timeout=0.6)


async def test_never_ready_python_knob(devcluster: DevCluster, k8s_api: ApiClient) -> None:
    """The never-ready knob is also settable from Python on the DevCluster."""
    devcluster.settings.never_ready.add(("Deployment", "default", "web"))
    apps = AppsV1Api(k8s_api)
    await apps.create_namespaced_deployment("default", deployment())
    assert not await _wait_available(apps, "web", timeout=0.6)


async def test_job_completes(k8s_api: ApiClient) -> None:
    """Jobs reach the Complete condition with succeeded == completions."""
    batch = BatchV1Api(k8s_api)
    await batch.create_namespaced_job(
        "default",
        {
            "metadata": {"name": "once"},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "run", "image": "busybox:1"}],
                    }
                }
            },
        },
    )
    for _ in range(60):
        job = await batch.read_namespaced_job("once", "default")
        conds = {c.type: c.status for c in (job.status.conditions or [])} if job.status else {}
        if conds.get("Complete") == "True":
            assert job.status.succeeded == 1
            return
        await asyncio.sleep(0.05)
    raise AssertionError("job never completed")
