"""A real API server that sheds load: 429 with Retry-After from its in-flight limits.

What a user observes: a sync against an overloaded API server waits as long as the
server asks (Retry-After) and succeeds with every object validated once and written
once, because one request's 429 is retried where it was made and never re-runs the whole
sync. When the refusals outlast `syncer.api_attempts`, the sync fails at once without
running again (the next push, poll or drift check will) and goes to the dead-letter topic.

The server is a second kube-apiserver on the test bed's etcd, with
`--max-requests-inflight=1 --max-mutating-requests-inflight=1` and priority-and-fairness
off: that limiter answers 429 with `Retry-After: 1` at once, where priority-and-fairness
would queue first. `system:masters` is never throttled, so the syncer is a ServiceAccount
bound to `cluster-admin`, reached through the recording proxy (`ApiProxy`). So that the
server is surely overloaded when the sync starts, the test holds its one mutating slot
with a create whose body it sends slowly, as a slow client on a busy network would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.config import load_kube_config

from schemas import GitopsConfig, Topics
from schemas.events import SyncFailed, SyncSucceeded, parse_dead_letter
from syncer.service import Syncer
from testbed.bed import Bed
from testbed.kube import start_second_apiserver
from testbed.processes import Running, stop
from tests.faults.conftest import (
    Outcome,
    configmaps_yaml,
    create_namespace,
    create_topics,
    gitops_config,
    outcomes_for,
    publish_requests,
)
from tests.support.apiproxy import ApiProxy, Seen
from tests.support.bed import RealKafka, unique_name
from tests.support.git import WorkingCopy
from tests.support.k8s import K8s
from tests.support.kafka import read_topic

pytestmark = pytest.mark.faults

NAMES = [f"cm-{i:02d}" for i in range(40)]
THROTTLED = [
    "--max-requests-inflight=1",
    "--max-mutating-requests-inflight=1",
    "--enable-priority-and-fairness=false",
]


@pytest.fixture(scope="module")
def throttled_server(bed: Bed) -> Iterator[tuple[Running, Path]]:
    """The second API server and its admin kubeconfig; stopped when the module ends."""
    running, kubeconfig = start_second_apiserver(
        bed.folder, unique_name("throttled-apiserver"), THROTTLED
    )
    try:
        yield running, kubeconfig
    finally:
        stop(running)


@pytest.fixture
async def admin(throttled_server: tuple[Running, Path]) -> AsyncIterator[K8s]:
    configuration = Configuration()
    await load_kube_config(str(throttled_server[1]), client_configuration=configuration)
    async with ApiClient(configuration) as api:
        yield K8s(api)


@dataclass(frozen=True)
class Account:
    server: str
    ca: str
    token: str


@pytest.fixture
async def account(admin: K8s, throttled_server: tuple[Running, Path]) -> AsyncIterator[Account]:
    """A ServiceAccount bound to cluster-admin: an identity the in-flight limits apply to."""
    """The throttled server behind a recording proxy, as a ServiceAccount (cluster-admin)."""
    account = unique_name("throttled-syncer")
    await create_namespace(admin, account)
    await _post(
        admin, f"/api/v1/namespaces/{account}/serviceaccounts", _meta("ServiceAccount", account)
    )
    await _post(
        admin,
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": account},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": account}],
        },
    )
    token = await _post(
        admin,
        f"/api/v1/namespaces/{account}/serviceaccounts/{account}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    config = json.loads(throttled_server[1].read_text())["clusters"][0]["cluster"]
    yield Account(config["server"], config["certificate-authority"], token["status"]["token"])
    await admin.api.call_api(
        f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{account}",
        "DELETE",
        auth_settings=["BearerToken"],
    )


@pytest.fixture
async def throttled(
    account: Account, throttled_server: tuple[Running, Path], tmp_path: Path
) -> AsyncIterator[ApiProxy]:
    """The throttled server behind a recording proxy, as the ServiceAccount."""
    upstream = json.loads(throttled_server[1].read_text())
    upstream["users"][0]["user"] = {"token": account.token}
    as_account = tmp_path / "throttled-account.kubeconfig"
    as_account.write_text(json.dumps(upstream))
    async with ApiProxy(as_account) as proxy:
        yield proxy


@contextlib.asynccontextmanager
async def mutating_slot_held(account: Account, ns: str) -> AsyncIterator[None]:
    """The server's one mutating slot taken by a create whose body never finishes."""
    context = ssl.create_default_context(cafile=account.ca)
    host, port = account.server.removeprefix("https://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
    head = (
        f"POST /api/v1/namespaces/{ns}/configmaps HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {account.token}\r\nContent-Type: application/json\r\n"
        "Content-Length: 100000\r\n\r\n{"
    )
    writer.write(head.encode())
    await writer.drain()
    try:
        await _until_refused(account, ns)
        yield
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        del reader


async def _until_refused(account: Account, ns: str) -> None:
    """Wait (bounded) until a dry-run create by the account is answered 429."""
    context = ssl.create_default_context(cafile=account.ca)
    body = json.dumps(_meta("ConfigMap", "probe")).encode()
    host, port = account.server.removeprefix("https://").split(":")
    for _ in range(100):
        reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
        writer.write(
            (
                f"POST /api/v1/namespaces/{ns}/configmaps?dryRun=All HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nAuthorization: Bearer {account.token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            + body
        )
        status = (await reader.readline()).split()[1]
        writer.close()
        if status == b"429":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the held create never filled the mutating in-flight slot")


@pytest.fixture
async def ns(admin: K8s, namespace: str) -> str:
    return await create_namespace(admin, namespace)


@pytest.fixture
def repo(working_copy: Callable[..., WorkingCopy]) -> WorkingCopy:
    return working_copy("platform")


@pytest.fixture
def make_config(
    kafka: RealKafka, throttled: ApiProxy, ns: str, tmp_path: Path, repo: WorkingCopy
) -> Callable[..., Any]:
    async def make(**syncer: Any) -> GitopsConfig:
        made = gitops_config(
            bootstrap=kafka.bootstrap,
            prefix=kafka.topic_prefix,
            kubeconfig=throttled.write_kubeconfig(tmp_path / "kubeconfig"),
            repositories={"platform": repo.remote_url},
            apps={
                "web": {"repo": "platform", "path": "apps/web", "cluster": "dev", "namespace": ns}
            },
            cache_dir=tmp_path / "cache",
            group_id=unique_name("throttled"),
            inventory_namespace=unique_name("inv"),
            syncer=syncer,
        )
        await create_topics(made)
        return made

    return make


async def sync(config: GitopsConfig, commit: str, url: str) -> Outcome:
    async with Syncer(config, syncer_id="s1", retry_max_delay=0.2):
        (request,) = await publish_requests(config, [("web", url, commit)])
        events = await outcomes_for(config, {request.id}, timeout=120)
    (outcome,) = [e for e in events if e.data.request_id == request.id]
    return outcome


def configmap_requests(seen: list[Seen], ns: str) -> list[Seen]:
    return [s for s in seen if s.resource == "configmaps" and s.namespace == ns]


async def test_a_sync_against_a_server_shedding_load_waits_as_told_and_writes_each_object_once(
    make_config: Callable[..., Any],
    repo: WorkingCopy,
    throttled: ApiProxy,
    account: Account,
    admin: K8s,
    ns: str,
) -> None:
    config = await make_config()
    commit = repo.commit_and_push({"apps/web/objects.yaml": configmaps_yaml(NAMES, ns, v="1")})

    async def overloaded_for_a_while() -> None:
        async with mutating_slot_held(account, ns):
            await asyncio.sleep(1.5)

    held = asyncio.create_task(overloaded_for_a_while())
    await asyncio.sleep(0.5)
    outcome = await sync(config, commit, repo.remote_url)
    await held

    assert isinstance(outcome, SyncSucceeded), outcome
    requests = configmap_requests(throttled.seen, ns)
    refused = [s for s in requests if s.status == 429]
    assert refused, "the server refused nothing while its mutating slot was held"
    for refusal in refused:
        key = (refusal.verb, refusal.name, refusal.dry_run)
        retry = next(
            s for s in requests if (s.verb, s.name, s.dry_run) == key and s.at > refusal.at
        )
        assert retry.at - refusal.at >= 1.0, "retried sooner than the server's Retry-After: 1"
    accepted = Counter(
        (s.name, s.dry_run) for s in requests if s.verb == "patch" and s.status < 300
    )
    assert accepted == Counter({(n, d): 1 for n in NAMES for d in (True, False)})
    assert set(await admin.configmaps(ns)) >= set(NAMES)


async def test_refusals_outlasting_api_attempts_fail_the_sync_at_once_and_write_nothing(
    make_config: Callable[..., Any],
    repo: WorkingCopy,
    throttled: ApiProxy,
    account: Account,
    admin: K8s,
    ns: str,
) -> None:
    config = await make_config(api_attempts=2, max_attempts=3)
    commit = repo.commit_and_push({"apps/web/objects.yaml": configmaps_yaml(NAMES, ns, v="1")})

    async with mutating_slot_held(account, ns):
        outcome = await sync(config, commit, repo.remote_url)

    assert isinstance(outcome, SyncFailed), outcome
    assert "HTTP 429" in (outcome.data.error or ""), outcome.data.error
    assert "gave up after 2 attempts (syncer.api_attempts)" in (outcome.data.error or "")
    requests = configmap_requests(throttled.seen, ns)
    assert max(Counter((s.verb, s.name, s.dry_run) for s in requests).values()) <= 2
    assert [s for s in requests if s.write] == []
    assert set(await admin.configmaps(ns)).isdisjoint(NAMES)
    letters = await read_topic(
        config.kafka.bootstrap, Topics(config.kafka.topic_prefix).dead_letters, expect=1
    )
    assert [parse_dead_letter(r.value).id for r in letters] == [outcome.data.request_id]


async def _post(k8s: K8s, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await k8s.api.call_api(
        path, "POST", body=body, auth_settings=["BearerToken"], _preload_content=False
    )
    try:
        assert response.status in (200, 201), await response.text()
        answer: dict[str, Any] = await response.json()
        return answer
    finally:
        response.release()


def _meta(kind: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}}
