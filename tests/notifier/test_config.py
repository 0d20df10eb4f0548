"""`notifications:` mistakes are configuration errors with file:line, before anything runs,
a commit-status rule that no credential could authenticate among them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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


def test_a_chat_rule_without_url_is_refused(tmp_path: Path) -> None:
    code, errors, stderr = check(
        tmp_path,
        """\
- name: chat
  on: [failed]
  provider: msteams
  secret: {value: k3y}
""",
    )
    assert code == 2, stderr
    assert errors == [":6: notifications.0: provider msteams needs 'url' (the endpoint to POST to)"]


def test_a_status_rule_without_token_needs_a_repository_credential_for_its_host(
    tmp_path: Path,
) -> None:
    code, errors, stderr = check(
        tmp_path,
        """\
- name: status
  on: [requested]
  provider: github
""",
    )
    assert code == 2, stderr
    assert errors == [
        ":6: notifications.0: rule 'status' has no 'token', and repository 'shop' (of app web)"
        " has no auth: nothing authenticates it at github https://api.github.com; set 'token'"
        " on the rule, or give repository 'shop' an HTTPS token or github_app auth for that host"
    ]


def app_key(tmp_path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "app.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return path


def check_file(tmp_path: Path, text: str) -> tuple[int, list[str], str]:
    path = tmp_path / "gitops.yaml"
    path.write_text(text)
    result = gitops("config", "check", str(path))
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(path))]
    return result.returncode, [line.removeprefix(str(path)) for line in lines], result.stderr


def test_status_rules_borrow_repository_credentials_of_their_own_host_only(
    tmp_path: Path,
) -> None:
    key = app_key(tmp_path)
    code, errors, stderr = check_file(
        tmp_path,
        f"""\
kafka: {{bootstrap: 127.0.0.1:1}}
clusters: {{dev: {{in_cluster: true}}}}
repositories:
  app:
    url: https://github.com/acme/shop.git
    auth:
      github_app: {{app_id: 1, installation_id: 2, private_key: {{file: {key}}}}}
  ghe:
    url: https://ghe.acme.dev/acme/billing.git
    auth: {{token: {{value: ghe-t0ken}}}}
  public: {{url: "https://github.com/acme/docs.git"}}
apps:
  shop: {{repo: app, cluster: dev}}
  billing: {{repo: ghe, cluster: dev}}
  docs: {{repo: public, cluster: dev}}
notifications:
- name: github
  on: [succeeded]
  provider: github
  apps: [shop]
- name: enterprise
  on: [succeeded]
  provider: github
  url: https://ghe.acme.dev/api/v3
  apps: ["bill*"]
- name: app-elsewhere
  on: [succeeded]
  provider: github
  url: http://127.0.0.1:9/api/v3
  apps: [shop]
- name: gitlab
  on: [failed]
  provider: gitlab
  apps: [billing]
- name: token-elsewhere
  on: [failed]
  provider: github
  apps: [billing]
""",
    )
    assert code == 2, stderr
    assert errors == [
        ":26: notifications.2: rule 'app-elsewhere' has no 'token', and repository 'app' (of"
        " app shop) has a GitHub App 1 for https://api.github.com: nothing authenticates it at"
        " github http://127.0.0.1:9/api/v3; set 'token' on the rule, or give repository 'app'"
        " an HTTPS token or github_app auth for that host",
        ":31: notifications.3: rule 'gitlab' has no 'token', and repository 'ghe' (of app"
        " billing) has a token for ghe.acme.dev: nothing authenticates it at gitlab"
        " https://gitlab.com/api/v4; set 'token' on the rule, or give repository 'ghe' an"
        " HTTPS token or github_app auth for that host",
        ":35: notifications.4: rule 'token-elsewhere' has no 'token', and repository 'ghe' (of"
        " app billing) has a token for ghe.acme.dev: nothing authenticates it at github"
        " https://api.github.com; set 'token' on the rule, or give repository 'ghe' an HTTPS"
        " token or github_app auth for that host",
    ]
    assert "ghe-t0ken" not in stderr


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
