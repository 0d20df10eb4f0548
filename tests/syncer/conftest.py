"""Syncer test bench: the real cluster, a config builder, and request/outcome helpers.

Everything is real at the network boundary: Apache Kafka and kube-apiserver v1.37 of the
test bed (`kafka`, `cluster`), and `git http-backend` (`working_copy`). The cluster is
reached through a proxy that forwards every request and injects faults only when a test
asks (`cluster.faults`), and records what reached the server (`cluster.writes()`). Each
test has its own namespace (`bench.ns`), inventory namespace, topic prefix and group id.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from kubernetes_asyncio.client import ApiClient, Configuration

from gitops.topics import ensure_topics
from schemas import GitopsConfig, Topics
from schemas.events import (
    SyncFailed,
    SyncReason,
    SyncRequested,
    SyncRequestedData,
    SyncSkipped,
    SyncSucceeded,
    parse_event,
)
from schemas.types import AppName, CommitSha
from tests.support.apiproxy import ApiProxy
from tests.support.bed import RealCluster, RealKafka, unique_name
from tests.support.git import WorkingCopy
from tests.support.k8s import K8s
from tests.support.kafka import read_topic

Outcome = SyncSucceeded | SyncFailed | SyncSkipped
_ids = itertools.count()


@pytest.fixture
async def cluster(real_cluster: RealCluster) -> AsyncIterator[ApiProxy]:
    """The bed's API server behind this test's own fault-injecting proxy."""
    async with ApiProxy(real_cluster.kubeconfig) as proxy:
        yield proxy


@pytest.fixture
def kubeconfig(cluster: ApiProxy, tmp_path: Path) -> Path:
    return cluster.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def inventory_namespace() -> str:
    return unique_name("inv")


@pytest.fixture
async def k8s(cluster: ApiProxy, inventory_namespace: str) -> AsyncIterator[K8s]:
    async with ApiClient(Configuration(host=cluster.url)) as api:
        yield K8s(api, inventory_namespace)


@dataclass
class Bench:
    """One app's world: the config, its working copy, and Kafka helpers."""

    config: GitopsConfig
    repo: WorkingCopy
    bootstrap: str
    ns: str
    """This test's namespace: the default app's, and free for the test's own objects."""

    @property
    def topics(self) -> Topics:
        return Topics(self.config.kafka.topic_prefix)

    async def request(
        self,
        app: str = "web",
        commit: str | None = None,
        *,
        before: str | None = None,
        count: int = 1,
        reason: SyncReason = "manual",
    ) -> list[SyncRequested]:
        """Publish sync requests (keyed by app) as the receiver would."""
        producer = AIOKafkaProducer(**self.config.kafka.producer_options())
        await producer.start()
        sent = []
        try:
            for _ in range(count):
                request = SyncRequested(
                    source="/tests",
                    subject=app,
                    data=SyncRequestedData(
                        app=AppName(app),
                        repo_url=self.repo.remote_url,
                        branch="main",
                        commit=CommitSha(commit) if commit else None,
                        before=CommitSha(before) if before else None,
                        reason=reason,
                    ),
                )
                await producer.send_and_wait(
                    self.topics.sync_requests, request.to_bytes(), key=app.encode()
                )
                sent.append(request)
        finally:
            await producer.stop()
        return sent

    async def outcomes(self, expect: int, timeout: float = 40.0) -> list[Outcome]:
        records = await read_topic(
            self.bootstrap, self.topics.sync_events, expect=expect, timeout=timeout
        )
        events = [parse_event(r.value) for r in records]
        found = [e for e in events if isinstance(e, SyncSucceeded | SyncFailed | SyncSkipped)]
        assert len(found) >= expect, f"expected {expect} outcomes, got {found}"
        return found

    async def dead_letters(self, expect: int, timeout: float = 10.0) -> list[bytes]:
        records = await read_topic(
            self.bootstrap, self.topics.dead_letters, expect=expect, timeout=timeout
        )
        return [r.value for r in records]


MakeBench = Callable[..., Any]


@pytest.fixture
async def bench(
    kafka: RealKafka,
    kubeconfig: Path,
    working_copy: Callable[..., WorkingCopy],
    group_id: str,
    namespace: str,
    inventory_namespace: str,
    tmp_path: Path,
) -> Callable[..., Any]:
    """`await bench(apps={...}, syncer={...})`: topics created, a repository to push to.

    The default app `web` deploys `apps/web` into `bench.ns`.
    """

    async def make(
        apps: dict[str, dict[str, Any]] | None = None,
        syncer: dict[str, Any] | None = None,
    ) -> Bench:
        repo = working_copy(f"platform{next(_ids)}")
        raw = {
            "kafka": {
                "bootstrap": kafka.bootstrap,
                "topic_prefix": kafka.topic_prefix,
                "partitions": 4,
            },
            "clusters": {"dev": {"kubeconfig": str(kubeconfig)}},
            "repositories": {"platform": {"url": repo.remote_url}},
            "apps": apps
            or {
                "web": {
                    "repo": "platform",
                    "path": "apps/web",
                    "cluster": "dev",
                    "namespace": namespace,
                }
            },
            "syncer": {
                "cache_dir": str(tmp_path / "cache"),
                "group_id": group_id,
                "health_timeout": "5s",
                "session_timeout": "6s",
                "heartbeat_interval": "1s",
                "max_attempts": 2,
                "inventory_namespace": inventory_namespace,
                **(syncer or {}),
            },
        }
        config = GitopsConfig.model_validate(raw)
        await ensure_topics(config.kafka)
        return Bench(config, repo, kafka.bootstrap, namespace)

    return make


def configmap(name: str, namespace: str | None = None, **data: str) -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    lines = "".join(f"\n  {k}: {v!r}" for k, v in (data or {"k": "v"}).items())
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}{ns}\ndata:{lines}\n"


def deployment(name: str, image: str = "nginx:1.27", replicas: int = 1) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: main
          image: {image}
"""


def namespace_yaml(name: str) -> str:
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"


# The real sops and age-keygen, built by the test bed (tests/support/sops.py).
from tests.support.sops import age_key, age_keygen, sops_binary, sops_path  # noqa: E402, F401
