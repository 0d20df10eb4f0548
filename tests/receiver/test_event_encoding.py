"""The events the receiver writes without pydantic are exactly what the schema models say."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from receiver import encoding
from schemas.events import (
    PushReceived,
    PushReceivedData,
    SyncRequested,
    SyncRequestedData,
    parse_event,
)
from schemas.types import AppName, CommitSha, DeliveryId

BEFORE = CommitSha("6113728f27ae82c7b1a177c8d03f9e96e0adf246")
AFTER = CommitSha("0000000000000000000000000000000000000001")
WHEN = datetime(2026, 11, 26, 13, 48, 41, 801428, tzinfo=UTC)
ON_THE_SECOND = datetime(2026, 11, 26, 13, 48, 41, tzinfo=UTC)


@pytest.mark.parametrize(
    ("before", "after", "paths", "count", "pusher", "apps", "when"),
    [
        (BEFORE, AFTER, ("README.md", "apps/web/deploy.yaml"), 2, "codertocat", ["web"], WHEN),
        (None, AFTER, None, None, None, [], WHEN),
        (BEFORE, None, (), 0, "a \u00e9 \U0001f600", ["a", "b"], ON_THE_SECOND),
        (BEFORE, AFTER, None, 2**70, 'quote " back \\ \n\x01', ["a"], WHEN),
        (BEFORE, AFTER, None, 2**70, "x", ["a"], ON_THE_SECOND),
    ],
)
def test_push_received_bytes_parse_to_the_model_built_from_the_same_values(
    before: CommitSha | None,
    after: CommitSha | None,
    paths: tuple[str, ...] | None,
    count: int | None,
    pusher: str | None,
    apps: list[str],
    when: datetime,
) -> None:
    values = {
        "provider": "github",
        "delivery_id": DeliveryId("d-1"),
        "repo_url": "github.com/codertocat/hello-world",
        "repositories": ["hello"],
        "ref": "refs/heads/master",
        "before": before,
        "after": after,
        "created": before is None,
        "deleted": after is None,
        "forced": False,
        "changed_paths": paths,
        "commit_count": count,
        "pusher": pusher,
        "apps": [AppName(a) for a in apps],
    }
    raw = encoding.push_received(
        event_id="github:d-1:0:push", source="/gitops/receiver/github", time=when, **values
    )
    model = PushReceived(
        id="github:d-1:0:push",
        source="/gitops/receiver/github",
        time=when,
        subject="refs/heads/master",
        data=PushReceivedData.model_validate(
            {**values, "changed_paths": None if paths is None else list(paths)}
        ),
    )

    assert parse_event(raw) == model
    assert raw == model.to_bytes()


@pytest.mark.parametrize(("commit", "delivery"), [(AFTER, DeliveryId("d-2")), (None, None)])
def test_sync_requested_bytes_are_the_model_s_bytes(
    commit: CommitSha | None, delivery: DeliveryId | None
) -> None:
    raw = encoding.sync_requested(
        event_id="github:d-2:0:web",
        source="/gitops/receiver/github",
        time=WHEN,
        app=AppName("web"),
        repo_url="git@github.com:codertocat/hello-world.git",
        branch="master",
        commit=commit,
        before=BEFORE if commit else None,
        reason="webhook",
        delivery_id=delivery,
    )
    model = SyncRequested(
        id="github:d-2:0:web",
        source="/gitops/receiver/github",
        time=WHEN,
        subject="web",
        data=SyncRequestedData(
            app=AppName("web"),
            repo_url="git@github.com:codertocat/hello-world.git",
            branch="master",
            commit=commit,
            before=BEFORE if commit else None,
            reason="webhook",
            delivery_id=delivery,
        ),
    )

    assert parse_event(raw) == model
    assert raw == model.to_bytes()


@pytest.mark.parametrize(
    "text",
    [
        '{"ref": "refs/heads/main", "size": 12345678901234567890}',
        '{"ratio": NaN}',
        '{"name": "\\ud800"}',
        '{"ref": "refs/heads/main", "commits": [{"id": "a"}]}',
    ],
)
def test_bodies_parse_as_the_standard_json_module_parses_them(text: str) -> None:
    ours, standard = encoding.loads(text), json.loads(text)
    if "NaN" in text:  # NaN != NaN
        assert isinstance(ours, dict) and math.isnan(ours["ratio"])
    else:
        assert ours == standard


@pytest.mark.parametrize("text", ['{"ref": ', "[1, 2", '{"a": 1} x', "\ufeff{}"])
def test_refused_bodies_fail_with_the_standard_json_module_s_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as ours:
        encoding.loads(text)
    with pytest.raises(json.JSONDecodeError) as standard:
        json.loads(text)
    assert str(ours.value) == str(standard.value)
