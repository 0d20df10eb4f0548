"""Object lifecycle through the typed client: create, get, update, patch, delete.

Conventions cited per test from sig-architecture/api-conventions.md and api-concepts.md.
"""

from __future__ import annotations

import asyncio

import pytest
from kubernetes_asyncio.client import ApiClient, AppsV1Api, CoreV1Api, RbacAuthorizationV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from tests.devcluster.manifests import configmap, deployment, status_of


async def test_create_sets_server_metadata(k8s_api: ApiClient) -> None:
    """api-conventions.md#metadata: the server sets uid, resourceVersion and
    creationTimestamp on create; generation starts at 1 for kinds with a spec."""
    apps = AppsV1Api(k8s_api)
    created = await apps.create_namespaced_deployment("default", deployment())
    assert created.metadata.uid
    assert int(created.metadata.resource_version) > 0
    assert created.metadata.creation_timestamp is not None
    assert created.metadata.generation == 1


async def test_resource_version_is_cluster_wide_and_increasing(k8s_api: ApiClient) -> None:
    """api-concepts.md#resource-versions: one monotonic counter across all kinds."""
    core = CoreV1Api(k8s_api)
    first = await core.create_namespaced_config_map("default", configmap("a"))
    second = await core.create_namespaced_secret(
        "default", {"metadata": {"name": "s"}, "stringData": {"k": "v"}}
    )
    third = await core.create_namespaced_config_map("default", configmap("b"))
    versions = [int(o.metadata.resource_version) for o in (first, second, third)]
    assert versions == sorted(versions)
    assert len(set(versions)) == 3


async def test_create_existing_name_is_409_already_exists(k8s_api: ApiClient) -> None:
    """api-conventions.md#http-status-codes: 409 with reason AlreadyExists on a duplicate."""
    core = CoreV1Api(k8s_api)
    await core.create_namespaced_config_map("default", configmap())
    with pytest.raises(ApiException) as info:
        await core.create_namespaced_config_map("default", configmap())
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (409, "AlreadyExists")
    assert body["details"] == {"name": "cfg", "kind": "configmaps"}


async def test_get_missing_object_is_404_not_found_status(k8s_api: ApiClient) -> None:
    """api-conventions.md#response-status-kind: a Status with reason NotFound and details."""
    with pytest.raises(ApiException) as info:
        await AppsV1Api(k8s_api).read_namespaced_deployment("nope", "default")
    body = status_of(info.value)
    assert body["kind"] == "Status"
    assert body["reason"] == "NotFound"
    assert body["code"] == 404
    assert body["message"] == 'deployments.apps "nope" not found'
    assert body["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


async def test_put_with_stale_resource_version_is_409_conflict(k8s_api: ApiClient) -> None:
    """api-conventions.md#concurrency-control-and-consistency: PUT with a stale
    resourceVersion is 409 Conflict."""
    core = CoreV1Api(k8s_api)
    created = await core.create_namespaced_config_map("default", configmap())
    stale = created.metadata.resource_version
    created.data = {"a": "2"}
    await core.replace_namespaced_config_map("cfg", "default", created)
    created.data = {"a": "3"}
    created.metadata.resource_version = stale
    with pytest.raises(ApiException) as info:
        await core.replace_namespaced_config_map("cfg", "default", created)
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (409, "Conflict")
    assert "the object has been modified" in body["message"]


async def test_generation_bumps_on_spec_change_only(k8s_api: ApiClient) -> None:
    """api-conventions.md#metadata: generation increments on changes to the desired state
    (spec), not on metadata-only changes."""
    apps = AppsV1Api(k8s_api)
    await apps.create_namespaced_deployment("default", deployment())
    labelled = await apps.patch_namespaced_deployment(
        "web", "default", {"metadata": {"labels": {"team": "a"}}}
    )
    assert labelled.metadata.generation == 1
    scaled = await apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 5}})
    assert scaled.metadata.generation == 2


async def test_unchanged_update_keeps_resource_version(k8s_api: ApiClient) -> None:
    """api-concepts.md: a write that changes nothing is not persisted (no new version)."""
    core = CoreV1Api(k8s_api)
    created = await core.create_namespaced_config_map("default", configmap())
    same = await core.patch_namespaced_config_map("cfg", "default", {"data": {"a": "1"}})
    assert same.metadata.resource_version == created.metadata.resource_version


async def test_create_in_missing_namespace_is_404(k8s_api: ApiClient) -> None:
    """Namespaced objects need an existing namespace: NotFound names the namespace."""
    with pytest.raises(ApiException) as info:
        await CoreV1Api(k8s_api).create_namespaced_config_map("ghost", configmap(namespace="ghost"))
    assert info.value.status == 404
    assert status_of(info.value)["message"] == 'namespaces "ghost" not found'


async def test_namespace_mismatch_between_body_and_url_is_400(k8s_api: ApiClient) -> None:
    """The body's namespace must match the URL's: 400 BadRequest."""
    with pytest.raises(ApiException) as info:
        await CoreV1Api(k8s_api).create_namespaced_config_map(
            "default", configmap(namespace="kube-system")
        )
    assert status_of(info.value)["reason"] == "BadRequest"


async def test_cluster_scoped_object_rejects_a_namespace(k8s_api: ApiClient) -> None:
    """Cluster-scoped kinds: metadata.namespace is Forbidden (422 Invalid)."""
    with pytest.raises(ApiException) as info:
        await RbacAuthorizationV1Api(k8s_api).create_cluster_role(
            {"metadata": {"name": "reader", "namespace": "default"}, "rules": []}
        )
    body = status_of(info.value)
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.namespace"


async def test_invalid_name_is_422_with_field_cause(k8s_api: ApiClient) -> None:
    """api-conventions.md#validation: DNS-1123 names; 422 Invalid lists field causes."""
    with pytest.raises(ApiException) as info:
        await CoreV1Api(k8s_api).create_namespaced_config_map(
            "default", configmap(name="Not_Valid")
        )
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (422, "Invalid")
    cause = body["details"]["causes"][0]
    assert cause["field"] == "metadata.name"
    assert cause["reason"] == "FieldValueInvalid"
    assert body["details"]["kind"] == "ConfigMap"


async def test_deployment_without_containers_is_invalid(k8s_api: ApiClient) -> None:
    """Required fields are reported per field (FieldValueRequired)."""
    bad = deployment()
    bad["spec"]["template"]["spec"]["containers"] = []
    with pytest.raises(ApiException) as info:
        await AppsV1Api(k8s_api).create_namespaced_deployment("default", bad)
    causes = status_of(info.value)["details"]["causes"]
    assert {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.template.spec.containers",
    } in causes


async def test_selector_must_match_template_labels(k8s_api: ApiClient) -> None:
    """Deployment validation: `selector` does not match template `labels` is Invalid."""
    bad = deployment()
    bad["spec"]["selector"]["matchLabels"] = {"app": "other"}
    with pytest.raises(ApiException) as info:
        await AppsV1Api(k8s_api).create_namespaced_deployment("default", bad)
    assert "does not match template" in status_of(info.value)["message"]


async def test_deployment_selector_is_immutable(k8s_api: ApiClient) -> None:
    """apps/v1 Deployment: spec.selector is immutable after creation ('field is immutable')."""
    apps = AppsV1Api(k8s_api)
    await apps.create_namespaced_deployment("default", deployment())
    with pytest.raises(ApiException) as info:
        await apps.patch_namespaced_deployment(
            "web",
            "default",
            {
                "spec": {
                    "selector": {"matchLabels": {"app": "web", "x": "y"}},
                    "template": {"metadata": {"labels": {"app": "web", "x": "y"}}},
                }
            },
        )
    assert "field is immutable" in status_of(info.value)["message"]


async def test_strategic_merge_patch_merges_containers_by_name(k8s_api: ApiClient) -> None:
    """Strategic merge patch: containers merge by their `name` key, env by `name`."""
    apps = AppsV1Api(k8s_api)
    dep = deployment()
    dep["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox:1"})
    await apps.create_namespaced_deployment("default", dep)
    patched = await apps.patch_namespaced_deployment(
        "web",
        "default",
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


async def test_json_merge_patch_replaces_lists_and_null_deletes(k8s_api: ApiClient) -> None:
    """RFC 7386 merge patch: lists are replaced whole, null removes a key."""
    core = CoreV1Api(k8s_api)
    await core.create_namespaced_config_map("default", configmap(data={"a": "1", "b": "2"}))
    resp = await core.patch_namespaced_config_map(
        "cfg",
        "default",
        {"data": {"a": None, "c": "3"}},
        _content_type="application/merge-patch+json",
    )
    assert resp.data == {"b": "2", "c": "3"}


async def test_json_patch_operations_apply(k8s_api: ApiClient) -> None:
    """RFC 6902 JSON patch (application/json-patch+json) is supported."""
    core = CoreV1Api(k8s_api)
    await core.create_namespaced_config_map("default", configmap())
    patched = await core.patch_namespaced_config_map(
        "cfg",
        "default",
        [{"op": "add", "path": "/data/z", "value": "26"}, {"op": "remove", "path": "/data/a"}],
    )
    assert patched.data == {"z": "26"}


async def test_delete_with_finalizer_sets_deletion_timestamp(k8s_api: ApiClient) -> None:
    """api-concepts.md#finalizers: delete sets deletionTimestamp and keeps the object until
    its finalizers are removed; then it is gone."""
    core = CoreV1Api(k8s_api)
    cm = configmap()
    cm["metadata"]["finalizers"] = ["example.com/hold"]
    await core.create_namespaced_config_map("default", cm)
    await core.delete_namespaced_config_map("cfg", "default")
    held = await core.read_namespaced_config_map("cfg", "default")
    assert held.metadata.deletion_timestamp is not None
    await core.patch_namespaced_config_map("cfg", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as info:
        await core.read_namespaced_config_map("cfg", "default")
    assert info.value.status == 404


async def test_delete_returns_success_status(k8s_api: ApiClient) -> None:
    """DELETE of a built-in answers a Status with status Success and the deleted uid."""
    core = CoreV1Api(k8s_api)
    created = await core.create_namespaced_config_map("default", configmap())
    result = await core.delete_namespaced_config_map(
        "cfg", "default", propagation_policy="Background"
    )
    assert result.status == "Success"
    assert result.details.uid == created.metadata.uid


async def test_deletecollection_honours_label_selector(k8s_api: ApiClient) -> None:
    """deletecollection deletes exactly the objects the selector matches."""
    core = CoreV1Api(k8s_api)
    await core.create_namespaced_config_map("default", configmap("a", labels={"tier": "x"}))
    await core.create_namespaced_config_map("default", configmap("b", labels={"tier": "y"}))
    await core.delete_collection_namespaced_config_map("default", label_selector="tier=x")
    names = [c.metadata.name for c in (await core.list_namespaced_config_map("default")).items]
    assert names == ["b"]


async def test_deleting_a_namespace_removes_its_objects(k8s_api: ApiClient) -> None:
    """Namespace deletion: the namespace terminates and takes its contents with it."""
    core = CoreV1Api(k8s_api)
    await core.create_namespace({"metadata": {"name": "team"}})
    await core.create_namespaced_config_map("team", configmap(namespace="team"))
    await core.delete_namespace("team")
    assert (await core.read_namespace("team")).status.phase == "Terminating"
    for _ in range(50):
        try:
            await core.read_namespace("team")
        except ApiException as exc:
            assert exc.status == 404
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("namespace never went away")
    assert (
        await core.list_config_map_for_all_namespaces(field_selector="metadata.namespace=team")
    ).items == []


async def test_unknown_resource_path_is_404(k8s_api: ApiClient) -> None:
    """An URL naming no resource answers 404 NotFound Status."""
    with pytest.raises(ApiException) as info:
        await k8s_api.call_api(
            "/apis/apps/v1/namespaces/default/gizmos",
            "GET",
            header_params={"Accept": "application/json"},
            _return_http_data_only=True,
        )
    assert info.value.status == 404
    assert status_of(info.value)["reason"] == "NotFound"


async def test_unsupported_verb_is_405(k8s_api: ApiClient) -> None:
    """POST to a named object is not a verb: 405 MethodNotAllowed."""
    await CoreV1Api(k8s_api).create_namespaced_config_map("default", configmap())
    with pytest.raises(ApiException) as info:
        await k8s_api.call_api(
            "/api/v1/namespaces/default/configmaps/cfg",
            "POST",
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body={},
            _return_http_data_only=True,
        )
    assert (info.value.status, status_of(info.value)["reason"]) == (405, "MethodNotAllowed")
