"""An app in a private repository reached over SSH, from webhook to cluster, on the real bed.

The repository is `ssh://<user>@127.0.0.1:<port>/...` on a real sshd, read with a deploy
key and the server's pinned host key; the receiver and a syncer run as in production
against the bed's Apache Kafka and kube-apiserver. A push with a webhook and a push
without one (the branch-head poll) both reach the cluster. Then the server's host key
changes: the next push fails once per app, naming the new key's fingerprint, and not
one write reaches the cluster.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gitops.topics import ensure_topics
from receiver.service import Receiver
from schemas import GitopsConfig, Topics
from schemas.events import AnyEvent, SyncFailed, SyncSucceeded, parse_event
from syncer.polling import Poller
from syncer.service import Syncer
from testbed.sshd import SshServer, keygen
from tests.drift.conftest import eventually
from tests.security import webhooks
from tests.support.apiproxy import ApiProxy
from tests.support.bed import RealKafka, unique_name
from tests.support.git import WorkingCopy
from tests.support.k8s import create_namespace
from tests.support.kafka import read_topic
from tests.syncer.conftest import K8s, cluster, configmap, inventory_namespace, k8s, kubeconfig

__all__ = ["cluster", "inventory_namespace", "k8s", "kubeconfig"]

SECRET = "ssh-e2e-webhook-secret"
APPS = ("web", "api")


def files(namespace: str, color: str) -> dict[str, str | bytes | None]:
    return {
        f"apps/{app}/cm.yaml": configmap(f"{app}-settings", namespace, color=color) for app in APPS
    }


async def colors(k8s: K8s, namespace: str) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for app in APPS:
        live = await k8s.get(f"/api/v1/namespaces/{namespace}/configmaps/{app}-settings")
        found[app] = live["data"]["color"] if live is not None else None
    return found


async def outcomes(kafka: RealKafka, topics: Topics) -> list[AnyEvent]:
    records = await read_topic(kafka.bootstrap, topics.sync_events, idle=1.0, timeout=20)
    return [
        e
        for e in (parse_event(r.value) for r in records)
        if isinstance(e, SyncSucceeded | SyncFailed)
    ]


async def push_webhook(http: aiohttp.ClientSession, receiver: str, url: str, sha: str) -> None:
    payload = webhooks.push_payload("github", url, after=sha)
    payload["commits"][0]["modified"] = [f"apps/{app}/cm.yaml" for app in APPS]
    body = webhooks.encode(payload)
    headers = webhooks.headers("github", body, secret=SECRET, delivery=str(uuid.uuid4()))
    async with http.post(f"{receiver}/hooks/github", data=body, headers=headers) as answer:
        assert answer.status == 202, await answer.text()


async def ssh_config(
    kafka: RealKafka,
    kubeconfig: Path,
    namespace: str,
    inventory_namespace: str,
    group_id: str,
    tmp_path: Path,
    *,
    url: str,
    key: Path,
    known_hosts: str,
) -> GitopsConfig:
    """Both apps of an SSH repository, as a user writes them; topics created."""
    app: dict[str, Any] = {"repo": "platform", "cluster": "dev", "interval": "3s"}
    ssh = {"private_key": {"file": str(key)}, "known_hosts": known_hosts}
    raw = {
        "kafka": {
            "bootstrap": kafka.bootstrap,
            "topic_prefix": kafka.topic_prefix,
            "partitions": 2,
        },
        "clusters": {"dev": {"kubeconfig": str(kubeconfig)}},
        "repositories": {
            "platform": {"url": url, "webhook_secret": {"value": SECRET}, "auth": {"ssh": ssh}}
        },
        "apps": {name: {**app, "path": f"apps/{name}", "namespace": namespace} for name in APPS},
        "syncer": {
            "cache_dir": str(tmp_path / "cache"),
            "group_id": group_id,
            "inventory_namespace": inventory_namespace,
            "max_attempts": 2,
            "session_timeout": "6s",
            "heartbeat_interval": "1s",
            "health_timeout": "5s",
            "git_timeout": "10s",
        },
    }
    config = GitopsConfig.model_validate(raw)
    await ensure_topics(config.kafka)
    return config


async def test_an_ssh_app_syncs_on_push_and_poll_and_stops_cleanly_on_a_changed_host_key(
    kafka: RealKafka,
    cluster: ApiProxy,
    kubeconfig: Path,
    k8s: K8s,
    namespace: str,
    inventory_namespace: str,
    sshd: SshServer,
    deploy_key: Path,
    ssh_copy: Callable[[str], WorkingCopy],
    group_id: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await create_namespace(k8s, namespace)
    wc = ssh_copy("platform")
    first = await asyncio.to_thread(wc.commit_and_push, files(namespace, "blue"))
    config = await ssh_config(
        kafka, kubeconfig, namespace, inventory_namespace, group_id, tmp_path,
        url=sshd.url("platform"), key=deploy_key, known_hosts=sshd.known_hosts_line(),
    )  # fmt: skip
    topics = Topics(config.kafka.topic_prefix)
    # The webhook names the repository the way GitHub does (https); it matches the ssh URL.
    payload_url = sshd.url("platform").replace(f"ssh://{sshd.user}@", "https://")

    async with (
        Receiver(config, host="127.0.0.1", port=0) as receiver,
        Syncer(config, syncer_id=unique_name("s"), periodic_checks=True) as syncer,
        aiohttp.ClientSession() as http,
    ):
        await push_webhook(http, receiver.url, payload_url, first)
        await eventually(
            lambda: _equal(colors(k8s, namespace), {"web": "blue", "api": "blue"}), timeout=40
        )

        # No webhook this time: the branch-head poll over SSH finds the new head.
        second = await asyncio.to_thread(wc.commit_and_push, files(namespace, "green"))
        await eventually(
            lambda: _equal(colors(k8s, namespace), {"web": "green", "api": "green"}), timeout=30
        )
        wanted = {(name, sha) for name in APPS for sha in (first, second)}

        async def synced() -> bool:
            found = await outcomes(kafka, topics)
            return {
                (e.data.app, e.data.commit) for e in found if isinstance(e, SyncSucceeded)
            } >= wanted

        await eventually(synced, timeout=30, every=0.5)  # each commit reported as applied

        # The server's host key changes (rotated, or someone in the middle).
        assert syncer.poller is not None
        errors = syncer.poller.stats.errors
        await asyncio.to_thread(sshd.restart, new_host_key=True)
        # A poll that connected just before the restart was verified against the old key and
        # may still list refs; once a poll has failed on the new key, none is in flight.
        await eventually(lambda: _above(syncer.poller, errors), timeout=30, every=0.2)
        writes_before = len(cluster.writes())
        third = await asyncio.to_thread(wc.commit_and_push, files(namespace, "red"))
        await push_webhook(http, receiver.url, payload_url, third)

        async def failures() -> list[SyncFailed] | None:
            found = [
                e
                for e in await outcomes(kafka, topics)
                if isinstance(e, SyncFailed) and e.data.commit in (None, third)
            ]
            return found if {e.data.app for e in found} == set(APPS) else None

        failed, _ = await eventually(failures, timeout=40, every=0.5)
        await asyncio.sleep(4)  # more than one poll interval: nothing else may follow
        failed = await failures() or []

    # One failed sync per app: the webhook's request. (At-least-once delivery may repeat
    # a request after a rebalance on a loaded machine; a repeat carries the same request id.)
    requests = {(e.data.app, e.data.request_id, e.data.reason) for e in failed}
    assert sorted(app for app, _, _ in requests) == sorted(APPS), requests
    assert {reason for _, _, reason in requests} == {"webhook"}, requests
    for event in failed:
        error = event.data.error or ""
        assert f"the host key of [127.0.0.1]:{sshd.port} has CHANGED" in error, error
        assert sshd.fingerprint() in error, error
    assert await colors(k8s, namespace) == {"web": "green", "api": "green"}
    assert cluster.writes()[writes_before:] == [], "no write after the host key changed"
    emitted = caplog.text
    for topic in (topics.sync_events, topics.sync_requests, topics.push_events):
        for record in await read_topic(kafka.bootstrap, topic, idle=1.0, timeout=20):
            emitted += record.value.decode(errors="replace")
    key_body = deploy_key.read_text().splitlines()[1:-1]
    assert key_body and not [line for line in key_body if line in emitted], "key material leaked"


async def _above(poller: Poller | None, errors: int) -> bool:
    return poller is not None and poller.stats.errors > errors


async def _equal(probe: Any, expected: dict[str, str]) -> bool:
    return bool(await probe == expected)


@pytest.mark.parametrize("refusal", ["a key the server does not accept", "an unknown host key"])
async def test_a_refused_ssh_connection_fails_each_app_once_and_writes_nothing(
    refusal: str,
    kafka: RealKafka,
    cluster: ApiProxy,
    kubeconfig: Path,
    k8s: K8s,
    namespace: str,
    inventory_namespace: str,
    sshd: SshServer,
    deploy_key: Path,
    ssh_copy: Callable[[str], WorkingCopy],
    group_id: str,
    tmp_path: Path,
) -> None:
    await create_namespace(k8s, namespace)
    head = await asyncio.to_thread(ssh_copy("platform").commit_and_push, files(namespace, "blue"))
    key, known_hosts = deploy_key, sshd.known_hosts_line()
    if refusal == "an unknown host key":
        known_hosts = known_hosts.replace("[127.0.0.1]", "[git.example.com]")
        expected = f"the host key of [127.0.0.1]:{sshd.port} is unknown"
    else:
        key = keygen(tmp_path / "not-authorised")
        expected = "the SSH server refused the key"
    config = await ssh_config(
        kafka, kubeconfig, namespace, inventory_namespace, group_id, tmp_path,
        url=sshd.url("platform"), key=key, known_hosts=known_hosts,
    )  # fmt: skip
    topics = Topics(config.kafka.topic_prefix)
    payload_url = sshd.url("platform").replace(f"ssh://{sshd.user}@", "https://")
    writes_before = len(cluster.writes())

    async with (
        Receiver(config, host="127.0.0.1", port=0) as receiver,
        Syncer(config, syncer_id=unique_name("s")),
        aiohttp.ClientSession() as http,
    ):
        await push_webhook(http, receiver.url, payload_url, head)

        async def failures() -> list[SyncFailed] | None:
            found = [e for e in await outcomes(kafka, topics) if isinstance(e, SyncFailed)]
            return found if {e.data.app for e in found} == set(APPS) else None

        failed, _ = await eventually(failures, timeout=40, every=0.5)

    requests = {(e.data.app, e.data.request_id) for e in failed}
    assert sorted(app for app, _ in requests) == sorted(APPS), requests
    for event in failed:
        assert expected in (event.data.error or ""), event.data.error
    assert cluster.writes()[writes_before:] == []
    assert await colors(k8s, namespace) == {"web": None, "api": None}
