"""A receiver on 127.0.0.1 in front of the bed's Apache Kafka (topics under the test's own
prefix), configured for the sample payloads. Tests of broker outages give it a Tansu of
their own instead (`tansu_config`).

The registered URLs are deliberately written in other forms than the samples use (ssh
vs https, `.git`, case, trailing slash, default port) so every test also exercises URL
normalisation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from gitops.broker import EmbeddedBroker
from gitops.topics import ensure_topics
from receiver.service import Receiver
from schemas import GitopsConfig, Topics, parse_config
from tests.support.bed import RealKafka

GITLAB_SIGNING_TOKEN = "whsec_" + "c2lnbmluZy10b2tlbi1mb3ItdGVzdHMtMzJieXRlcyE="

CONFIG = """
kafka:
  bootstrap: {bootstrap}
  topic_prefix: {topic_prefix}
  partitions: 3
  request_timeout: {request_timeout}{kafka_extra}
clusters:
  local: {{in_cluster: true}}
receiver:
  max_body_bytes: 262144
repositories:
  hello:            # payloads say https://github.com/Codertocat/Hello-World.git
    url: git@github.com:codertocat/hello-world.git
    webhook_secret: [{{value: hello-old}}, {{value: hello-new}}]
  drone:            # https://github.com/bradrydzewski/drone-test-go.git
    url: ssh://git@github.com/bradrydzewski/drone-test-go
    webhook_secret: {{value: drone-secret}}
  sample-app:       # https://github.com/binkkatal/sample_app.git
    url: https://GitHub.com:443/binkkatal/sample_app/
    webhook_secret: {{value: sample-secret}}
  diaspora:         # GitLab docs example, http://example.com/mike/diaspora.git
    url: ssh://git@example.com:22/mike/diaspora.git
    webhook_secret: [{{value: diaspora-token}}, {{value: "{signing_token}"}}]
  gitlab-hello:     # git@gitlab.com:gitlab-org/hello-world.git
    url: https://gitlab.com/gitlab-org/hello-world
    webhook_secret: {{value: gitlab-hello-token}}
  jsmith:           # ssh://git@example.com/jsmith/example.git
    url: http://example.com/jsmith/example.git
    webhook_secret: {{value: jsmith-token}}
  gitea-example:    # http://localhost:3000/example/example.git, git@localhost:example/example.git
    url: ssh://git@localhost/example/example.git
    webhook_secret: {{value: gitea-secret}}
  gogits:           # http://try.gitea.io/gogits/hello-world.git
    url: https://try.gitea.io/gogits/hello-world
    webhook_secret: {{value: gogits-secret}}
  foo:              # Bitbucket Cloud https://bitbucket.org/brydzewski/foo
    url: git@bitbucket.org:brydzewski/foo.git
    webhook_secret: {{value: foo-secret}}
  bb-docs:          # Bitbucket docs example, full_name team_name/repo_name
    url: https://bitbucket.org/team_name/repo_name.git
    webhook_secret: {{value: bb-docs-secret}}
  unsigned:
    url: https://github.com/Octocoders/Hello-World
apps:
  hello-web: {{repo: hello, branch: master, cluster: local}}
  hello-docs: {{repo: hello, branch: master, path: docs, cluster: local}}
  drone: {{repo: drone, branch: master, cluster: local}}
  sample-app: {{repo: sample-app, branch: master, path: app, cluster: local}}
  diaspora: {{repo: diaspora, branch: master, path: app/controller, cluster: local}}
  gitlab-hello: {{repo: gitlab-hello, branch: master, cluster: local}}
  jsmith: {{repo: jsmith, branch: master, cluster: local}}
  gitea-example: {{repo: gitea-example, branch: master, cluster: local}}
  gogits: {{repo: gogits, branch: master, path: deploy, cluster: local}}
  foo: {{repo: foo, branch: master, cluster: local}}
  bb-docs: {{repo: bb-docs, branch: name-of-branch, cluster: local}}
"""


def config_text(
    bootstrap: str, topic_prefix: str, *, request_timeout: str = "5s", tansu: bool = False
) -> str:
    """The receiver's configuration; Tansu refuses idempotent producers, Apache Kafka does not."""
    return CONFIG.format(
        bootstrap=bootstrap,
        topic_prefix=topic_prefix,
        request_timeout=request_timeout,
        kafka_extra="\n  idempotence: false" if tansu else "",
        signing_token=GITLAB_SIGNING_TOKEN,
    )


def make_config(
    bootstrap: str,
    topic_prefix: str,
    *,
    request_timeout: str = "5s",
    tansu: bool = False,
    extra: str = "",
) -> GitopsConfig:
    text = config_text(bootstrap, topic_prefix, request_timeout=request_timeout, tansu=tansu)
    return parse_config(text + extra, source="<receiver tests>", environ={})


@pytest.fixture
def topics(kafka: RealKafka) -> Topics:
    """The names of this test's topics on the bed's Kafka."""
    return Topics(kafka.topic_prefix)


@pytest.fixture
async def config(kafka: RealKafka) -> GitopsConfig:
    config = make_config(kafka.bootstrap, kafka.topic_prefix)
    await ensure_topics(config.kafka)
    return config


@pytest.fixture
async def tansu_config(tansu: EmbeddedBroker) -> GitopsConfig:
    """For tests that pause the broker: a Tansu of the test's own, idempotence off for it."""
    config = make_config(tansu.bootstrap, "gitops", tansu=True)
    await ensure_topics(config.kafka)
    return config


@pytest.fixture
async def receiver(config: GitopsConfig) -> AsyncIterator[Receiver]:
    async with Receiver(config, probe_interval=0.2) as running:
        await wait_ready(running)
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


Post = Callable[..., Awaitable[tuple[int, Any, Any]]]


@pytest.fixture
def post(receiver: Receiver, http: aiohttp.ClientSession) -> Post:
    """`status, json, headers = await post("github", body, headers)`."""

    async def send(provider: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any, Any]:
        async with http.post(f"{receiver.url}/hooks/{provider}", data=body, headers=headers) as r:
            payload = await r.json() if r.content_type == "application/json" else await r.text()
            return r.status, payload, r.headers

    return send


async def wait_ready(running: Receiver, timeout: float = 15.0) -> None:
    """Until the producer is connected (the broker was just started)."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not running.publisher.ready:
        if loop.time() > deadline:
            raise TimeoutError("the receiver did not connect to the broker")
        await asyncio.sleep(0.02)
