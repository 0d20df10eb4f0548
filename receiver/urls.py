"""Repository identity: one canonical form for the many ways a clone URL can be written.

Git hosts put several URLs in a payload (`clone_url`, `ssh_url`, `git_http_url`, ...)
and users register whichever they clone with. They all name the same repository, so
matching compares a canonical `host[:port]/path` form: scheme, user info, default ports,
a `.git` suffix, trailing slashes and letter case are not part of a repository's identity
(GitHub, GitLab, Gitea and Bitbucket all route paths case-insensitively).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "git": 9418, "git+ssh": 22, "ssh+git": 22}
# `git@host:org/repo.git` — the scp-like form git accepts; no scheme and a colon before the path.
_SCP_LIKE = re.compile(
    r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/\[\]]+|\[[^\]]+\]):(?!//)(?P<path>.*)$"
)


def normalise_url(url: str) -> str | None:
    """Return the canonical identity of a clone URL, or None when it names no remote repository.

    >>> normalise_url("git@GitHub.com:Acme/Platform.git/")
    'github.com/acme/platform'
    >>> normalise_url("https://user:token@github.com:443/acme/platform")
    'github.com/acme/platform'
    """
    text = url.strip()
    if not text:
        return None
    host: str
    port: int | None = None
    if "://" in text:
        try:
            parts = urlsplit(text)
            scheme = parts.scheme.lower()
            host = (parts.hostname or "").lower()
            port = parts.port
        except ValueError:
            return None
        if scheme == "file" or not host:
            return None
        if port is not None and port == _DEFAULT_PORTS.get(scheme):
            port = None
        path = parts.path
    else:
        match = _SCP_LIKE.match(text)
        if match is None:
            return None
        host = match.group("host").strip("[]").lower()
        path = match.group("path")
    path = path.strip("/")
    while path.lower().endswith(".git"):
        path = path[: -len(".git")].rstrip("/")
    path = re.sub(r"/{2,}", "/", path).lower()
    if not path or not host:
        return None
    if ":" in host:  # an IPv6 literal keeps its brackets so the port stays unambiguous
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return f"{netloc}/{path}"


def without_credentials(url: str) -> str:
    """The URL as events may show it: no password, and no user name over HTTP(S).

    Users sometimes write `https://user:token@host/...` (or a bare token as the user name,
    which GitHub accepts) instead of `auth:`; that must not travel on Kafka. SSH user names
    (`git@`) carry no secret and are kept.
    """
    if "://" not in url:
        return url  # scp-like `user@host:path`: a user name, never a password
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    keep_user = parts.scheme.lower() not in ("http", "https") and user
    netloc = f"{user}@{hostport}" if keep_user else hostport
    return parts._replace(netloc=netloc).geturl()
