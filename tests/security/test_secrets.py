"""Known secret values never leave the process: not in logs, events, answers or metrics.

`gitops receiver` and `gitops syncer` run as users run them, with webhook secrets and a
git token from the environment, against a git server that demands the token. The test
drives the paths where a careless error message would quote a secret (bad signatures, a
GitLab token in a header, a rejected git token, a fetch that fails) and then searches
every byte the system emitted for each secret.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from kubernetes_asyncio.client import CoreV1Api

from gitops.broker import free_port
from gitops.gitserver import GitHttpServer
from gitops.topics import ensure_topics
from receiver.service import Receiver
from schemas import GitopsConfig, Topics, load_config
from schemas.events import SyncFailed, SyncSucceeded, parse_event
from syncer.service import Syncer
from tests.security import webhooks
from tests.security.conftest import wait_ready
from tests.security.figures import record
from tests.security.processes import receiver_process, write_config
from tests.support.bed import RealCluster, RealKafka, unique_name
from tests.support.kafka import read_topic
from tests.syncer.conftest import configmap

WEBHOOK_OLD = "whk-old-Zq81VbX3pK"
WEBHOOK_NEW = "whk-new-Lm42RtY7sW"
GITLAB_TOKEN = "glt-Qw93EeR5tT"
GIT_TOKEN = "gtk-Vb27NnM4kJ"
WRONG_GIT_TOKEN = "gtk-wrong-Pp61HhG8dF"
SECRETS = (WEBHOOK_OLD, WEBHOOK_NEW, GITLAB_TOKEN, GIT_TOKEN, WRONG_GIT_TOKEN)


@asynccontextmanager
async def auth_proxy(upstream: str, token: str) -> AsyncIterator[str]:
    """A git HTTP front that demands `git:<token>` basic auth, as a private host does."""
    wanted = "Basic " + base64.b64encode(f"git:{token}".encode()).decode()

    async def forward(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != wanted:
            return web.Response(
                status=401, headers={"WWW-Authenticate": 'Basic realm="git"'}, text="denied\n"
            )
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "authorization")
        }
        async with (
            aiohttp.ClientSession(auto_decompress=False) as http,
            http.request(
                request.method,
                upstream + request.path_qs,
                headers=headers,
                data=await request.read(),
            ) as answer,
        ):
            body = await answer.read()
            kept = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() not in ("transfer-encoding", "content-length", "connection")
            }
            return web.Response(status=answer.status, body=body, headers=kept)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def outcomes_by_app(events: list[Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for event in events:
        if isinstance(event, SyncSucceeded | SyncFailed):
            found.setdefault(event.data.app, []).append(event)
    return found


async def test_no_secret_appears_in_logs_events_answers_or_metrics(
    kafka: RealKafka,
    real_cluster: RealCluster,
    namespace: str,
    git_server: GitHttpServer,
    tmp_path: Path,
    group_id: str,
) -> None:
    for name in ("platform", "private"):
        git_server.create_repo(name)
    work = tmp_path / "work"
    for name in ("platform", "private"):
        clone = work / name
        await _git("clone", "--quiet", git_server.repo_url(name), str(clone))
        (clone / "apps").mkdir()
        (clone / "apps" / "cm.yaml").write_text(configmap(f"{name}-cm"))
        await _git("-C", str(clone), "add", ".")
        await _git("-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t", "commit",
                   "-qm", "init")  # fmt: skip
        await _git("-C", str(clone), "push", "--quiet", "origin", "HEAD:main")

    env = {
        "WH_OLD": WEBHOOK_OLD,
        "WH_NEW": WEBHOOK_NEW,
        "GL_TOKEN": GITLAB_TOKEN,
        "GIT_TOKEN": GIT_TOKEN,
        "WRONG_GIT_TOKEN": WRONG_GIT_TOKEN,
    }
    api = await real_cluster.client()
    async with api:
        await CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    app = {"path": "apps", "cluster": "dev", "namespace": namespace}
    async with auth_proxy(git_server.url, GIT_TOKEN) as private_git:
        # The syncer talks to the bed's API server directly, over TLS with the admin cert.
        kubeconfig = real_cluster.write_kubeconfig(tmp_path / "kubeconfig")
        raw = {
            "kafka": {
                "bootstrap": kafka.bootstrap,
                "partitions": 2,
                "topic_prefix": kafka.topic_prefix,
            },
            "clusters": {"dev": {"kubeconfig": str(kubeconfig)}},
            "repositories": {
                "platform": {
                    "url": f"{private_git}/platform.git",
                    "webhook_secret": [{"env": "WH_OLD"}, {"env": "WH_NEW"}],
                    "auth": {"token": {"env": "GIT_TOKEN"}},
                },
                "private": {
                    "url": f"{private_git}/private.git",
                    "webhook_secret": {"env": "GL_TOKEN"},
                    "auth": {"token": {"env": "WRONG_GIT_TOKEN"}},
                },
            },
            "apps": {
                "web": {"repo": "platform", **app},
                "priv": {"repo": "private", **app},
            },
            "syncer": {
                "cache_dir": str(tmp_path / "cache"),
                "group_id": group_id,
                "inventory_namespace": unique_name("inv"),
                "max_attempts": 1,
                "session_timeout": "6s",
                "heartbeat_interval": "1s",
                "health_timeout": "5s",
            },
        }
        config_path = write_config(tmp_path / "gitops.yaml", raw)
        # Topics only need the kafka section (the secrets resolve in the processes' env).
        await ensure_topics(GitopsConfig.model_validate({"kafka": raw["kafka"]}).kafka)
        topics = Topics(kafka.topic_prefix)
        receiver_log = tmp_path / "receiver.log"
        syncer_port = free_port()
        answers: list[str] = []
        # The syncer runs in this process (its records captured raw, before any redaction
        # a log handler might do) with the secrets in its environment, as `gitops syncer`.
        with _environment(env), _captured_logs() as capture:
            config = load_config(config_path)
            async with (
                receiver_process(config_path, receiver_log, env=env) as url,
                Syncer(config, syncer_id="s1", periodic_checks=True, http_port=syncer_port),
                aiohttp.ClientSession() as http,
            ):
                answers += await _send_webhooks(http, url, private_git)
                events = await _wait_for_outcomes(kafka.bootstrap, topics, {"web", "priv"})
                async with http.get(f"{url}/metrics") as r:
                    answers.append(await r.text())
                async with http.get(f"http://127.0.0.1:{syncer_port}/metrics") as r:
                    answers.append(await r.text())
        syncer_log = "\n".join(capture.lines)

    everything = await _all_records(kafka.bootstrap, topics)
    outputs = {
        "receiver log": receiver_log.read_text(errors="replace"),
        "syncer log": syncer_log,
        "events": everything,
        "HTTP answers and /metrics": "\n".join(answers),
    }
    leaks = [(where, s) for where, text in outputs.items() for s in SECRETS if s in text]
    outcomes = outcomes_by_app(events)
    record(
        "secrets: webhook secrets, GitLab token, git tokens (good and rejected)",
        "no secret value in logs, events, HTTP answers or /metrics",
        tried=len(answers),
        accepted=len(outcomes),
        notes=f"{len(leaks)} leaks; searched {sum(len(t) for t in outputs.values())} bytes",
    )
    assert not leaks, leaks
    # The paths that could leak were taken: a sync through the token, and a rejected token.
    assert any(isinstance(e, SyncSucceeded) for e in outcomes["web"]), outcomes["web"]
    failed = [e for e in outcomes["priv"] if isinstance(e, SyncFailed)]
    assert failed, outcomes["priv"]
    assert "auth" in (failed[0].data.error or "").lower(), failed[0].data.error
    assert "webhook answered" in outputs["receiver log"]  # the logs were captured
    assert "syncing app web" in outputs["syncer log"]


class _RawRecords(logging.Handler):
    """Every record as JSON with its `extra=` fields and traceback, unredacted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = {k: v for k, v in vars(record).items() if k not in ("exc_info", "args", "msg")}
        fields["message"] = record.getMessage()
        if record.exc_info:
            fields["exception"] = logging.Formatter().formatException(record.exc_info)
        self.lines.append(json.dumps(fields, default=repr))


@contextlib.contextmanager
def _captured_logs() -> Iterator[_RawRecords]:
    root = logging.getLogger()
    capture, level = _RawRecords(), root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(level)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


async def _git(*args: str) -> None:
    process = await asyncio.create_subprocess_exec("git", *args)
    assert await process.wait() == 0, args


async def _send_webhooks(http: aiohttp.ClientSession, url: str, git: str) -> list[str]:
    """Signed, mis-signed and token-bearing deliveries; returns every answer's text."""
    answers = []
    github_body = webhooks.encode(webhooks.push_payload("github", f"{git}/platform.git"))
    gitlab_body = webhooks.encode(webhooks.push_payload("gitlab", f"{git}/private.git"))
    sends = [
        ("github", github_body, webhooks.headers("github", github_body, secret=WEBHOOK_NEW,
                                                 delivery=str(uuid.uuid4()))),
        ("github", github_body, webhooks.headers("github", github_body, secret=WEBHOOK_OLD[:-1],
                                                 delivery=str(uuid.uuid4()))),
        ("gitlab", gitlab_body, webhooks.headers("gitlab", gitlab_body, secret=GITLAB_TOKEN,
                                                 delivery=str(uuid.uuid4()))),
        ("gitlab", gitlab_body, webhooks.headers("gitlab", gitlab_body,
                                                 secret=GITLAB_TOKEN + "x",
                                                 delivery=str(uuid.uuid4()))),
        ("gitlab", b"{not json", webhooks.headers("gitlab", b"{not json", secret=GITLAB_TOKEN,
                                                  delivery=str(uuid.uuid4()))),
    ]  # fmt: skip
    statuses = []
    for provider, body, headers in sends:
        async with http.post(f"{url}/hooks/{provider}", data=body, headers=headers) as r:
            statuses.append(r.status)
            answers.append(await r.text() + json.dumps(dict(r.headers)))
    assert statuses == [202, 401, 202, 401, 400], statuses
    return answers


async def _wait_for_outcomes(bootstrap: str, topics: Topics, apps: set[str]) -> list[Any]:
    async with asyncio.timeout(20):
        while True:
            records = await read_topic(bootstrap, topics.sync_events, idle=0.5, timeout=3)
            events = [parse_event(r.value) for r in records]
            if apps <= set(outcomes_by_app(events)):
                return events
            await asyncio.sleep(0.5)


async def _all_records(bootstrap: str, topics: Topics) -> str:
    texts = []
    for topic in (
        topics.push_events,
        topics.sync_requests,
        topics.sync_events,
        topics.dead_letters,
    ):
        for r in await read_topic(bootstrap, topic, idle=0.5, timeout=5):
            texts.append((r.key or b"").decode(errors="replace") + r.value.decode(errors="replace"))
    return "\n".join(texts)


URL_TOKEN = "urltok-Hx72KkP9qZ"


async def test_credentials_written_into_a_repository_url_stay_out_of_events(
    kafka: RealKafka,
) -> None:
    """Some users put `user:token@` in a clone URL instead of `auth:`; events omit it."""
    raw = webhooks.config_dict(kafka.bootstrap, kafka.topic_prefix)
    raw["repositories"]["platform"]["url"] = (
        f"https://deploy:{URL_TOKEN}@github.com/acme/platform-manifests.git"
    )
    config = GitopsConfig.model_validate(raw)
    await ensure_topics(config.kafka)
    topics = Topics(config.kafka.topic_prefix)
    repo = webhooks.BY_PROVIDER["github"]
    body = webhooks.encode(webhooks.push_payload("github", repo.url))
    headers = webhooks.headers("github", body, secret=repo.secrets[0], delivery=str(uuid.uuid4()))
    async with Receiver(config, probe_interval=0.2) as receiver, aiohttp.ClientSession() as http:
        await wait_ready(receiver)
        async with http.post(f"{receiver.url}/hooks/github", data=body, headers=headers) as r:
            assert r.status == 202, await r.text()
            answer = await r.text()
    requests = await read_topic(kafka.bootstrap, topics.sync_requests, expect=1)
    pushes = await read_topic(kafka.bootstrap, topics.push_events, expect=1)
    assert len(requests) == 1 and len(pushes) == 1
    for text in (answer, *(r.value.decode() for r in (*requests, *pushes))):
        assert URL_TOKEN not in text, text
