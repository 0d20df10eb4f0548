"""Microsoft Teams workflow webhook ("when a Teams webhook request is received").

Office 365 connectors are retired; a Teams workflow takes a message whose attachment is an
Adaptive Card, and answers 202.
"""

from __future__ import annotations

import orjson

from notifier.providers import Note, Outgoing, endpoint_where, secret_value


def card(text: str) -> dict[str, object]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [{"type": "TextBlock", "text": text, "wrap": True}],
                },
            }
        ],
    }


def build(note: Note) -> Outgoing:
    return Outgoing(
        url=secret_value(note.rule.url),
        body=orjson.dumps(card(note.text)),
        headers={"Content-Type": "application/json"},
        where=endpoint_where(note.rule),
    )
