"""Delivery: bounded retries on 5xx, 429 (Retry-After) and network errors; 4xx gives up at once.

Each give-up is one `gitops.notification.failed` event on sync-events, without secrets.
A burst for one commit collapses to its newest outcome; each provider is rate limited.
"""

from __future__ import annotations

import time

import aiohttp

from tests.notifier.conftest import chat_rule, notifier_bench, running, sha, status_rule
from tests.support.bed import RealKafka
from tests.support.fakeapis import FakeApi, Scripted, states

SLACK_SECRET_PATH = "/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"


def secret_slack_rule(slack: FakeApi, **extra: object) -> dict[str, object]:
    """The webhook URL given as a secret, as users should (it is a credential)."""
    rule = chat_rule(slack, slack.root + SLACK_SECRET_PATH, **extra)
    rule["url"] = {"value": rule["url"]}
    return rule


async def test_a_503_storm_gives_up_after_the_bound_with_one_failure_event(
    kafka: RealKafka, slack: FakeApi, github: FakeApi
) -> None:
    slack.script = [Scripted(503, body="upstream unavailable")] * 20
    rules = [secret_slack_rule(slack), status_rule(github)]
    b = await notifier_bench(kafka, rules, max_attempts=3, retry_delay="200ms")
    notifier = await running(b.config)
    try:
        commit = sha()
        request = await b.requested("web", commit)
        await b.outcome(request, "failed", error="boom")
        await github.wait_for(lambda a: states(a, commit, "gitops/web") == ["pending", "failure"])
        status_done = time.time()
        await slack.wait_for(lambda a: len(a.received) == 3, what="3 attempts")
        failures = await b.failures(expect=1)
        time_of_give_up = time.time()
    finally:
        await notifier.stop()

    assert len(slack.received) == 3, "attempts beyond max_attempts"
    assert status_done < slack.received[-1].at, "the commit status waited for the chat"
    assert len(failures) == 1, failures
    data = failures[0].data
    assert (data.rule, data.provider, data.app, data.commit) == (
        "slack-chat",
        "slack",
        "web",
        commit,
    )
    assert (data.outcome, data.attempts, data.status) == ("failed", 3, 503)
    assert "upstream unavailable" in data.error
    assert "XXXXXXXX" not in data.error and "T0000" not in data.error
    gaps = [b_.at - a_.at for a_, b_ in zip(slack.received, slack.received[1:], strict=False)]
    assert gaps[0] >= 0.18 and gaps[1] >= 0.36, gaps  # 200 ms, then doubled
    assert time_of_give_up - slack.received[0].at < 15


async def test_retry_after_of_a_429_is_honoured(kafka: RealKafka, slack: FakeApi) -> None:
    slack.script = [Scripted(429, headers={"Retry-After": "2"}, body="rate_limited")]
    b = await notifier_bench(kafka, [secret_slack_rule(slack)], retry_delay="100ms")
    notifier = await running(b.config)
    try:
        request = await b.requested("web", sha())
        await b.outcome(request, "failed", error="boom")
        await slack.wait_for(lambda a: len(a.accepted()) == 1, timeout=20)
    finally:
        await notifier.stop()
    first, second = slack.received
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.9, second.at - first.at


async def test_a_4xx_gives_up_at_once(kafka: RealKafka, slack: FakeApi) -> None:
    slack.script = [Scripted(404, body="no_service")]
    b = await notifier_bench(kafka, [secret_slack_rule(slack)], max_attempts=5, retry_delay="100ms")
    notifier = await running(b.config)
    try:
        request = await b.requested("web", sha())
        await b.outcome(request, "failed", error="boom")
        failures = await b.failures(expect=1)
    finally:
        await notifier.stop()
    assert len(slack.received) == 1
    assert len(failures) == 1
    assert (failures[0].data.attempts, failures[0].data.status) == (1, 404)
    assert "no_service" in failures[0].data.error


async def test_no_answer_is_retried_then_given_up(kafka: RealKafka) -> None:
    rule = {"name": "nowhere", "on": ["failed"], "provider": "slack", "url": "http://127.0.0.1:9/x"}
    b = await notifier_bench(kafka, [rule], max_attempts=2, retry_delay="100ms")
    notifier = await running(b.config)
    try:
        request = await b.requested("web", sha())
        await b.outcome(request, "failed", error="boom")
        failures = await b.failures(expect=1)
    finally:
        await notifier.stop()
    assert len(failures) == 1
    assert (failures[0].data.attempts, failures[0].data.status) == (2, None)
    assert "no answer" in failures[0].data.error


async def test_each_provider_is_rate_limited(kafka: RealKafka, slack: FakeApi) -> None:
    apps = [f"app{i}" for i in range(6)]
    rule = secret_slack_rule(slack)
    b = await notifier_bench(kafka, [rule], apps=apps, rate_limits={"slack": 2})
    notifier = await running(b.config)
    try:
        requests = await b.requests([(app, sha()) for app in apps])
        await b.outcomes([(r, "failed", "boom") for r in requests])
        await slack.wait_for(lambda a: len(a.accepted()) == 6, timeout=30)
    finally:
        await notifier.stop()
    times = sorted(r.at for r in slack.accepted())
    # 2 per second with a burst of 2: six messages need at least two seconds.
    assert times[-1] - times[0] >= 1.9, times


async def test_a_burst_for_one_commit_collapses_to_its_newest_outcome(
    kafka: RealKafka, github: FakeApi
) -> None:
    github.delay = 1.0  # a slow API: the burst queues up behind the first status
    b = await notifier_bench(kafka, [status_rule(github)])
    notifier = await running(b.config)
    try:
        commit = sha()
        requests = await b.requests([("web", commit)] * 4)
        await b.outcomes([(r, "failed", "boom") for r in requests[:-1]])
        await b.outcome(requests[-1], "succeeded")
        await github.wait_for(
            lambda a: states(a, commit, "gitops/web")[-1:] == ["success"], timeout=30
        )
    finally:
        await notifier.stop()
    seen = states(github, commit, "gitops/web")
    assert seen[-1] == "success"
    assert len(seen) < 8, seen  # 4 pending + 4 outcomes without collapsing
    assert github.rejected == []


async def test_a_template_reaching_outside_the_sandbox_is_given_up_not_run(
    kafka: RealKafka, slack: FakeApi
) -> None:
    rule = secret_slack_rule(slack, template="{{ ''.__class__.__mro__[1].__subclasses__() }}")
    b = await notifier_bench(kafka, [rule])
    notifier = await running(b.config)
    try:
        request = await b.requested("web", sha())
        await b.outcome(request, "failed", error="boom")
        failures = await b.failures(expect=1)
    finally:
        await notifier.stop()
    assert slack.received == []
    assert len(failures) == 1
    assert "template of rule slack-chat" in failures[0].data.error
    assert (failures[0].data.attempts, failures[0].data.status) == (0, None)


async def test_a_branch_head_request_gets_its_status_from_the_outcome_that_names_the_commit(
    kafka: RealKafka, github: FakeApi
) -> None:
    b = await notifier_bench(kafka, [status_rule(github)])
    notifier = await running(b.config, http_port=0)
    try:
        commit = sha()
        request = await b.requested("web", None)
        await b.outcome(request, "succeeded", commit=commit)
        await github.wait_for(lambda a: states(a, commit, "gitops/web") == ["success"])
        failures = await b.failures(expect=0, timeout=3)
        assert notifier.endpoints is not None
        scrape = f"http://127.0.0.1:{notifier.endpoints.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{scrape}/metrics") as response:
                metrics = await response.text()
            async with http.get(f"{scrape}/readyz") as response:
                ready = response.status
    finally:
        await notifier.stop()
    assert failures == []
    assert ready == 200
    assert len(github.received) == 1
    assert 'gitops_notifier_deliveries_total{provider="github",result="delivered"} 1.0' in metrics
    assert 'gitops_notifier_deliveries_total{provider="github",result="no_commit"} 1.0' in metrics
    assert 'gitops_notifier_delivery_seconds_count{provider="github"} 1.0' in metrics
