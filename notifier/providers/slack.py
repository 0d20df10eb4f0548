"""Slack incoming webhook: POST `{"text": ...}` to the webhook URL (a secret)."""

from __future__ import annotations

import orjson

from notifier.providers import Note, Outgoing, endpoint_where, secret_value


def build(note: Note) -> Outgoing:
    return Outgoing(
        url=secret_value(note.rule.url),
        body=orjson.dumps({"text": note.text}),
        headers={"Content-Type": "application/json"},
        where=endpoint_where(note.rule),
    )
