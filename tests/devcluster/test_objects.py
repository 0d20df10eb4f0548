"""Object lifecycle through the typed client: create, get, update, patch, delete.

Conventions cited per test from sig-architecture/api-conventions.md and api-concepts.md.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio.client import (
    ApiClient,
    AppsV1Api,
    BatchV1Api,
    CoreV1Api,
    RbacAuthorizationV1Api,
)
from kubernetes_asyncio.client.exceptions import ApiException

from tests.devcluster.conftest import Server, emulator_differs, free_node_port
from tests.devcluster.manifests import configmap, deployment, status_of


async def test_create_sets_server_metadata(k8s_api: ApiClient, ns: str) -> None:
    """api-conventions.md#metadata: the server sets uid, resourceVersion and
    creationTimestamp on create; generation starts at 1 for kinds with a spec."""
    apps = AppsV1Api(k8s_api)
    created = await apps.create_namespaced_deployment(ns, deployment(namespace=ns))
    assert created.metadata.uid
    assert int(created.metadata.resource_version) > 0
    assert created.metadata.creation_timestamp is not None
    assert created.metadata.generation == 1


async def test_resource_version_is_cluster_wide_and_increasing(k8s_api: ApiClient, ns: str) -> None:
    """api-concepts.md#resource-versions: one monotonic counter across all kinds."""
    core = CoreV1Api(k8s_api)
    first = await core.create_namespaced_config_map(ns, configmap("a", namespace=ns))
    second = await core.create_namespaced_secret(
        ns, {"metadata": {"name": "s"}, "stringData": {"k": "v"}}
    )
    third = await core.create_namespaced_config_map(ns, configmap("b", namespace=ns))
    versions = [int(o.metadata.resource_version) for o in (first, second, third)]
    assert versions == sorted(versions)
    assert len(set(versions)) == 3


async def test_create_existing_name_is_409_already_exists(k8s_api: ApiClient, ns: str) -> None:
    """api-conventions.md#http-status-codes: 409 with reason AlreadyExists on a duplicate."""
    core = CoreV1Api(k8s_api)
    await core.create_namespaced_config_map(ns, configmap(namespace=ns))
    with pytest.raises(ApiException) as info:
        await core.create_namespaced_config_map(ns, configmap(namespace=ns))
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (409, "AlreadyExists")
    assert body["details"] == {"name": "cfg", "kind": "configmaps"}


async def test_get_missing_object_is_404_not_found_status(k8s_api: ApiClient, ns: str) -> None:
    """api-conventions.md#response-status-kind: a Status with reason NotFound and details."""
    with pytest.raises(ApiException) as info:
        await AppsV1Api(k8s_api).read_namespaced_deployment("nope", ns)
    body = status_of(info.value)
    assert body["kind"] == "Status"
    assert body["reason"] == "NotFound"
    assert body["code"] == 404
    assert body["message"] == 'deployments.apps "nope" not found'
    assert body["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


async def test_put_with_stale_resource_version_is_409_conflict(k8s_api: ApiClient, ns: str) -> None:
    """api-conventions.md#concurrency-control-and-consistency: PUT with a stale
    resourceVersion is 409 Conflict."""
    core = CoreV1Api(k8s_api)
    created = await core.create_namespaced_config_map(ns, configmap(namespace=ns))
    stale = created.metadata.resource_version
    created.data = {"a": "2"}
    await core.replace_namespaced_config_map("cfg", ns, created)
    created.data = {"a": "3"}
    created.metadata.resource_version = stale
    with pytest.raises(ApiException) as info:
        await core.replace_namespaced_config_map("cfg", ns, created)
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (409, "Conflict")
    assert "the object has been modified" in body["message"]


async def test_generation_bumps_on_spec_change_only(k8s_api: ApiClient, ns: str) -> None:
    """api-conventions.md#metadata: generation increments on changes to the desired state
    (spec), not on metadata-only changes."""
    apps = AppsV1Api(k8s_api)
    await apps.create_namespaced_deployment(ns, deployment(namespace=ns))
    labelled = await apps.patch_namespaced_deployment(
        "web", ns, {"metadata": {"labels": {"team": "a"}}}
    )
    assert labelled.metadata.generation == 1
    scaled = await apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": 5}})
    assert scaled.metadata.generation == 2


async def test_unchanged_update_keeps_resource_version(k8s_api: ApiClient, ns: str) -> None:
    """api-concepts.md: a write that changes nothing is not persisted (no new version)."""
    core = CoreV1Api(k8s_api)
    created = await core.create_namespaced_config_map(ns, configmap(namespace=ns))
    same = await core.patch_namespaced_config_map("cfg", ns, {"data": {"a": "1"}})
    assert same.metadata.resource_version == created.metadata.resource_version


async def test_create_in_missing_namespace_is_404(k8s_api: ApiClient, server: Server) -> None:
    """Namespaced objects need an existing namespace: NotFound names the namespace."""
    ghost = server.name("ghost")
    with pytest.raises(ApiException) as info:
        await CoreV1Api(k8s_api).create_namespaced_config_map(ghost, configmap(namespace=ghost))
    assert info.value.status == 404
    assert status_of(info.value)["message"] == f'namespaces "{ghost}" not found'


async def test_namespace_mismatch_between_body_and_url_is_400(k8s_api: ApiClient, ns: str) -> None:
    """The body's namespace must match the URL's: 400 BadRequest."""
    with pytest.raises(ApiException) as info:
        await CoreV1Api(k8s_api).create_namespaced_config_map(
            ns, configmap(namespace="kube-system")
        )
    assert status_of(info.value)["reason"] == "BadRequest"


async def test_cluster_scoped_object_drops_a_namespace(
    k8s_api: ApiClient, server: Server, ns: str
) -> None:
    """Cluster-scoped kinds: a metadata.namespace in the body is dropped, not refused."""
    created = await RbacAuthorizationV1Api(k8s_api).create_cluster_role(
        {"metadata": {"name": server.name("reader"), "namespace": ns}, "rules": []}
    )
    assert created.metadata.namespace is None


async def test_invalid_name_is_422_with_field_cause(k8s_api: ApiClient, ns: str) -> None:
    """api-conventions.md#validation: DNS-1123 names; 422 Invalid lists field causes."""
    with pytest.raises(ApiException) as info:
        await CoreV1Api(k8s_api).create_namespaced_config_map(
            ns, configmap(name="Not_Valid", namespace=ns)
        )
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (422, "Invalid")
    cause = body["details"]["causes"][0]
    assert cause["field"] == "metadata.name"
    assert cause["reason"] == "FieldValueInvalid"
    assert body["details"]["kind"] == "ConfigMap"


async def test_deployment_without_containers_is_invalid(k8s_api: ApiClient, ns: str) -> None:
    """Required fields are reported per field (FieldValueRequired)."""
    bad = deployment(namespace=ns)
    bad["spec"]["template"]["spec"]["containers"] = []
    with pytest.raises(ApiException) as info:
        await AppsV1Api(k8s_api).create_namespaced_deployment(ns, bad)
    causes = status_of(info.value)["details"]["causes"]
    assert {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.template.spec.containers",
    } in causes


async def test_selector_must_match_template_labels(k8s_api: ApiClient, ns: str) -> None:
    """Deployment validation: `selector` does not match template `labels` is Invalid."""
    bad = deployment(namespace=ns)
    bad["spec"]["selector"]["matchLabels"] = {"app": "other"}
    with pytest.raises(ApiException) as info:
        await AppsV1Api(k8s_api).create_namespaced_deployment(ns, bad)
    assert "does not match template" in status_of(info.value)["message"]


async def test_deployment_selector_is_immutable(k8s_api: ApiClient, ns: str) -> None:
    """apps/v1 Deployment: spec.selector is immutable after creation ('field is immutable')."""
    apps = AppsV1Api(k8s_api)
    await apps.create_namespaced_deployment(ns, deployment(namespace=ns))
    with pytest.raises(ApiException) as info:
        await apps.patch_namespaced_deployment(
            "web",
            ns,
            {
                "spec": {
                    "selector": {"matchLabels": {"app": "web", "x": "y"}},
                    "template": {"metadata": {"labels": {"app": "web", "x": "y"}}},
                }
            },
        )
    assert "field is immutable" in status_of(info.value)["message"]


async def test_strategic_merge_patch_merges_containers_by_name(k8s_api: ApiClient, ns: str) -> None:
    """Strategic merge patch: containers merge by their `name` key, env by `name`."""
    apps = AppsV1Api(k8s_api)
    dep = deployment(namespace=ns)
    dep["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox:1"})
    await apps.create_namespaced_deployment(ns, dep)
    patched = await apps.patch_namespaced_deployment(
        "web",
        ns,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": "nginx:1.28",
                                "env": [{"name": "A", "value": "1"}],
                            }
                        ]
                    }
                }
            }
        },
    )
    containers = {c.name: c for c in patched.spec.template.spec.containers}
    assert set(containers) == {"web", "side"}
    assert containers["web"].image == "nginx:1.28"
    assert containers["web"].ports[0].container_port == 80
    assert containers["web"].env[0].name == "A"


async def test_json_merge_patch_replaces_lists_and_null_deletes(
    k8s_api: ApiClient, ns: str
) -> None:
    """RFC 7386 merge patch: lists are replaced whole, null removes a key."""
    core = CoreV1Api(k8s_api)
    await core.create_namespaced_config_map(ns, configmap(namespace=ns, data={"a": "1", "b": "2"}))
    resp = await core.patch_namespaced_config_map(
        "cfg",
        ns,
        {"data": {"a": None, "c": "3"}},
        _content_type="application/merge-patch+json",
    )
    assert resp.data == {"b": "2", "c": "3"}


async def test_json_patch_operations_apply(k8s_api: ApiClient, ns: str) -> None:
    """RFC 6902 JSON patch (application/json-patch+json) is supported."""
    core = CoreV1Api(k8s_api)
    await core.create_namespaced_config_map(ns, configmap(namespace=ns))
    patched = await core.patch_namespaced_config_map(
        "cfg",
        ns,
        [{"op": "add", "path": "/data/z", "value": "26"}, {"op": "remove", "path": "/data/a"}],
    )
    assert patched.data == {"z": "26"}


async def test_delete_with_finalizer_sets_deletion_timestamp(k8s_api: ApiClient, ns: str) -> None:
    """api-concepts.md#finalizers: delete sets deletionTimestamp and keeps the object until
    its finalizers are removed; then it is gone."""
    core = CoreV1Api(k8s_api)
    cm = configmap(namespace=ns)
    cm["metadata"]["finalizers"] = ["example.com/hold"]
    await core.create_namespaced_config_map(ns, cm)
    await core.delete_namespaced_config_map("cfg", ns)
    held = await core.read_namespaced_config_map("cfg", ns)
    assert held.metadata.deletion_timestamp is not None
    await core.patch_namespaced_config_map("cfg", ns, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as info:
        await core.read_namespaced_config_map("cfg", ns)
    assert info.value.status == 404


@emulator_differs(
    "the emulator has no garbage collector: dependents (metadata.ownerReferences) of a "
    "deleted owner stay, and Foreground deletion deletes at once; nothing gitops up runs "
    "makes dependents, and the syncer prunes what it applied itself"
)
async def test_foreground_deletion_waits_for_dependents(k8s_api: ApiClient, ns: str) -> None:
    """propagationPolicy=Foreground: the owner is kept (deletionTimestamp, the
    foregroundDeletion finalizer) until the garbage collector has deleted its dependents."""
    core = CoreV1Api(k8s_api)
    owner = await core.create_namespaced_config_map(ns, configmap("owner", namespace=ns))
    dependent = configmap("dependent", namespace=ns)
    dependent["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    ]
    await core.create_namespaced_config_map(ns, dependent)
    # The answer is the owner as kept (not a Status): read from the answer, since the
    # collector may be done before a read.
    url = f"{k8s_api.configuration.host}/api/v1/namespaces/{ns}/configmaps/owner"
    pool = k8s_api.rest_client.pool_manager
    async with pool.delete(url, json={"propagationPolicy": "Foreground"}) as resp:
        held = await resp.json()
    assert (resp.status, held["kind"]) == (200, "ConfigMap")
    assert held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["finalizers"] == ["foregroundDeletion"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        names = {c.metadata.name for c in (await core.list_namespaced_config_map(ns)).items}
        if not names & {"owner", "dependent"}:
            break
        assert loop.time() < deadline, f"still there: {names}"
        await asyncio.sleep(0.05)


async def test_delete_returns_success_status(k8s_api: ApiClient, ns: str) -> None:
    """DELETE of a built-in answers a Status with status Success and the deleted uid."""
    core = CoreV1Api(k8s_api)
    created = await core.create_namespaced_config_map(ns, configmap(namespace=ns))
    result = await core.delete_namespaced_config_map("cfg", ns, propagation_policy="Background")
    assert result.status == "Success"
    assert result.details.uid == created.metadata.uid


async def test_deletecollection_honours_label_selector(k8s_api: ApiClient, ns: str) -> None:
    """deletecollection deletes exactly the objects the selector matches."""
    core = CoreV1Api(k8s_api)
    await core.create_namespaced_config_map(ns, configmap("a", namespace=ns, labels={"tier": "x"}))
    await core.create_namespaced_config_map(ns, configmap("b", namespace=ns, labels={"tier": "y"}))
    await core.delete_collection_namespaced_config_map(ns, label_selector="tier=x")
    names = [c.metadata.name for c in (await core.list_namespaced_config_map(ns)).items]
    assert names == ["b", "kube-root-ca.crt"]


async def test_node_port_service_gets_a_port_allocated(k8s_api: ApiClient, ns: str) -> None:
    """A NodePort Service without nodePort gets one from 30000-32767; an update that
    leaves it out keeps it."""
    core = CoreV1Api(k8s_api)
    service = {
        "metadata": {"name": "np"},
        "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]},
    }
    created = await core.create_namespaced_service(ns, service)
    port = created.spec.ports[0].node_port
    assert 30000 <= port <= 32767
    service["metadata"]["resourceVersion"] = created.metadata.resource_version
    service["spec"]["clusterIP"] = created.spec.cluster_ip
    replaced = await core.replace_namespaced_service("np", ns, service)
    assert replaced.spec.ports[0].node_port == port


async def test_node_port_in_use_is_422(k8s_api: ApiClient, server: Server, ns: str) -> None:
    """Node ports are cluster-wide: one another Service holds is refused (422 Invalid)."""
    core = CoreV1Api(k8s_api)
    port = await free_node_port(server)

    def service(name: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name},
            "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": port}]},
        }

    await core.create_namespaced_service(ns, service("first"))
    with pytest.raises(ApiException) as info:
        await core.create_namespaced_service(ns, service("second"))
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (422, "Invalid")
    assert body["message"] == (
        f'Service "second" is invalid: spec.ports[0].nodePort: Invalid value: {port}: '
        "provided port is already allocated"
    )


async def test_job_selector_and_labels_come_from_its_uid(k8s_api: ApiClient, ns: str) -> None:
    """A Job without manualSelector gets a selector on its uid and matching template
    labels; a Job without labels of its own takes the template's."""
    job = {
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
    created = await BatchV1Api(k8s_api).create_namespaced_job(ns, job)
    uid = created.metadata.uid
    assert created.spec.manual_selector is False
    assert created.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": uid}
    labels = {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": "once",
        "controller-uid": uid,
        "job-name": "once",
    }
    assert created.spec.template.metadata.labels == labels
    assert created.metadata.labels == labels


async def test_unknown_resource_path_is_404(k8s_api: ApiClient, ns: str) -> None:
    """An URL naming no resource answers 404 NotFound Status."""
    with pytest.raises(ApiException) as info:
        await k8s_api.call_api(
            f"/apis/apps/v1/namespaces/{ns}/gizmos",
            "GET",
            header_params={"Accept": "application/json"},
            _return_http_data_only=True,
        )
    assert info.value.status == 404
    assert status_of(info.value)["reason"] == "NotFound"


async def test_unsupported_verb_is_405(k8s_api: ApiClient, ns: str) -> None:
    """POST to a named object is not a verb: 405 MethodNotAllowed."""
    await CoreV1Api(k8s_api).create_namespaced_config_map(ns, configmap(namespace=ns))
    with pytest.raises(ApiException) as info:
        await k8s_api.call_api(
            f"/api/v1/namespaces/{ns}/configmaps/cfg",
            "POST",
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body={},
            _return_http_data_only=True,
        )
    assert (info.value.status, status_of(info.value)["reason"]) == (405, "MethodNotAllowed")
