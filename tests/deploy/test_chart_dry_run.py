"""The rendered chart as a cluster sees it: every object accepted by a server-side
dry-run apply on the bed's real kube-apiserver (v1.37, admission and strict field
validation on), the way `helm install --dry-run=server` or Flux would first check it.

Each test renders the chart under a release name of its own into a namespace of its own;
every apply is a dry run, so nothing of the chart is stored.
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

from tests.deploy.rendering import ALL_OPTIONS, NOTIFYING, Obj, Rendered, render
from tests.support.bed import RealCluster

FIELD_MANAGER = "chart-test"


async def _dry_run_apply(
    http: aiohttp.ClientSession, dynamic: DynamicClient, namespace: str, obj: Obj
) -> str | None:
    """Server-side apply with dryRun=All; the API's refusal, or None when accepted.

    A raw PATCH, because kubernetes_asyncio's dynamic client returns error bodies instead
    of raising for them; discovery still supplies each kind's URL.
    """
    resource = await dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    name = obj["metadata"]["name"]
    path = resource.path(name=name, namespace=namespace if resource.namespaced else None)
    async with http.patch(
        path,
        params={"fieldManager": FIELD_MANAGER, "dryRun": "All", "fieldValidation": "Strict"},
        data=json.dumps(obj),
        headers={"Content-Type": "application/apply-patch+yaml"},
    ) as response:
        if response.status in (200, 201):
            return None
        return f"{obj['kind']}/{name}: {response.status} {await response.text()}"


async def _refusals(
    http: aiohttp.ClientSession, dynamic: DynamicClient, namespace: str, rendered: Rendered
) -> list[str]:
    results = [await _dry_run_apply(http, dynamic, namespace, obj) for obj in rendered.objects]
    return [r for r in results if r is not None]


@pytest.mark.parametrize(
    "values", [{}, ALL_OPTIONS], ids=["defaults", "ingress-hpa-secrets-everything"]
)
async def test_server_side_dry_run_accepts_every_rendered_object(
    http: aiohttp.ClientSession,
    dynamic: DynamicClient,
    release: str,
    release_namespace: str,
    values: Obj,
) -> None:
    rendered = render(values, release=release, namespace=release_namespace)

    assert await _refusals(http, dynamic, release_namespace, rendered) == []
    components = {
        o["metadata"]["labels"]["app.kubernetes.io/component"]
        for o in rendered.of_kind("Deployment")
    }
    # ALL_OPTIONS has notification rules, the defaults none: the notifier only with rules.
    assert ("notifier" in components) == bool(values)


async def test_dry_run_leaves_the_cluster_untouched(
    http: aiohttp.ClientSession, dynamic: DynamicClient, release: str, release_namespace: str
) -> None:
    rendered = render(release=release, namespace=release_namespace)

    assert await _refusals(http, dynamic, release_namespace, rendered) == []

    for obj in rendered.objects:
        resource = await dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        path = resource.path(
            name=obj["metadata"]["name"],
            namespace=release_namespace if resource.namespaced else None,
        )
        async with http.get(path) as response:
            assert response.status == 404, f"{obj['kind']}/{obj['metadata']['name']} was stored"


async def test_dry_run_refuses_what_a_cluster_would_refuse(
    http: aiohttp.ClientSession, dynamic: DynamicClient, release: str, release_namespace: str
) -> None:
    # Uppercase and underscores are not valid in most Kubernetes object names: proof that
    # the dry run validates instead of echoing. What kube-apiserver v1.37 does not refuse:
    # RBAC names (only path segments) and PodDisruptionBudget names (upstream validates no
    # PDB metadata, kubernetes/kubernetes#133726). The ClusterRoleBinding is refused for
    # its subject, the ServiceAccount of the same invalid name.
    rendered = render(
        {**NOTIFYING, "fullnameOverride": f"GitOps_{release}"},
        release=release,
        namespace=release_namespace,
    )
    assert rendered.deployment("notifier"), "the notifier's objects are checked too"

    refusals = await _refusals(http, dynamic, release_namespace, rendered)

    refused = {r.split(": ", 1)[0]: r for r in refusals}
    expected = sorted(
        f"{o['kind']}/{o['metadata']['name']}"
        for o in rendered.objects
        if o["kind"] not in ("ClusterRole", "PodDisruptionBudget")
    )
    assert sorted(refused) == expected
    for key, refusal in refused.items():
        field = "subjects[0].name" if key.startswith("ClusterRoleBinding/") else "metadata.name"
        assert " 422 " in refusal, refusal
        assert f"{field}: Invalid value" in refusal, refusal


async def test_kubectl_server_side_dry_run_applies_the_whole_chart(
    real_cluster: RealCluster, release: str, release_namespace: str, tmp_path: Path
) -> None:
    rendered = render(ALL_OPTIONS, release=release, namespace=release_namespace)
    kubeconfig = real_cluster.write_kubeconfig(tmp_path / "kubeconfig")
    stream = yaml.safe_dump_all(rendered.objects, sort_keys=False)

    proc = await asyncio.create_subprocess_exec(
        "kubectl",
        "apply",
        "--server-side",
        "--dry-run=server",
        f"--field-manager={FIELD_MANAGER}",
        f"--namespace={release_namespace}",
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
