"""A git server that is down, slow, or answers garbage hurts only the apps that use it.

What a user observes for an app whose git server is unreachable or answers garbage: the
syncer retries with backoff (`syncer.max_attempts`, delays doubling), then publishes a
`gitops.sync.failed` event and puts the request on `<prefix>.sync-requests.dlq`. Apps on
a healthy repository keep syncing meanwhile, and the same syncer goes on serving requests
afterwards. A slow server (5 s per request, under the git timeout) only delays its own
apps: their sync succeeds, late, while the others are not held up.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import TracebackType

import aiohttp
import pytest
from aiohttp import web

from gitops.broker import free_port
from gitops.gitserver import GitHttpServer
from schemas import GitopsConfig, Topics
from schemas.events import SyncFailed, SyncSucceeded, parse_dead_letter
from syncer.service import Syncer
from tests.faults.conftest import (
    Outcome,
    create_namespace,
    create_topics,
    gitops_config,
    outcomes_for,
    publish_requests,
)
from tests.support.apiproxy import ApiProxy
from tests.support.bed import RealKafka, unique_name
from tests.support.git import WorkingCopy
from tests.support.k8s import K8s
from tests.support.kafka import read_topic
from tests.support.threaded import in_thread

pytestmark = pytest.mark.faults

ATTEMPTS = 3
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: '{v}'\n"


class GitProxy:
    """Stands in front of the git server: `slow` forwards after a pause, `garbage` answers
    200 with random bytes."""

    def __init__(self, upstream: str, mode: str, *, pause: float = 5.0) -> None:
        self.upstream = upstream
        self.mode = mode
        self.pause = pause
        self.port = free_port()
        self.requests = 0
        self._runner: web.AppRunner | None = None

    def url(self, repo: str) -> str:
        return f"http://127.0.0.1:{self.port}/{repo}.git"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        body = await request.read()
        if self.mode == "garbage":
            return web.Response(status=200, body=os.urandom(4096))
        await asyncio.sleep(self.pause)
        headers = {
            k: v
            for k, v in request.headers.items()
            if k in ("Content-Type", "Accept", "Git-Protocol", "Content-Encoding")
        }
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.request(
                request.method,
                self.upstream + request.path_qs,
                data=body,
                headers=headers,
            ) as answer,
        ):
            payload = await answer.read()
            kept = {
                k: v for k, v in answer.headers.items() if k in ("Content-Type", "Cache-Control")
            }
            return web.Response(status=answer.status, body=payload, headers=kept)

    async def __aenter__(self) -> GitProxy:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


@dataclass
class TwoApps:
    """App `good` on a healthy repository; `config(url)` puts app `bad` on `url`."""

    good: WorkingCopy
    config: Callable[[str], GitopsConfig]


@pytest.fixture
async def two_apps(
    kafka: RealKafka,
    cluster: ApiProxy,
    k8s: K8s,
    namespace: str,
    inventory_namespace: str,
    working_copy: Callable[..., WorkingCopy],
    tmp_path: Path,
) -> TwoApps:
    await create_namespace(k8s, namespace)
    good, bad = working_copy("good"), working_copy("bad")
    good.commit_and_push({"apps/good/cm.yaml": CM.format(name="good", v=1)})
    bad.commit_and_push({"apps/bad/cm.yaml": CM.format(name="bad", v=1)})
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")

    def make(faulty_url: str) -> GitopsConfig:
        return gitops_config(
            bootstrap=kafka.bootstrap,
            prefix=kafka.topic_prefix,
            kubeconfig=kubeconfig,
            repositories={"good": good.remote_url, "bad": faulty_url},
            apps={
                name: {
                    "repo": name,
                    "path": f"apps/{name}",
                    "cluster": "dev",
                    "namespace": namespace,
                }
                for name in ("good", "bad")
            },
            cache_dir=tmp_path / "cache",
            group_id=unique_name("git-faults"),
            inventory_namespace=inventory_namespace,
            syncer={"max_attempts": ATTEMPTS},
        )

    return TwoApps(good, make)


def _by_app(events: list[Outcome], ids: set[str]) -> dict[str, Outcome]:
    return {e.data.app: e for e in events if e.data.request_id in ids}


async def _fails_while_others_sync(
    config: GitopsConfig, good: WorkingCopy
) -> tuple[SyncFailed, float]:
    await create_topics(config)
    async with Syncer(config, syncer_id="s1", retry_max_delay=2.0) as syncer:
        sent = await publish_requests(
            config, [("bad", config.repositories["bad"].url, None), ("good", good.remote_url, None)]
        )
        ids = {r.id for r in sent}
        events = await outcomes_for(config, ids, timeout=60)
        found = _by_app(events, ids)
        bad, ok = found["bad"], found["good"]
        assert isinstance(ok, SyncSucceeded), ok
        assert isinstance(bad, SyncFailed), bad
        assert ok.time < bad.time, f"the healthy app waited for the faulty one: {bad.data}"
        # The same worker keeps serving: a new commit of the healthy app syncs.
        good.commit_and_push({"apps/good/cm.yaml": CM.format(name="good", v=2)})
        (again,) = await publish_requests(config, [("good", good.remote_url, None)])
        later = _by_app(await outcomes_for(config, {again.id}, timeout=30), {again.id})
        assert isinstance(later["good"], SyncSucceeded), later
        assert syncer._loop_task is not None and not syncer._loop_task.done()
    letters = await read_topic(
        config.kafka.bootstrap, Topics(config.kafka.topic_prefix).dead_letters, expect=1
    )
    (letter,) = [parse_dead_letter(r.value) for r in letters]
    bad_request = next(r for r in sent if r.data.app == "bad")
    assert letter.id == bad_request.id
    assert letter.dlqattempts == ATTEMPTS
    return bad, (bad.data.duration_ms or 0) / 1000


async def test_unreachable_git_server_fails_after_backoff_and_dead_letters_while_others_sync(
    two_apps: TwoApps,
) -> None:
    config = two_apps.config(f"http://127.0.0.1:{free_port()}/bad.git")  # nobody listens
    bad, took = await _fails_while_others_sync(config, two_apps.good)
    assert "connection refused" in (bad.data.error or ""), bad.data.error
    assert f"gave up after {ATTEMPTS} attempts" in (bad.data.error or "")
    assert took >= 1.0 + 2.0, f"retried without backoff ({took:.1f}s)"
    print(f"\nunreachable git server: failed after {took:.1f}s: {bad.data.error}")


async def test_git_server_answering_garbage_fails_after_backoff_and_dead_letters_while_others_sync(
    two_apps: TwoApps, git_server: GitHttpServer
) -> None:
    with in_thread(GitProxy(git_server.url, "garbage")) as proxy:
        config = two_apps.config(proxy.url("bad"))
        bad, took = await _fails_while_others_sync(config, two_apps.good)
    assert f"gave up after {ATTEMPTS} attempts" in (bad.data.error or ""), bad.data.error
    assert proxy.requests >= ATTEMPTS
    assert took >= 1.0 + 2.0, f"retried without backoff ({took:.1f}s)"
    print(f"\ngarbage git server: {proxy.requests} requests, failed after {took:.1f}s")


async def test_git_server_slower_than_git_timeout_fails_after_backoff_and_dead_letters(
    two_apps: TwoApps, git_server: GitHttpServer
) -> None:
    """5 s per answer against `syncer.git_timeout: 1s`: transient, retried, then dead-lettered."""
    with in_thread(GitProxy(git_server.url, "slow", pause=5.0)) as proxy:
        config = two_apps.config(proxy.url("bad"))
        settings = config.syncer.model_copy(update={"git_timeout": timedelta(seconds=1)})
        config = config.model_copy(update={"syncer": settings})
        bad, took = await _fails_while_others_sync(config, two_apps.good)
    assert f"gave up after {ATTEMPTS} attempts" in (bad.data.error or ""), bad.data.error
    assert took >= 1.0 + 2.0, f"retried without backoff ({took:.1f}s)"
    print(f"\nslow git server past git_timeout: failed after {took:.1f}s: {bad.data.error}")


async def test_slow_git_server_delays_only_its_own_app(
    two_apps: TwoApps, git_server: GitHttpServer
) -> None:
    good = two_apps.good
    with in_thread(GitProxy(git_server.url, "slow", pause=5.0)) as proxy:
        config = two_apps.config(proxy.url("bad"))
        await create_topics(config)
        async with Syncer(config, syncer_id="s1", retry_max_delay=2.0):
            sent = await publish_requests(
                config, [("bad", proxy.url("bad"), None), ("good", good.remote_url, None)]
            )
            started = time.monotonic()
            ids = {r.id for r in sent}
            found = _by_app(await outcomes_for(config, ids, timeout=90), ids)
            took = time.monotonic() - started
    slow, ok = found["bad"], found["good"]
    assert isinstance(ok, SyncSucceeded), ok
    assert isinstance(slow, SyncSucceeded), slow
    assert ok.time < slow.time
    assert (ok.data.duration_ms or 0) < 5000, ok.data.duration_ms
    assert (slow.data.duration_ms or 0) >= 5000, slow.data.duration_ms
    print(
        f"\nslow git server (5 s/request, {proxy.requests} requests): its app synced in "
        f"{slow.data.duration_ms} ms, the healthy app in {ok.data.duration_ms} ms ({took:.1f}s)"
    )
