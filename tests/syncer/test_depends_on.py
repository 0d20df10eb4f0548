"""`depends_on` across two syncers, on the real bed, with periodic checks off.

`web` depends on `platform`; their keys land on partitions 0 and 3 of four, which two
group members never share, so each app has its own syncer. With no polling, the only
thing that can start `web` again after it was skipped is `platform`'s status record
on the app-status topic, read by `web`'s syncer: the trail shows the skip, the request
`web`'s syncer publishes (reason `dependency`) right after `platform` became ready, and
the sync it led to. Then a change to one app of the healthy pair applies that app only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from schemas.events import SyncRequested, SyncSkipped, SyncSucceeded
from syncer.ownership import partition_of
from syncer.service import Syncer
from tests.support.k8s import create_namespace
from tests.syncer.conftest import Bench, K8s, configmap, deployment
from tests.syncer.trail import answer, statuses, trail

MakeBench = Callable[..., Any]


async def both_assigned(syncers: list[Syncer], partitions: int, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = [s.ownership.partitions if s.ownership else frozenset() for s in syncers]
        if all(held) and sum(map(len, held)) == partitions:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"partitions not shared out within {timeout}s")


async def requests_for(b: Bench, app: str) -> list[SyncRequested]:
    return [
        e
        for e in await trail(b, b.topics.sync_requests)
        if isinstance(e, SyncRequested) and e.data.app == app
    ]


async def wait_request(b: Bench, app: str, after: int, timeout: float = 30.0) -> SyncRequested:
    """The first request for `app` beyond the `after` already seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await requests_for(b, app)
        if len(found) > after:
            return found[after]
        await asyncio.sleep(0.2)
    raise AssertionError(f"no new request for {app} within {timeout}s")


async def test_an_app_waits_for_its_dependency_on_another_syncer_then_proceeds(
    bench: MakeBench, k8s: K8s, tmp_path: Path, namespace: str
) -> None:
    assert partition_of("platform", 4) == 3 and partition_of("web", 4) == 0
    common = {"repo": "platform", "cluster": "dev", "namespace": namespace}
    apps = {
        "platform": {**common, "path": "apps/platform"},
        "web": {**common, "path": "apps/web", "depends_on": ["platform"]},
    }
    b = await bench(apps=apps, syncer={"health_timeout": "30s"})
    await create_namespace(k8s, b.ns)
    b.repo.commit_and_push(
        {
            "apps/platform/cm.yaml": configmap("Not_A_Valid_Name"),  # refused by the server
            "apps/web/cm.yaml": configmap("web-settings", v="1"),
        }
    )
    async with AsyncExitStack() as stack:
        syncers = []
        for name in ("s1", "s2"):
            raw = b.config.syncer.model_copy(update={"cache_dir": str(tmp_path / name)})
            config = b.config.model_copy(update={"syncer": raw})
            syncers.append(await stack.enter_async_context(Syncer(config, syncer_id=name)))
        await both_assigned(syncers, 4)
        owner = {
            app: next(s.syncer_id for s in syncers if s.ownership and s.ownership.owns(app))
            for app in apps
        }
        assert owner["platform"] != owner["web"], owner

        # Nothing is known about platform yet: web waits, and asks platform for a sync once.
        (first,) = await b.request("web", reason="webhook")
        skipped = await answer(b, first)
        assert isinstance(skipped, SyncSkipped) and skipped.data.error == "waiting for platform"
        asked = await wait_request(b, "platform", 0)
        assert asked.data.reason == "dependency" and asked.source.endswith(owner["web"])
        failed = await answer(b, asked)
        assert failed.type == "gitops.sync.failed" and failed.source.endswith(owner["platform"])
        await asyncio.sleep(3.0)  # platform is not ready: web stays where it is
        assert len(await requests_for(b, "web")) == 1
        assert await k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/web-settings") is None
        assert (await statuses(b))["web"].data.waiting_for == {"platform": None}

        fixed = b.repo.commit_and_push(
            {
                "apps/platform/cm.yaml": configmap("platform-settings"),
                "apps/platform/deploy.yaml": deployment("platform-api"),
            }
        )
        (fix,) = await b.request("platform", fixed, reason="webhook")
        ready = await answer(b, fix)
        assert isinstance(ready, SyncSucceeded) and ready.data.health == "healthy", ready
        again = await wait_request(b, "web", 1)
        assert again.data.reason == "dependency" and again.source.endswith(owner["web"])
        delay = (again.time - ready.time).total_seconds()
        assert 0 <= delay < 5.0, delay  # driven by platform's status record, not by a poll
        synced = await answer(b, again)
        assert isinstance(synced, SyncSucceeded) and synced.data.commit == fixed, synced
        assert synced.source.endswith(owner["web"])
        assert await k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/web-settings") is not None
        web_status = (await statuses(b))["web"].data
        assert web_status.ready and web_status.commit == fixed and not web_status.waiting_for

        # A change to web only, announced for both apps as a push would be: platform is
        # not applied again (its path did not change), web is.
        platform_requests = len(await requests_for(b, "platform"))
        web_change = b.repo.commit_and_push({"apps/web/cm.yaml": configmap("web-settings", v="2")})
        (p_req,) = await b.request("platform", web_change, before=fixed, reason="webhook")
        (w_req,) = await b.request("web", web_change, before=fixed, reason="webhook")
        p_out = await answer(b, p_req)
        assert isinstance(p_out, SyncSkipped), p_out
        assert p_out.data.error == "no change under apps/platform"
        web_synced = await _applied(b, "web", web_change, since=w_req)
        assert web_synced.source.endswith(owner["web"])

        # A change to platform only: platform applies; web is not applied again.
        platform_change = b.repo.commit_and_push(
            {"apps/platform/cm.yaml": configmap("platform-settings", v="2")}
        )
        (p_req,) = await b.request("platform", platform_change, before=web_change, reason="webhook")
        (w_req,) = await b.request("web", platform_change, before=web_change, reason="webhook")
        assert isinstance(await answer(b, p_req), SyncSucceeded)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            commit, _ = await k8s.inventory("web")
            if commit == platform_change:
                break
            await asyncio.sleep(0.2)
        assert commit == platform_change
        events = await trail(b, b.topics.sync_events)
        later = [e for e in events if e.time > w_req.time and getattr(e.data, "app", "") == "web"]
        assert not [e for e in later if isinstance(e, SyncSucceeded)], later
        # platform was only ever requested by its own pushes here (no re-walk of the chain)
        assert len(await requests_for(b, "platform")) == platform_requests + 2


async def _applied(b: Bench, app: str, commit: str, *, since: SyncRequested) -> SyncSucceeded:
    """The success of `app` at `commit`, whether its request ran at once or after a wait."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for event in await trail(b, b.topics.sync_events):
            if (
                isinstance(event, SyncSucceeded)
                and event.data.app == app
                and event.data.commit == commit
                and event.time > since.time
            ):
                return event
        await asyncio.sleep(0.2)
    raise AssertionError(f"{app} was not applied at {commit[:12]} within 60s")


async def test_a_waiting_app_is_started_by_its_next_owner_after_its_syncer_stops(
    bench: MakeBench, k8s: K8s, tmp_path: Path, namespace: str
) -> None:
    common = {"repo": "platform", "cluster": "dev", "namespace": namespace}
    apps = {
        "platform": {**common, "path": "apps/platform"},
        "web": {**common, "path": "apps/web", "depends_on": ["platform"]},
    }
    b = await bench(apps=apps)
    await create_namespace(k8s, b.ns)
    b.repo.commit_and_push(
        {
            "apps/platform/cm.yaml": configmap("Not_A_Valid_Name"),
            "apps/web/cm.yaml": configmap("web-settings"),
        }
    )
    async with AsyncExitStack() as stack:
        syncers: dict[str, Syncer] = {}
        for name in ("s1", "s2"):
            raw = b.config.syncer.model_copy(update={"cache_dir": str(tmp_path / name)})
            config = b.config.model_copy(update={"syncer": raw})
            syncers[name] = await stack.enter_async_context(Syncer(config, syncer_id=name))
        await both_assigned(list(syncers.values()), 4)
        web_owner = next(n for n, s in syncers.items() if s.ownership and s.ownership.owns("web"))
        survivor = "s1" if web_owner == "s2" else "s2"
        (platform_request,) = await b.request("platform", reason="webhook")
        assert (await answer(b, platform_request)).type == "gitops.sync.failed"
        (first,) = await b.request("web", reason="webhook")
        skipped = await answer(b, first)
        assert skipped.data.error == "waiting for platform", skipped

        # web's syncer leaves: its waiting request was answered and committed, so only
        # web's status on the app-status topic tells the next owner that web waits.
        await syncers[web_owner].stop()
        await both_assigned([syncers[survivor]], 4)
        fixed = b.repo.commit_and_push({"apps/platform/cm.yaml": configmap("platform-settings")})
        (fix,) = await b.request("platform", fixed, reason="webhook")
        assert (await answer(b, fix)).type == "gitops.sync.succeeded"
        again = await wait_request(b, "web", 1)
        assert again.data.reason == "dependency" and again.source.endswith(survivor), again
        synced = await answer(b, again)
        assert isinstance(synced, SyncSucceeded) and synced.source.endswith(survivor), synced
        assert await k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/web-settings") is not None
