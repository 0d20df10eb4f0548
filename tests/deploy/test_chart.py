"""The Helm chart, rendered offline by the real Helm v4 SDK: what a `helm install` creates.

Each test reads one promise of the chart from its rendered manifests: the parts it
deploys, the hardening of every pod, the probes, the configuration file the processes
load, and how referenced secrets reach the pods.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

import helm_python
import pytest
import yaml

from gitops.cli import build_parser
from schemas import parse_config
from tests.deploy.rendering import (
    ALL_OPTIONS,
    CHART,
    COMPONENTS,
    NAMESPACE,
    NOTIFYING,
    STATUS_RULE,
    Obj,
    env_names,
    mount_paths,
    render,
)

WARNING = 2  # helm lint severities: 1 info, 2 warning, 3 error


def _findings(report: dict[str, Any]) -> list[str]:
    return [
        f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= WARNING
    ] + list(report["errors"])


def test_chart_lints_clean_in_strict_mode() -> None:
    report = helm_python.lint(CHART, strict=True, namespace=NAMESPACE)

    assert report["total_charts_linted"] == 1
    assert _findings(report) == []


def test_chart_lints_clean_with_every_option_enabled() -> None:
    report = helm_python.lint(CHART, ALL_OPTIONS, strict=True, namespace=NAMESPACE)

    assert _findings(report) == []


def test_default_install_deploys_receiver_syncers_config_rbac_and_budgets() -> None:
    rendered = render()

    kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in rendered.objects)
    assert kinds == [
        "ClusterRole/gitops-gitops-pipeline-syncer",
        "ClusterRoleBinding/gitops-gitops-pipeline-syncer",
        "ConfigMap/gitops-gitops-pipeline-config",
        "Deployment/gitops-gitops-pipeline-receiver",
        "Deployment/gitops-gitops-pipeline-syncer",
        "PodDisruptionBudget/gitops-gitops-pipeline-receiver",
        "PodDisruptionBudget/gitops-gitops-pipeline-syncer",
        "Service/gitops-gitops-pipeline-receiver",
        "ServiceAccount/gitops-gitops-pipeline-receiver",
        "ServiceAccount/gitops-gitops-pipeline-syncer",
    ]


def test_notification_rules_add_the_notifier_with_its_own_account_and_budget() -> None:
    rendered = render(NOTIFYING)

    added = sorted(
        f"{o['kind']}/{o['metadata']['name']}"
        for o in rendered.objects
        if o["metadata"]["labels"].get("app.kubernetes.io/component") == "notifier"
    )
    assert added == [
        "Deployment/gitops-gitops-pipeline-notifier",
        "PodDisruptionBudget/gitops-gitops-pipeline-notifier",
        "ServiceAccount/gitops-gitops-pipeline-notifier",
    ]
    assert rendered.deployment("notifier")["spec"]["replicas"] == 2
    assert "Notifiers: 2 member(s) of gitops-notifiers, 1 rule(s)" in rendered.notes


def test_no_notifier_without_rules_or_when_switched_off() -> None:
    assert render().of_kind("Deployment") == render({"notifier": {"enabled": False}}).of_kind(
        "Deployment"
    )
    assert [d["metadata"]["name"] for d in render().of_kind("Deployment")] == [
        "gitops-gitops-pipeline-receiver",
        "gitops-gitops-pipeline-syncer",
    ]
    switched_off = render({**NOTIFYING, "notifier": {"enabled": False}})
    assert [o for o in switched_off.objects if o["metadata"]["name"].endswith("-notifier")] == []
    assert "Notifiers: none" in render().notes


def test_notifier_replicas_follow_values() -> None:
    rendered = render({**NOTIFYING, "notifier": {"replicaCount": 4}})

    assert rendered.deployment("notifier")["spec"]["replicas"] == 4


def test_ingress_routes_only_webhooks_to_the_receiver_service() -> None:
    rendered = render({"receiver": {"ingress": {"enabled": True}}})

    ingress = rendered.one("Ingress")
    service = rendered.one("Service", "receiver")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "gitops.example.com"
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [("/hooks", "Prefix")]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": service["metadata"]["name"], "port": {"name": "http"}}
    assert (
        service["spec"]["selector"]
        == rendered.deployment("receiver")["spec"]["selector"]["matchLabels"]
    )


def test_no_ingress_unless_asked_for() -> None:
    assert render().of_kind("Ingress") == []


def test_autoscaling_hands_the_syncer_replica_count_to_an_hpa() -> None:
    rendered = render({"syncer": {"autoscaling": {"enabled": True, "maxReplicas": 6}}})

    hpa = rendered.one("HorizontalPodAutoscaler")
    syncer = rendered.deployment("syncer")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": syncer["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert "replicas" not in syncer["spec"]


def test_syncer_replicas_follow_values_without_autoscaling() -> None:
    rendered = render({"syncer": {"replicaCount": 5}})

    assert rendered.deployment("syncer")["spec"]["replicas"] == 5
    assert rendered.of_kind("HorizontalPodAutoscaler") == []


@pytest.mark.parametrize("component", COMPONENTS)
def test_pods_run_non_root_on_a_read_only_root_without_capabilities(component: str) -> None:
    rendered = render(ALL_OPTIONS)

    pod = rendered.pod_spec(component)
    container = rendered.container(component)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsNonRoot"] is True
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


@pytest.mark.parametrize("component", COMPONENTS)
def test_the_only_writable_paths_are_empty_dirs(component: str) -> None:
    rendered = render(NOTIFYING)

    pod = rendered.pod_spec(component)
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = [m for m in rendered.container(component)["volumeMounts"] if not m.get("readOnly")]
    assert writable, "a read-only root needs somewhere to write"
    for mount in writable:
        assert "emptyDir" in volumes[mount["name"]], f"{mount['mountPath']} is not an emptyDir"
    assert "/tmp" in [m["mountPath"] for m in writable]


def test_the_git_cache_lives_on_the_syncers_cache_volume() -> None:
    rendered = render()

    config = parse_config(rendered.config_text())
    cache = next(m for m in rendered.container("syncer")["volumeMounts"] if m["name"] == "cache")
    assert config.syncer.cache_dir == cache["mountPath"]
    assert {"name": "HOME", "value": "/tmp"} in rendered.container("syncer")["env"]


@pytest.mark.parametrize("component", COMPONENTS)
def test_probes_ask_healthz_and_readyz_on_the_port_the_process_serves(component: str) -> None:
    rendered = render(NOTIFYING)

    container = rendered.container(component)
    (port,) = container["ports"]
    assert port["name"] == "http"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    if component == "receiver":
        args = build_parser().parse_args(container["args"])
        assert args.port == port["containerPort"]
    elif component == "notifier":
        args = build_parser().parse_args(container["args"])
        assert args.http_port == port["containerPort"] == 8082
        assert not args.no_http
    else:
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["GITOPS_SYNCER_HTTP_PORT"] == str(port["containerPort"])


@pytest.mark.parametrize("component", COMPONENTS)
def test_container_arguments_are_a_valid_gitops_command(component: str) -> None:
    rendered = render({**NOTIFYING, component: {"extraArgs": []}})

    container = rendered.container(component)
    # Kubernetes expands $(POD_NAME) from the container's env before exec.
    argv = [a.replace("$(POD_NAME)", "gitops-pod-7d9f-abcde") for a in container["args"]]
    args = build_parser().parse_args(argv)
    assert args.command == component
    assert args.config == "/etc/gitops/gitops.yaml"
    assert "/etc/gitops/gitops.yaml" in mount_paths(container)
    if component in ("syncer", "notifier"):
        assert args.id == "gitops-pod-7d9f-abcde", "a member name unique in its group"
        assert "POD_NAME" in env_names(container)


def test_default_configuration_passes_config_check() -> None:
    config = parse_config(render().config_text(), source="configmap", environ={})

    assert config.kafka.topic_prefix == "gitops"
    assert config.clusters["here"].in_cluster


def test_configuration_from_values_passes_config_check_with_its_secrets_provided(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rendered = render(ALL_OPTIONS)
    # The pod's environment as the kubelet builds it: plain values, Secret keys resolved.
    environ = {
        e["name"]: e.get("value", "from-a-secret") for e in rendered.container("syncer")["env"]
    }
    for name, value in environ.items():  # secret references read the process environment
        monkeypatch.setenv(name, value)

    # The {file: ...} references point into Secret mounts that only exist in a pod; the
    # next test checks the mounts, this one everything else the loader validates.
    text = re.sub(
        r"file: /etc/gitops/secrets/\S+",
        "value: https://from-a-secret.example",
        rendered.config_text(),
    )
    config = parse_config(text, source="configmap", environ=environ)

    assert config.apps["guestbook"].cluster == "prod"
    assert [rule.name for rule in config.notifications] == ["status", "chat"]
    assert config.kafka.bootstrap == "kafka-0.kafka:9092,kafka-1.kafka:9092"


def _references(node: Any) -> list[Obj]:
    if isinstance(node, dict):
        if set(node) in ({"env"}, {"file"}):
            return [node]
        return [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _references(value)]
    return []


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_secret_the_config_references_reaches_the_pod(component: str) -> None:
    rendered = render(ALL_OPTIONS)
    container = rendered.container(component)
    raw = yaml.safe_load(rendered.config_text())

    # Loading the config resolves every webhook secret, git credential and notification
    # token or URL, in every component.
    for ref in _references([raw["repositories"], raw["notifications"]]):
        if "env" in ref:
            assert ref["env"] in env_names(container)
        else:
            path = PurePosixPath(ref["file"])
            assert any(path.is_relative_to(m) for m in mount_paths(container)), path
    if component == "syncer":
        for cluster in raw["clusters"].values():
            if "kubeconfig" in cluster:
                kubeconfig = PurePosixPath(cluster["kubeconfig"])
                assert any(kubeconfig.is_relative_to(m) for m in mount_paths(container))


def test_secrets_are_referenced_never_created() -> None:
    rendered = render(ALL_OPTIONS)

    assert rendered.of_kind("Secret") == []
    volumes = rendered.pod_spec("syncer")["volumes"]
    assert {v["secret"]["secretName"] for v in volumes if "secret" in v} == {
        "gitops-webhook",
        "gitops-slack",
        "gitops-kubeconfigs",
    }
    for component in ("receiver", "notifier"):
        secrets = {
            v["secret"]["secretName"]
            for v in rendered.pod_spec(component)["volumes"]
            if "secret" in v
        }
        assert secrets == {"gitops-webhook", "gitops-slack"}, "kubeconfigs are for the syncer"
    token = next(
        e for e in rendered.container("notifier")["env"] if e["name"] == "GITHUB_STATUS_TOKEN"
    )
    assert token == {
        "name": "GITHUB_STATUS_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "gitops-github", "key": "token"}},
    }


def test_kafka_bootstrap_value_overrides_through_the_environment() -> None:
    rendered = render({**NOTIFYING, "kafka": {"bootstrap": "broker.kafka:9093"}})

    for component in COMPONENTS:
        env = {e["name"]: e.get("value") for e in rendered.container(component)["env"]}
        assert env["GITOPS_KAFKA_BOOTSTRAP"] == "broker.kafka:9093"


def test_only_the_syncer_gets_api_credentials() -> None:
    rendered = render(NOTIFYING)

    receiver_pod = rendered.pod_spec("receiver")
    syncer_pod = rendered.pod_spec("syncer")
    notifier_pod = rendered.pod_spec("notifier")
    binding = rendered.one("ClusterRoleBinding")
    assert receiver_pod["automountServiceAccountToken"] is False
    assert notifier_pod["automountServiceAccountToken"] is False
    accounts = {a["metadata"]["name"]: a for a in rendered.of_kind("ServiceAccount")}
    assert accounts[notifier_pod["serviceAccountName"]]["automountServiceAccountToken"] is False
    assert len({p["serviceAccountName"] for p in (receiver_pod, syncer_pod, notifier_pod)}) == 3
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": syncer_pod["serviceAccountName"], "namespace": NAMESPACE}
    ]
    assert binding["roleRef"]["name"] == rendered.one("ClusterRole")["metadata"]["name"]


def test_rbac_rules_come_from_values() -> None:
    rules = [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}]

    rendered = render({"rbac": {"rules": rules}})

    assert rendered.one("ClusterRole")["rules"] == rules


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_config_change_rolls_the_pods(component: str) -> None:
    def checksum(values: Obj) -> str:
        template = render(values).deployment(component)["spec"]["template"]
        value: str = template["metadata"]["annotations"]["checksum/config"]
        return value

    rules = [{**STATUS_RULE, "on": ["failed"]}]
    assert checksum(NOTIFYING) != checksum(
        {**NOTIFYING, "config": {"kafka": {"partitions": 24}, "notifications": rules}}
    )


def test_notes_explain_where_topics_come_from_and_the_webhook_url() -> None:
    notes = render(ALL_OPTIONS).notes

    assert "created by the receiver and the syncers at start-up" in notes
    assert "gitops.sync-requests.dlq" in notes
    assert "https://gitops.acme.dev/hooks/github" in notes


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"receiver": {"replicas": 3}}, "additional properties 'replicas' not allowed"),
        ({"notifier": {"replicas": 3}}, "additional properties 'replicas' not allowed"),
        (
            {"notifier": {"enabled": True}},
            "notifier.enabled is true but config.notifications has no rules",
        ),
        (
            {"secrets": {"env": [{**NOTIFYING["secrets"]["env"][0], "components": ["notifer"]}]}},
            "value must be one of 'receiver', 'syncer', 'notifier'",
        ),
        ({"secrets": {"files": [{"name": "webhook"}]}}, "missing property 'existingSecret'"),
        (
            {"syncer": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}},
            "minReplicas must not exceed maxReplicas",
        ),
    ],
    ids=[
        "misspelt-key",
        "misspelt-notifier-key",
        "notifier-without-rules",
        "misspelt-component",
        "secret-without-name",
        "autoscaling-bounds",
    ],
)
def test_mistakes_in_values_fail_the_render_naming_the_key(values: Obj, message: str) -> None:
    with pytest.raises(helm_python.HelmError) as caught:
        render(values)

    assert message in str(caught.value), str(caught.value)
