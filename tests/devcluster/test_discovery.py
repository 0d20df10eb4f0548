"""Discovery: what clients learn about the served resources (api-concepts.md#discovery-api)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from kubernetes_asyncio.client import (
    ApiClient,
    ApisApi,
    CoreV1Api,
    CustomObjectsApi,
    VersionApi,
)
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.dynamic import DynamicClient
from kubernetes_asyncio.dynamic.exceptions import ResourceNotFoundError

from tests.devcluster.conftest import Server, emulator_differs, fresh_dynamic
from tests.devcluster.manifests import crd


async def test_version_reports_a_kubernetes_version(k8s_api: ApiClient) -> None:
    """/version answers version.Info with major/minor/gitVersion."""
    info = await VersionApi(k8s_api).get_code()
    assert info.major == "1"
    assert info.git_version.startswith("v1.")


async def test_core_group_lists_its_resources_with_scope_and_verbs(k8s_api: ApiClient) -> None:
    """/api/v1 is an APIResourceList with name, kind, namespaced and verbs per resource."""
    resources = await CoreV1Api(k8s_api).get_api_resources()
    by_name = {r.name: r for r in resources.resources}
    assert by_name["configmaps"].kind == "ConfigMap"
    assert by_name["configmaps"].namespaced is True
    assert by_name["namespaces"].namespaced is False
    assert "namespaces/status" in by_name
    assert {"create", "get", "list", "watch", "patch"} <= set(by_name["secrets"].verbs)


async def test_named_groups_are_listed_with_preferred_versions(k8s_api: ApiClient) -> None:
    """/apis lists every group the issue needs, each with a preferredVersion."""
    groups = await ApisApi(k8s_api).get_api_versions()
    preferred = {g.name: g.preferred_version.version for g in groups.groups}
    assert preferred["apps"] == "v1"
    assert preferred["autoscaling"] == "v2"
    assert preferred["policy"] == "v1"
    assert {
        "batch",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
    } <= set(preferred)


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "Namespace"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Service"),
        ("v1", "ServiceAccount"),
        ("v1", "PersistentVolumeClaim"),
        ("v1", "PersistentVolume"),
        ("v1", "ResourceQuota"),
        ("v1", "LimitRange"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("apps/v1", "ReplicaSet"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("networking.k8s.io/v1", "Ingress"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("networking.k8s.io/v1", "IngressClass"),
        ("scheduling.k8s.io/v1", "PriorityClass"),
        ("storage.k8s.io/v1", "StorageClass"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("policy/v1", "PodDisruptionBudget"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ],
)
async def test_dynamic_client_discovers_every_builtin_kind(
    dynamic: DynamicClient, api_version: str, kind: str
) -> None:
    """Each kind a GitOps repository uses is discoverable by (apiVersion, kind)."""
    resource = await dynamic.resources.get(api_version=api_version, kind=kind)
    listing = await dynamic.get(resource)
    assert listing.kind == f"{kind}List"


@emulator_differs(
    "the emulator serves the built-in kinds a GitOps repository commonly carries, not "
    "every kind: a manifest of another (here Endpoints, EndpointSlice, Lease, webhook "
    "configurations) fails to sync on gitops up with no match for its kind"
)
@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "Endpoints"),
        ("discovery.k8s.io/v1", "EndpointSlice"),
        ("coordination.k8s.io/v1", "Lease"),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
    ],
)
async def test_kinds_the_emulator_does_not_serve(
    dynamic: DynamicClient, api_version: str, kind: str
) -> None:
    resource = await dynamic.resources.get(api_version=api_version, kind=kind)
    listing = await dynamic.get(resource)
    assert listing.kind == f"{kind}List"


async def _established(dynamic: DynamicClient, name: str) -> None:
    crds = await dynamic.resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    for _ in range(100):
        obj = await dynamic.get(crds, name=name)
        conditions = (obj.to_dict().get("status") or {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("CRD never became Established")


def _group(server: Server) -> str:
    return f"{server.name('g')}.example.com"


async def test_crd_resources_are_served_once_established(
    dynamic: DynamicClient, k8s_api: ApiClient, server: Server, ns: str, tmp_path: Path
) -> None:
    """CRDs (custom-resource-definitions docs): once Established, /apis/{group}/{version}
    lists the resource and objects of the new kind can be created and read."""
    group = _group(server)
    crds = await dynamic.resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    await dynamic.create(crds, body=crd(group))
    await _established(dynamic, f"widgets.{group}")
    fresh = await fresh_dynamic(k8s_api, tmp_path)
    widgets = await fresh.resources.get(api_version=f"{group}/v1", kind="Widget")
    await fresh.create(
        widgets,
        namespace=ns,
        body={
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": {"size": 3},
        },
    )
    got = await fresh.get(widgets, name="w1", namespace=ns)
    assert got.spec.size == 3
    assert got.metadata.generation == 1


async def test_deleting_a_crd_removes_its_resources(
    dynamic: DynamicClient, k8s_api: ApiClient, server: Server, ns: str, tmp_path: Path
) -> None:
    """Deleting a CRD removes its API endpoints (and its objects) from the server."""
    group = _group(server)
    crds = await dynamic.resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    await dynamic.create(crds, body=crd(group))
    await _established(dynamic, f"widgets.{group}")
    await dynamic.delete(crds, name=f"widgets.{group}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:  # kube-apiserver removes the API a moment later (Terminating first)
        fresh = await fresh_dynamic(k8s_api, tmp_path)
        try:
            await fresh.resources.get(api_version=f"{group}/v1", kind="Widget")
        except ResourceNotFoundError:
            break
        assert loop.time() < deadline, "the CRD's API is still served"
        await asyncio.sleep(0.1)
    with pytest.raises(ApiException) as info:
        await CustomObjectsApi(k8s_api).list_namespaced_custom_object(group, "v1", ns, "widgets")
    assert info.value.status == 404


async def test_openapi_v3_advertises_field_validation(k8s_api: ApiClient) -> None:
    """kubectl decides on server-side field validation from /openapi/v3: the PATCH
    operation of each kind lists the fieldValidation query parameter."""
    pool, host = k8s_api.rest_client.pool_manager, k8s_api.configuration.host
    # kube-apiserver labels the index text/plain; its body is JSON all the same.
    index = json.loads(await (await pool.get(f"{host}/openapi/v3")).text())
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    doc = json.loads(await (await pool.get(host + url)).text())
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]


async def test_pretty_output_is_indented(k8s_api: ApiClient) -> None:
    """?pretty=true indents the JSON response."""
    pool, host = k8s_api.rest_client.pool_manager, k8s_api.configuration.host
    text = await (await pool.get(f"{host}/api/v1/namespaces/default?pretty=true")).text()
    assert text.startswith("{\n")
