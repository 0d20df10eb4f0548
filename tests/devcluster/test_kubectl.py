"""kubectl 1.37 against the server: apply --server-side, get, wait, delete — with
client validation on (kubectl reads /openapi/v3 and uses fieldValidation=Strict).
The manifests make a namespace of the test's own (``server.name("shop")``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.devcluster.conftest import Kubectl, Server

MANIFESTS = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  color: blue
"""


@pytest.fixture
def shop(server: Server) -> str:
    return server.name("shop")


def _manifests(shop: str) -> str:
    return MANIFESTS.replace("shop", shop)


async def _apply(kubectl: Kubectl, tmp_path: Path, text: str) -> str:
    path = tmp_path / "manifests.yaml"
    path.write_text(text)
    result = await kubectl("apply", "--server-side", "-f", str(path))
    assert result.code == 0, result.stderr
    return result.stdout


async def test_kubectl_server_side_apply_creates_objects(
    kubectl: Kubectl, tmp_path: Path, shop: str
) -> None:
    """`kubectl apply --server-side -f` works with validation on (no --validate=false)."""
    out = await _apply(kubectl, tmp_path, _manifests(shop))
    assert "deployment.apps/web serverside-applied" in out
    assert "configmap/settings serverside-applied" in out


async def test_kubectl_get_yaml_shows_applied_and_defaulted_fields(
    kubectl: Kubectl, tmp_path: Path, shop: str
) -> None:
    """`kubectl get -o json` returns the stored object incl. server defaults."""
    await _apply(kubectl, tmp_path, _manifests(shop))
    result = await kubectl("get", "deployment", "web", "-n", shop, "-o", "json")
    assert result.code == 0, result.stderr
    obj = json.loads(result.stdout)
    assert obj["spec"]["replicas"] == 2
    assert obj["spec"]["strategy"]["type"] == "RollingUpdate"
    yaml_out = await kubectl("get", "configmap", "settings", "-n", shop, "-o", "yaml")
    assert "color: blue" in yaml_out.stdout


async def test_kubectl_get_prints_table(kubectl: Kubectl, tmp_path: Path, shop: str) -> None:
    """`kubectl get` prints the server's Table columns."""
    await _apply(kubectl, tmp_path, _manifests(shop))
    result = await kubectl("get", "deployments", "-n", shop)
    assert result.code == 0, result.stderr
    assert result.stdout.split()[:2] == ["NAME", "READY"]
    assert "web" in result.stdout


async def test_kubectl_reapply_is_unchanged(kubectl: Kubectl, tmp_path: Path, shop: str) -> None:
    """Re-applying identical manifests leaves resourceVersion untouched."""
    await _apply(kubectl, tmp_path, _manifests(shop))
    before = await kubectl(
        "get", "cm", "settings", "-n", shop, "-o", "jsonpath={.metadata.resourceVersion}"
    )
    await _apply(kubectl, tmp_path, _manifests(shop))
    after = await kubectl(
        "get", "cm", "settings", "-n", shop, "-o", "jsonpath={.metadata.resourceVersion}"
    )
    assert before.stdout == after.stdout


async def test_kubectl_wait_for_available(kubectl: Kubectl, tmp_path: Path, shop: str) -> None:
    """`kubectl wait --for=condition=Available` returns once the rollout is done."""
    await _apply(kubectl, tmp_path, _manifests(shop))
    result = await kubectl(
        "wait", "--for=condition=Available", "deployment/web", "-n", shop, "--timeout=60s"
    )
    assert result.code == 0, result.stderr
    assert "condition met" in result.stdout


async def test_kubectl_apply_conflict_is_reported(
    kubectl: Kubectl, tmp_path: Path, shop: str
) -> None:
    """A conflicting apply by another field manager fails with the conflict listed."""
    await _apply(kubectl, tmp_path, _manifests(shop))
    path = tmp_path / "other.yaml"
    path.write_text(_manifests(shop).replace("color: blue", "color: red"))
    result = await kubectl("apply", "--server-side", "--field-manager=other", "-f", str(path))
    assert result.code != 0
    assert "conflict" in result.stderr.lower()
    assert ".data.color" in result.stderr


async def test_kubectl_delete_removes_objects(kubectl: Kubectl, tmp_path: Path, shop: str) -> None:
    """`kubectl delete -f` deletes (and waits for) the objects."""
    await _apply(kubectl, tmp_path, _manifests(shop))
    result = await kubectl("delete", "-f", str(tmp_path / "manifests.yaml"), "--timeout=60s")
    assert result.code == 0, result.stderr
    gone = await kubectl("get", "namespace", shop)
    assert gone.code != 0
    assert "NotFound" in gone.stderr


async def test_kubectl_explain_is_not_required_but_crd_apply_works(
    kubectl: Kubectl, tmp_path: Path, server: Server
) -> None:
    """A CRD and then a custom resource apply with kubectl (after Established)."""
    group = f"{server.name('g')}.example.com"
    crd = f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"""
    await _apply(kubectl, tmp_path, crd)
    waited = await kubectl(
        "wait", "--for=condition=Established", f"crd/widgets.{group}", "--timeout=30s"
    )
    assert waited.code == 0, waited.stderr
    await _apply(
        kubectl,
        tmp_path,
        f"apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 1\n",
    )
    got = await kubectl("get", f"widgets.{group}", "-o", "jsonpath={.items[0].spec.size}")
    assert got.stdout == "1"
