"""The docker-compose stack, validated offline: the file is valid Compose, and every
service built from our Dockerfile runs a real `gitops` command with an environment and a
mounted configuration that our CLI and config loader accept.

Docker's engine is not available here; Debian's `docker-compose` 1.29 resolves the file
(interpolation, anchors, relative paths) without one, and the tests read its output.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from gitops.cli import build_parser
from schemas import load_config
from tests.deploy.rendering import REPO

COMPOSE_FILE = REPO / "docker-compose.yml"
KNOWN_ENV = {"GITOPS_CONFIG", "GITOPS_KAFKA_BOOTSTRAP", "GITOPS_SYNCER_HTTP_PORT"}

pytestmark = pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose is not installed (Debian: apt-get install -y docker-compose)",
)


def _compose(
    *args: str, variables: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # Interpolation must not depend on the developer's shell, only on `variables`.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("GITOPS_") and k != "GITHUB_TOKEN"
    }
    return subprocess.run(
        ["docker-compose", "--project-directory", str(REPO), "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**env, **(variables or {})},
    )


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    """The file as Compose resolves it (no GITOPS_* variables from the test's shell)."""
    result = _compose("config")
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def _ours(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that run our image: the ones built from the repository's Dockerfile."""
    return {
        name: service
        for name, service in stack["services"].items()
        if Path(service.get("build", {}).get("context", "/nonexistent")) == REPO
    }


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (host path or volume name) of a service's volumes."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        mounts[target] = source
    return mounts


def test_compose_file_is_valid() -> None:
    result = _compose("config", "-q")

    assert result.returncode == 0, result.stderr


OURS = ["receiver", "syncer", "notifier"]


def test_receiver_syncer_and_notifier_run_from_our_image(stack: dict[str, Any]) -> None:
    assert set(_ours(stack)) == set(OURS)
    assert {s["image"] for s in _ours(stack).values()} == {"gitops-pipeline:local"}


@pytest.mark.parametrize("name", OURS)
def test_service_command_is_a_valid_gitops_command(stack: dict[str, Any], name: str) -> None:
    command = stack["services"][name]["command"]

    # The image's entrypoint is `gitops`, so the command is the CLI's argument list.
    args = build_parser().parse_args(command)
    assert args.command == name


def test_receiver_listens_on_all_interfaces_on_the_published_port(stack: dict[str, Any]) -> None:
    receiver = stack["services"]["receiver"]

    args = build_parser().parse_args(receiver["command"])
    assert args.host == "0.0.0.0"  # noqa: S104 - inside a container, by design
    assert {"published": 8080, "target": args.port} in receiver["ports"]


@pytest.mark.parametrize("name", OURS)
def test_mounted_config_loads_with_the_services_environment(
    stack: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = stack["services"][name]
    env = {key: str(value) for key, value in service["environment"].items()}
    for key, value in env.items():  # {env: ...} secret references read os.environ
        monkeypatch.setenv(key, value)

    host_path = _mounts(service)[env["GITOPS_CONFIG"]]
    config = load_config(host_path, environ=env)

    assert config.kafka.bootstrap == env["GITOPS_KAFKA_BOOTSTRAP"]
    assert config.notifications, "gitops notifier refuses a config without rules"


@pytest.mark.parametrize("name", OURS)
def test_environment_names_only_what_the_cli_and_config_read(
    stack: dict[str, Any], name: str
) -> None:
    service = stack["services"][name]
    config_text = Path(_mounts(service)[service["environment"]["GITOPS_CONFIG"]]).read_text()
    referenced = set(re.findall(r"\{env: *([A-Za-z_][A-Za-z0-9_]*)\}", config_text))

    assert set(service["environment"]) <= KNOWN_ENV | referenced
    assert referenced <= set(service["environment"]), "a secret the config needs is missing"


def test_bootstrap_is_the_in_network_listener_kafka_advertises(stack: dict[str, Any]) -> None:
    kafka = stack["services"]["kafka"]["environment"]
    advertised = {
        listener.split("://", 1)[1] for listener in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    }

    for service in _ours(stack).values():
        assert service["environment"]["GITOPS_KAFKA_BOOTSTRAP"] in advertised
        assert service["depends_on"]["kafka"] == {"condition": "service_healthy"}


def test_kafka_is_the_official_image_in_single_node_kraft_mode(stack: dict[str, Any]) -> None:
    kafka = stack["services"]["kafka"]
    env = kafka["environment"]

    assert kafka["image"].startswith("apache/kafka:")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1


def test_syncers_are_scaled_as_a_consumer_group(stack: dict[str, Any]) -> None:
    syncer = stack["services"]["syncer"]

    assert syncer["deploy"]["replicas"] >= 2
    # Replicas need distinct names and no fixed host port, or they could not coexist.
    assert "container_name" not in syncer
    assert "ports" not in syncer
    assert build_parser().parse_args(syncer["command"]).id is None, "--id defaults per replica"


def test_syncers_reach_the_k3s_cluster_through_a_rewritten_kubeconfig(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = stack["services"]
    syncer, k3s, rewrite = services["syncer"], services["k3s"], services["kubeconfig"]
    env = {key: str(value) for key, value in syncer["environment"].items()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = load_config(_mounts(syncer)[env["GITOPS_CONFIG"]], environ=env)

    kubeconfigs = [PurePosixPath(c.kubeconfig) for c in config.clusters.values() if c.kubeconfig]
    assert kubeconfigs, "the compose config targets the k3s cluster"
    volume = next(
        source
        for target, source in _mounts(syncer).items()
        if all(k.is_relative_to(target) for k in kubeconfigs)
    )
    assert volume in _mounts(rewrite).values(), "the kubeconfig step writes that volume"
    assert syncer["depends_on"]["kubeconfig"] == {"condition": "service_completed_successfully"}
    assert k3s["image"].startswith("rancher/k3s:") and k3s["privileged"] is True
    assert "--tls-san=k3s" in k3s["command"], "the server certificate must name k3s"
    assert "https://k3s:6443" in " ".join(rewrite["command"])


def test_the_notifier_is_probed_on_the_port_it_serves_and_needs_no_cluster(
    stack: dict[str, Any],
) -> None:
    notifier = stack["services"]["notifier"]

    args = build_parser().parse_args(notifier["command"])
    assert args.id is None, "--id defaults per replica"
    assert not args.no_http
    probe = " ".join(notifier["healthcheck"]["test"])
    assert f"http://127.0.0.1:{args.http_port}/readyz" in probe
    assert "ports" not in notifier and "container_name" not in notifier, "it scales"
    assert set(notifier["depends_on"]) == {"kafka"}
    assert "/etc/gitops/kube" not in _mounts(notifier), "no kubeconfig: it never syncs"


def test_the_status_token_comes_from_the_users_shell(stack: dict[str, Any]) -> None:
    with_token = _compose("config", variables={"GITHUB_TOKEN": "ghp_from-the-shell"})

    assert with_token.returncode == 0, with_token.stderr
    for name in OURS:  # every process loads the rules, so each needs the token
        env = yaml.safe_load(with_token.stdout)["services"][name]["environment"]
        assert env["GITHUB_TOKEN"] == "ghp_from-the-shell"
        assert stack["services"][name]["environment"]["GITHUB_TOKEN"] == ""
