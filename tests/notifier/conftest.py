"""Notifier bench: the bed's Kafka, fake provider APIs checked against their descriptions.

Events reach the notifier the way they do in production: requests published to
`<prefix>.sync-requests` keyed by app, outcomes published by the syncer's own `Reporter`
(or by a real syncer syncing a real commit into the bed's kube-apiserver, with the syncer
bench of `tests/syncer`). The providers are fakes at the network boundary only
(`tests/support/fakeapis.py`). Each test has its own topic prefix and consumer groups.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaProducer

from gitops.topics import ensure_topics
from notifier.service import Notifier
from schemas import GitopsConfig, Topics
from schemas.config import NotificationRule, NotifierSettings
from schemas.events import (
    DriftDetected,
    DriftDetectedData,
    DriftedObject,
    NotificationFailed,
    ObjectResult,
    SyncRequested,
    SyncRequestedData,
    parse_event,
)
from schemas.types import AppName, CommitSha
from syncer.reporting import Outcome, OutcomeKind, Reporter
from tests.support.bed import RealKafka, unique_name
from tests.support.fakeapis import FakeApi, WebhookReceiver, slack_api, status_api, teams_api
from tests.support.kafka import read_topic
from tests.syncer.conftest import (  # noqa: F401 - fixtures of the syncer bench, reused
    bench,
    cluster,
    inventory_namespace,
    k8s,
    kubeconfig,
)

TOKEN = "ghp_notifier-test-token-0123456789"
REPO_URL = "https://github.com/acme/shop.git"
_shas = itertools.count(1)


def sha() -> str:
    """A distinct 40-hex commit id (distinct in its first 7 digits too) for events only."""
    return hashlib.sha1(
        f"commit-{os.getpid()}-{next(_shas)}".encode(), usedforsecurity=False
    ).hexdigest()


@dataclass
class NotifierBench:
    config: GitopsConfig

    @property
    def topics(self) -> Topics:
        return Topics(self.config.kafka.topic_prefix)

    async def requested(self, app: str, commit: str | None) -> SyncRequested:
        (request,) = await self.requests([(app, commit)])
        return request

    async def requests(self, pairs: Iterable[tuple[str, str | None]]) -> list[SyncRequested]:
        producer = AIOKafkaProducer(**self.config.kafka.producer_options())
        await producer.start()
        sent = []
        try:
            for app, commit in pairs:
                request = SyncRequested(
                    source="/tests/notifier",
                    subject=app,
                    data=SyncRequestedData(
                        app=AppName(app),
                        repo_url=REPO_URL,
                        branch="main",
                        commit=CommitSha(commit) if commit else None,
                        reason="webhook",
                    ),
                )
                await producer.send_and_wait(
                    self.topics.sync_requests, request.to_bytes(), key=app.encode()
                )
                sent.append(request)
        finally:
            await producer.stop()
        return sent

    async def outcome(
        self,
        request: SyncRequested,
        kind: OutcomeKind,
        *,
        error: str | None = None,
        commit: str | None = None,
    ) -> None:
        """Published by the syncer's own `Reporter`, as a syncer would."""
        await self.outcomes([(request, kind, error)], commit=commit)

    async def outcomes(
        self,
        items: Iterable[tuple[SyncRequested, OutcomeKind, str | None]],
        *,
        commit: str | None = None,
    ) -> None:
        producer = AIOKafkaProducer(**self.config.kafka.producer_options())
        await producer.start()
        try:
            reporter = Reporter(producer, self.topics, source="/gitops/syncer/test")
            for request, kind, error in items:
                objects = [
                    ObjectResult(api_version="v1", kind="ConfigMap", name="a", action="created")
                ]
                resolved = CommitSha(commit) if commit else None
                await reporter.publish(
                    Outcome(request, kind, "dev", commit=resolved, objects=objects, error=error)
                )
        finally:
            await producer.stop()

    async def drift(self, app: str, commit: str) -> None:
        event = DriftDetected(
            source="/gitops/syncer/test",
            subject=app,
            data=DriftDetectedData(
                app=AppName(app),
                cluster="dev",
                commit=CommitSha(commit),
                objects=[
                    DriftedObject(
                        api_version="v1",
                        kind="ConfigMap",
                        name="a",
                        state="changed",
                        fields=["data.mode"],
                    )
                ],
                self_heal=False,
            ),
        )
        producer = AIOKafkaProducer(**self.config.kafka.producer_options())
        await producer.start()
        try:
            await producer.send_and_wait(
                self.topics.sync_events, event.to_bytes(), key=app.encode()
            )
        finally:
            await producer.stop()

    async def failures(self, expect: int, timeout: float = 20.0) -> list[NotificationFailed]:
        records = await read_topic(
            self.config.kafka.bootstrap, self.topics.sync_events, timeout=timeout, idle=1.0
        )
        found = [e for r in records if isinstance(e := parse_event(r.value), NotificationFailed)]
        if expect and len(found) < expect:
            deadline = time.monotonic() + timeout
            while len(found) < expect and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                records = await read_topic(self.config.kafka.bootstrap, self.topics.sync_events)
                found = [
                    e for r in records if isinstance(e := parse_event(r.value), NotificationFailed)
                ]
        return found


def with_rules(config: GitopsConfig, rules: list[dict[str, Any]], **settings: Any) -> GitopsConfig:
    """`config` plus notification rules and notifier settings (a group id of the test's own)."""
    notifier = {"group_id": unique_name("notifiers"), "session_timeout": "6s", **settings}
    notifier.setdefault("heartbeat_interval", "1s")
    return config.model_copy(
        update={
            "notifications": [NotificationRule.model_validate(r) for r in rules],
            "notifier": NotifierSettings.model_validate(notifier),
        }
    )


async def notifier_bench(
    kafka: RealKafka,
    rules: list[dict[str, Any]],
    *,
    apps: Iterable[str] = ("web",),
    repository: dict[str, Any] | None = None,
    **settings: Any,
) -> NotifierBench:
    """`repository` replaces the apps' repository `shop` (default: public, no auth)."""
    raw = {
        "kafka": {
            "bootstrap": kafka.bootstrap,
            "topic_prefix": kafka.topic_prefix,
            "partitions": 4,
        },
        "clusters": {"dev": {"in_cluster": True}},
        "repositories": {"shop": repository or {"url": REPO_URL}},
        "apps": {app: {"repo": "shop", "cluster": "dev"} for app in apps},
    }
    config = with_rules(GitopsConfig.model_validate(raw), rules, **settings)
    await ensure_topics(config.kafka)
    return NotifierBench(config)


async def running(
    config: GitopsConfig, name: str = "n1", *, http_port: int | None = None
) -> Notifier:
    notifier = Notifier(config, notifier_id=name, http_port=http_port)
    await notifier.start()
    await notifier.joined()
    return notifier


def status_rule(api: FakeApi, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"{api.name}-status",
        "on": ["requested", "succeeded", "failed", "skipped"],
        "provider": api.name,
        "url": api.url,
        "token": {"value": TOKEN},
        **extra,
    }


def chat_rule(api: FakeApi, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": f"{api.name}-chat", "on": ["failed"], "provider": api.name, "url": url, **extra}


@pytest.fixture
async def github() -> AsyncIterator[FakeApi]:
    async with status_api("github", TOKEN) as api:
        yield api


@pytest.fixture
async def slack() -> AsyncIterator[FakeApi]:
    async with slack_api() as api:
        yield api


@pytest.fixture
async def teams() -> AsyncIterator[FakeApi]:
    async with teams_api() as api:
        yield api


@pytest.fixture
async def webhook() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(secret="hmac-key-of-the-test") as api:
        yield api


# ------------------------------------------------------------------ a notifier process


@dataclass
class NotifierProcess:
    """A `python -m gitops notifier` subprocess and the log it writes."""

    process: asyncio.subprocess.Process
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def wait_for(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text():
            if self.process.returncode is not None:
                raise AssertionError(f"notifier exited: {self.text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in {timeout}s: {self.text()[-3000:]}")
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self, timeout: float = 20.0) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                await self.kill()


def write_config(config: GitopsConfig, path: Path) -> Path:
    """The config as a file a user would write (secrets by value: it is a test's)."""
    data = json.loads(config.model_dump_json())
    for rule, model in zip(data["notifications"], config.notifications, strict=True):
        for key in ("token", "secret", "url"):
            ref = getattr(model, key)
            if ref is not None and not isinstance(ref, str):
                rule[key] = {"value": ref.resolve().get_secret_value()}
    for name, repo in config.repositories.items():
        auth, written = repo.auth, data["repositories"][name].get("auth") or {}
        if auth is not None and auth.token is not None:
            written["token"] = {"value": auth.token.resolve().get_secret_value()}
        if auth is not None and auth.github_app is not None:
            key = auth.github_app.private_key.resolve().get_secret_value()
            written["github_app"]["private_key"] = {"value": key}
    path.write_text(yaml.safe_dump(data))
    return path


async def start_notifier(config_path: Path, name: str, log_dir: Path) -> NotifierProcess:
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gitops",
            "notifier",
            "--config",
            str(config_path),
            "--id",
            name,
            "--http-port",
            "0",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env={**os.environ, "GITOPS_LOG_LEVEL": "INFO"},
        )
    return NotifierProcess(process, log)
