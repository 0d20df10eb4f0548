"""Everything that is not a publishable push gets its documented answer and publishes nothing."""

from __future__ import annotations

import time

import aiohttp
import pytest

from receiver.service import Receiver
from schemas import Topics
from tests.receiver import hosts
from tests.receiver.conftest import GITLAB_SIGNING_TOKEN, Post
from tests.receiver.test_pushes import CASES
from tests.support.bed import RealKafka
from tests.support.kafka import read_topic


async def assert_nothing_published(kafka: RealKafka) -> None:
    topics = Topics(kafka.topic_prefix)
    for topic in (topics.push_events, topics.sync_requests):
        assert await read_topic(kafka.bootstrap, topic, idle=0.3) == []


def tamper(body: bytes) -> bytes:
    """The same bytes with one of them changed, as a proxy or attacker might."""
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]


@pytest.mark.parametrize("provider", ["github", "gitlab", "gitea", "bitbucket"])
async def test_push_with_one_byte_changed_after_signing_is_refused_401(
    provider: str, post: Post, kafka: RealKafka
) -> None:
    for case in (c for c in CASES if c.provider == provider and c.sign is not hosts.gitlab):
        body = hosts.sample(case.file)
        headers = case.sign(body, case.secret, case.event)
        status, answer, _ = await post(provider, tamper(body), headers)
        assert (status, answer) == (401, {"error": "unauthorized"}), case.file
    await assert_nothing_published(kafka)


async def test_gitlab_token_that_differs_by_one_byte_is_refused_401(post: Post) -> None:
    body = hosts.sample("gitlab/push.json")
    status, _, _ = await post("gitlab", body, hosts.gitlab(body, "diaspora-tokem"))
    assert status == 401


async def test_push_without_signature_is_refused_401(post: Post, kafka: RealKafka) -> None:
    body = hosts.sample("github/push-branch-update.json")
    headers = hosts.github(body, "hello-new")
    del headers["X-Hub-Signature-256"]
    status, answer, _ = await post("github", body, headers)
    assert (status, answer) == (401, {"error": "unauthorized"})
    await assert_nothing_published(kafka)


async def test_push_signed_with_another_repositorys_secret_is_refused_401(post: Post) -> None:
    body = hosts.sample("github/push-branch-update.json")  # Codertocat/Hello-World
    status, _, _ = await post("github", body, hosts.github(body, "drone-secret"))
    assert status == 401


async def test_standard_webhooks_signature_older_than_five_minutes_is_refused_401(
    post: Post,
) -> None:
    body = hosts.sample("gitlab/push.json")
    stale = int(time.time()) - 301
    headers = hosts.gitlab_signed(body, GITLAB_SIGNING_TOKEN, timestamp=stale)
    status, _, _ = await post("gitlab", body, headers)
    assert status == 401


IGNORED = [
    ("github", "github/ping.json", hosts.github, "hello-new", "ping", "ping"),
    ("github", "github/ping-app.json", hosts.github, "hello-new", "ping", "ping"),
    ("github", "github/pull_request-opened.json", hosts.github, "hello-new", "pull_request",
     "event 'pull_request' is not a push"),
    ("github", "github/create-tag.json", hosts.github, "hello-new", "create",
     "event 'create' is not a push"),
    ("github", "github/delete-tag.json", hosts.github, "hello-new", "delete",
     "event 'delete' is not a push"),
    ("github", "github/push-tag-create-ghes.json", hosts.github, "hello-new", "push",
     "repository not registered"),
    ("gitlab", "gitlab/merge_request.json", hosts.gitlab, "jsmith-token", "Merge Request Hook",
     "event 'Merge Request Hook' is not a push"),
    ("gitlab", "gitlab/system-hook-repository_update.json", hosts.gitlab, "jsmith-token",
     "System Hook", "system hook event 'repository_update' is not a push"),
    ("gitea", "gitea/create-tag.json", hosts.gitea, "gogits-secret", "create",
     "event 'create' is not a push"),
    ("gitea", "gitea/delete-branch.json", hosts.gitea, "gogits-secret", "delete",
     "event 'delete' is not a push"),
    ("gitea", "gitea/pull_request.json", hosts.gitea, "gitea-secret", "pull_request",
     "event 'pull_request' is not a push"),
    ("bitbucket", "bitbucket-cloud/pullrequest-created.json", hosts.bitbucket, "bb-docs-secret",
     "pullrequest:created", "event 'pullrequest:created' is not a push"),
]  # fmt: skip


async def test_pings_other_events_and_unregistered_repositories_are_answered_200(
    post: Post, kafka: RealKafka
) -> None:
    for provider, file, sign, secret, event, reason in IGNORED:
        body = hosts.sample(file)
        status, answer, _ = await post(provider, body, sign(body, secret, event))
        assert (status, answer) == (200, {"status": "ignored", "reason": reason}), file
    await assert_nothing_published(kafka)


async def test_system_hook_with_a_malformed_event_kind_is_ignored_not_a_500(
    post: Post, kafka: RealKafka
) -> None:
    """Found by the fuzzer: a list where GitLab puts the event name."""
    body = b'{"object_kind": ["push"], "ref": "refs/heads/main"}'
    status, answer, _ = await post(
        "gitlab", body, hosts.gitlab(body, "jsmith-token", "System Hook")
    )
    assert (status, answer) == (
        200,
        {"status": "ignored", "reason": "system hook event ['push'] is not a push"},
    )
    await assert_nothing_published(kafka)


async def test_body_over_the_limit_is_refused_413_before_it_is_read(post: Post) -> None:
    body = b"{" + b" " * 300_000 + b"}"
    status, answer, _ = await post("github", body, hosts.github(body, "hello-new"))
    assert status == 413
    assert answer == {"error": "body too large", "limit_bytes": 262144}


async def test_chunked_body_over_the_limit_is_refused_413(
    receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b" " * 10_000

    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
    async with http.post(f"{receiver.url}/hooks/github", data=chunks(), headers=headers) as r:
        assert r.status == 413


async def test_unsupported_content_type_is_refused_415(post: Post) -> None:
    body = hosts.sample("bitbucket-cloud/repo-push-branch-update.json")
    headers = {**hosts.bitbucket(body, "foo-secret"), "Content-Type": "text/plain"}
    status, answer, _ = await post("bitbucket", body, headers)
    assert (status, answer["error"]) == (415, "unsupported content type")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"ref": ', "the body is not valid JSON: Expecting value at line 1 column 9"),
        (b"[1, 2]", "the JSON body must be an object"),
        (
            b'{"repository": {}, "before": "x"}',
            "field 'before' must be a 40-character hex commit id, got 'x'",
        ),
        (b'{"before": null, "after": null}', "'repository' must be a JSON object"),
        (b'{"repository": {}, "after": null}', "field 'ref' must be a non-empty string"),
        (b"\xff\xfe", "the body is not UTF-8 text"),
    ],
)
async def test_signed_but_malformed_push_is_refused_400_naming_the_problem(
    body: bytes, detail: str, post: Post
) -> None:
    status, answer, _ = await post("github", body, hosts.github(body, "hello-new"))
    assert (status, answer) == (400, {"error": "malformed", "detail": detail})


async def test_github_form_encoded_push_is_accepted(post: Post, kafka: RealKafka) -> None:
    from urllib.parse import urlencode

    body = urlencode({"payload": hosts.sample("github/push-branch-update.json")}).encode()
    headers = {
        **hosts.github(body, "hello-new"),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    status, answer, _ = await post("github", body, headers)
    assert (status, answer["apps"]) == (202, ["hello-web"])
    requests = Topics(kafka.topic_prefix).sync_requests
    assert len(await read_topic(kafka.bootstrap, requests, expect=1)) == 1


async def test_unknown_provider_and_wrong_method_get_short_answers(
    receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{receiver.url}/hooks/svn", data=b"{}") as r:
        assert r.status == 404
    async with http.get(f"{receiver.url}/hooks/github") as r:
        assert r.status == 405
        assert "Traceback" not in await r.text()
