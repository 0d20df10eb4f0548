"""Small manifests shared by the devcluster tests."""

from __future__ import annotations

from typing import Any


def deployment(
    name: str = "web",
    image: str = "nginx:1.27",
    replicas: int = 2,
    *,
    namespace: str,
    **labels: str,
) -> dict[str, Any]:
    match = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {**match, **labels}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": match},
            "template": {
                "metadata": {"labels": match},
                "spec": {
                    "containers": [
                        {"name": "web", "image": image, "ports": [{"containerPort": 80}]}
                    ]
                },
            },
        },
    }


def configmap(
    name: str = "cfg",
    *,
    namespace: str,
    data: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": data if data is not None else {"a": "1"},
    }


def crd(group: str, plural: str = "widgets", kind: str = "Widget") -> dict[str, Any]:
    """A namespaced CRD; on the shared bed ``group`` must be the test's own."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "plural": plural,
                "singular": kind.lower(),
                "kind": kind,
                "listKind": f"{kind}List",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def status_of(exc: Exception) -> dict[str, Any]:
    """The Status body of a kubernetes_asyncio ApiException."""
    import json

    body = getattr(exc, "body", None)
    assert body, f"no body on {exc!r}"
    loaded: dict[str, Any] = json.loads(body)
    return loaded
