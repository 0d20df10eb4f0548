"""Gitea (and Forgejo): `POST /repos/{owner}/{repo}/statuses/{sha}`.

States: `pending`, `success`, `failure`, and `warning` for a skipped sync.
"""

from __future__ import annotations

import orjson

from notifier.providers import Note, Outgoing, api_base
from notifier.providers.status import commit_of, description, owner_name
from notifier.targets import context_of

STATES = {"requested": "pending", "succeeded": "success", "failed": "failure", "skipped": "warning"}


def build(note: Note) -> Outgoing:
    owner, repo = owner_name(note)
    sha = commit_of(note)
    body: dict[str, object] = {
        "state": STATES[note.moment.kind],
        "context": context_of(note.moment.app),
        "description": description(note),
    }
    if note.rule.target_url:
        body["target_url"] = note.rule.target_url
    return Outgoing(
        url=f"{api_base(note.rule)}/repos/{owner}/{repo}/statuses/{sha}",
        body=orjson.dumps(body),
        headers={
            "Authorization": f"token {note.token}",
            "Content-Type": "application/json",
        },
        where=f"gitea {owner}/{repo}@{sha[:7]}",
    )
