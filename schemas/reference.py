"""Render the configuration reference (docs/configuration.md) from the models' docstrings.

The reference is generated so it cannot drift from what the loader accepts; a test
fails when the checked-in copy is stale. Regenerate with `python -m schemas.reference`.
"""

from __future__ import annotations

import sys
import types
import typing
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from schemas.config import GitopsConfig

TARGET = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation))
    if origin is list:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if origin is dict:
        return f"map of name to {_type_name(get_args(annotation)[1])}"
    if origin is typing.Literal:
        return " / ".join(f"`{a}`" for a in get_args(annotation))
    if annotation is type(None):
        return "null"
    if annotation is timedelta:
        return "duration"
    if annotation is SecretStr:
        return "secret"
    return getattr(annotation, "__name__", str(annotation))


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        return "" if value in ({}, []) else f"`{value}`"
    if info.default is PydanticUndefined:
        return "required"
    value = info.default
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, timedelta):
        return f"`{int(value.total_seconds())}s`"
    if value is None:
        return ""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        found.extend(m for m in _models(arg) if m not in found)
    return found


_GITHUB_ED25519 = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
"""github.com's ed25519 host key, as GitHub publishes it ("GitHub's SSH key fingerprints")."""

AUTH_EXAMPLES = f"""## Repository credentials: examples

A repository's `auth` takes one of three credentials; all three serve branch-head polls,
fetches and commit verification, and commit statuses on the same host.

An HTTPS token (a personal or project access token):

```yaml
repositories:
  platform:
    url: https://gitlab.example.com/acme/platform.git
    auth:
      token: {{env: GITLAB_TOKEN}}
      username: oauth2                  # GitLab wants oauth2; GitHub accepts any
      ca_bundle: {{file: /etc/ssl/acme-ca.pem}}   # a private CA signs the server's certificate
      proxy: http://proxy.acme.internal:3128    # HTTPS through a proxy
```

An SSH deploy key, with the server's host keys pinned (`ssh-keyscan github.com`, checked
against the fingerprints the host publishes). Host keys are always verified: an unknown
or changed key fails the sync with the host and the key's fingerprint in the error;
nothing is trusted on first use:

```yaml
repositories:
  platform:
    url: git@github.com:acme/platform.git     # or ssh://git@github.com/acme/platform.git
    auth:
      ssh:
        private_key: {{file: /run/secrets/deploy_key}}
        passphrase: {{env: DEPLOY_KEY_PASSPHRASE}}   # only for an encrypted key
        known_hosts: |
          github.com ssh-ed25519 {_GITHUB_ED25519}
        # or: known_hosts: {{file: /etc/gitops/known_hosts}}; a port other than 22 is
        # written [host]:port, as `ssh-keyscan -p PORT host` prints it
```

A GitHub App installation: the syncer signs a JWT with the app's key, exchanges it for an
installation token, and mints a new one shortly before it expires or when the host
refuses it:

```yaml
repositories:
  platform:
    url: https://github.com/acme/platform.git
    auth:
      github_app:
        app_id: 123456
        installation_id: 7890123
        private_key: {{file: /run/secrets/github-app.pem}}
        # api_url: https://github.acme.internal/api/v3   # GitHub Enterprise Server
```

`gitops config check` opens every key and parses every known_hosts line: a key file that
does not exist or holds no private key, a malformed known_hosts line, and an SSH URL
without `auth.ssh` are reported with file and line.
"""


def render_reference() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from `schemas/config.py` by `python -m schemas.reference`; do not edit.",
        "Unknown keys are errors. Durations are written `30s`, `5m`, `1h30m`; sizes `5MiB`.",
        "A secret is `{env: NAME}`, `{file: PATH}` or, for local use, `{value: ...}`.",
        "",
    ]
    seen: set[type[BaseModel]] = set()
    queue: list[tuple[str, type[BaseModel]]] = [("(top level)", GitopsConfig)]
    while queue:
        title, model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        lines += [f"## {title}", "", (model.__doc__ or "").strip().splitlines()[0], ""]
        lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for name, info in model.model_fields.items():
            description = (info.description or "").replace("\n", " ").replace("|", "\\|")
            lines.append(
                f"| `{name}` | {_type_name(info.annotation)} | {_default(info)} | {description} |"
            )
            for sub in _models(info.annotation):
                path = name if title == "(top level)" else f"{title}.{name}"
                if get_origin(info.annotation) is dict:
                    path += ".<name>"
                queue.append((path, sub))
        lines.append("")
    return "\n".join(lines) + "\n" + AUTH_EXAMPLES


if __name__ == "__main__":
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(render_reference(), encoding="utf-8")
    sys.stdout.write(f"wrote {TARGET}\n")
