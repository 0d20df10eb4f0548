"""Links from a commit sha to the page of that commit on its Git host, when the host is known.

Only public hosts whose URL scheme for commits is fixed are linked; for any other URL
(a self-hosted server, a file path, the local stack's git server) the sha is shown as
text, since a guessed link that 404s is worse than none.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_SCP = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")
_COMMIT_PAGES = {
    "github.com": "https://github.com/{path}/commit/{sha}",
    "gitlab.com": "https://gitlab.com/{path}/-/commit/{sha}",
    "bitbucket.org": "https://bitbucket.org/{path}/commits/{sha}",
    "codeberg.org": "https://codeberg.org/{path}/commit/{sha}",
}
_SHA = re.compile(r"^[0-9a-f]{7,64}$")


def host_and_path(url: str) -> tuple[str, str] | None:
    """(`github.com`, `acme/platform`) for the https, ssh, scp-like and normalised forms."""
    text = url.strip()
    if "://" in text:
        parts = urlsplit(text)
        host, path = (parts.hostname or ""), parts.path
    elif match := _SCP.match(text):
        host, path = match["host"], match["path"]
    elif "/" in text:  # the receiver's normalised form, `host[:port]/path`
        host, _, path = text.partition("/")
    else:
        return None
    path = path.strip("/").removesuffix(".git")
    if not host or not path:
        return None
    return host.lower(), path


def commit_url(repo_url: str, sha: str | None) -> str | None:
    """The commit's page on a known host, or None."""
    if not sha or not _SHA.match(sha):
        return None
    found = host_and_path(repo_url)
    if found is None or found[0] not in _COMMIT_PAGES:
        return None
    host, path = found
    return _COMMIT_PAGES[host].format(path=path, sha=sha)
