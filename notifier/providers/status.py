"""What every commit-status provider shares: the commit, the target, the description."""

from __future__ import annotations

from notifier.errors import PermanentDeliveryError
from notifier.providers import Note
from notifier.targets import owner_and_name, repository_path

DESCRIPTION_LIMIT = 140
"""GitHub refuses longer descriptions; the others show about as much."""


def commit_of(note: Note) -> str:
    if not note.moment.commit:
        raise PermanentDeliveryError(
            f"{note.moment.kind} for {note.moment.app} names no commit (a branch-head request);"
            " no commit status can be set"
        )
    return note.moment.commit


def full_path(note: Note) -> str:
    if note.rule.repository:
        return note.rule.repository
    if not note.repo_url:
        raise PermanentDeliveryError(
            f"app {note.moment.app} has no repository in this notifier's configuration;"
            " set 'repository: owner/name' on rule " + note.rule.name
        )
    return repository_path(note.repo_url)


def owner_name(note: Note) -> tuple[str, str]:
    try:
        return owner_and_name(full_path(note))
    except ValueError as exc:
        raise PermanentDeliveryError(str(exc)) from None


def description(note: Note) -> str:
    text = " ".join(note.text.split())
    return text if len(text) <= DESCRIPTION_LIMIT else text[: DESCRIPTION_LIMIT - 1] + "…"
