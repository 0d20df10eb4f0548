"""A configuration file is validated with errors that point at the line to fix."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from schemas import ConfigError, load_config, parse_config

VALID = """\
kafka:
  bootstrap: localhost:9092
clusters:
  prod: {kubeconfig: /etc/gitops/prod.kubeconfig, context: prod}
  here: {in_cluster: true}
repositories:
  platform:
    url: https://github.com/acme/platform-manifests.git
    webhook_secret: {env: TEST_WEBHOOK_SECRET}
apps:
  guestbook:
    repo: platform
    path: apps/guestbook
    cluster: prod
    namespace: guestbook
    interval: 5m
"""


def test_design_example_loads_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", "s3cr3t")
    config = parse_config(VALID)
    app = config.apps["guestbook"]
    assert (app.branch, app.prune, app.self_heal, app.interval) == (
        "main",
        True,
        True,
        timedelta(minutes=5),
    )
    assert config.kafka.topic_prefix == "gitops"
    secret = config.repositories["platform"].webhook_secrets()[0].resolve()
    assert secret.get_secret_value() == "s3cr3t"


def test_resolved_secret_never_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", "s3cr3t-value")
    config = parse_config(VALID)
    assert "s3cr3t-value" not in repr(config)
    assert "s3cr3t-value" not in str(config)
    assert "s3cr3t-value" not in config.model_dump_json()


def test_three_mistakes_are_all_reported_with_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", "x")
    broken = (
        VALID.replace("cluster: prod\n", "cluster: prdo\n")
        .replace("interval: 5m", "interval: 5 minutes")
        .replace("  bootstrap: localhost:9092", "  bootstrap: localhost:9092\n  bootstrp: typo")
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(broken, source="gitops.yaml")
    lines = str(caught.value).splitlines()
    assert lines == [
        "gitops.yaml:3: kafka.bootstrp: unknown key 'bootstrp'",
        "gitops.yaml:15: apps.guestbook.cluster: unknown cluster 'prdo' (known: here, prod)",
        "gitops.yaml:17: apps.guestbook.interval: invalid duration '5 minutes': use a number "
        "with a unit, e.g. '30s', '5m', '1h30m' (got '5 minutes')",
    ]


def test_unknown_repository_is_named_with_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", "x")
    with pytest.raises(
        ConfigError,
        match=r":12: apps.guestbook.repo: unknown repository 'platfrom' "
        r"\(known: platform\)",
    ):
        parse_config(VALID.replace("repo: platform", "repo: platfrom"))


def test_missing_secret_variable_is_reported_without_a_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TEST_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ConfigError) as caught:
        parse_config(VALID, source="g.yaml")
    assert str(caught.value) == (
        "g.yaml:9: repositories.platform.webhook_secret: "
        "environment variable TEST_WEBHOOK_SECRET is not set"
    )


def test_secret_file_is_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    config = parse_config(VALID.replace("{env: TEST_WEBHOOK_SECRET}", f"{{file: {secret}}}"))
    value = config.repositories["platform"].webhook_secrets()[0].resolve()
    assert value.get_secret_value() == "from-file"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../other", "must be relative and stay inside"),
        ("/etc", "must be relative and stay inside"),
    ],
)
def test_app_path_cannot_escape_the_repository(
    monkeypatch: pytest.MonkeyPatch, path: str, message: str
) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", "x")
    with pytest.raises(ConfigError, match=message):
        parse_config(VALID.replace("path: apps/guestbook", f"path: {path}"))


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError, match=r"^c.yaml:2: invalid YAML"):
        parse_config("kafka: {}\n- stray item\n", source="c.yaml")


def test_bootstrap_environment_variable_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", "x")
    config = parse_config(
        VALID, environ={"GITOPS_KAFKA_BOOTSTRAP": "broker:29092", "TEST_WEBHOOK_SECRET": "x"}
    )
    assert config.kafka.bootstrap == "broker:29092"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")
