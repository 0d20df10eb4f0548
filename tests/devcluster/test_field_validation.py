"""Fields a kind does not have (api-concepts.md#field-validation). kube-apiserver knows the
schema of every built-in kind: a create drops an unknown field with a ``Warning`` header,
or refuses it under ``fieldValidation=Strict`` (what kubectl sends); server-side apply
refuses it always. The emulator serves open schemas for built-in kinds, so it stores
whatever it is sent: on ``gitops up`` a typo in a manifest syncs, and fails on a real
cluster. (Custom resources are checked by neither beyond what their CRD's schema says.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes_asyncio.client import ApiClient, AppsV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from tests.devcluster.conftest import Kubectl, emulator_differs
from tests.devcluster.manifests import deployment, status_of

NO_SCHEMAS = (
    "the emulator has no schemas for built-in kinds: an unknown field is stored as sent, "
    "never refused or dropped, so a typo in a gitops up user's manifest syncs there and "
    "fails on a real cluster"
)


def _typo(ns: str) -> dict[str, object]:
    body = deployment(namespace=ns)
    body["spec"]["replica"] = 3  # sic
    return body


@emulator_differs(NO_SCHEMAS)
async def test_server_side_apply_refuses_an_unknown_field(k8s_api: ApiClient, ns: str) -> None:
    """SSA converts the body to its typed form first: an undeclared field fails it (a
    bare 500, which kube-apiserver answers whatever fieldValidation says)."""
    with pytest.raises(ApiException) as info:
        await AppsV1Api(k8s_api).patch_namespaced_deployment(
            "web",
            ns,
            _typo(ns),
            field_manager="gitops",
            _content_type="application/apply-patch+yaml",
        )
    assert info.value.status == 500
    assert ".spec.replica: field not declared in schema" in status_of(info.value)["message"]


@emulator_differs(NO_SCHEMAS)
async def test_strict_create_refuses_an_unknown_field(k8s_api: ApiClient, ns: str) -> None:
    with pytest.raises(ApiException) as info:
        await AppsV1Api(k8s_api).create_namespaced_deployment(
            ns, _typo(ns), field_validation="Strict"
        )
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (400, "BadRequest")
    assert body["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding '
        'error: unknown field "spec.replica"'
    )


@emulator_differs(NO_SCHEMAS)
async def test_a_create_drops_an_unknown_field_with_a_warning(k8s_api: ApiClient, ns: str) -> None:
    url = f"{k8s_api.configuration.host}/apis/apps/v1/namespaces/{ns}/deployments"
    async with k8s_api.rest_client.pool_manager.post(url, json=_typo(ns)) as resp:
        assert resp.status == 201
        assert resp.headers.get("Warning") == '299 - "unknown field \\"spec.replica\\""'
        created = await resp.json()
    assert "replica" not in created["spec"]


@emulator_differs(NO_SCHEMAS)
async def test_kubectl_apply_reports_an_unknown_field(kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "typo.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\ndta:\n  a: b\n"  # sic
    )
    result = await kubectl("apply", "-f", str(manifest))
    assert result.code != 0
    assert 'strict decoding error: unknown field "dta"' in result.stderr
