"""Server-side apply (kubernetes.io/docs/reference/using-api/server-side-apply/)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient, AppsV1Api, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.dynamic import DynamicClient

from tests.devcluster.manifests import configmap, deployment, status_of

APPLY = "application/apply-patch+yaml"


async def apply_deployment(
    k8s_api: ApiClient, body: dict[str, Any], manager: str = "gitops", force: bool = False
) -> Any:
    return await AppsV1Api(k8s_api).patch_namespaced_deployment(
        body["metadata"]["name"],
        body["metadata"]["namespace"],
        body,
        field_manager=manager,
        force=force,
        _content_type=APPLY,
    )


async def apply_configmap(
    k8s_api: ApiClient, body: dict[str, Any], manager: str = "gitops", force: bool = False
) -> Any:
    return await CoreV1Api(k8s_api).patch_namespaced_config_map(
        body["metadata"]["name"],
        body["metadata"]["namespace"],
        body,
        field_manager=manager,
        force=force,
        _content_type=APPLY,
    )


async def test_apply_creates_a_missing_object(k8s_api: ApiClient, ns: str) -> None:
    """SSA: applying an object that does not exist creates it (201)."""
    created = await apply_deployment(k8s_api, deployment(namespace=ns))
    assert created.metadata.uid
    assert created.spec.replicas == 2


async def test_apply_records_managed_fields_for_the_manager(k8s_api: ApiClient, ns: str) -> None:
    """SSA#field-management: managedFields has an Apply entry per manager in FieldsV1."""
    created = await apply_deployment(k8s_api, deployment(namespace=ns))
    entry = next(e for e in created.metadata.managed_fields if e.manager == "gitops")
    assert entry.operation == "Apply"
    assert entry.fields_type == "FieldsV1"
    assert entry.fields_v1["f:spec"]["f:replicas"] == {}
    containers = entry.fields_v1["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert 'k:{"name":"web"}' in containers


async def test_reapplying_same_content_is_a_no_op(k8s_api: ApiClient, ns: str) -> None:
    """SSA: applying an unchanged configuration does not write (resourceVersion unchanged),
    also for an object the server defaulted (Service type, port protocol, targetPort)."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    core = CoreV1Api(k8s_api)
    first = await core.patch_namespaced_service(
        "web", ns, service, field_manager="gitops", _content_type=APPLY
    )
    again = await core.patch_namespaced_service(
        "web", ns, service, field_manager="gitops", _content_type=APPLY
    )
    assert first.spec.type == "ClusterIP"
    assert again.metadata.resource_version == first.metadata.resource_version


async def test_conflicting_apply_is_409_listing_fields(k8s_api: ApiClient, ns: str) -> None:
    """SSA#conflicts: another manager's differing value is a 409 Conflict whose causes name
    the field and the owning manager (an applier by its name alone); the details carry
    the causes only."""
    await apply_deployment(k8s_api, deployment(namespace=ns), manager="gitops")
    with pytest.raises(ApiException) as info:
        await apply_deployment(k8s_api, deployment(replicas=5, namespace=ns), manager="hpa-like")
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (409, "Conflict")
    assert body["message"] == 'Apply failed with 1 conflict: conflict with "gitops": .spec.replicas'
    assert body["details"] == {
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "gitops"',
                "field": ".spec.replicas",
            }
        ]
    }


async def test_conflicts_with_several_managers_are_grouped_by_manager(
    k8s_api: ApiClient, ns: str
) -> None:
    """SSA#conflicts: the message lists each owner's fields under it, managers in order; an
    updater is named with its subresource and apiVersion."""
    await apply_deployment(k8s_api, deployment(namespace=ns), manager="one")
    await AppsV1Api(k8s_api).patch_namespaced_deployment_scale(
        "web", ns, {"spec": {"replicas": 3}}, field_manager="kubectl"
    )
    with pytest.raises(ApiException) as info:
        await apply_deployment(
            k8s_api, deployment(replicas=5, image="nginx:2", namespace=ns), manager="two"
        )
    body = status_of(info.value)
    assert body["message"] == (
        "Apply failed with 2 conflicts: "
        'conflicts with "kubectl" with subresource "scale" using apps/v1:\n- .spec.replicas\n'
        'conflicts with "one":\n- .spec.template.spec.containers[name="web"].image'
    )
    causes = sorted((c["field"], c["message"]) for c in body["details"]["causes"])
    assert causes == [
        (".spec.replicas", 'conflict with "kubectl" with subresource "scale" using apps/v1'),
        ('.spec.template.spec.containers[name="web"].image', 'conflict with "one"'),
    ]


async def test_same_value_from_two_managers_is_shared_not_a_conflict(
    k8s_api: ApiClient, ns: str
) -> None:
    """SSA#conflicts: applying an identical value shares ownership without conflict."""
    await apply_deployment(k8s_api, deployment(namespace=ns), manager="one")
    shared = await apply_deployment(k8s_api, deployment(namespace=ns), manager="two")
    managers = {e.manager for e in shared.metadata.managed_fields}
    assert {"one", "two"} <= managers


async def test_forced_apply_takes_ownership(k8s_api: ApiClient, ns: str) -> None:
    """SSA#conflicts: force=true overwrites the value and moves field ownership."""
    await apply_deployment(k8s_api, deployment(namespace=ns), manager="gitops")
    forced = await apply_deployment(
        k8s_api, deployment(replicas=5, namespace=ns), manager="other", force=True
    )
    assert forced.spec.replicas == 5
    gitops = next(e for e in forced.metadata.managed_fields if e.manager == "gitops")
    assert "f:replicas" not in gitops.fields_v1["f:spec"]


async def test_conflict_with_update_manager(k8s_api: ApiClient, ns: str) -> None:
    """SSA: fields changed by a plain update (kubectl edit/scale) belong to that manager and
    conflict with a later apply of a different value."""
    await apply_deployment(k8s_api, deployment(namespace=ns))
    await AppsV1Api(k8s_api).patch_namespaced_deployment(
        "web", ns, {"spec": {"replicas": 7}}, field_manager="kubectl-scale"
    )
    with pytest.raises(ApiException) as info:
        await apply_deployment(k8s_api, deployment(replicas=3, namespace=ns))
    assert status_of(info.value)["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl-scale" using apps/v1: .spec.replicas'
    )


async def test_field_dropped_from_config_is_removed(k8s_api: ApiClient, ns: str) -> None:
    """SSA#field-management: a field the manager stops applying is removed when no other
    manager owns it."""
    await apply_configmap(
        k8s_api, configmap(namespace=ns, data={"a": "1", "b": "2"}, labels={"x": "y"})
    )
    pruned = await apply_configmap(k8s_api, configmap(namespace=ns, data={"a": "1"}))
    assert pruned.data == {"a": "1"}
    assert not (pruned.metadata.labels or {})


async def test_field_dropped_but_owned_by_another_manager_stays(
    k8s_api: ApiClient, ns: str
) -> None:
    """SSA: removal only happens when no other manager still owns the field."""
    await apply_configmap(
        k8s_api, configmap(namespace=ns, data={"a": "1", "b": "2"}), manager="one"
    )
    await apply_configmap(k8s_api, configmap(namespace=ns, data={"b": "2"}), manager="two")
    kept = await apply_configmap(k8s_api, configmap(namespace=ns, data={"a": "1"}), manager="one")
    assert kept.data == {"a": "1", "b": "2"}


async def test_keyed_lists_merge_by_key_across_managers(k8s_api: ApiClient, ns: str) -> None:
    """SSA#merge-strategy: listType=map lists (containers) merge item-wise by key."""
    await apply_deployment(k8s_api, deployment(namespace=ns), manager="gitops")
    sidecar = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "envoy:1"}]}}},
    }
    merged = await apply_deployment(k8s_api, sidecar, manager="injector")
    assert [c.name for c in merged.spec.template.spec.containers] == ["web", "proxy"]
    assert merged.spec.replicas == 2


async def test_apply_without_field_manager_is_422(k8s_api: ApiClient, ns: str) -> None:
    """SSA: fieldManager is required for apply requests: 422 Invalid PatchOptions."""
    with pytest.raises(ApiException) as info:
        await CoreV1Api(k8s_api).patch_namespaced_config_map(
            "cfg", ns, configmap(namespace=ns), _content_type=APPLY
        )
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (422, "Invalid")
    assert body["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
        "is required for apply patch"
    )
    assert body["details"] == {
        "group": "meta.k8s.io",
        "kind": "PatchOptions",
        "causes": [
            {
                "reason": "FieldValueRequired",
                "message": "Required value: is required for apply patch",
                "field": "fieldManager",
            }
        ],
    }


async def test_field_manager_over_128_bytes_is_422(k8s_api: ApiClient, ns: str) -> None:
    """A fieldManager longer than 128 bytes is refused, apply or not (CreateOptions here)."""
    with pytest.raises(ApiException) as info:
        await CoreV1Api(k8s_api).create_namespaced_config_map(
            ns, configmap(namespace=ns), field_manager="m" * 129
        )
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (422, "Invalid")
    assert body["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: fieldManager: Too long: '
        "may not be more than 128 bytes"
    )


async def test_apply_via_dynamic_client(dynamic: DynamicClient, ns: str) -> None:
    """The dynamic client's server_side_apply creates then updates the object."""
    resource = await dynamic.resources.get(api_version="v1", kind="ConfigMap")
    await dynamic.server_side_apply(
        resource, body=configmap(namespace=ns), namespace=ns, field_manager="gitops"
    )
    updated = await dynamic.server_side_apply(
        resource,
        body=configmap(namespace=ns, data={"a": "2"}),
        namespace=ns,
        field_manager="gitops",
        force_conflicts=True,
    )
    assert updated.data.a == "2"


async def test_apply_accepts_a_yaml_body(k8s_api: ApiClient, ns: str) -> None:
    """apply-patch+yaml bodies may be YAML (kubectl sends JSON, which is YAML too)."""
    yaml_body = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fromyaml\n"
        f"  namespace: {ns}\ndata:\n  k: v\n"
    )
    resp = await k8s_api.rest_client.pool_manager.patch(
        f"{k8s_api.configuration.host}/api/v1/namespaces/{ns}/configmaps/fromyaml"
        "?fieldManager=gitops",
        data=yaml_body,
        headers={"Content-Type": APPLY},
    )
    assert resp.status == 201
    assert (await resp.json())["data"] == {"k": "v"}


async def test_list_item_dropped_from_config_is_removed(k8s_api: ApiClient, ns: str) -> None:
    """SSA: an item of a keyed list (a container, an env var) that the applier no longer
    sends is removed when nobody else owns it."""
    two = deployment(namespace=ns)
    spec = two["spec"]["template"]["spec"]
    spec["containers"][0]["env"] = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    spec["containers"].append({"name": "side", "image": "busybox:1"})
    await apply_deployment(k8s_api, two)
    one = deployment(namespace=ns)
    one["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    result = await apply_deployment(k8s_api, one)
    containers = result.spec.template.spec.containers
    assert [c.name for c in containers] == ["web"]
    assert [e.name for e in containers[0].env] == ["A"]
