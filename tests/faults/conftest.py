"""Fault bench: the real parts of the pipeline, and the means to break them on purpose.

Everything here is real at the network boundary: the test bed's kube-apiserver v1.37 and
Apache Kafka, `git http-backend`, and Tansu for the tests that stop or restart a broker
(the bed's Kafka is shared by every test, so it is never paused). Faults are injected from
outside the code under test: SIGSTOP/SIGKILL of processes, a broker restarted on S3
storage, a git proxy that hangs or answers garbage, and the fault rules of an API proxy
in front of the real server (`cluster.faults`). Each test has its own namespace,
inventory namespace, topic prefix and consumer group. Each helper bounds its waits so a
broken pipeline fails the test with a message instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
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
from kubernetes_asyncio.client import CoreV1Api, V1Namespace, V1ObjectMeta

from gitops.topics import ensure_topics
from schemas import GitopsConfig, Topics
from schemas.events import (
    SyncFailed,
    SyncRequested,
    SyncRequestedData,
    SyncSkipped,
    SyncSucceeded,
    parse_event,
)
from schemas.types import AppName, CommitSha
from tests.support.apiproxy import ApiProxy
from tests.support.bed import RealCluster, unique_name
from tests.support.k8s import K8s
from tests.support.kafka import read_topic

Outcome = SyncSucceeded | SyncFailed | SyncSkipped

ROOT_CA = "kube-root-ca.crt"
"""The ConfigMap the controller-manager publishes into every namespace; no app owns it."""


@pytest.fixture
async def cluster(real_cluster: RealCluster) -> AsyncIterator[ApiProxy]:
    """The bed's API server behind this test's own fault-injecting proxy.

    It runs on the test's event loop: syncers in the test process and `python -m gitops
    syncer` subprocesses (given `cluster.write_kubeconfig(...)`) reach it while the test
    awaits.
    """
    async with ApiProxy(real_cluster.kubeconfig) as proxy:
        yield proxy


@pytest.fixture
def inventory_namespace() -> str:
    return unique_name("inv")


@pytest.fixture
async def k8s(real_cluster: RealCluster, inventory_namespace: str) -> AsyncIterator[K8s]:
    """Reads straight from the API server as its admin, past the proxy and its faults."""
    api = await real_cluster.client()
    try:
        yield K8s(api, inventory_namespace)
    finally:
        await api.close()


async def create_namespace(k8s: K8s, name: str) -> str:
    """Create a namespace of the test's own before the app syncs into it."""
    await CoreV1Api(k8s.api).create_namespace(V1Namespace(metadata=V1ObjectMeta(name=name)))
    return name


def gitops_config(
    *,
    bootstrap: str,
    prefix: str,
    kubeconfig: Path,
    repositories: dict[str, str],
    apps: dict[str, dict[str, Any]],
    cache_dir: Path,
    group_id: str,
    inventory_namespace: str,
    partitions: int = 4,
    idempotence: bool = True,
    session_timeout: str = "6s",
    heartbeat_interval: str = "1s",
    syncer: dict[str, Any] | None = None,
) -> GitopsConfig:
    """A config for one test.

    The group timeouts default to the shortest real Kafka accepts
    (`group.min.session.timeout.ms` is 6 s); Tansu, which joins a group in about half its
    session, takes shorter ones. Tansu also needs `idempotence=False`.
    """
    raw = {
        "kafka": {
            "bootstrap": bootstrap,
            "topic_prefix": prefix,
            "partitions": partitions,
            "idempotence": idempotence,
        },
        "clusters": {"dev": {"kubeconfig": str(kubeconfig)}},
        "repositories": {name: {"url": url} for name, url in repositories.items()},
        "apps": apps,
        "syncer": {
            "cache_dir": str(cache_dir),
            "group_id": group_id,
            "inventory_namespace": inventory_namespace,
            "health_timeout": "5s",
            "session_timeout": session_timeout,
            "heartbeat_interval": heartbeat_interval,
            **(syncer or {}),
        },
    }
    return GitopsConfig.model_validate(raw)


def write_config(config: GitopsConfig, path: Path) -> Path:
    path.write_text(yaml.safe_dump(json.loads(config.model_dump_json())))
    return path


async def publish_requests(
    config: GitopsConfig, requests: Iterable[tuple[str, str, str | None]]
) -> list[SyncRequested]:
    """Publish `(app, repo url, commit)` sync requests keyed by app, as the receiver would."""
    topics = Topics(config.kafka.topic_prefix)
    producer = AIOKafkaProducer(**config.kafka.producer_options())
    await producer.start()
    sent = []
    try:
        for app, url, commit in requests:
            request = SyncRequested(
                source="/tests/faults",
                subject=app,
                data=SyncRequestedData(
                    app=AppName(app),
                    repo_url=url,
                    branch="main",
                    commit=CommitSha(commit) if commit else None,
                    reason="manual",
                ),
            )
            await producer.send_and_wait(topics.sync_requests, request.to_bytes(), key=app.encode())
            sent.append(request)
    finally:
        await producer.stop()
    return sent


async def outcomes_for(
    config: GitopsConfig, request_ids: set[str], *, timeout: float
) -> list[Outcome]:
    """Every outcome event on sync-events, once each of `request_ids` has at least one."""
    topic = Topics(config.kafka.topic_prefix).sync_events
    deadline = time.monotonic() + timeout
    found: list[Outcome] = []
    while time.monotonic() < deadline:
        records = await read_topic(config.kafka.bootstrap, topic, idle=0.3, timeout=5.0)
        events = [parse_event(r.value) for r in records]
        found = [e for e in events if isinstance(e, SyncSucceeded | SyncFailed | SyncSkipped)]
        if request_ids <= {e.data.request_id for e in found}:
            return found
        await asyncio.sleep(0.3)
    missing = request_ids - {e.data.request_id for e in found}
    raise AssertionError(f"no outcome within {timeout}s for requests {sorted(missing)}: {found}")


@dataclass
class SyncerProcess:
    """A `python -m gitops syncer` subprocess and the log it writes."""

    name: str
    process: asyncio.subprocess.Process
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text():
            if self.process.returncode is not None:
                raise AssertionError(f"syncer {self.name} exited: {self.text()[-3000:]}")
            if time.monotonic() > deadline:
                tail = self.text()[-3000:]
                raise AssertionError(f"no {text!r} from {self.name} in {timeout}s: {tail}")
            await asyncio.sleep(0.02)

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


async def start_syncer(name: str, config_path: Path, group_id: str, log_dir: Path) -> SyncerProcess:
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gitops",
            "syncer",
            "--config",
            str(config_path),
            "--id",
            name,
            "--group-id",
            group_id,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env={**os.environ, "GITOPS_LOG_LEVEL": "INFO"},
        )
    return SyncerProcess(name, process, log)


async def create_topics(config: GitopsConfig) -> None:
    await ensure_topics(config.kafka)


def configmaps_yaml(names: Iterable[str], namespace: str, **data: str) -> str:
    """One multi-document file of ConfigMaps."""
    docs = []
    body = "".join(f"\n  {k}: {v!r}" for k, v in (data or {"k": "v"}).items())
    for name in names:
        docs.append(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
            f"  namespace: {namespace}\ndata:{body}\n"
        )
    return "---\n".join(docs)


def namespace_yaml(name: str) -> str:
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"


async def app_configmaps(k8s: K8s, namespace: str) -> dict[str, dict[str, str]]:
    """name -> data of every ConfigMap in `namespace` but the cluster's own `ROOT_CA`."""
    return {n: d for n, d in (await k8s.configmaps(namespace)).items() if n != ROOT_CA}
