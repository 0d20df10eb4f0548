"""Faults on demand: the next N matching requests fail or stall."""

from __future__ import annotations

import asyncio

import pytest
from kubernetes_asyncio.client import ApiClient, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from devcluster import DevCluster
from tests.devcluster.conftest import emulator_only
from tests.devcluster.manifests import configmap, status_of

pytestmark = emulator_only(
    "fault rules are the emulator's (tests of the syncer use ApiProxy in front of the bed)"
)


async def test_python_fault_fails_next_requests_then_clears(
    devcluster: DevCluster, k8s_api: ApiClient
) -> None:
    """cluster.faults.add(verb, resource, count, code): exactly `count` requests fail with
    a Status of that code, then service resumes."""
    devcluster.faults.add("create", "configmaps", count=2, code=503)
    core = CoreV1Api(k8s_api)
    for _ in range(2):
        with pytest.raises(ApiException) as info:
            await core.create_namespaced_config_map("default", configmap(namespace="default"))
        assert status_of(info.value)["reason"] == "ServiceUnavailable"
    await core.create_namespaced_config_map("default", configmap(namespace="default"))


async def test_fault_matches_only_its_verb(devcluster: DevCluster, k8s_api: ApiClient) -> None:
    """A rule for `patch` leaves `get` alone."""
    devcluster.faults.add("patch", "configmaps", code=500)
    core = CoreV1Api(k8s_api)
    await core.create_namespaced_config_map("default", configmap(namespace="default"))
    await core.read_namespaced_config_map("cfg", "default")
    with pytest.raises(ApiException) as info:
        await core.patch_namespaced_config_map("cfg", "default", {"data": {"a": "2"}})
    assert info.value.status == 500


async def test_fault_delay_over_http(devcluster: DevCluster, k8s_api: ApiClient) -> None:
    """POST /_devcluster/faults adds a rule over HTTP; code 0 means delay only."""
    pool = k8s_api.rest_client.pool_manager
    resp = await pool.post(
        f"{devcluster.url}/_devcluster/faults",
        json={"verb": "list", "resource": "configmaps", "count": 1, "code": 0, "delay": 0.3},
    )
    assert resp.status == 201
    loop = asyncio.get_running_loop()
    started = loop.time()
    await CoreV1Api(k8s_api).list_namespaced_config_map("default")
    assert loop.time() - started >= 0.3
    listing = await (await pool.get(f"{devcluster.url}/_devcluster/faults")).json()
    assert listing == {"faults": []}
