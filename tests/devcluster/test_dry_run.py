"""dryRun=All on every mutating verb (api-concepts.md#dry-run): full validation and the
would-be result, nothing stored, no resourceVersion bump."""

from __future__ import annotations

import pytest
from kubernetes_asyncio import watch
from kubernetes_asyncio.client import ApiClient, AppsV1Api, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from tests.devcluster.conftest import Server
from tests.devcluster.manifests import configmap, deployment, status_of


async def _first_event(apps: AppsV1Api, ns: str, since: str) -> tuple[str, str]:
    w = watch.Watch()
    async with w.stream(
        apps.list_namespaced_deployment, ns, resource_version=since, timeout_seconds=5
    ) as stream:
        async for event in stream:
            w.stop()
            return event["type"], event["object"].metadata.name
    raise AssertionError("no watch event")


async def test_dry_run_create_stores_nothing(k8s_api: ApiClient, ns: str) -> None:
    """dryRun create returns the would-be object (with defaults) and stores nothing: a
    watch from before it sees the next real write first."""
    apps = AppsV1Api(k8s_api)
    before = (await apps.list_namespaced_deployment(ns)).metadata.resource_version
    result = await apps.create_namespaced_deployment(ns, deployment(namespace=ns), dry_run="All")
    assert result.spec.strategy.type == "RollingUpdate"
    with pytest.raises(ApiException) as info:
        await apps.read_namespaced_deployment("web", ns)
    assert info.value.status == 404
    assert (await apps.list_namespaced_deployment(ns)).items == []
    await apps.create_namespaced_deployment(ns, deployment("marker", namespace=ns))
    assert await _first_event(apps, ns, before) == ("ADDED", "marker")


async def test_dry_run_still_validates(k8s_api: ApiClient, ns: str) -> None:
    """dryRun runs full validation: an invalid object is 422 without being stored."""
    with pytest.raises(ApiException) as info:
        await CoreV1Api(k8s_api).create_namespaced_config_map(
            ns, configmap(name="BAD", namespace=ns), dry_run="All"
        )
    assert status_of(info.value)["reason"] == "Invalid"


async def test_dry_run_apply_returns_result_without_writing(k8s_api: ApiClient, ns: str) -> None:
    """dryRun apply shows the merged result; the live object keeps its resourceVersion."""
    core = CoreV1Api(k8s_api)
    live = await core.create_namespaced_config_map(ns, configmap(namespace=ns))
    preview = await core.patch_namespaced_config_map(
        "cfg",
        ns,
        configmap(namespace=ns, data={"a": "9"}),
        field_manager="gitops",
        force=True,
        dry_run="All",
        _content_type="application/apply-patch+yaml",
    )
    assert preview.data == {"a": "9"}
    after = await core.read_namespaced_config_map("cfg", ns)
    assert after.data == {"a": "1"}
    assert after.metadata.resource_version == live.metadata.resource_version


async def test_dry_run_apply_reports_conflicts(k8s_api: ApiClient, ns: str) -> None:
    """dryRun apply detects ownership conflicts exactly as a real apply would."""
    core = CoreV1Api(k8s_api)
    await core.create_namespaced_config_map(ns, configmap(namespace=ns), field_manager="creator")
    with pytest.raises(ApiException) as info:
        await core.patch_namespaced_config_map(
            "cfg",
            ns,
            configmap(namespace=ns, data={"a": "2"}),
            field_manager="gitops",
            dry_run="All",
            _content_type="application/apply-patch+yaml",
        )
    assert info.value.status == 409


async def test_dry_run_apply_into_a_missing_namespace_is_404(
    k8s_api: ApiClient, server: Server
) -> None:
    """A dry run checks the namespace as a write would: the syncer's dry run of a commit
    before its Namespace exists meets this 404 (and applies Namespaces first)."""
    ghost = server.name("ghost")
    with pytest.raises(ApiException) as info:
        await CoreV1Api(k8s_api).patch_namespaced_config_map(
            "cfg",
            ghost,
            configmap(namespace=ghost),
            field_manager="gitops",
            dry_run="All",
            _content_type="application/apply-patch+yaml",
        )
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (404, "NotFound")
    assert body["message"] == f'namespaces "{ghost}" not found'
    assert body["details"] == {"name": ghost, "kind": "namespaces"}


async def test_dry_run_update_and_patch_do_not_persist(k8s_api: ApiClient, ns: str) -> None:
    """dryRun on PUT and PATCH: result returned, stored object unchanged."""
    core = CoreV1Api(k8s_api)
    live = await core.create_namespaced_config_map(ns, configmap(namespace=ns))
    live.data = {"a": "put"}
    put = await core.replace_namespaced_config_map("cfg", ns, live, dry_run="All")
    patched = await core.patch_namespaced_config_map(
        "cfg", ns, {"data": {"a": "patch"}}, dry_run="All"
    )
    assert (put.data, patched.data) == ({"a": "put"}, {"a": "patch"})
    assert (await core.read_namespaced_config_map("cfg", ns)).data == {"a": "1"}


async def test_dry_run_delete_keeps_the_object(k8s_api: ApiClient, ns: str) -> None:
    """dryRun delete answers as a delete would and keeps the object."""
    core = CoreV1Api(k8s_api)
    await core.create_namespaced_config_map(ns, configmap(namespace=ns))
    await core.delete_namespaced_config_map("cfg", ns, dry_run="All")
    assert (await core.read_namespaced_config_map("cfg", ns)).data == {"a": "1"}


async def test_invalid_dry_run_value_is_422(k8s_api: ApiClient, ns: str) -> None:
    """Only dryRun=All is defined; anything else is 422 Invalid, named by the verb's
    options kind (CreateOptions for a create)."""
    with pytest.raises(ApiException) as info:
        await CoreV1Api(k8s_api).create_namespaced_config_map(
            ns, configmap(namespace=ns), dry_run="Some"
        )
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (422, "Invalid")
    assert body["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: ["Some"]: '
        'supported values: "All"'
    )
    assert body["details"]["causes"][0]["reason"] == "FieldValueNotSupported"
