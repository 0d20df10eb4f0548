"""Three syncer processes share 30 apps: each repository is polled by exactly one of them,
and when one is killed its share is polled by the survivors within a rebalance."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from gitops.gitserver import GitHttpServer
from gitops.topics import ensure_topics
from schemas import GitopsConfig
from schemas.events import SyncRequested
from tests.drift.conftest import events, eventually
from tests.support.bed import RealKafka
from tests.support.git import WorkingCopy
from tests.support.k8s import create_namespace
from tests.syncer.conftest import K8s, configmap

REPOS, APPS_PER_REPO, INTERVAL, SESSION_TIMEOUT = 15, 2, 2.0, 6.0


def build_config(
    kafka: RealKafka,
    kubeconfig: Path,
    repos: dict[str, WorkingCopy],
    *,
    group_id: str,
    namespace: str,
    inventory_namespace: str,
) -> dict[str, Any]:
    apps = {
        f"app-{r}-{a}": {
            "repo": f"repo-{r}",
            "path": f"apps/{a}",
            "cluster": "dev",
            "namespace": namespace,
            "interval": f"{int(INTERVAL)}s",
        }
        for r in range(REPOS)
        for a in range(APPS_PER_REPO)
    }
    return {
        "kafka": {
            "bootstrap": kafka.bootstrap,
            "topic_prefix": kafka.topic_prefix,
            "partitions": 6,
        },
        "clusters": {"dev": {"kubeconfig": str(kubeconfig)}},
        "repositories": {name: {"url": wc.remote_url} for name, wc in repos.items()},
        "apps": apps,
        "syncer": {
            "group_id": group_id,
            "inventory_namespace": inventory_namespace,
            "health_timeout": "2s",
            "session_timeout": f"{int(SESSION_TIMEOUT)}s",
            "heartbeat_interval": "1s",
        },
    }


def push_all(repos: dict[str, WorkingCopy], version: str, only: set[str] | None = None) -> None:
    for name, wc in repos.items():
        if only is None or name in only:
            r = name.removeprefix("repo-")
            wc.commit_and_push(
                {
                    f"apps/{a}/cm.yaml": configmap(f"cm-{r}-{a}", version=version)
                    for a in range(APPS_PER_REPO)
                }
            )


@pytest.fixture
async def syncers(
    kafka: RealKafka,
    kubeconfig: Path,
    working_copy: Callable[..., WorkingCopy],
    group_id: str,
    namespace: str,
    inventory_namespace: str,
    k8s: K8s,
    tmp_path: Path,
) -> AsyncIterator[tuple[GitopsConfig, dict[str, WorkingCopy], dict[str, Any]]]:
    repos = {f"repo-{r}": working_copy(f"repo-{r}") for r in range(REPOS)}
    await asyncio.to_thread(push_all, repos, "1")
    await create_namespace(k8s, namespace)  # the test's own, shared by its 30 apps
    raw = build_config(
        kafka,
        kubeconfig,
        repos,
        group_id=group_id,
        namespace=namespace,
        inventory_namespace=inventory_namespace,
    )
    config = GitopsConfig.model_validate(raw)
    await ensure_topics(config.kafka)
    processes: dict[str, Any] = {}
    for n in range(3):
        name = f"s{n}"
        raw["syncer"]["cache_dir"] = str(tmp_path / f"cache-{name}")  # one cache per process
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(raw))
        log = (tmp_path / f"{name}.log").open("wb")
        processes[name] = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "gitops", "syncer", "--config", str(path), "--id", name),
            *("--group-id", group_id),
            stdout=log,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
    try:
        yield config, repos, processes
    finally:
        for process in processes.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def versions(k8s: K8s, namespace: str) -> dict[str, str]:
    listing = await k8s.get(f"/api/v1/namespaces/{namespace}/configmaps") or {}
    return {
        item["metadata"]["name"]: item["data"].get("version", "")
        for item in listing.get("items", [])
        if item["metadata"]["name"].startswith("cm-")
    }


def all_at(found: dict[str, str], version: str, names: set[str]) -> bool:
    return all(found.get(name) == version for name in names)


def cm_names(repos: set[str]) -> set[str]:
    return {f"cm-{r.removeprefix('repo-')}-{a}" for r in repos for a in range(APPS_PER_REPO)}


async def poll_requests(config: GitopsConfig, version_commits: set[str]) -> list[SyncRequested]:
    found = await events(config.kafka.bootstrap, f"{config.kafka.topic_prefix}.sync-requests")
    return [
        e
        for e in found
        if isinstance(e, SyncRequested)
        and e.data.reason == "poll"
        and e.data.commit in version_commits
    ]


def ls_remotes(server: GitHttpServer, since: int) -> Counter[str]:
    return Counter(
        path.split("/")[1].removesuffix(".git")
        for method, path in server.request_log[since:]
        if method == "GET" and "/info/refs" in path
    )


async def test_each_repository_is_polled_by_one_syncer_and_survivors_take_over_a_killed_ones(
    syncers: tuple[GitopsConfig, dict[str, WorkingCopy], dict[str, Any]],
    git_server: GitHttpServer,
    k8s: K8s,
    namespace: str,
) -> None:
    config, repos, processes = syncers
    every = set(repos)
    await eventually(lambda: _ready(k8s, namespace, "1", every), timeout=60, every=0.5)

    # A second commit everywhere, found by polling only: one request per app, and all
    # apps of a repository are requested by the same syncer (the one that listed it).
    await eventually(lambda: settled(config, 3), timeout=30, every=0.5)
    await asyncio.to_thread(push_all, repos, "2")
    heads = {wc.head() for wc in repos.values()}
    await eventually(lambda: _ready(k8s, namespace, "2", every), timeout=30, every=0.5)
    requests = await poll_requests(config, heads)
    per_app = Counter(r.data.app for r in requests)
    assert set(per_app) == set(config.apps) and set(per_app.values()) == {1}, per_app
    poller_of = {config.apps[r.data.app].repo: r.source for r in requests}
    for r in requests:
        assert r.source == poller_of[config.apps[r.data.app].repo]

    # Steady state: about one ls-remote per repository per interval, never one per syncer.
    mark = len(git_server.request_log)
    await asyncio.sleep(3 * INTERVAL)
    counts = ls_remotes(git_server, mark)
    assert set(counts) == every, counts
    assert max(counts.values()) <= 4, counts  # 3 intervals (+1 for the window's edge)

    # Kill the syncer polling the most repositories; a commit to its repositories is
    # found by the survivors within the session timeout, the survivors' rejoin (a
    # heartbeat, ~1 s on Apache Kafka) and one interval.
    victim_source = Counter(poller_of.values()).most_common(1)[0][0]
    victim = victim_source.rsplit("/", 1)[-1]
    orphaned = {repo for repo, source in poller_of.items() if source == victim_source}
    processes[victim].send_signal(signal.SIGKILL)
    await processes[victim].wait()
    killed = time.monotonic()
    await asyncio.to_thread(push_all, repos, "3", orphaned)
    new_heads = {repos[r].head() for r in orphaned}
    await eventually(lambda: _ready(k8s, namespace, "3", orphaned), timeout=40, every=0.5)
    took = time.monotonic() - killed
    print("TOOK", took)
    assert took <= SESSION_TIMEOUT + 1 + INTERVAL * 1.1 + 6, f"took over after {took:.1f}s"
    late = await poll_requests(config, new_heads)
    assert {r.data.app for r in late} == {
        a for a, spec in config.apps.items() if spec.repo in orphaned
    }
    assert victim_source not in {r.source for r in late}


def _settled(bootstrap: str, group_id: str, members: int) -> bool:
    """Whether the group is stable with `members` members, each assigned partitions."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    (future,) = admin.describe_consumer_groups([group_id]).values()
    group = future.result(10)
    return (
        group.state == ConsumerGroupState.STABLE
        and len(group.members) == members
        and all(m.assignment.topic_partitions for m in group.members)
    )


async def settled(config: GitopsConfig, members: int) -> bool:
    group = config.syncer.group_id
    return await asyncio.to_thread(_settled, config.kafka.bootstrap, group, members)


async def _ready(k8s: K8s, namespace: str, version: str, repos: set[str]) -> bool:
    return all_at(await versions(k8s, namespace), version, cm_names(repos))
