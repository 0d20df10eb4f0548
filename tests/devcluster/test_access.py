"""Who may do what. kube-apiserver authenticates every request (client certificates here;
anything else is ``system:anonymous``) and authorizes it by RBAC. The emulator has
neither: ``gitops up`` serves it on 127.0.0.1 only, and every request acts as an admin."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiohttp
from kubernetes_asyncio.client import ApiClient, RbacAuthorizationV1Api

from tests.devcluster.conftest import Server, emulator_differs


async def _anonymous(server: Server, path: str) -> tuple[int, Any]:
    """GET ``path`` with no credentials at all (trusting the server's CA, if it has one)."""
    ca = server.kubeconfig["clusters"][0]["cluster"].get("certificate-authority")
    context = ssl.create_default_context(cafile=ca) if ca else None
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.url + path, ssl=context or True) as response,
    ):
        return response.status, await response.json(content_type=None)


async def test_version_is_public(server: Server) -> None:
    """/version answers anyone (system:public-info-viewer)."""
    status, body = await _anonymous(server, "/version")
    assert (status, body["major"]) == (200, "1")


@emulator_differs(
    "the emulator has no authentication: a request without credentials acts as an admin "
    "(gitops up binds it to 127.0.0.1)"
)
async def test_a_request_without_credentials_is_anonymous_and_forbidden(server: Server) -> None:
    status, body = await _anonymous(server, "/api/v1/namespaces")
    assert (status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == (
        'namespaces is forbidden: User "system:anonymous" cannot list resource "namespaces" '
        'in API group "" at the cluster scope'
    )


async def _list_as(api: ApiClient, user: str, ns: str) -> tuple[int, Any]:
    url = f"{api.configuration.host}/api/v1/namespaces/{ns}/configmaps"
    async with api.rest_client.pool_manager.get(url, headers={"Impersonate-User": user}) as resp:
        return resp.status, await resp.json(content_type=None)


@emulator_differs(
    "the emulator has no authorization: RBAC objects are stored but never enforced, so an "
    "impersonated user or service account (an app's service_account, in the design) is "
    "never refused there"
)
async def test_rbac_forbids_until_a_role_binding_grants(
    k8s_api: ApiClient, server: Server, ns: str
) -> None:
    """An impersonated user without roles is 403 Forbidden; a RoleBinding to a Role that
    allows the verb makes the same request succeed."""
    user = server.name("user")
    status, body = await _list_as(k8s_api, user, ns)
    assert (status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == (
        f'configmaps is forbidden: User "{user}" cannot list resource "configmaps" in API '
        f'group "" in the namespace "{ns}"'
    )
    rbac = RbacAuthorizationV1Api(k8s_api)
    await rbac.create_namespaced_role(
        ns,
        {
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
        },
    )
    await rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10  # the authorizer sees new bindings a moment later
    while (status := (await _list_as(k8s_api, user, ns))[0]) == 403 and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert status == 200
