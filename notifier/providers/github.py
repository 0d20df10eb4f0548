"""GitHub (and GitHub Enterprise): `POST /repos/{owner}/{repo}/statuses/{sha}`.

States: `pending` when requested, `success` / `failure` from the outcome; a skipped sync
(superseded by a newer commit, or older than what is applied) is `success` with the reason
as description, since GitHub has no neutral state and a pending status would never end.
"""

from __future__ import annotations

import orjson

from notifier.providers import Note, Outgoing, api_base
from notifier.providers.status import commit_of, description, owner_name
from notifier.targets import context_of

STATES = {"requested": "pending", "succeeded": "success", "failed": "failure", "skipped": "success"}


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
    path = f"/repos/{owner}/{repo}/statuses/{sha}"
    return Outgoing(
        url=api_base(note.rule) + path,
        body=orjson.dumps(body),
        headers={
            "Authorization": f"Bearer {note.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "Content-Type": "application/json",
        },
        where=f"github {owner}/{repo}@{sha[:7]}",
    )
