"""Dashboard bench: the whole pipeline for real, and a real browser looking at it.

A git server (`git http-backend`) holds the apps; a receiver and a syncer (in this test's
event loop) stand in front of the bed's Apache Kafka and kube-apiserver; the dashboard
reads the same topics and cluster. Pushes are made with the real git CLI and announced by
a GitHub-signed webhook, as a Git host would. The browser is Debian's Chromium, driven
by Playwright (never a downloaded browser).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from playwright.async_api import Browser, Page, async_playwright

from dashboard.service import Dashboard
from gitops.demo import github_push_payload
from gitops.topics import ensure_topics
from receiver.service import Receiver
from schemas import GitopsConfig
from syncer.service import Syncer
from tests.support.bed import RealKafka, unique_name
from tests.support.git import WorkingCopy
from tests.support.k8s import K8s, create_namespace

CHROMIUM = os.environ.get("GITOPS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "dashboard-webhook-secret"
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        yield opened
    finally:
        await context.close()
    assert errors == [], f"the page reported errors: {errors}"


def screenshot_path(tmp_path: Path, name: str) -> Path:
    """docs/<name> when GITOPS_UPDATE_SCREENSHOTS=1 (to refresh the README's), else tmp."""
    if os.environ.get("GITOPS_UPDATE_SCREENSHOTS") == "1":
        return DOCS / name
    return tmp_path / name


@dataclass
class Pipeline:
    """Receiver, syncer and dashboard over one repository with the apps `web` and `api`."""

    config: GitopsConfig
    repo: WorkingCopy
    receiver: Receiver
    dashboard: Dashboard
    ns: str

    @property
    def url(self) -> str:
        return self.dashboard.url

    async def push(self, files: dict[str, str | bytes | None], message: str = "change") -> Pushed:
        """Commit and push with git, then send the signed webhook a Git host would send."""
        before = await asyncio.to_thread(self.repo.head)
        after = await asyncio.to_thread(self.repo.commit_and_push, files, message)
        changed = await asyncio.to_thread(self.repo.git, "diff", "--name-only", before, after)
        body = github_push_payload(
            repo_url=self.repo.remote_url,
            before=before,
            after=after,
            changed=changed.split(),
            message=message,
        )
        raw = orjson.dumps(body)
        delivery = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": "sha256="
            + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest(),
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.receiver.url}/hooks/github", data=raw, headers=headers) as answer,
        ):
            assert answer.status == 202, await answer.text()
        return Pushed(after, delivery)


@dataclass(frozen=True)
class Pushed:
    sha: str
    delivery: str


def app_files(ns: str, *, greeting: str = "hello") -> dict[str, str | bytes | None]:
    """Both apps' manifests: `web` (a Deployment, a ConfigMap, a Secret) and `api`, in the
    test's namespace (created up front, as an admin would: neither app owns it)."""
    return {
        "apps/web/deploy.yaml": f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: main
          image: nginx:1.27
""",
        "apps/web/cm.yaml": (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-settings\n"
            f"  namespace: {ns}\ndata:\n  greeting: {greeting}\n"
        ),
        "apps/web/secret.yaml": (
            f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: web-credentials\n"
            f"  namespace: {ns}\nstringData:\n  password: {SECRET_VALUE}\n"
        ),
        "apps/api/cm.yaml": (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: api-settings\n"
            f"  namespace: {ns}\ndata:\n  mode: fast\n"
        ),
    }


SECRET_VALUE = "s3cr3t-Hunter2-value"
BROKEN = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Valid_Name\ndata:\n  a: b\n"
"""A manifest the API server refuses (an invalid object name): the sync fails, nothing changes."""


MakePipeline = Callable[..., Awaitable[Pipeline]]


@pytest.fixture
async def pipeline(
    kafka: RealKafka,
    kubeconfig: Path,  # noqa: F811 - the syncer bench's fixture
    working_copy: Callable[..., WorkingCopy],
    group_id: str,
    namespace: str,
    inventory_namespace: str,  # noqa: F811
    k8s: K8s,  # noqa: F811
    tmp_path: Path,
) -> AsyncIterator[MakePipeline]:
    """`await pipeline(ui={...})`: everything started, the first commit pushed and synced."""
    started: list[Any] = []

    async def make(ui: dict[str, Any] | None = None) -> Pipeline:
        repo = working_copy(unique_name("platform"))
        raw = {
            "kafka": {
                "bootstrap": kafka.bootstrap,
                "topic_prefix": kafka.topic_prefix,
                "partitions": 2,
            },
            "clusters": {"dev": {"kubeconfig": str(kubeconfig)}},
            "repositories": {
                "platform": {"url": repo.remote_url, "webhook_secret": {"value": SECRET}}
            },
            "apps": {
                "web": {"repo": "platform", "path": "apps/web", "cluster": "dev",
                        "namespace": namespace, "self_heal": False, "interval": "1h"},
                "api": {"repo": "platform", "path": "apps/api", "cluster": "dev",
                        "namespace": namespace, "interval": "1h"},
            },
            "syncer": {
                "cache_dir": str(tmp_path / "cache"),
                "group_id": group_id,
                "health_timeout": "20s",
                "session_timeout": "6s",
                "heartbeat_interval": "1s",
                "max_attempts": 1,
                "inventory_namespace": inventory_namespace,
            },
            "ui": ui or {},
        }  # fmt: skip
        config = GitopsConfig.model_validate(raw)
        await ensure_topics(config.kafka)
        await create_namespace(k8s, namespace)
        await asyncio.to_thread(repo.commit_and_push, app_files(namespace), "first")
        receiver = Receiver(config, probe_interval=0.2)
        await receiver.start()
        started.append(receiver)
        syncer = Syncer(config, syncer_id="ui-test", periodic_checks=True)
        await syncer.__aenter__()
        started.append(syncer)
        dashboard = Dashboard(config, host="127.0.0.1", port=0)
        await dashboard.__aenter__()
        started.append(dashboard)
        await _ready(receiver)
        return Pipeline(config, repo, receiver, dashboard, namespace)

    yield make
    for part in reversed(started):
        if isinstance(part, Receiver):
            await part.close()
        else:
            await part.__aexit__(None, None, None)


async def _ready(receiver: Receiver, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not receiver.publisher.ready:
        assert time.monotonic() < deadline, "the receiver did not connect to Kafka"
        await asyncio.sleep(0.05)


# The syncer bench's cluster (the bed's API server behind this test's proxy) and helpers.
from tests.syncer.conftest import cluster, inventory_namespace, k8s, kubeconfig  # noqa: E402, F401
