"""Words for what a record says: one summary line per event, for the Events and App pages.

Known types get a summary built from their known fields; any field the dashboard does not
know (a newer producer's) is listed as `name=value` after it, and a type it does not know
at all is shown by its fields alone, so new events appear before the dashboard learns them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from dashboard.records import DEAD_LETTER, DRIFT, OUTCOME_TYPES, PUSH, REQUEST, STATUS, Record

_KNOWN = {
    PUSH: {"provider", "delivery_id", "repo_url", "repositories", "ref", "before", "after",
           "created", "deleted", "forced", "changed_paths", "commit_count", "pusher", "apps"},
    REQUEST: {"app", "repo_url", "branch", "commit", "before", "reason", "delivery_id"},
    DRIFT: {"app", "cluster", "commit", "objects", "self_heal"},
    STATUS: {"app", "cluster", "commit", "ready", "hold", "waiting_for", "waiting"},
    "outcome": {"app", "cluster", "commit", "reason", "delivery_id", "request_id", "objects",
                "health", "duration_ms", "error"},
}  # fmt: skip
_EXTRA_LIMIT = 120


def short(sha: object) -> str:
    return sha[:7] if isinstance(sha, str) and sha else "-"


def summary(record: Record) -> str:
    """One line: what happened, then any fields this dashboard does not know."""
    data = record.data
    if record.type == PUSH:
        apps = ", ".join(a for a in data.get("apps") or [] if isinstance(a, str)) or "no app"
        text = (
            f"{data.get('provider', '?')} push to {data.get('ref', '?')} "
            f"{short(data.get('before'))}..{short(data.get('after'))}"
        )
        if data.get("pusher"):
            text += f" by {data['pusher']}"
        text += f" → {apps}"
        known = _KNOWN[PUSH]
    elif record.type == REQUEST:
        text = f"sync requested ({data.get('reason', '?')}) of {target(data.get('commit'))}"
        known = _KNOWN[REQUEST]
    elif record.type in OUTCOME_TYPES:
        text = _outcome(data)
        known = _KNOWN["outcome"]
    elif record.type == DRIFT:
        text = _drift(data)
        known = _KNOWN[DRIFT]
    elif record.type == STATUS:
        text = _status(data)
        known = _KNOWN[STATUS]
    elif record.type == DEAD_LETTER:
        text = f"gave up after {record.extensions.get('dlqattempts', '?')} attempts: " + str(
            record.extensions.get("dlqerror", "")
        )
        known = _KNOWN[REQUEST]
    else:
        text, known = record.type, set()
    extra = [f"{k}={_scalar(v)}" for k, v in data.items() if k not in known]
    return " · ".join([text, *extra]) if extra else text


def target(commit: object) -> str:
    return short(commit) if commit else "branch head"


def _outcome(data: dict[str, Any]) -> str:
    objects = [o for o in data.get("objects") or [] if isinstance(o, dict)]
    counts = Counter(str(o.get("action")) for o in objects)
    parts = [f"{a} {counts[a]}" for a in ("created", "configured", "pruned", "failed") if counts[a]]
    text = ", ".join(parts) if parts else f"{len(objects)} objects"
    if isinstance(data.get("duration_ms"), int):
        text += f" in {duration(data['duration_ms'])}"
    if data.get("health"):
        text += f", {data['health']}"
    if data.get("error"):
        text += f" — {data['error']}"
    return text


def _status(data: dict[str, Any]) -> str:
    text = f"at {short(data.get('commit'))}, {'ready' if data.get('ready') else 'not ready'}"
    hold = data.get("hold")
    if isinstance(hold, dict):
        text += f", suspended: {hold.get('reason') or 'suspended'}"
    waiting = data.get("waiting_for")
    if isinstance(waiting, dict) and waiting:
        text += f", waiting for {', '.join(sorted(map(str, waiting)))}"
    return text


def _drift(data: dict[str, Any]) -> str:
    names = []
    for obj in data.get("objects") or []:
        if not isinstance(obj, dict):
            continue
        label = f"{obj.get('kind')}/{obj.get('name')}"
        fields = obj.get("fields") or []
        names.append(
            f"{label} ({', '.join(map(str, fields))})" if fields else f"{label} {obj.get('state')}"
        )
    mode = "self-heal" if data.get("self_heal") else "detect only"
    return f"drift in {', '.join(names) or 'no object'} [{mode}]"


def duration(ms: int) -> str:
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def _scalar(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _EXTRA_LIMIT else text[: _EXTRA_LIMIT - 1] + "…"
