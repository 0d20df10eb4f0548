"""Where a commit status goes: the repository path on the Git host and the status context.

The path comes from the app's repository URL in the configuration (never from an event),
`https://github.com/acme/shop.git` and `git@github.com:acme/shop.git` both giving
`acme/shop`; a rule's `repository: owner/name` wins, for mirrors whose clone URL is not
the host that shows the commit.
"""

from __future__ import annotations

import re

_SCP_LIKE = re.compile(r"^[^/@:]+@[^/:]+:(?P<path>.+)$")


def repository_path(url: str) -> str:
    """The path of a repository URL without host, leading slash and `.git`."""
    match = _SCP_LIKE.match(url)
    if match:
        path = match.group("path")
    else:
        rest = url.split("://", 1)[1] if "://" in url else url
        path = rest.split("/", 1)[1] if "/" in rest else ""
    path = path.split("?", 1)[0].strip("/")
    return path.removesuffix(".git")


def owner_and_name(path: str) -> tuple[str, str]:
    """The last two segments (`owner/name`); GitHub, Gitea and Bitbucket nest no deeper."""
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2:
        raise ValueError(
            f"cannot tell owner/name from {path!r}: set 'repository: owner/name' on the rule"
        )
    return parts[-2], parts[-1]


def web_url(url: str) -> str:
    """The repository's web page (https), for statuses that must link somewhere."""
    match = _SCP_LIKE.match(url)
    if match:
        host = url.split("@", 1)[1].split(":", 1)[0]
        return f"https://{host}/{repository_path(url)}"
    rest = url.split("://", 1)[1] if "://" in url else url
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"https://{host}/{repository_path(url)}"


def context_of(app: str) -> str:
    """One status per app on a commit: `gitops/<app>`, so a repeat overwrites, never adds."""
    return f"gitops/{app}"
