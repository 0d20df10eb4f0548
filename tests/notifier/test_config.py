"""`notifications:` mistakes are configuration errors with file:line, before anything runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
kafka: {bootstrap: 127.0.0.1:1}
clusters: {dev: {in_cluster: true}}
repositories: {shop: {url: "https://github.com/acme/shop.git"}}
apps: {web: {repo: shop, cluster: dev}}
notifications:
"""


def gitops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitops", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env=env,
    )


def check(tmp_path: Path, rules: str) -> tuple[int, list[str], str]:
    path = tmp_path / "gitops.yaml"
    path.write_text(BASE + rules)
    result = gitops("config", "check", str(path))
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(path))]
    return result.returncode, [line.removeprefix(str(path)) for line in lines], result.stderr


def test_a_valid_rule_set_passes(tmp_path: Path) -> None:
    code, _, stderr = check(
        tmp_path,
        """\
- name: status
  on: [requested, succeeded, failed]
  provider: github
  token: {value: t0ken}
- name: chat
  on: [failed, drift]
  apps: ["shop-*", web]
  provider: slack
  url: {value: "https://hooks.slack.com/services/T/B/x"}
  template: "{{ app }} {{ outcome }}"
""",
    )
    assert code == 0, stderr


def test_unknown_keys_missing_secrets_and_misfits_are_listed_with_their_lines(
    tmp_path: Path,
) -> None:
    code, errors, stderr = check(
        tmp_path,
        """\
- name: status
  on: [requested]
  provider: github
  tokn: {env: GITHUB_TOKEN}
- name: chat
  on: [failed, exploded]
  provider: slack
  url: {env: GITOPS_TEST_UNSET_SLACK_URL}
- name: chat
  on: [drift]
  provider: gitlab
  token: {file: /nonexistent/token}
- name: hook
  on: [failed]
  provider: webhook
  url: http://127.0.0.1/x
  template: "{{ app "
""",
    )
    assert code == 2, stderr
    text = "\n".join(errors)
    assert ":9: notifications.0.tokn: unknown key 'tokn'" in text
    assert ":11: notifications.1.on.1: Input should be 'requested', 'succeeded'" in text
    assert ":14: notifications.2.name: another rule is already named 'chat'" in text
    assert ":14: notifications.2: provider gitlab sets commit statuses for sync outcomes" in text
    assert ":22: notifications.3.template: template line 1: unexpected end of template" in text
    assert len(errors) == 5, errors


def test_a_status_rule_without_token_and_a_chat_rule_without_url_are_refused(
    tmp_path: Path,
) -> None:
    code, errors, stderr = check(
        tmp_path,
        """\
- name: status
  on: [requested]
  provider: github
- name: chat
  on: [failed]
  provider: msteams
  secret: {value: k3y}
""",
    )
    assert code == 2, stderr
    assert errors == [
        ":6: notifications.0: provider github needs 'token' (a secret reference)",
        ":9: notifications.1: provider msteams needs 'url' (the endpoint to POST to)",
    ]


def test_a_missing_secret_names_the_variable_and_line_but_never_a_value(tmp_path: Path) -> None:
    code, errors, stderr = check(
        tmp_path,
        """\
- name: chat
  on: [failed]
  provider: slack
  url: {env: GITOPS_TEST_UNSET_SLACK_URL}
- name: status
  on: [failed]
  provider: gitea
  url: https://git.example.com/api/v1
  token: {file: /nonexistent/token}
""",
    )
    assert code == 2, stderr
    assert errors == [
        ":9: notifications.0.url: environment variable GITOPS_TEST_UNSET_SLACK_URL is not set",
        ":14: notifications.1.token: cannot read secret file /nonexistent/token:"
        " No such file or directory",
    ]


def test_gitops_notifier_refuses_a_config_without_rules(tmp_path: Path) -> None:
    path = tmp_path / "gitops.yaml"
    path.write_text(BASE.removesuffix("notifications:\n"))
    result = gitops("notifier", "--config", str(path))
    assert result.returncode == 2
    assert "no rules under 'notifications:'" in result.stderr
