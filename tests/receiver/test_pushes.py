"""Every push sample of every provider, correctly signed, lands on the topics as specified.

A push to a followed branch gives one push event (keyed by the normalised repository
URL) and one sync request per app whose directory the push may have changed (keyed by
app name); tags and deletions give the push event only; a branch nobody follows gives
the push event and a 200 saying so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from schemas import PushReceived, SyncRequested, Topics, parse_event
from tests.receiver import hosts
from tests.receiver.conftest import GITLAB_SIGNING_TOKEN, Post
from tests.support.bed import RealKafka
from tests.support.kafka import read_topic

ZERO = "0" * 40


@dataclass(frozen=True)
class Case:
    provider: str
    file: str
    sign: Callable[..., dict[str, str]]
    secret: str
    event: str
    repo_url: str
    status: int
    apps: tuple[str, ...]
    changed: tuple[str, ...] | None

    def __str__(self) -> str:
        return self.file


CASES = [
    Case("github", "github/push-branch-update.json", hosts.github, "hello-old", "push",
         "github.com/codertocat/hello-world", 202, ("hello-web",), ("README.md",)),
    Case("github", "github/push-branch-update-2.json", hosts.github, "sample-secret", "push",
         "github.com/binkkatal/sample_app", 202, ("sample-app",),
         (".razorops.yaml", "app/controllers/application_controller.rb")),
    Case("github", "github/push-branch-create-with-commit.json", hosts.github, "hello-new", "push",
         "github.com/codertocat/hello-world", 202, ("hello-docs", "hello-web"), None),
    Case("github", "github/push-branch-create.json", hosts.github, "drone-secret", "push",
         "github.com/bradrydzewski/drone-test-go", 200, (), None),
    Case("github", "github/push-branch-delete.json", hosts.github, "drone-secret", "push",
         "github.com/bradrydzewski/drone-test-go", 202, (), None),
    Case("github", "github/push-tag-create.json", hosts.github, "drone-secret", "push",
         "github.com/bradrydzewski/drone-test-go", 202, (), None),
    Case("github", "github/push-tag-delete.json", hosts.github, "hello-new", "push",
         "github.com/codertocat/hello-world", 202, (), None),
    Case("github", "github/push-tag-delete-2.json", hosts.github, "drone-secret", "push",
         "github.com/bradrydzewski/drone-test-go", 202, (), None),
    Case("gitlab", "gitlab/push.json", hosts.gitlab, "diaspora-token", "Push Hook",
         "example.com/mike/diaspora", 202, ("diaspora",), None),
    Case("gitlab", "gitlab/push-branch-update.json", hosts.gitlab, "gitlab-hello-token",
         "Push Hook", "gitlab.com/gitlab-org/hello-world", 202, ("gitlab-hello",), ("README.md",)),
    Case("gitlab", "gitlab/push-branch-create.json", hosts.gitlab, "gitlab-hello-token",
         "Push Hook", "gitlab.com/gitlab-org/hello-world", 200, (), None),
    Case("gitlab", "gitlab/push-branch-delete.json", hosts.gitlab, "gitlab-hello-token",
         "Push Hook", "gitlab.com/gitlab-org/hello-world", 202, (), None),
    Case("gitlab", "gitlab/tag_push.json", hosts.gitlab, "jsmith-token", "Tag Push Hook",
         "example.com/jsmith/example", 202, (), None),
    Case("gitlab", "gitlab/tag_push-create.json", hosts.gitlab, "gitlab-hello-token",
         "Tag Push Hook", "gitlab.com/gitlab-org/hello-world", 202, (), None),
    Case("gitlab", "gitlab/tag_push-delete.json", hosts.gitlab, "gitlab-hello-token",
         "Tag Push Hook", "gitlab.com/gitlab-org/hello-world", 202, (), None),
    Case("gitlab", "gitlab/system-hook-push.json", hosts.gitlab, "diaspora-token", "System Hook",
         "example.com/mike/diaspora", 202, (), ()),
    Case("gitlab", "gitlab/system-hook-tag_push.json", hosts.gitlab, "jsmith-token",
         "System Hook", "example.com/jsmith/example", 202, (), None),
    Case("gitlab", "gitlab/push.json", hosts.gitlab_signed, GITLAB_SIGNING_TOKEN, "Push Hook",
         "example.com/mike/diaspora", 202, ("diaspora",), None),
    Case("gitea", "gitea/push.json", hosts.gitea, "gitea-secret", "push",
         "localhost/example/example", 202, ("gitea-example",), None),
    Case("gitea", "gitea/push-2.json", hosts.gitea, "gogits-secret", "push",
         "try.gitea.io/gogits/hello-world", 202, ("gogits",), None),
    Case("bitbucket", "bitbucket-cloud/repo-push-branch-update.json", hosts.bitbucket,
         "foo-secret", "repo:push", "bitbucket.org/brydzewski/foo", 202, ("foo",), None),
    Case("bitbucket", "bitbucket-cloud/repo-push-branch-create.json", hosts.bitbucket,
         "foo-secret", "repo:push", "bitbucket.org/brydzewski/foo", 200, (), None),
    Case("bitbucket", "bitbucket-cloud/repo-push-branch-delete.json", hosts.bitbucket,
         "foo-secret", "repo:push", "bitbucket.org/brydzewski/foo", 202, (), None),
    Case("bitbucket", "bitbucket-cloud/repo-push-tag-create.json", hosts.bitbucket,
         "foo-secret", "repo:push", "bitbucket.org/brydzewski/foo", 202, (), None),
    Case("bitbucket", "bitbucket-cloud/repo-push-tag-delete.json", hosts.bitbucket,
         "foo-secret", "repo:push", "bitbucket.org/brydzewski/foo", 202, (), None),
    Case("bitbucket", "bitbucket-cloud/repo-push-docs-example.json", hosts.bitbucket,
         "bb-docs-secret", "repo:push", "bitbucket.org/team_name/repo_name", 202, ("bb-docs",),
         None),
]  # fmt: skip


def expected_ref_and_shas(case: Case) -> tuple[str, str | None, str | None]:
    body = json.loads(hosts.sample(case.file))
    if case.provider == "bitbucket":
        change = body["push"]["changes"][0]
        side = change["new"] or change["old"]
        prefix = "refs/heads/" if side["type"] == "branch" else "refs/tags/"
        old, new = change["old"], change["new"]
        return (
            prefix + side["name"],
            old["target"]["hash"] if old else None,
            new["target"]["hash"] if new else None,
        )

    def sha(value: str) -> str | None:
        return None if value == ZERO else value

    return body["ref"], sha(body["before"]), sha(body["after"])


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_signed_push_sample_publishes_the_documented_events(
    case: Case, post: Post, kafka: RealKafka, topics: Topics
) -> None:
    body = hosts.sample(case.file)
    delivery = f"delivery-{case.file}"
    status, answer, _ = await post(
        case.provider, body, case.sign(body, case.secret, case.event, delivery=delivery)
    )

    assert status == case.status, answer
    assert answer["delivery"] == delivery
    assert answer["apps"] == list(case.apps)
    ref, before, after = expected_ref_and_shas(case)

    pushes = await read_topic(kafka.bootstrap, topics.push_events, expect=1)
    assert len(pushes) == 1
    assert pushes[0].key == case.repo_url.encode()
    event = parse_event(pushes[0].value)
    assert isinstance(event, PushReceived)
    assert event.data.provider == case.provider
    assert event.data.delivery_id == delivery
    assert event.data.repo_url == case.repo_url
    assert (event.data.ref, event.data.before, event.data.after) == (ref, before, after)
    assert event.data.changed_paths == (None if case.changed is None else list(case.changed))
    assert event.data.apps == list(case.apps)

    requests = await read_topic(
        kafka.bootstrap, topics.sync_requests, expect=len(case.apps) or None
    )
    assert sorted(r.key for r in requests) == [app.encode() for app in case.apps]
    for record in requests:
        request = parse_event(record.value)
        assert isinstance(request, SyncRequested)
        assert request.subject == request.data.app == record.key.decode()
        assert request.data.reason == "webhook"
        assert request.data.delivery_id == delivery
        assert request.data.commit == after
        assert request.data.before == before
        assert request.data.branch == ref.removeprefix("refs/heads/")
