"""Namespaces: what every new one holds, and how one goes away (the namespace and
service-account controllers, and the root-CA publisher, of kube-controller-manager)."""

from __future__ import annotations

import asyncio

import pytest
from kubernetes_asyncio.client import ApiClient, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from tests.devcluster.conftest import Server, emulator_differs, settled_namespace
from tests.devcluster.manifests import configmap, status_of

ROOT_CA = "kube-root-ca.crt"
GONE = 60.0
"""Seconds a namespace may take to go on the bed (its controller works in passes)."""


async def _gone(core: CoreV1Api, name: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GONE
    while loop.time() < deadline:
        try:
            await core.read_namespace(name)
        except ApiException as exc:
            assert exc.status == 404
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"namespace {name} never went away")


async def test_a_new_namespace_gets_the_default_service_account_and_the_root_ca(
    k8s_api: ApiClient, server: Server
) -> None:
    """Every namespace gets the ``default`` ServiceAccount and the ``kube-root-ca.crt``
    ConfigMap (key ``ca.crt``, with its description), and nothing else."""
    core = CoreV1Api(k8s_api)
    name = await settled_namespace(server)
    accounts = (await core.list_namespaced_service_account(name)).items
    assert [a.metadata.name for a in accounts] == ["default"]
    maps = (await core.list_namespaced_config_map(name)).items
    assert [m.metadata.name for m in maps] == [ROOT_CA]
    assert list(maps[0].data) == ["ca.crt"]
    description = maps[0].metadata.annotations["kubernetes.io/description"]
    assert description.startswith(
        "Contains a CA bundle that can be used to verify the kube-apiserver"
    )


@emulator_differs(
    "the emulator serves plain HTTP and has no CA, so its kube-root-ca.crt holds an empty "
    "ca.crt; nothing runs in pods on it that could use one"
)
async def test_the_root_ca_config_map_holds_the_cluster_ca(k8s_api: ApiClient, ns: str) -> None:
    root = await CoreV1Api(k8s_api).read_namespaced_config_map(ROOT_CA, ns)
    assert root.data["ca.crt"].startswith("-----BEGIN CERTIFICATE-----\n")


async def test_deleting_a_namespace_removes_its_objects(k8s_api: ApiClient, server: Server) -> None:
    """Namespace deletion: the namespace terminates and takes its contents with it."""
    core = CoreV1Api(k8s_api)
    team = server.name("team")
    await core.create_namespace({"metadata": {"name": team}})
    await core.create_namespaced_config_map(team, configmap(namespace=team))
    # The answer is the namespace as it now is (read from it: it may be gone by a read).
    url = f"{k8s_api.configuration.host}/api/v1/namespaces/{team}"
    async with k8s_api.rest_client.pool_manager.delete(url) as resp:
        answer = await resp.json()
    assert (resp.status, answer["kind"], answer["status"]["phase"]) == (
        200,
        "Namespace",
        "Terminating",
    )
    await _gone(core, team)
    listed = await core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.namespace={team}"
    )
    assert listed.items == []


async def test_a_terminating_namespace_refuses_new_content_and_waits_for_finalizers(
    k8s_api: ApiClient, server: Server
) -> None:
    """An object with a finalizer holds its namespace in Terminating (marked for deletion
    itself); creating there is 403 Forbidden; once the finalizer goes, so does all."""
    core = CoreV1Api(k8s_api)
    team = await settled_namespace(server, "team")
    held = configmap("held", namespace=team)
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await core.create_namespaced_config_map(team, held)
    await core.delete_namespace(team)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GONE
    while not (await core.read_namespaced_config_map("held", team)).metadata.deletion_timestamp:
        assert loop.time() < deadline, "the namespace controller never deleted the object"
        await asyncio.sleep(0.05)
    assert (await core.read_namespace(team)).status.phase == "Terminating"
    with pytest.raises(ApiException) as info:
        await core.create_namespaced_config_map(team, configmap("late", namespace=team))
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == (
        f'configmaps "late" is forbidden: unable to create new content in namespace {team} '
        "because it is being terminated"
    )
    await core.patch_namespaced_config_map("held", team, {"metadata": {"finalizers": None}})
    await _gone(core, team)
