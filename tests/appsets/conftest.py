"""App set test bench: a monorepo pushed with the git CLI to `git http-backend`, the bed's
Apache Kafka and kube-apiserver, and syncers and a receiver of the test's own.

Each test has its own topic prefix, consumer group, namespace and inventory namespace.
Pushes are announced the way GitHub does (a signed push payload listing the added,
removed and modified files of the commit) when the test runs a receiver; otherwise the
syncers find them by polling the branch head.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import yaml

from gitops.demo import github_push_payload
from gitops.topics import ensure_topics
from receiver.service import Receiver
from schemas import GitopsConfig, Topics, load_config
from schemas.events import AnyEvent, SyncFailed, SyncSkipped, SyncSucceeded, parse_event
from syncer.service import Syncer
from tests.support.bed import RealKafka
from tests.support.git import WorkingCopy
from tests.support.k8s import K8s, create_namespace
from tests.support.kafka import read_topic
from tests.syncer.conftest import cluster, configmap, inventory_namespace, k8s, kubeconfig

__all__ = ["cluster", "inventory_namespace", "k8s", "kubeconfig"]

SECRET = "appsets-webhook-secret"
T = TypeVar("T")
_ids = itertools.count()


def service(name: str, **data: str) -> dict[str, str | bytes | None]:
    """The files of one service directory: a ConfigMap named `<name>-settings`."""
    return {
        f"services/{name}/settings.yaml": configmap(f"{name}-settings", **(data or {"s": name}))
    }


async def eventually(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 60.0) -> T:
    """Poll `probe` until it returns something truthy (a loaded machine gets time)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing after {timeout:.0f}s")
        await asyncio.sleep(0.2)


@dataclass
class Monorepo:
    """One monorepo's world: the config, the working copy, the cluster and the topics."""

    config: GitopsConfig
    config_path: Path
    repo: WorkingCopy
    bootstrap: str
    ns: str
    k8s: K8s
    group_id: str

    @property
    def topics(self) -> Topics:
        return Topics(self.config.kafka.topic_prefix)

    def push(self, files: dict[str, str | bytes | None], message: str = "change") -> str:
        return self.repo.commit_and_push(files, message)

    def rename(self, old: str, new: str) -> str:
        self.repo.git("mv", old, new)
        self.repo.git("commit", "--quiet", "-m", f"rename {old} to {new}")
        self.repo.push()
        return self.repo.head()

    async def webhook(self, receiver: Receiver, before: str, after: str) -> dict[str, Any]:
        """Announce the push `before..after` as GitHub would; the receiver's JSON answer."""
        lines = self.repo.git("diff", "--name-status", "--no-renames", before, after)
        changes: dict[str, list[str]] = {"A": [], "D": [], "M": []}
        for line in lines.splitlines():
            status, path = line.split("\t", 1)
            changes.setdefault(status[0], []).append(path)
        payload = github_push_payload(
            repo_url=self.repo.remote_url,
            before=before,
            after=after,
            changed=changes["M"],
            added=changes["A"],
            removed=changes["D"],
            message="push",
        )
        body = json.dumps(payload).encode()
        signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": f"sha256={signature}",
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{receiver.url}/hooks/github", data=body, headers=headers) as answer,
        ):
            assert answer.status == 202, await answer.text()
            found: dict[str, Any] = await answer.json()
            return found

    async def events(self) -> list[AnyEvent]:
        records = await read_topic(self.bootstrap, self.topics.sync_events, timeout=5, idle=0.3)
        return [parse_event(r.value) for r in records]

    async def outcome(
        self, app: str, *, commit: str | None = None, timeout: float = 60.0
    ) -> SyncSucceeded | SyncFailed:
        """The first success or failure of `app` (at `commit`) on the sync-events topic."""

        async def probe() -> SyncSucceeded | SyncFailed | None:
            for event in await self.events():
                if (
                    isinstance(event, SyncSucceeded | SyncFailed)
                    and event.data.app == app
                    and (commit is None or event.data.commit == commit)
                ):
                    return event
            return None

        return await eventually(probe, timeout=timeout)

    async def skipped(self, app: str) -> list[SyncSkipped]:
        return [e for e in await self.events() if isinstance(e, SyncSkipped) and e.data.app == app]

    async def configmaps(self) -> dict[str, dict[str, str]]:
        return await self.k8s.configmaps(self.ns)

    async def inventory_exists(self, app: str) -> bool:
        path = (
            f"/api/v1/namespaces/{self.k8s.inventory_namespace}/configmaps/gitops-inventory-{app}"
        )
        return await self.k8s.get(path) is not None

    @contextlib.asynccontextmanager
    async def syncers(self, count: int = 1) -> AsyncIterator[list[Syncer]]:
        """`count` members of this test's group, leaving it cleanly at the end."""
        async with contextlib.AsyncExitStack() as stack:
            members = [
                await stack.enter_async_context(
                    Syncer(
                        self.config,
                        syncer_id=f"appsets-{next(_ids)}",
                        group_id=self.group_id,
                        retry_max_delay=1.0,
                    )
                )
                for _ in range(count)
            ]
            yield members

    @contextlib.asynccontextmanager
    async def receiver(self) -> AsyncIterator[Receiver]:
        async with Receiver(self.config) as receiver:
            yield receiver


MakeMonorepo = Callable[..., Awaitable[Monorepo]]


@pytest.fixture
async def monorepo(
    kafka: RealKafka,
    kubeconfig: Path,
    working_copy: Callable[..., WorkingCopy],
    group_id: str,
    namespace: str,
    inventory_namespace: str,
    k8s: K8s,
    tmp_path: Path,
) -> MakeMonorepo:
    """`await monorepo(services=["a", "b"], app_set={...})`: pushed, topics created.

    The default set `svc` makes one app per `services/*` directory, into the test's
    namespace, and polls its branch only every hour (webhooks or `interval` in the
    test's own `app_set` make it sooner).
    """

    async def make(
        *,
        services: list[str] | tuple[str, ...] = ("a", "b"),
        app_set: dict[str, Any] | None = None,
        app_sets: dict[str, dict[str, Any]] | None = None,
        apps: dict[str, dict[str, Any]] | None = None,
        files: dict[str, str | bytes | None] | None = None,
    ) -> Monorepo:
        repo = working_copy(f"mono{next(_ids)}")
        tree: dict[str, str | bytes | None] = {"README.md": "a monorepo\n", **(files or {})}
        for name in services:
            tree.update(service(name))
        repo.commit_and_push(tree, "services")
        default_set = {
            "repo": "mono",
            "directories": {"include": ["services/*"], "exclude": ["services/_*"]},
            "prune": True,
            "interval": "1h",
            "template": {"cluster": "dev", "namespace": namespace, "interval": "1h"},
            **(app_set or {}),
        }
        raw = {
            "kafka": {
                "bootstrap": kafka.bootstrap,
                "topic_prefix": kafka.topic_prefix,
                "partitions": 4,
            },
            "clusters": {"dev": {"kubeconfig": str(kubeconfig)}},
            "repositories": {"mono": {"url": repo.remote_url, "webhook_secret": {"value": SECRET}}},
            "apps": apps or {},
            "app_sets": app_sets or {"svc": default_set},
            "syncer": {
                "cache_dir": str(tmp_path / "cache"),
                "group_id": group_id,
                "health_timeout": "5s",
                "session_timeout": "6s",
                "heartbeat_interval": "1s",
                "max_attempts": 2,
                "inventory_namespace": inventory_namespace,
            },
        }
        config_path = tmp_path / f"gitops-{next(_ids)}.yaml"
        config_path.write_text(yaml.safe_dump(raw))
        config = load_config(config_path)
        await ensure_topics(config.kafka)
        await create_namespace(k8s, namespace)
        return Monorepo(config, config_path, repo, kafka.bootstrap, namespace, k8s, group_id)

    return make
