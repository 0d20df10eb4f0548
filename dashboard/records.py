"""One message of the pipeline's topics as the dashboard holds it: lenient on purpose.

The typed models in `schemas.events` refuse unknown fields, which is right for the
pipeline's own members; the dashboard must instead keep showing the trail while other
parts add event types and fields (waves, hooks, suspension, app sets). So a record keeps
the CloudEvent as parsed JSON, takes out what the pages index on (type, time, app,
delivery id), and leaves everything else for the templates to show as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

JsonObj = dict[str, Any]

OUTCOME_TYPES = {
    "gitops.sync.succeeded": "succeeded",
    "gitops.sync.failed": "failed",
    "gitops.sync.skipped": "skipped",
}
PUSH = "gitops.push.received"
REQUEST = "gitops.sync.requested"
DRIFT = "gitops.drift.detected"
STATUS = "gitops.app.status"
DEAD_LETTER = "dead-letter"
"""Our name for a record of the DLQ topic (it carries the request's own type)."""


@dataclass(frozen=True, slots=True)
class Record:
    """A CloudEvent read from one of the topics, numbered in the order the dashboard read it."""

    seq: int
    topic: str
    id: str
    type: str
    time: datetime
    source: str
    data: JsonObj
    extensions: JsonObj
    """Envelope attributes beyond CloudEvents' own (e.g. `dlqerror`, `dlqattempts`)."""

    @property
    def app(self) -> str | None:
        value = self.data.get("app")
        return value if isinstance(value, str) else None

    @property
    def apps(self) -> tuple[str, ...]:
        """Every app this record concerns: its own, or those a push requested syncs for."""
        if self.app is not None:
            return (self.app,)
        listed = self.data.get("apps")
        if isinstance(listed, list):
            return tuple(a for a in listed if isinstance(a, str))
        return ()

    @property
    def delivery_id(self) -> str | None:
        value = self.data.get("delivery_id")
        return value if isinstance(value, str) and value else None

    @property
    def kind(self) -> str:
        """A short name of the type for the pages: `push`, `requested`, `failed`, `drift`..."""
        if self.type == DEAD_LETTER:
            return "dead-letter"
        if self.type in OUTCOME_TYPES:
            return OUTCOME_TYPES[self.type]
        return {PUSH: "push", REQUEST: "requested", DRIFT: "drift", STATUS: "status"}.get(
            self.type, self.type.removeprefix("gitops.")
        )

    @property
    def commit(self) -> str | None:
        value = self.data.get("commit") or self.data.get("after")
        return value if isinstance(value, str) and value else None


_ENVELOPE = {"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "data"}


def parse_record(raw: bytes | None, *, topic: str, seq: int, dead_letter: bool) -> Record | None:
    """The record of one message, or None when it is not a CloudEvent object at all."""
    if not raw:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        return None
    data = doc.get("data")
    return Record(
        seq=seq,
        topic=topic,
        id=str(doc.get("id") or ""),
        type=DEAD_LETTER if dead_letter else doc["type"],
        time=_time(doc.get("time")),
        source=str(doc.get("source") or ""),
        data=data if isinstance(data, dict) else {},
        extensions={k: v for k, v in doc.items() if k not in _ENVELOPE},
    )


def _time(value: object) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return datetime.now(UTC)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)
