"""Resolve and check each repository's `auth` at load time, with the line to fix.

Fetch credentials are only used minutes later, on another thread, by the first fetch;
checking them here means that a key file that is missing or holds a public key, a
known_hosts line OpenSSH would skip, or an SSH URL without pinned host keys is reported
by `gitops config check` (and by a syncer before it starts) with file and line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import LiteralScalarString

from schemas.config import GitAuth, GitopsConfig, SecretRef, is_ssh_url
from schemas.errors import ConfigIssue
from schemas.keys import KeyProblem, load_app_private_key, load_ssh_private_key, parse_known_hosts

Loc = tuple[str | int, ...]
LineOf = Callable[[Any, Loc], "int | None"]


class AuthChecker:
    """Resolves the secrets of every repository's `auth` and collects what is wrong."""

    def __init__(self, raw: CommentedMap, source: str, line_of: LineOf) -> None:
        self._raw = raw
        self._source = source
        self._line_of = line_of
        self.issues: list[ConfigIssue] = []

    def check(self, config: GitopsConfig, *, require_ssh_auth: bool) -> GitopsConfig:
        """`config` with auth secrets resolved; `issues` lists every problem found."""
        repositories = {}
        for name, repo in config.repositories.items():
            loc: Loc = ("repositories", name)
            if repo.auth is not None:
                repo = repo.model_copy(update={"auth": self._auth(repo.auth, (*loc, "auth"))})
            if (
                require_ssh_auth
                and is_ssh_url(repo.url)
                and (repo.auth is None or not repo.auth.ssh)
            ):
                self._issue(
                    (*loc, "url"),
                    "an SSH URL needs 'auth.ssh' with a private key and the server's "
                    "known_hosts lines (host keys are never trusted on first use)",
                )
            repositories[name] = repo
        return config.model_copy(update={"repositories": repositories})

    def _issue(
        self, loc: Loc, message: str, *, source: str | None = None, line: int | None = None
    ) -> None:
        where = self._line_of(self._raw, loc) if line is None else line
        self.issues.append(
            ConfigIssue(source or self._source, where, ".".join(str(p) for p in loc), message)
        )

    def _secret(self, ref: SecretRef, loc: Loc) -> SecretRef | None:
        try:
            return SecretRef(value=SecretStr(ref.resolve().get_secret_value()))
        except ValueError as exc:
            self._issue(loc, str(exc))
            return None

    def _auth(self, auth: GitAuth, loc: Loc) -> GitAuth:
        update: dict[str, Any] = {}
        if auth.token is not None:
            update["token"] = self._secret(auth.token, (*loc, "token")) or auth.token
        if auth.ssh is not None:
            ssh = auth.ssh
            key = self._secret(ssh.private_key, (*loc, "ssh", "private_key"))
            passphrase = (
                self._secret(ssh.passphrase, (*loc, "ssh", "passphrase"))
                if ssh.passphrase is not None
                else None
            )
            if key is not None and (ssh.passphrase is None or passphrase is not None):
                secret = passphrase.resolve().get_secret_value() if passphrase else None
                try:
                    load_ssh_private_key(key.resolve().get_secret_value(), secret)
                except KeyProblem as exc:
                    self._issue((*loc, "ssh", "private_key"), f"{_origin(ssh.private_key)}{exc}")
            self._known_hosts(ssh.known_hosts, (*loc, "ssh", "known_hosts"))
            update["ssh"] = ssh.model_copy(
                update={
                    "private_key": key or ssh.private_key,
                    "passphrase": passphrase or ssh.passphrase,
                }
            )
        if auth.github_app is not None:
            app = auth.github_app
            key = self._secret(app.private_key, (*loc, "github_app", "private_key"))
            if key is not None:
                try:
                    load_app_private_key(key.resolve().get_secret_value())
                except KeyProblem as exc:
                    self._issue(
                        (*loc, "github_app", "private_key"), f"{_origin(app.private_key)}{exc}"
                    )
            update["github_app"] = app.model_copy(update={"private_key": key or app.private_key})
        if auth.ca_bundle is not None:
            self._ca_bundle(auth.ca_bundle.file, (*loc, "ca_bundle"))
        return auth.model_copy(update=update)

    def _known_hosts(self, known_hosts: Any, loc: Loc) -> None:
        if isinstance(known_hosts, str):
            text, source, first_line = known_hosts, None, self._inline_start(loc)
        else:
            path = Path(known_hosts.file)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not text"
                self._issue(loc, f"cannot read known_hosts file {path}: {reason}")
                return
            source, first_line = str(path), None
        entries, problems = parse_known_hosts(text)
        for number, problem in problems:
            if source is not None:
                self._issue(
                    loc, f"known_hosts line {number}: {problem}", source=source, line=number
                )
            else:
                line = first_line + number - 1 if first_line is not None else None
                self._issue(loc, f"known_hosts line {number}: {problem}", line=line)
        if not entries and not problems:
            self._issue(loc, "no host keys: give the server's lines as `ssh-keyscan HOST` prints")

    def _inline_start(self, loc: Loc) -> int | None:
        """The file line of the first known_hosts line written inline (a `|` block or not)."""
        node: Any = self._raw
        for key in loc[:-1]:
            if not isinstance(node, CommentedMap) or key not in node:
                return None
            node = node[key]
        line = self._line_of(self._raw, loc)
        if line is None or not isinstance(node, CommentedMap):
            return line
        return line + 1 if isinstance(node.get(loc[-1]), LiteralScalarString) else line

    def _ca_bundle(self, file: str, loc: Loc) -> None:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not text"
            self._issue(loc, f"cannot read CA bundle {file}: {reason}")
            return
        if "-----BEGIN CERTIFICATE-----" not in text:
            self._issue(loc, f"{file} holds no PEM certificate ('-----BEGIN CERTIFICATE-----')")


def _origin(ref: SecretRef) -> str:
    if ref.file is not None:
        return f"{ref.file}: "
    if ref.env is not None:
        return f"environment variable {ref.env}: "
    return ""


def check_repository_auth(
    config: GitopsConfig,
    raw: CommentedMap,
    source: str,
    line_of: LineOf,
    *,
    require_ssh_auth: bool,
) -> tuple[GitopsConfig, list[ConfigIssue]]:
    checker = AuthChecker(raw, source, line_of)
    checked = checker.check(config, require_ssh_auth=require_ssh_auth)
    return checked, checker.issues
