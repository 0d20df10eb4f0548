"""Every provider's request matches the provider's published API, for every kind of moment.

Real events go through the bed's Kafka to a real notifier; each fake API validates what
arrives against the provider's own description (`tests/notifier/apis/`) and rejects the
rest, so these tests fail on any request the real service would refuse.
"""

from __future__ import annotations

import aiohttp
import pytest

from schemas.events import SyncFailed, SyncRequested
from tests.notifier.conftest import (
    TOKEN,
    chat_rule,
    notifier_bench,
    running,
    sha,
    status_rule,
)
from tests.support.bed import RealKafka
from tests.support.fakeapis import FakeApi, WebhookReceiver, states, status_api

EXPECTED = {
    "github": ["pending", "success", "pending", "failure", "pending", "success"],
    "gitlab": ["pending", "success", "pending", "failed", "pending", "skipped"],
    "gitea": ["pending", "success", "pending", "failure", "pending", "warning"],
    "bitbucket": ["INPROGRESS", "SUCCESSFUL", "INPROGRESS", "FAILED", "INPROGRESS", "STOPPED"],
}


@pytest.mark.parametrize("provider", ["github", "gitlab", "gitea", "bitbucket"])
async def test_commit_status_requests_match_the_providers_description(
    kafka: RealKafka, provider: str
) -> None:
    async with status_api(provider, TOKEN) as api:
        b = await notifier_bench(kafka, [status_rule(api)], apps=["web"])
        commits = [sha(), sha(), sha()]
        notifier = await running(b.config)
        try:
            for commit, kind in zip(commits, ("succeeded", "failed", "skipped"), strict=True):
                request = await b.requested("web", commit)
                await api.wait_for(lambda a, c=commit: len(states(a, c, "gitops/web")) == 1)
                await b.outcome(request, kind, error="it broke" if kind == "failed" else None)
                await api.wait_for(lambda a, c=commit: len(states(a, c, "gitops/web")) == 2)
        finally:
            await notifier.stop()

    assert api.rejected == []
    seen = [s for c in commits for s in states(api, c, "gitops/web")]
    assert seen == EXPECTED[provider]
    first = api.accepted()[0]
    where = {
        "github": {"owner": "acme", "repo": "shop"},
        "gitlab": {"id": "acme/shop"},
        "gitea": {"owner": "acme", "repo": "shop"},
        "bitbucket": {"workspace": "acme", "repo_slug": "shop"},
    }[provider]
    assert {k: first.params[k] for k in where} == where
    failed = api.accepted()[3].body
    assert "it broke" in failed["description"]


async def test_the_fakes_refuse_what_the_descriptions_forbid() -> None:
    """The conformance checks can fail: a wrong state, a missing field, a bad path."""
    async with status_api("github", TOKEN) as gh, status_api("bitbucket", TOKEN) as bb:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=auth) as http:
            url = f"{gh.url}/repos/acme/shop/statuses/{sha()}"
            async with http.post(url, json={"state": "red"}) as response:
                assert response.status == 422
            async with http.post(f"{gh.url}/repos/acme/statuses/x", json={}) as response:
                assert response.status == 404
            url = f"{bb.url}/repositories/acme/shop/commit/{sha()}/statuses/build"
            async with http.post(url, json={"state": "FAILED", "key": "k"}) as response:
                assert response.status == 422  # `type` is required by the description
            async with http.post(url, json={"type": "build", "state": "FAILED"}) as response:
                assert response.status == 201
        async with aiohttp.ClientSession() as http:
            url = f"{gh.url}/repos/acme/shop/statuses/{sha()}"
            async with http.post(url, json={"state": "success"}) as response:
                assert response.status == 401
    assert len(gh.rejected) == 3
    assert "'red' is not one of" in gh.rejected[0]
    assert len(bb.rejected) == 1


async def test_chat_messages_reach_slack_and_teams_in_their_shapes(
    kafka: RealKafka, slack: FakeApi, teams: FakeApi
) -> None:
    slack_url = slack.root + slack.operations[0].template
    teams_url = teams.root + teams.operations[0].template
    rules = [
        chat_rule(slack, slack_url, on=["failed", "drift"]),
        chat_rule(
            teams,
            teams_url,
            on=["failed"],
            template="{{ app }} {{ outcome }} at {{ commit[:10] }}: {{ error }}",
        ),
    ]
    b = await notifier_bench(kafka, rules, apps=["shop-api"])
    notifier = await running(b.config)
    try:
        commit = sha()
        request = await b.requested("shop-api", commit)
        await b.outcome(request, "failed", error="ConfigMap a: field is immutable")
        await slack.wait_for(lambda a: len(a.accepted()) == 1)
        await teams.wait_for(lambda a: len(a.accepted()) == 1)
        await b.drift("shop-api", commit)
        await slack.wait_for(lambda a: len(a.accepted()) == 2)
    finally:
        await notifier.stop()
    assert slack.rejected == [] and teams.rejected == []
    text = slack.accepted()[0].body["text"]
    assert text == f"gitops: shop-api failed to sync {commit[:7]}: ConfigMap a: field is immutable"
    assert (
        slack.accepted()[1].body["text"] == f"gitops: shop-api drifted from {commit[:7]} (1 object)"
    )
    assert len(teams.accepted()) == 1, "the teams rule is not on drift"
    card = teams.accepted()[0].body["attachments"][0]["content"]
    assert (
        card["body"][0]["text"]
        == f"shop-api failed at {commit[:10]}: ConfigMap a: field is immutable"
    )


async def test_webhook_posts_the_cloudevent_signed_like_github(
    kafka: RealKafka, webhook: WebhookReceiver
) -> None:
    rule = {
        "name": "audit",
        "on": ["requested", "failed"],
        "provider": "webhook",
        "url": webhook.root + webhook.path,
        "secret": {"value": "hmac-key-of-the-test"},
    }
    b = await notifier_bench(kafka, [rule], apps=["web"])
    notifier = await running(b.config)
    try:
        request = await b.requested("web", sha())
        await webhook.wait_for(lambda a: len(a.accepted()) == 1)
        await b.outcome(request, "failed", error="boom")
        await webhook.wait_for(lambda a: len(a.accepted()) == 2)
    finally:
        await notifier.stop()
    assert webhook.rejected == []
    first, second = (r.body for r in webhook.accepted())
    assert SyncRequested.model_validate(first).id == request.id
    failed = SyncFailed.model_validate(second)
    assert failed.data.request_id == request.id and failed.data.error == "boom"
    assert webhook.accepted()[1].headers["X-Gitops-Rule"] == "audit"
