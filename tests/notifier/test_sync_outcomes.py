"""Real syncs, real statuses: a broken commit goes red, its fix goes green, chat hears once.

A real syncer applies real commits (pushed with the git CLI to `git http-backend`) to the
bed's kube-apiserver and reports on the bed's Kafka; a notifier turns those outcomes into
commit statuses on a GitHub-shaped API and messages on a Slack-shaped one, both checked
against the providers' descriptions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from notifier.service import Notifier
from schemas.events import SyncFailed, SyncSucceeded
from syncer.service import Syncer
from tests.notifier.conftest import TOKEN, with_rules
from tests.support.fakeapis import FakeApi, Scripted, states
from tests.syncer.conftest import configmap, namespace_yaml

MakeBench = Callable[..., Any]


def broken_and_fixed(
    ns: str,
) -> tuple[dict[str, str | bytes | None], dict[str, str | bytes | None]]:
    broken = {
        "apps/web/ns.yaml": namespace_yaml(ns),
        "apps/web/bad.yaml": configmap("Not_A_Valid_Name"),
    }
    fixed = {"apps/web/bad.yaml": None, "apps/web/good.yaml": configmap("settings", mode="prod")}
    return broken, fixed


def rules(github: FakeApi, slack: FakeApi) -> list[dict[str, Any]]:
    return [
        {
            "name": "status",
            "on": ["requested", "succeeded", "failed"],
            "provider": "github",
            "url": github.url,
            "token": {"value": TOKEN},
            "repository": "acme/platform",
        },
        {
            "name": "chat",
            "on": ["failed"],
            "provider": "slack",
            "url": {"value": slack.root + slack.operations[0].template},
        },
    ]


async def test_a_failed_sync_goes_red_with_one_chat_message_and_its_fix_goes_green(
    bench: MakeBench, github: FakeApi, slack: FakeApi
) -> None:
    b = await bench()
    config = with_rules(b.config, rules(github, slack))
    broken, fixed = broken_and_fixed(b.ns)
    async with Syncer(config, syncer_id="s1"), Notifier(config, notifier_id="n1") as notifier:
        await notifier.joined()
        red = b.repo.commit_and_push(broken, "a name the API server refuses")
        await b.request("web", red)
        await github.wait_for(
            lambda a: states(a, red, "gitops/web") == ["pending", "failure"], timeout=60
        )
        await slack.wait_for(lambda a: len(a.accepted()) == 1)
        green = b.repo.commit_and_push(fixed, "fix the name")
        await b.request("web", green)
        await github.wait_for(
            lambda a: states(a, green, "gitops/web") == ["pending", "success"], timeout=60
        )
        events = await b.outcomes(2)

    assert [type(e) for e in events] == [SyncFailed, SyncSucceeded]
    assert github.rejected == [] and slack.rejected == []
    assert states(github, red, "gitops/web") == ["pending", "failure"]
    (message,) = slack.accepted()
    assert f"web failed to sync {red[:7]}" in message.body["text"]
    failure = next(r for r in github.accepted() if r.body["state"] == "failure")
    assert failure.params == {"owner": "acme", "repo": "platform", "sha": red}
    assert "Not_A_Valid_Name" in failure.body["description"]


async def test_a_503_storm_from_the_chat_delays_no_sync_and_gives_up_once(
    bench: MakeBench, github: FakeApi, slack: FakeApi
) -> None:
    slack.script = [Scripted(503, headers={"Retry-After": "2"})] * 50
    b = await bench()
    config = with_rules(b.config, rules(github, slack), max_attempts=4)
    broken, fixed = broken_and_fixed(b.ns)
    async with Syncer(config, syncer_id="s1"), Notifier(config, notifier_id="n1") as notifier:
        await notifier.joined()
        red = b.repo.commit_and_push(broken, "a name the API server refuses")
        await b.request("web", red)
        await slack.wait_for(lambda a: len(a.received) >= 1, timeout=60)
        storm_started = time.time()
        green = b.repo.commit_and_push(fixed, "fix the name")
        (request,) = await b.request("web", green)
        events = await b.outcomes(2, timeout=60)
        synced = time.time()
        attempts_when_synced = len(slack.received)
        await github.wait_for(lambda a: states(a, green, "gitops/web")[-1:] == ["success"])
        status_green = time.time()
        await slack.wait_for(lambda a: len(a.received) == 4, timeout=30)
        failures = [e for e in await _failures(b, expect=1)]

    second = events[1]
    assert isinstance(second, SyncSucceeded) and second.data.request_id == request.id
    assert attempts_when_synced < 4, "the sync waited for the chat's retries"
    assert synced - storm_started < 6, "the fix took longer than the storm's first retry"
    assert status_green < slack.received[-1].at, "the commit status waited for the chat"
    gaps = [y.at - x.at for x, y in zip(slack.received, slack.received[1:], strict=False)]
    assert all(g >= 1.9 for g in gaps), gaps  # the 503's Retry-After: 2
    assert len(failures) == 1
    assert (failures[0].data.rule, failures[0].data.commit) == ("chat", red)
    assert (failures[0].data.attempts, failures[0].data.status) == (4, 503)
    assert len(slack.received) == 4


async def _failures(b: Any, expect: int) -> list[Any]:
    from schemas.events import NotificationFailed, parse_event
    from tests.support.kafka import read_topic

    records = await read_topic(b.bootstrap, b.topics.sync_events, timeout=20, idle=1.0)
    found = [e for r in records if isinstance(e := parse_event(r.value), NotificationFailed)]
    assert len(found) >= expect, found
    return found
