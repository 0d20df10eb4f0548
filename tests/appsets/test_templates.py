"""An app set's template is checked when the configuration loads: every mistake is a
configuration error at the line to edit, before any repository is read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from schemas import ConfigError, parse_config
from schemas.appsets import TemplateProblem, path_variables, render_app, template_keys
from schemas.config import AppConfig

ROOT = Path(__file__).resolve().parents[2]

HEAD = """\
clusters:
  dev: {kubeconfig: /etc/kubeconfig}
repositories:
  mono: {url: https://git.example.com/mono.git}
app_sets:
  svc:
    repo: mono
    directories: {include: ["services/*"]}
    template:
      cluster: dev
"""


def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "gitops.yaml"
    path.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "gitops", "config", "check", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_the_example_app_set_is_valid() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gitops", "config", "check", "examples/gitops.yaml"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "services: examples@main: one app per directories services/*" in result.stdout


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('      namespace: "{{ basename"', "template syntax error"),
        ('      namespace: "{{ team }}"', "undefined name(s) team"),
        ("      replicas: 3", "unknown app setting 'replicas'"),
        ("      repo: other", "'repo' is set on the app set"),
        ('      prune: "{{ basename }}"', "prune: Input should be a valid boolean"),
        ("      cluster: prod", "unknown cluster 'prod' (known: dev)"),
    ],
)
def test_a_template_mistake_is_a_config_error_at_its_line(
    tmp_path: Path, line: str, expected: str
) -> None:
    text = HEAD.replace("      cluster: dev\n", "") if "cluster:" in line else HEAD
    text += line + "\n"
    result = check(tmp_path, text)
    assert result.returncode == 2, result.stdout
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith(str(tmp_path))]
    wanted = text.count("\n")  # the line just appended
    assert any(f"gitops.yaml:{wanted}: app_sets.svc.template." in ln for ln in lines), lines
    assert any(expected in ln for ln in lines), lines


def test_a_set_needs_exactly_one_generator_and_a_known_repository(tmp_path: Path) -> None:
    text = HEAD.replace("    repo: mono\n", "    repo: nowhere\n    files: {include: [a.yaml]}\n")
    result = check(tmp_path, text)
    assert result.returncode == 2
    assert "exactly one generator" in result.stderr
    assert "gitops.yaml:7: app_sets.svc.repo: unknown repository 'nowhere'" in result.stderr


def test_the_template_accepts_every_app_setting() -> None:
    assert template_keys() == (set(AppConfig.model_fields) - {"repo", "branch"}) | {"name"}


def test_a_rendered_app_is_an_ordinary_app_named_after_the_set_and_directory() -> None:
    config = parse_config(
        HEAD
        + '      namespace: "team-{{ basename }}"\n'
        + '      drift_ignore: ["metadata.labels.{{ basename }}"]\n'
        + "      self_heal: false\n"
    )
    app_set = config.app_sets["svc"]
    made = render_app("svc", app_set, path_variables("services/web"))
    assert made.name == "svc-web"
    assert made.app == AppConfig(
        repo="mono",
        path="services/web",
        cluster="dev",
        namespace="team-web",
        self_heal=False,
        drift_ignore=["metadata.labels.web"],
    )


def test_the_sandbox_refuses_what_a_template_must_not_reach() -> None:
    config = parse_config(HEAD)
    hostile = config.app_sets["svc"].model_copy(
        update={"template": {"cluster": "dev", "name": "{{ path.__class__.__mro__ }}"}}
    )
    with pytest.raises(TemplateProblem, match=r"template.name: .*unsafe"):
        render_app("svc", hostile, path_variables("services/web"))


def test_parse_errors_name_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(HEAD + "      foo: 1\n      bar: 2\n")
    assert [i.path for i in caught.value.issues] == [
        "app_sets.svc.template.foo",
        "app_sets.svc.template.bar",
    ]
