"""Any webhook: POST the CloudEvent itself, in structured mode, optionally signed.

The body is the event exactly as it is on Kafka (`application/cloudevents+json`), so a
receiver can parse it with the project's JSON Schemas. With `secret`, the header
`X-Gitops-Signature-256: sha256=<hex>` carries the HMAC-SHA256 of the raw body, the way
GitHub signs its webhooks, so receivers can reuse their GitHub verification code.
"""

from __future__ import annotations

import hashlib
import hmac

from notifier.providers import Note, Outgoing, endpoint_where, secret_value

SIGNATURE_HEADER = "X-Gitops-Signature-256"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


def signature(key: str, body: bytes) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def build(note: Note) -> Outgoing:
    body = note.moment.event.to_bytes()
    headers = {"Content-Type": CONTENT_TYPE, "X-Gitops-Rule": note.rule.name}
    if note.rule.secret is not None:
        headers[SIGNATURE_HEADER] = signature(secret_value(note.rule.secret), body)
    return Outgoing(
        url=secret_value(note.rule.url), body=body, headers=headers, where=endpoint_where(note.rule)
    )
