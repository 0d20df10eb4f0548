"""The broker restarts while syncers are consuming; its data survives on S3 storage.

The broker is a Tansu of this test's own (the test bed's Kafka is shared by the whole
run and is never restarted), with `kafka.idempotence: false` as Tansu needs. Its memory
storage forgets everything on restart, so this broker stores on S3 (a local `moto`
server, same port across the restart). The cluster is the test bed's kube-apiserver.
What a user observes: the syncers reconnect by themselves, every sync request published
before and after the restart gets a final outcome, and every app ends at its newest
commit.

Delivery is at-least-once (DESIGN: offsets are committed after the outcome is published,
applies are idempotent): a request whose offset commit was lost in the restart may be
processed again. The promise asserted is therefore: no request without an outcome, no
failure, and every outcome of one request agrees (same kind, same commit); how many
requests were answered twice is printed.
"""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from gitops.broker import EmbeddedBroker, free_port
from schemas.events import SyncFailed
from syncer.service import Syncer
from tests.faults.conftest import (
    app_configmaps,
    configmaps_yaml,
    create_topics,
    gitops_config,
    namespace_yaml,
    outcomes_for,
    publish_requests,
)
from tests.security.figures import record
from tests.support.apiproxy import ApiProxy
from tests.support.bed import unique_name
from tests.support.git import WorkingCopy
from tests.support.k8s import K8s

pytestmark = pytest.mark.faults

APPS = [f"app{i}" for i in range(4)]


@pytest.fixture
async def s3() -> AsyncIterator[str]:
    """A local S3 (moto) with bucket `tansu`; yields its endpoint URL."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "moto.server",
        "-H",
        "127.0.0.1",
        "-p",
        str(port),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while True:
                try:
                    async with http.put(f"{endpoint}/tansu") as answer:
                        assert answer.status == 200, await answer.text()
                        break
                except aiohttp.ClientConnectionError:
                    assert loop.time() < deadline, "moto did not start"
                    await asyncio.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        await process.wait()


@pytest.fixture
async def broker(s3: str, tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT": s3,
        "AWS_ALLOW_HTTP": "true",
    }
    async with EmbeddedBroker(
        storage_engine="s3://tansu/", env=env, log_path=tmp_path / "tansu.log"
    ) as running:
        yield running


async def test_syncers_reconnect_after_a_broker_restart_and_every_request_gets_an_outcome(
    broker: EmbeddedBroker,
    cluster: ApiProxy,
    k8s: K8s,
    namespace: str,
    inventory_namespace: str,
    working_copy: Callable[..., WorkingCopy],
    tmp_path: Path,
) -> None:
    repo = working_copy("platform")
    ns = {name: f"{namespace}-{name}" for name in APPS}
    config = gitops_config(
        bootstrap=broker.bootstrap,
        prefix="t",
        idempotence=False,
        session_timeout="2s",
        heartbeat_interval="500ms",
        kubeconfig=cluster.write_kubeconfig(tmp_path / "kubeconfig"),
        repositories={"platform": repo.remote_url},
        apps={
            name: {
                "repo": "platform",
                "path": f"apps/{name}",
                "cluster": "dev",
                "namespace": ns[name],
            }
            for name in APPS
        },
        cache_dir=tmp_path / "cache",
        group_id=unique_name("restart"),
        inventory_namespace=inventory_namespace,
    )
    await create_topics(config)

    def files(version: int) -> dict[str, str | bytes | None]:
        return {
            f"apps/{name}/cms.yaml": (
                namespace_yaml(ns[name])
                + "---\n"
                + configmaps_yaml([f"{name}-{i}" for i in range(10)], ns[name], v=str(version))
            )
            for name in APPS
        }

    first = repo.commit_and_push(files(1))
    async with (
        Syncer(config, syncer_id="s1", retry_max_delay=1.0) as s1,
        Syncer(config, syncer_id="s2", retry_max_delay=1.0) as s2,
    ):
        sent = await publish_requests(config, [(a, repo.remote_url, first) for a in APPS])
        await asyncio.sleep(0.5)  # the syncers are fetching and applying
        await broker.restart()
        newest = repo.commit_and_push(files(2))
        sent += await publish_requests(config, [(a, repo.remote_url, newest) for a in APPS])
        ids = {r.id for r in sent}
        events = await outcomes_for(config, ids, timeout=90)
        await asyncio.sleep(2.0)  # late duplicates, if any, would land now
        events = await outcomes_for(config, ids, timeout=10)
        for syncer in (s1, s2):
            assert syncer._loop_task is not None and not syncer._loop_task.done()

    answers = defaultdict(list)
    for event in events:
        answers[event.data.request_id].append(event)
    assert set(answers) >= ids
    failed = [e for e in events if isinstance(e, SyncFailed)]
    assert failed == [], failed
    for request_id in ids:
        kinds = {(type(e).__name__, e.data.commit) for e in answers[request_id]}
        assert len(kinds) == 1, f"request {request_id} got disagreeing outcomes: {kinds}"
    for name in APPS:
        assert await app_configmaps(k8s, ns[name]) == {f"{name}-{i}": {"v": "2"} for i in range(10)}
        assert (await k8s.inventory(name))[0] == newest
    twice = sum(len(answers[i]) > 1 for i in ids)
    record(
        "broker restarted while syncers consume (S3 storage)",
        "every request gets an outcome; repeated outcomes agree (at-least-once)",
        tried=len(ids),
        accepted=sum(1 for i in ids if answers[i]),
        lost=sum(1 for i in ids if not answers[i]),
        duplicated=twice,
        notes="duplicates are redeliveries of the same request and agree",
    )
