"""GitLab: `POST /projects/{id}/statuses/{sha}`, the project id being its URL-encoded path.

States: `pending`, `success`, `failed`, and `skipped` for a skipped sync (GitLab has one).
The status is named by `name` (GitLab's alias `context` means the same).
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from notifier.providers import Note, Outgoing, api_base
from notifier.providers.status import commit_of, description, full_path
from notifier.targets import context_of

STATES = {"requested": "pending", "succeeded": "success", "failed": "failed", "skipped": "skipped"}


def build(note: Note) -> Outgoing:
    project = full_path(note)
    sha = commit_of(note)
    body: dict[str, object] = {
        "state": STATES[note.moment.kind],
        "name": context_of(note.moment.app),
        "description": description(note),
    }
    if note.rule.target_url:
        body["target_url"] = note.rule.target_url
    return Outgoing(
        url=f"{api_base(note.rule)}/projects/{quote(project, safe='')}/statuses/{sha}",
        body=orjson.dumps(body),
        headers={
            "PRIVATE-TOKEN": note.token,
            "Content-Type": "application/json",
        },
        where=f"gitlab {project}@{sha[:7]}",
    )
