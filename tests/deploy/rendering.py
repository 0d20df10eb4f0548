"""Render the Helm chart with the real Helm v4 SDK and look at the result as objects.

`helm_python` binds Helm's Go SDK, so what these helpers return is exactly what `helm
template` / `helm install` would send to a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "gitops-pipeline"
RELEASE = "gitops"
NAMESPACE = "gitops-system"

Obj = dict[str, Any]
COMPONENTS = ("receiver", "syncer", "notifier")

STATUS_RULE: Obj = {
    "name": "status",
    "on": ["requested", "succeeded", "failed"],
    "provider": "github",
    "token": {"env": "GITHUB_STATUS_TOKEN"},
}
STATUS_TOKEN: Obj = {
    "name": "GITHUB_STATUS_TOKEN",
    "existingSecret": "gitops-github",
    "key": "token",
}

# The defaults plus one commit-status rule, its token from a Secret: the notifier is
# deployed beside the receiver and the syncers.
NOTIFYING: Obj = {
    "config": {"notifications": [STATUS_RULE]},
    "secrets": {"env": [STATUS_TOKEN]},
}

# Every option of the chart switched on: what a production install with an ingress, an
# autoscaler, mounted secrets, an extra cluster and notifications looks like.
ALL_OPTIONS: Obj = {
    "kafka": {"bootstrap": "kafka-0.kafka:9092,kafka-1.kafka:9092"},
    "config": {
        "clusters": {
            "here": {"in_cluster": True},
            "prod": {"kubeconfig": "/etc/gitops/secrets/kubeconfigs/prod", "context": "prod"},
        },
        "repositories": {
            "platform": {
                "url": "https://github.com/acme/platform-manifests.git",
                "webhook_secret": [
                    {"file": "/etc/gitops/secrets/webhook/github"},
                    {"env": "GITHUB_WEBHOOK_SECRET_NEXT"},
                ],
                "auth": {"token": {"env": "GIT_TOKEN"}},
            }
        },
        "apps": {
            "guestbook": {
                "repo": "platform",
                "path": "apps/guestbook",
                "cluster": "prod",
                "namespace": "guestbook",
            }
        },
        "notifications": [
            STATUS_RULE,
            {
                "name": "chat",
                "on": ["failed", "drift"],
                "provider": "slack",
                "url": {"file": "/etc/gitops/secrets/slack/url"},
            },
        ],
    },
    "secrets": {
        "files": [
            {"name": "webhook", "existingSecret": "gitops-webhook"},
            {"name": "slack", "existingSecret": "gitops-slack"},
            {
                "name": "kubeconfigs",
                "existingSecret": "gitops-kubeconfigs",
                "components": ["syncer"],
            },
        ],
        "env": [
            {"name": "GIT_TOKEN", "existingSecret": "gitops-git", "key": "token"},
            {
                "name": "GITHUB_WEBHOOK_SECRET_NEXT",
                "existingSecret": "gitops-webhook",
                "key": "next",
            },
            STATUS_TOKEN,
        ],
    },
    "extraEnv": [{"name": "LOG_LEVEL", "value": "debug"}],
    "imagePullSecrets": [{"name": "regcred"}],
    "receiver": {
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "hosts": [{"host": "gitops.acme.dev", "paths": [{"path": "/hooks"}]}],
            "tls": [{"secretName": "gitops-tls", "hosts": ["gitops.acme.dev"]}],
        },
        "nodeSelector": {"kubernetes.io/os": "linux"},
    },
    "syncer": {
        "autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80},
        "cacheVolume": {"medium": "Memory"},
    },
    "notifier": {"replicaCount": 3, "nodeSelector": {"kubernetes.io/os": "linux"}},
}


@dataclass(frozen=True)
class Rendered:
    """One rendering of the chart: its objects in template order and its NOTES.txt."""

    objects: list[Obj]
    notes: str

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, component: str | None = None) -> Obj:
        found = [
            o
            for o in self.of_kind(kind)
            if component is None
            or o["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ]
        assert len(found) == 1, f"expected one {kind} {component or ''}, got {len(found)}"
        return found[0]

    def deployment(self, component: str) -> Obj:
        return self.one("Deployment", component)

    def pod_spec(self, component: str) -> Obj:
        spec: Obj = self.deployment(component)["spec"]["template"]["spec"]
        return spec

    def container(self, component: str) -> Obj:
        (container,) = self.pod_spec(component)["containers"]
        result: Obj = container
        return result

    def config_text(self) -> str:
        text: str = self.one("ConfigMap")["data"]["gitops.yaml"]
        return text


def render(
    values: Obj | None = None, *, release: str = RELEASE, namespace: str = NAMESPACE
) -> Rendered:
    """Render like `helm template`: values merged over values.yaml, schema enforced."""
    with helm_python.Chart.load(CHART) as chart:
        manifests = chart.render(values or {}, name=release, namespace=namespace)
    objects: list[Obj] = []
    notes = ""
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return Rendered(objects, notes)


def env_names(container: Obj) -> set[str]:
    return {e["name"] for e in container.get("env", [])}


def mount_paths(container: Obj) -> list[str]:
    return [m["mountPath"] for m in container.get("volumeMounts", [])]
