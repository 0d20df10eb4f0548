"""Bitbucket Cloud: `POST /repositories/{workspace}/{repo_slug}/commit/{commit}/statuses/build`.

A build status is keyed by `key` (`gitops/<app>`: a repeat overwrites); states
`INPROGRESS`, `SUCCESSFUL`, `FAILED`, and `STOPPED` for a skipped sync. Bitbucket wants a
`url` on every status: the rule's `target_url`, else the repository's web page. The
published description makes `type` required (every Bitbucket object has one); a build
status's is `build`.
"""

from __future__ import annotations

import orjson

from notifier.providers import Note, Outgoing, api_base
from notifier.providers.status import commit_of, description, owner_name
from notifier.targets import context_of, web_url

STATES = {
    "requested": "INPROGRESS",
    "succeeded": "SUCCESSFUL",
    "failed": "FAILED",
    "skipped": "STOPPED",
}


def build(note: Note) -> Outgoing:
    workspace, slug = owner_name(note)
    sha = commit_of(note)
    link = note.rule.target_url or (web_url(note.repo_url) if note.repo_url else "")
    body: dict[str, object] = {
        "type": "build",
        "key": context_of(note.moment.app),
        "name": context_of(note.moment.app),
        "state": STATES[note.moment.kind],
        "description": description(note),
        "url": link or f"https://bitbucket.org/{workspace}/{slug}",
    }
    return Outgoing(
        url=f"{api_base(note.rule)}/repositories/{workspace}/{slug}/commit/{sha}/statuses/build",
        body=orjson.dumps(body),
        headers={
            "Authorization": f"Bearer {note.token}",
            "Content-Type": "application/json",
        },
        where=f"bitbucket {workspace}/{slug}@{sha[:7]}",
    )
