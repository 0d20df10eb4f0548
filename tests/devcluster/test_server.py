"""The DevCluster object itself: kubeconfig, lifecycle, serve(), scale, OpenAPI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path

import aiohttp
from kubernetes_asyncio import config
from kubernetes_asyncio.client import ApiClient, AppsV1Api, Configuration, CoreV1Api

from devcluster import DevCluster
from devcluster.cli import serve
from tests.devcluster.conftest import Kubectl
from tests.devcluster.manifests import deployment


async def test_kubeconfig_loads_into_kubernetes_asyncio(
    devcluster: DevCluster, tmp_path: Path
) -> None:
    """write_kubeconfig() produces a kubeconfig that kubernetes_asyncio loads as-is."""
    path = devcluster.write_kubeconfig(tmp_path / "kc")
    configuration = Configuration()
    await config.load_kube_config(config_file=str(path), client_configuration=configuration)
    async with ApiClient(configuration) as client:
        names = [n.metadata.name for n in (await CoreV1Api(client).list_namespace()).items]
    assert {"default", "kube-system", "kube-public"} <= set(names)


async def test_stop_is_safe_twice() -> None:
    """stop() may be called repeatedly (and after the context manager exits)."""
    cluster = DevCluster()
    await cluster.start()
    await cluster.stop()
    await cluster.stop()


async def test_stop_ends_open_watches() -> None:
    """Stopping the cluster ends open watch streams instead of hanging."""
    async with DevCluster() as cluster, aiohttp.ClientSession() as session:
        resp = await session.get(f"{cluster.url}/api/v1/configmaps?watch=true")
        await cluster.stop()
        assert await asyncio.wait_for(resp.read(), 5) == b""


async def test_serve_runs_until_cancelled(tmp_path: Path) -> None:
    """serve(host, port, kubeconfig_path) writes the kubeconfig and runs until cancelled."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = tmp_path / "kc.json"
    task = asyncio.create_task(serve("127.0.0.1", port, str(kubeconfig)))
    for _ in range(100):
        if kubeconfig.exists():
            break
        await asyncio.sleep(0.02)
    server = json.loads(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    assert server == f"http://127.0.0.1:{port}"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.done()


async def test_scale_subresource(k8s_api: ApiClient) -> None:
    """/scale reads and writes spec.replicas as an autoscaling/v1 Scale."""
    apps = AppsV1Api(k8s_api)
    await apps.create_namespaced_deployment("default", deployment())
    scale = await apps.read_namespaced_deployment_scale("web", "default")
    assert scale.spec.replicas == 2
    assert scale.status.selector == "app=web"
    await apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 4}})
    assert (await apps.read_namespaced_deployment("web", "default")).spec.replicas == 4


async def test_kubectl_scale(kubectl: Kubectl, k8s_api: ApiClient) -> None:
    """`kubectl scale` works through the scale subresource."""
    await AppsV1Api(k8s_api).create_namespaced_deployment("default", deployment())
    result = await kubectl("scale", "deployment/web", "--replicas=3")
    assert result.code == 0, result.stderr
    assert (
        await AppsV1Api(k8s_api).read_namespaced_deployment("web", "default")
    ).spec.replicas == 3


async def test_openapi_v3_advertises_field_validation(devcluster: DevCluster) -> None:
    """kubectl decides on server-side field validation from /openapi/v3: the PATCH
    operation of each kind lists the fieldValidation query parameter."""
    async with aiohttp.ClientSession() as session:
        index = await (await session.get(f"{devcluster.url}/openapi/v3")).json()
        url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        doc = await (await session.get(devcluster.url + url)).json()
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]


async def test_pretty_output_is_indented(devcluster: DevCluster) -> None:
    """?pretty=true indents the JSON response."""
    async with aiohttp.ClientSession() as session:
        resp = await session.get(f"{devcluster.url}/api/v1/namespaces/default?pretty=true")
        text = await resp.text()
    assert text.startswith("{\n")
