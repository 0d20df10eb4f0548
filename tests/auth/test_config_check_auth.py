"""`gitops config check` finds what would otherwise fail the first fetch, with file and line.

A key file that does not exist or holds no private key, a known_hosts line OpenSSH
would skip, an SSH URL without pinned host keys: each is reported where the user has
to edit, and the command exits 2 without a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testbed.sshd import keygen

ROOT = Path(__file__).resolve().parents[2]
HOST_LINE = (
    "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
)


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitops", "config", "check", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def config_with(repositories: str) -> str:
    return (
        "clusters:\n"
        "  dev: {in_cluster: true}\n"
        "repositories:\n"
        f"{repositories}"
        "apps:\n"
        "  web: {repo: platform, cluster: dev}\n"
    )


def write_config(tmp_path: Path, repositories: str) -> Path:
    config = tmp_path / "gitops.yaml"
    config.write_text(config_with(repositories))
    return config


def ssh_platform(private_key: str, known_hosts: str = f"'{HOST_LINE}'") -> str:
    """`platform` over SSH; its `private_key` is on line 8 of the file, `known_hosts` on 9."""
    return (
        "  platform:\n"
        "    url: ssh://git@github.com/acme/platform.git\n"
        "    auth:\n"
        "      ssh:\n"
        f"        private_key: {{file: {private_key}}}\n"
        f"        known_hosts: {known_hosts}\n"
    )


def errors_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith(str(ROOT.anchor))]


def test_a_valid_ssh_repository_passes_and_is_summarised(tmp_path: Path) -> None:
    key = keygen(tmp_path / "deploy")
    config = write_config(
        tmp_path,
        "  platform:\n"
        "    url: git@github.com:acme/platform.git\n"
        "    auth:\n"
        "      ssh:\n"
        f"        private_key: {{file: {key}}}\n"
        "        known_hosts: |\n"
        f"          {HOST_LINE}\n",
    )

    result = check(config)

    assert result.returncode == 0, result.stderr
    assert "platform: git@github.com:acme/platform.git (0 webhook secrets, ssh key)" in (
        result.stdout
    )


def test_a_missing_key_file_is_reported_at_its_line(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        ssh_platform(str(tmp_path / "nope")),
    )

    errors = errors_of(check(config))

    assert errors == [
        f"{config}:8: repositories.platform.auth.ssh.private_key: cannot read secret file "
        f"{tmp_path / 'nope'}: No such file or directory"
    ]


def test_a_public_key_given_as_the_private_key_is_reported(tmp_path: Path) -> None:
    key = keygen(tmp_path / "deploy")
    config = write_config(
        tmp_path,
        ssh_platform(f"{key}.pub"),
    )

    errors = errors_of(check(config))

    assert len(errors) == 1
    assert errors[0].startswith(f"{config}:8: repositories.platform.auth.ssh.private_key: ")
    assert "this is a public key; give the private key" in errors[0]
    assert key.with_suffix(".pub").read_text().split()[1] not in errors[0]


def test_a_file_that_is_no_key_and_an_encrypted_key_without_passphrase(tmp_path: Path) -> None:
    locked = keygen(tmp_path / "locked", passphrase="s3cret-pass")
    junk = tmp_path / "junk"
    junk.write_text("hello\n")
    config = write_config(
        tmp_path,
        "  platform:\n"
        "    url: ssh://git@github.com/acme/platform.git\n"
        "    auth:\n"
        f"      ssh: {{private_key: {{file: {junk}}}, known_hosts: '{HOST_LINE}'}}\n"
        "  other:\n"
        "    url: ssh://git@github.com/acme/other.git\n"
        "    auth:\n"
        f"      ssh: {{private_key: {{file: {locked}}}, known_hosts: '{HOST_LINE}'}}\n",
    )

    errors = errors_of(check(config))

    assert len(errors) == 2, errors
    assert errors[0].startswith(f"{config}:7: repositories.platform.auth.ssh.private_key: ")
    assert "not a private key" in errors[0]
    assert errors[1].startswith(f"{config}:11: repositories.other.auth.ssh.private_key: ")
    assert "encrypted; set its passphrase" in errors[1]


def test_a_malformed_known_hosts_line_is_reported_at_its_own_line(tmp_path: Path) -> None:
    key = keygen(tmp_path / "deploy")
    config = write_config(
        tmp_path,
        "  platform:\n"
        "    url: ssh://git@github.com/acme/platform.git\n"
        "    auth:\n"
        "      ssh:\n"
        f"        private_key: {{file: {key}}}\n"
        "        known_hosts: |\n"
        f"          {HOST_LINE}\n"
        "          # a comment is fine\n"
        "          gitlab.com ssh-ed25519 AAAA!!notbase64\n"
        "          gitea.example.com ssh-ed26619 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0\n",
    )

    errors = errors_of(check(config))

    assert errors == [
        f"{config}:12: repositories.platform.auth.ssh.known_hosts: known_hosts line 3: "
        "the ssh-ed25519 key is not valid base64",
        f"{config}:13: repositories.platform.auth.ssh.known_hosts: known_hosts line 4: "
        "unknown key type 'ssh-ed26619'",
    ]


def test_a_malformed_line_in_a_known_hosts_file_names_that_file_and_line(tmp_path: Path) -> None:
    key = keygen(tmp_path / "deploy")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"{HOST_LINE}\n\ngithub.com ssh-rsa\n")
    config = write_config(
        tmp_path,
        ssh_platform(str(key), f"{{file: {known_hosts}}}"),
    )

    errors = errors_of(check(config))

    assert len(errors) == 1
    assert errors[0].startswith(
        f"{known_hosts}:3: repositories.platform.auth.ssh.known_hosts: known_hosts line 3: "
    )


def test_an_ssh_url_without_ssh_auth_is_reported_at_the_url(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        "  platform:\n    url: git@github.com:acme/platform.git\n    webhook_secret: {value: s}\n",
    )

    errors = errors_of(check(config))

    assert errors == [
        f"{config}:5: repositories.platform.url: an SSH URL needs 'auth.ssh' with a private "
        "key and the server's known_hosts lines (host keys are never trusted on first use)"
    ]


def test_auth_that_does_not_fit_the_url_is_refused(tmp_path: Path) -> None:
    key = keygen(tmp_path / "deploy")
    config = write_config(
        tmp_path,
        "  platform:\n"
        "    url: https://github.com/acme/platform.git\n"
        "    auth:\n"
        f"      ssh: {{private_key: {{file: {key}}}, known_hosts: '{HOST_LINE}'}}\n"
        "  other:\n"
        "    url: https://github.com/acme/other.git\n"
        "    auth:\n"
        "      token: {value: t}\n"
        f"      github_app: {{app_id: 1, installation_id: 2, private_key: {{file: {key}}}}}\n",
    )

    errors = errors_of(check(config))

    assert any(
        e.startswith(f"{config}:4: repositories.platform: ")
        and "'auth.ssh' needs an ssh:// or git@host:path URL" in e
        for e in errors
    ), errors
    assert any("set one of 'token', 'ssh' or 'github_app', not token and github_app" in e
               for e in errors), errors  # fmt: skip


def test_a_github_app_key_that_is_not_the_apps_pem_is_reported(tmp_path: Path) -> None:
    ed25519 = keygen(tmp_path / "deploy")
    config = write_config(
        tmp_path,
        "  platform:\n"
        "    url: https://github.com/acme/platform.git\n"
        "    auth:\n"
        "      github_app:\n"
        "        app_id: 12345\n"
        "        installation_id: 678\n"
        f"        private_key: {{file: {ed25519}}}\n"
        f"      ca_bundle: {{file: {tmp_path / 'missing-ca.pem'}}}\n",
    )

    errors = errors_of(check(config))

    assert errors == [
        f"{config}:10: repositories.platform.auth.github_app.private_key: {ed25519}: not the "
        "app's key: expected the PEM file GitHub generated for the app "
        "('-----BEGIN RSA PRIVATE KEY-----')",
        f"{config}:11: repositories.platform.auth.ca_bundle: cannot read CA bundle "
        f"{tmp_path / 'missing-ca.pem'}: No such file or directory",
    ]
