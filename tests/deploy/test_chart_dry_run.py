"""The rendered chart as a cluster sees it: every object accepted by a server-side
dry-run apply, the way `helm install --dry-run=server` or Flux would first check it.

The API emulator validates names, labels, selectors against pod templates, containers,
ports and immutable fields, and stores nothing on a dry run.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import aiohttp
import pytest
import yaml
from kubernetes_asyncio.dynamic import DynamicClient

from devcluster import DevCluster
from tests.deploy.rendering import ALL_OPTIONS, NAMESPACE, Obj, Rendered, render

FIELD_MANAGER = "chart-test"


async def _create_namespace(dynamic: DynamicClient, name: str) -> None:
    namespaces = await dynamic.resources.get(api_version="v1", kind="Namespace")
    await dynamic.create(namespaces, body={"metadata": {"name": name}})


async def _dry_run_apply(cluster: DevCluster, dynamic: DynamicClient, obj: Obj) -> str | None:
    """Server-side apply with dryRun=All; the API's refusal, or None when accepted.

    A raw PATCH, because kubernetes_asyncio's dynamic client returns error bodies instead
    of raising for them; discovery still supplies each kind's URL.
    """
    resource = await dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    name = obj["metadata"]["name"]
    path = resource.path(name=name, namespace=NAMESPACE if resource.namespaced else None)
    async with (
        aiohttp.ClientSession() as http,
        http.patch(
            f"{cluster.url}{path}",
            params={"fieldManager": FIELD_MANAGER, "dryRun": "All", "fieldValidation": "Strict"},
            data=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
        ) as response,
    ):
        if response.status in (200, 201):
            return None
        return f"{obj['kind']}/{name}: {response.status} {await response.text()}"


async def _refusals(cluster: DevCluster, dynamic: DynamicClient, rendered: Rendered) -> list[str]:
    results = [await _dry_run_apply(cluster, dynamic, obj) for obj in rendered.objects]
    return [r for r in results if r is not None]


@pytest.mark.parametrize(
    "values", [{}, ALL_OPTIONS], ids=["defaults", "ingress-hpa-secrets-everything"]
)
async def test_server_side_dry_run_accepts_every_rendered_object(
    cluster: DevCluster, dynamic: DynamicClient, values: Obj
) -> None:
    rendered = render(values)
    await _create_namespace(dynamic, NAMESPACE)

    assert await _refusals(cluster, dynamic, rendered) == []


async def test_dry_run_leaves_the_cluster_untouched(
    cluster: DevCluster, dynamic: DynamicClient
) -> None:
    rendered = render()
    await _create_namespace(dynamic, NAMESPACE)

    await _refusals(cluster, dynamic, rendered)

    deployments = await dynamic.resources.get(api_version="apps/v1", kind="Deployment")
    listed = await dynamic.get(deployments, namespace=NAMESPACE)
    assert listed.items == []


async def test_dry_run_refuses_what_a_cluster_would_refuse(
    cluster: DevCluster, dynamic: DynamicClient
) -> None:
    # Uppercase and underscores are not valid in most Kubernetes object names (RBAC names
    # are only path segments): proof that the dry run validates instead of echoing.
    rendered = render({"fullnameOverride": "GitOps_Pipeline"})
    await _create_namespace(dynamic, NAMESPACE)

    refusals = await _refusals(cluster, dynamic, rendered)

    refused = sorted(r.split("/")[0] for r in refusals)
    expected = sorted(
        o["kind"]
        for o in rendered.objects
        if o["kind"] not in ("ClusterRole", "ClusterRoleBinding")
    )
    assert refused == expected
    assert all(" 422 " in r and "metadata.name" in r for r in refusals)


async def test_kubectl_server_side_dry_run_applies_the_whole_chart(
    cluster: DevCluster, dynamic: DynamicClient, tmp_path: Path
) -> None:
    rendered = render(ALL_OPTIONS)
    await _create_namespace(dynamic, NAMESPACE)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    stream = yaml.safe_dump_all(rendered.objects, sort_keys=False)

    proc = await asyncio.create_subprocess_exec(
        "kubectl",
        "apply",
        "--server-side",
        "--dry-run=server",
        f"--field-manager={FIELD_MANAGER}",
        f"--namespace={NAMESPACE}",
        "-f",
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)},
    )
    out, err = await asyncio.wait_for(proc.communicate(stream.encode()), 60)

    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert len(lines) == len(rendered.objects)
    assert all(line.endswith("serverside-applied (server dry run)") for line in lines), lines
