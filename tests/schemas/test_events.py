"""Events are CloudEvents 1.0 that round-trip and whose JSON Schemas are checked in."""

from __future__ import annotations

import json

from schemas import CommitSha, SyncRequested, Topics, parse_event
from schemas.events import ObjectResult, SyncRequestedData, SyncResultData, SyncSucceeded
from schemas.export import CHECKED_IN, render_schemas
from schemas.types import AppName


def test_sync_request_is_a_structured_cloudevent() -> None:
    event = SyncRequested(
        source="/gitops/receiver",
        subject="guestbook",
        data=SyncRequestedData(
            app=AppName("guestbook"),
            repo_url="https://github.com/acme/x",
            branch="main",
            commit=CommitSha("a" * 40),
            reason="webhook",
        ),
    )
    body = json.loads(event.to_bytes())
    assert body["specversion"] == "1.0"
    assert body["type"] == "gitops.sync.requested"
    assert body["datacontenttype"] == "application/json"
    assert {"id", "source", "time", "subject", "data"} <= body.keys()
    assert parse_event(event.to_bytes()) == event


def test_outcome_parses_to_its_type() -> None:
    event = SyncSucceeded(
        source="/gitops/syncer/s1",
        data=SyncResultData(
            app=AppName("a"),
            cluster="prod",
            objects=[ObjectResult(api_version="v1", kind="ConfigMap", name="c", action="created")],
        ),
    )
    parsed = parse_event(event.to_bytes())
    assert isinstance(parsed, SyncSucceeded)
    assert parsed.data.objects[0].action == "created"


def test_topic_names_follow_the_prefix() -> None:
    assert Topics("acme").all() == (
        "acme.push-events",
        "acme.sync-requests",
        "acme.sync-events",
        "acme.sync-requests.dlq",
        "acme.app-status",
        "acme.generated-apps",
    )


def test_checked_in_json_schemas_are_current() -> None:
    """Fails when a model changed without `gitops schemas export schemas/json`."""
    rendered = render_schemas()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in CHECKED_IN.glob("*.json")}
    assert sorted(on_disk) == sorted(rendered), "schema files added or removed: re-export"
    stale = [name for name, text in rendered.items() if on_disk[name] != text]
    assert not stale, f"stale JSON Schemas {stale}: run `gitops schemas export schemas/json`"
