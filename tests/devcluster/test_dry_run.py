"""dryRun=All on every mutating verb (api-concepts.md#dry-run): full validation and the
would-be result, nothing stored, no resourceVersion bump."""

from __future__ import annotations

import pytest
from kubernetes_asyncio.client import ApiClient, AppsV1Api, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from tests.devcluster.manifests import configmap, deployment, status_of


async def _rv(k8s_api: ApiClient) -> str:
    listing = await CoreV1Api(k8s_api).list_namespaced_config_map("default")
    return str(listing.metadata.resource_version)


async def test_dry_run_create_stores_nothing(k8s_api: ApiClient) -> None:
    """dryRun create returns the would-be object (with defaults) and stores nothing."""
    core = CoreV1Api(k8s_api)
    before = await _rv(k8s_api)
    result = await AppsV1Api(k8s_api).create_namespaced_deployment(
        "default", deployment(), dry_run="All"
    )
    assert result.spec.strategy.type == "RollingUpdate"
    assert await _rv(k8s_api) == before
    with pytest.raises(ApiException):
        await AppsV1Api(k8s_api).read_namespaced_deployment("web", "default")
    assert (await core.list_namespaced_config_map("default")).items == []


async def test_dry_run_still_validates(k8s_api: ApiClient) -> None:
    """dryRun runs full validation: an invalid object is 422 without being stored."""
    with pytest.raises(ApiException) as info:
        await CoreV1Api(k8s_api).create_namespaced_config_map(
            "default", configmap(name="BAD"), dry_run="All"
        )
    assert status_of(info.value)["reason"] == "Invalid"


async def test_dry_run_apply_returns_result_without_writing(k8s_api: ApiClient) -> None:
    """dryRun apply shows the merged result; the live object keeps its resourceVersion."""
    core = CoreV1Api(k8s_api)
    live = await core.create_namespaced_config_map("default", configmap())
    preview = await core.patch_namespaced_config_map(
        "cfg",
        "default",
        configmap(data={"a": "9"}),
        field_manager="gitops",
        force=True,
        dry_run="All",
        _content_type="application/apply-patch+yaml",
    )
    assert preview.data == {"a": "9"}
    after = await core.read_namespaced_config_map("cfg", "default")
    assert after.data == {"a": "1"}
    assert after.metadata.resource_version == live.metadata.resource_version


async def test_dry_run_apply_reports_conflicts(k8s_api: ApiClient) -> None:
    """dryRun apply detects ownership conflicts exactly as a real apply would."""
    core = CoreV1Api(k8s_api)
    await core.create_namespaced_config_map("default", configmap(), field_manager="creator")
    with pytest.raises(ApiException) as info:
        await core.patch_namespaced_config_map(
            "cfg",
            "default",
            configmap(data={"a": "2"}),
            field_manager="gitops",
            dry_run="All",
            _content_type="application/apply-patch+yaml",
        )
    assert info.value.status == 409


async def test_dry_run_update_and_patch_do_not_persist(k8s_api: ApiClient) -> None:
    """dryRun on PUT and PATCH: result returned, stored object unchanged."""
    core = CoreV1Api(k8s_api)
    live = await core.create_namespaced_config_map("default", configmap())
    live.data = {"a": "put"}
    put = await core.replace_namespaced_config_map("cfg", "default", live, dry_run="All")
    patched = await core.patch_namespaced_config_map(
        "cfg", "default", {"data": {"a": "patch"}}, dry_run="All"
    )
    assert (put.data, patched.data) == ({"a": "put"}, {"a": "patch"})
    assert (await core.read_namespaced_config_map("cfg", "default")).data == {"a": "1"}


async def test_dry_run_delete_keeps_the_object(k8s_api: ApiClient) -> None:
    """dryRun delete answers as a delete would and keeps the object."""
    core = CoreV1Api(k8s_api)
    await core.create_namespaced_config_map("default", configmap())
    await core.delete_namespaced_config_map("cfg", "default", dry_run="All")
    assert (await core.read_namespaced_config_map("cfg", "default")).data == {"a": "1"}


async def test_invalid_dry_run_value_is_400(k8s_api: ApiClient) -> None:
    """Only dryRun=All is defined; anything else is 400 BadRequest."""
    with pytest.raises(ApiException) as info:
        await CoreV1Api(k8s_api).create_namespaced_config_map(
            "default", configmap(), dry_run="Some"
        )
    assert info.value.status == 400
