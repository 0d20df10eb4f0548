"""Reads: selectors, paging and watches (api-concepts.md#efficient-detection-of-changes,
#retrieving-large-results-sets-in-chunks, labels and field selectors user guides).

Every namespace holds the ``kube-root-ca.crt`` ConfigMap the controllers add, so it is
among what a list or an unlabelled selector finds."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio import watch
from kubernetes_asyncio.client import ApiClient, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from devcluster import DevCluster
from tests.devcluster.conftest import emulator_only
from tests.devcluster.manifests import configmap

ROOT_CA = "kube-root-ca.crt"


async def _seed(core: CoreV1Api, ns: str) -> None:
    for name, labels in [
        ("a", {"env": "prod", "tier": "web"}),
        ("b", {"env": "dev"}),
        ("c", {"env": "prod"}),
        ("d", {}),
    ]:
        await core.create_namespaced_config_map(ns, configmap(name, namespace=ns, labels=labels))


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("env=prod", ["a", "c"]),
        ("env==prod", ["a", "c"]),
        ("env!=prod", ["b", "d", ROOT_CA]),
        ("env in (dev,qa)", ["b"]),
        ("env notin (prod)", ["b", "d", ROOT_CA]),
        ("tier", ["a"]),
        ("!env", ["d", ROOT_CA]),
        ("env=prod,!tier", ["c"]),
    ],
)
async def test_label_selector_operators(
    k8s_api: ApiClient, ns: str, selector: str, expected: list[str]
) -> None:
    """Label selector grammar: =, ==, !=, in, notin, exists and !key, comma-ANDed."""
    core = CoreV1Api(k8s_api)
    await _seed(core, ns)
    found = await core.list_namespaced_config_map(ns, label_selector=selector)
    assert [c.metadata.name for c in found.items] == expected


async def test_field_selector_on_name_and_namespace(k8s_api: ApiClient, ns: str) -> None:
    """Field selectors: metadata.name and metadata.namespace are supported by every kind."""
    core = CoreV1Api(k8s_api)
    await _seed(core, ns)
    found = await core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.name=b,metadata.namespace={ns}"
    )
    assert [c.metadata.name for c in found.items] == ["b"]


async def test_unsupported_field_selector_is_400(k8s_api: ApiClient, ns: str) -> None:
    """A field selector on an unsupported field is 400 BadRequest."""
    with pytest.raises(ApiException) as info:
        await CoreV1Api(k8s_api).list_namespaced_config_map(ns, field_selector="data.a=1")
    assert info.value.status == 400


async def test_paging_with_limit_and_continue(k8s_api: ApiClient, ns: str) -> None:
    """Chunked lists: limit returns a continue token and remainingItemCount; following the
    tokens yields every object exactly once, in name order."""
    core = CoreV1Api(k8s_api)
    for n in range(7):
        await core.create_namespaced_config_map(ns, configmap(f"cm{n}", namespace=ns))
    page = await core.list_namespaced_config_map(ns, limit=3)
    assert page.metadata.remaining_item_count == 5
    names = [c.metadata.name for c in page.items]
    while page.metadata._continue:
        page = await core.list_namespaced_config_map(ns, limit=3, _continue=page.metadata._continue)
        names += [c.metadata.name for c in page.items]
    assert names == [*(f"cm{n}" for n in range(7)), ROOT_CA]


async def _collect(core: CoreV1Api, ns: str, count: int, **kwargs: Any) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    w = watch.Watch()
    async with w.stream(core.list_namespaced_config_map, ns, timeout_seconds=5, **kwargs) as stream:
        async for event in stream:
            events.append((event["type"], event["object"].metadata.name))
            if len(events) >= count:
                w.stop()
    return events


async def _list_rv(core: CoreV1Api, ns: str) -> str:
    return str((await core.list_namespaced_config_map(ns)).metadata.resource_version)


async def test_watch_streams_added_modified_deleted(k8s_api: ApiClient, ns: str) -> None:
    """Watch from a resourceVersion: every later change arrives in order as
    ADDED, MODIFIED, DELETED."""
    core = CoreV1Api(k8s_api)
    start = await _list_rv(core, ns)
    task = asyncio.create_task(_collect(core, ns, 3, resource_version=start))
    await core.create_namespaced_config_map(ns, configmap(namespace=ns))
    await core.patch_namespaced_config_map("cfg", ns, {"data": {"a": "2"}})
    await core.delete_namespaced_config_map("cfg", ns)
    assert await task == [("ADDED", "cfg"), ("MODIFIED", "cfg"), ("DELETED", "cfg")]


async def test_watch_replays_history_after_resource_version(k8s_api: ApiClient, ns: str) -> None:
    """Watch from an older resourceVersion replays the changes made since then."""
    core = CoreV1Api(k8s_api)
    start = await _list_rv(core, ns)
    await core.create_namespaced_config_map(ns, configmap("x", namespace=ns))
    await core.create_namespaced_config_map(ns, configmap("y", namespace=ns))
    assert await _collect(core, ns, 2, resource_version=start) == [("ADDED", "x"), ("ADDED", "y")]


async def test_watch_without_resource_version_starts_with_existing(
    k8s_api: ApiClient, ns: str
) -> None:
    """Watch without resourceVersion: synthetic ADDED events for existing objects first."""
    core = CoreV1Api(k8s_api)
    await core.create_namespaced_config_map(ns, configmap("old", namespace=ns))
    assert sorted(await _collect(core, ns, 2)) == [("ADDED", ROOT_CA), ("ADDED", "old")]


async def test_watch_applies_label_selector_transitions(k8s_api: ApiClient, ns: str) -> None:
    """A watched object that stops matching the selector is delivered as DELETED."""
    core = CoreV1Api(k8s_api)
    await core.create_namespaced_config_map(ns, configmap(namespace=ns, labels={"sel": "yes"}))
    start = await _list_rv(core, ns)
    task = asyncio.create_task(
        _collect(core, ns, 1, resource_version=start, label_selector="sel=yes")
    )
    await core.patch_namespaced_config_map("cfg", ns, {"metadata": {"labels": {"sel": "no"}}})
    assert await task == [("DELETED", "cfg")]


async def test_watch_from_a_resource_version_before_the_server_started_is_410_gone(
    k8s_api: ApiClient, ns: str
) -> None:
    """Watch from a resourceVersion the server no longer keeps: 410 Expired."""
    with pytest.raises(ApiException) as info:
        await _collect(CoreV1Api(k8s_api), ns, 1, resource_version="1")
    assert info.value.status == 410
    assert "too old resource version: 1 (" in str(info.value.reason)


@emulator_only("watch_history is the emulator's knob; kube-apiserver's window is its own")
async def test_watch_from_too_old_resource_version_is_410_gone() -> None:
    """Watch from a compacted resourceVersion: ERROR event with a 410 Expired Status."""
    async with (
        DevCluster(watch_history=3) as cluster,
        ApiClient(_config(cluster)) as client,
    ):
        core = CoreV1Api(client)
        start = await _list_rv(core, "default")
        for n in range(5):
            await core.create_namespaced_config_map(
                "default", configmap(f"c{n}", namespace="default")
            )
        with pytest.raises(ApiException) as info:
            await _collect(core, "default", 1, resource_version=start)
        assert info.value.status == 410


async def test_watch_bookmarks_carry_the_current_resource_version(
    k8s_api: ApiClient, ns: str
) -> None:
    """allowWatchBookmarks: the server sends BOOKMARK events with only a resourceVersion
    (kube-apiserver sends one at the latest 2 s before the watch times out)."""
    start = await _list_rv(CoreV1Api(k8s_api), ns)
    url = (
        f"{k8s_api.configuration.host}/api/v1/namespaces/{ns}/configmaps?watch=true"
        f"&allowWatchBookmarks=true&timeoutSeconds=4&resourceVersion={start}"
    )
    resp = await k8s_api.rest_client.pool_manager.get(url)
    line = await asyncio.wait_for(resp.content.readline(), 5)
    resp.close()
    assert b'"type":"BOOKMARK"' in line
    assert b'"resourceVersion"' in line


def _config(cluster: DevCluster) -> Any:
    from kubernetes_asyncio.client import Configuration

    return Configuration(host=cluster.url)
