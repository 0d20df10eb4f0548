"""Load the YAML configuration and report every mistake with its file, line and key path.

ruamel.yaml keeps the position of every key, so each pydantic error and each broken
cross-reference is mapped back to the line a user has to edit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from schemas.appsets import template_problems
from schemas.authcheck import check_repository_auth
from schemas.config import GitopsConfig, SecretRef
from schemas.dependencies import dependency_problems
from schemas.errors import ConfigError, ConfigIssue
from schemas.statusauth import status_credential_issues

BOOTSTRAP_ENV = "GITOPS_KAFKA_BOOTSTRAP"

Loc = tuple[str | int, ...]
_UNION_TAGS = ("str", "int", "float", "bool")
"""Names pydantic adds to an error's location for a union member of a builtin type."""


def load_config(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    require_ssh_auth: bool = False,
) -> GitopsConfig:
    """Read and validate a configuration file; raise `ConfigError` listing every issue.

    `require_ssh_auth` (what fetches: `config check`, the syncer) also refuses SSH URLs
    without `auth.ssh`; the receiver only matches URLs and needs no credentials.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue(source, None, "", f"cannot read: {exc.strerror}")]) from None
    return parse_config(text, source=source, environ=environ, require_ssh_auth=require_ssh_auth)


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    environ: Mapping[str, str] | None = None,
    require_ssh_auth: bool = False,
) -> GitopsConfig:
    """Validate configuration text; `environ` (default `os.environ`) supplies overrides."""
    env = os.environ if environ is None else environ
    yaml = YAML(typ="rt", pure=True)
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise ConfigError([ConfigIssue(source, line, "", f"invalid YAML: {exc.problem}")]) from None
    if raw is None:
        raw = CommentedMap()
    if not isinstance(raw, CommentedMap):
        raise ConfigError([ConfigIssue(source, 1, "", "the file must be a mapping of sections")])

    issues: list[ConfigIssue] = []
    data = _plain(raw)
    if env.get(BOOTSTRAP_ENV):
        data.setdefault("kafka", {})
        if isinstance(data["kafka"], dict):
            data["kafka"]["bootstrap"] = env[BOOTSTRAP_ENV]
    issues.extend(_cross_reference_issues(raw, source))
    config: GitopsConfig | None = None
    try:
        config = GitopsConfig.model_validate(data)
    except ValidationError as exc:
        issues.extend(_pydantic_issues(exc, raw, source))
    if config is not None:
        issues.extend(app_set_issues(config, raw, source))
        config, secret_issues = _resolve_secrets(config, raw, source)
        issues.extend(secret_issues)
        config, auth_issues = check_repository_auth(
            config, raw, source, line_of, require_ssh_auth=require_ssh_auth
        )
        issues.extend(auth_issues)
        issues.extend(status_credential_issues(config, raw, source, line_of))
    if issues:
        issues.sort(key=lambda i: (i.line or 0, i.path))
        raise ConfigError(issues)
    assert config is not None  # noqa: S101 - no issues means validation succeeded
    return config


def _plain(node: Any) -> Any:
    if isinstance(node, CommentedMap):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(v) for v in node]
    return node


def line_of(raw: Any, loc: Iterable[str | int]) -> int | None:
    """The 1-based line of the deepest key of `loc` present in the YAML tree."""
    line: int | None = None
    node = raw
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            line = node.lc.key(key)[0] + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            line = node.lc.item(key)[0] + 1
            node = node[key]
        else:
            break
    if line is None and isinstance(raw, CommentedMap) and raw.lc.line is not None:
        return int(raw.lc.line) + 1
    return line


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


def _pydantic_issues(exc: ValidationError, raw: Any, source: str) -> list[ConfigIssue]:
    issues = []
    for err in exc.errors():
        # Union members add their type name to the location; users never wrote it.
        loc: Loc = tuple(
            p
            for p in err["loc"]
            if not (isinstance(p, str) and (p[:1].isupper() or "[" in p or p in _UNION_TAGS))
        )
        kind = err["type"]
        if kind == "extra_forbidden":
            message = f"unknown key '{loc[-1]}'"
        elif kind == "missing":
            message = "required key is missing"
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
            if "input" in err and kind not in ("model_type", "dict_type") and not _secretish(loc):
                value = err["input"]
                if isinstance(value, str | int | float | bool):
                    message += f" (got {value!r})"
        issue = ConfigIssue(source, line_of(raw, loc), _dotted(loc), message)
        if issue not in issues:
            issues.append(issue)
    # A value that fails every member of a union reports each; keep the most specific.
    return [
        issue
        for issue in issues
        if not any(other.path.startswith(issue.path + ".") for other in issues)
    ]


def _secretish(loc: Loc) -> bool:
    if loc[:1] == ("notifications",) and any(p in ("url", "secret") for p in loc):
        return True  # a chat webhook URL is a credential
    return any(
        p in ("webhook_secret", "token", "value", "private_key", "passphrase", "keys") for p in loc
    )


def _cross_reference_issues(raw: CommentedMap, source: str) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = _duplicate_rule_issues(raw, source)
    issues.extend(_app_set_repo_issues(raw, source))
    apps = raw.get("apps")
    if not isinstance(apps, CommentedMap):
        return issues
    issues.extend(_dependency_issues(apps, raw, source))
    for section, field, label in (
        ("repositories", "repo", "repository"),
        ("clusters", "cluster", "cluster"),
    ):
        known_node = raw.get(section)
        known = sorted(str(k) for k in known_node) if isinstance(known_node, CommentedMap) else []
        for name, app in apps.items():
            if not isinstance(app, CommentedMap) or field not in app:
                continue
            target = app[field]
            if str(target) not in known:
                listing = ", ".join(known) if known else f"none defined under '{section}'"
                issues.append(
                    ConfigIssue(
                        source,
                        line_of(raw, ("apps", name, field)),
                        f"apps.{name}.{field}",
                        f"unknown {label} '{target}' (known: {listing})",
                    )
                )
    return issues


def _dependency_issues(apps: CommentedMap, raw: CommentedMap, source: str) -> list[ConfigIssue]:
    """Unknown names and cycles in `depends_on`, at the line of the entry to edit."""
    graph: dict[str, list[str]] = {}
    for name, app in apps.items():
        deps = app.get("depends_on") if isinstance(app, CommentedMap) else None
        graph[str(name)] = [str(d) for d in deps] if isinstance(deps, CommentedSeq) else []
    return [
        ConfigIssue(
            source,
            line_of(raw, ("apps", problem.app, "depends_on", problem.index)),
            f"apps.{problem.app}.depends_on",
            problem.message,
        )
        for problem in dependency_problems(graph)
    ]


def _app_set_repo_issues(raw: CommentedMap, source: str) -> list[ConfigIssue]:
    sets = raw.get("app_sets")
    if not isinstance(sets, CommentedMap):
        return []
    known_node = raw.get("repositories")
    known = sorted(str(k) for k in known_node) if isinstance(known_node, CommentedMap) else []
    listing = ", ".join(known) or "none defined under 'repositories'"
    return [
        ConfigIssue(
            source,
            line_of(raw, ("app_sets", name, "repo")),
            f"app_sets.{name}.repo",
            f"unknown repository '{app_set['repo']}' (known: {listing})",
        )
        for name, app_set in sets.items()
        if isinstance(app_set, CommentedMap)
        and "repo" in app_set
        and str(app_set["repo"]) not in known
    ]


def app_set_issues(config: GitopsConfig, raw: CommentedMap, source: str) -> list[ConfigIssue]:
    """Unknown clusters of app sets and every problem of their templates, each at the line
    of the key to edit (unknown repositories are found on the raw tree, with the apps')."""
    issues: list[ConfigIssue] = []

    def issue(loc: Loc, message: str) -> None:
        issues.append(ConfigIssue(source, line_of(raw, loc), _dotted(loc), message))

    for name, app_set in config.app_sets.items():
        cluster = app_set.template.get("cluster")
        if isinstance(cluster, str) and "{" not in cluster and cluster not in config.clusters:
            known = ", ".join(sorted(config.clusters)) or "none defined under 'clusters'"
            issue(
                ("app_sets", name, "template", "cluster"),
                f"unknown cluster '{cluster}' (known: {known})",
            )
        for problem in template_problems(app_set):
            parts = tuple(int(p) if p.isdigit() else p for p in problem.key.split(".") if p)
            issue(("app_sets", name, "template", *parts), problem.message)
    return issues


def _duplicate_rule_issues(raw: CommentedMap, source: str) -> list[ConfigIssue]:
    """Rule names key metrics and failure events, so two rules may not share one."""
    rules = raw.get("notifications")
    if not isinstance(rules, CommentedSeq):
        return []
    issues, seen = [], set()
    for index, rule in enumerate(rules):
        name = rule.get("name") if isinstance(rule, CommentedMap) else None
        if not isinstance(name, str):
            continue
        if name in seen:
            loc: Loc = ("notifications", index, "name")
            message = f"another rule is already named '{name}'; rule names must be unique"
            issues.append(ConfigIssue(source, line_of(raw, loc), _dotted(loc), message))
        seen.add(name)
    return issues


def _resolve_secrets(
    config: GitopsConfig, raw: CommentedMap, source: str
) -> tuple[GitopsConfig, list[ConfigIssue]]:
    """Replace every `{env}`/`{file}` reference by its value, reporting the ones that fail."""
    issues: list[ConfigIssue] = []

    def resolve(ref: SecretRef, loc: Loc) -> SecretRef:
        try:
            return SecretRef(value=SecretStr(ref.resolve().get_secret_value()))
        except ValueError as exc:
            issues.append(ConfigIssue(source, line_of(raw, loc), _dotted(loc), str(exc)))
            return ref

    repositories = {}
    for name, repo in config.repositories.items():
        update: dict[str, Any] = {}
        secret = repo.webhook_secret
        if isinstance(secret, list):
            update["webhook_secret"] = [
                resolve(s, ("repositories", name, "webhook_secret", i))
                for i, s in enumerate(secret)
            ]
        elif secret is not None:
            update["webhook_secret"] = resolve(secret, ("repositories", name, "webhook_secret"))
        repositories[name] = repo.model_copy(update=update)
    rules = []
    for index, rule in enumerate(config.notifications):
        rule_update: dict[str, Any] = {}
        for key in ("url", "token", "secret"):
            ref = getattr(rule, key)
            if isinstance(ref, SecretRef):
                rule_update[key] = resolve(ref, ("notifications", index, key))
        rules.append(rule.model_copy(update=rule_update))
    changes: dict[str, Any] = {"repositories": repositories, "notifications": rules}
    if config.ui.token is not None:
        token = resolve(config.ui.token, ("ui", "token"))
        changes["ui"] = config.ui.model_copy(update={"token": token})
    return config.model_copy(update=changes), issues
