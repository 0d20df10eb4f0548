"""Hooks on the real API server: kwok runs the Jobs' pods to completion, the Job
controller completes (or fails) the Jobs, and the engine orders the sync around them."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.events import ObjectResult
from syncer.errors import PermanentSyncError
from tests.engine.conftest import EngineBench
from tests.engine.manifests import configmap, deployment, job
from tests.support.k8s import create_namespace


def steps(objects: list[ObjectResult]) -> list[tuple[str, str, str | None]]:
    return [(f"{o.kind}/{o.name}", o.action, o.phase) for o in objects]


async def _job(b: EngineBench, name: str) -> dict[str, Any] | None:
    return await b.k8s.get(f"/apis/batch/v1/namespaces/{b.ns}/jobs/{name}")


def _complete(job_obj: dict[str, Any] | None) -> bool:
    conditions = ((job_obj or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Complete" and c["status"] == "True" for c in conditions)


async def test_pre_sync_runs_before_the_first_write_and_post_sync_after_the_app_is_healthy(
    engine_bench: EngineBench,
) -> None:
    b = engine_bench
    await create_namespace(b.k8s, b.ns)
    files = {
        "migrate.yaml": job("migrate", hook="pre-sync"),
        "app.yaml": deployment("app"),
        "settings.yaml": configmap("settings"),
        "notify.yaml": job("notify", hook="post-sync"),
    }
    result = await b.sync(files)

    assert steps(result.objects) == [
        ("Job/migrate", "created", "pre-sync"),
        ("ConfigMap/settings", "created", "sync"),
        ("Deployment/app", "created", "sync"),
        ("Job/notify", "created", "post-sync"),
    ]
    assert result.health == "healthy"
    order = [w.name for w in b.writes() if w.verb == "patch"]
    assert order[0] == "migrate"
    assert order[-1] == "notify"
    assert _complete(await _job(b, "migrate"))
    assert _complete(await _job(b, "notify"))
    # Hooks are not app objects: not in the inventory.
    inventory = await b.inventory()
    assert {key[1] for key in inventory.entries} == {"ConfigMap", "Deployment"}


async def test_a_failed_pre_sync_hook_fails_with_its_reason_and_writes_nothing_else(
    engine_bench: EngineBench,
) -> None:
    b = engine_bench
    await create_namespace(b.k8s, b.ns)
    files = {
        "migrate.yaml": job("migrate", hook="pre-sync", fails=True),
        "app.yaml": deployment("app"),
        "settings.yaml": configmap("settings"),
        "cleanup.yaml": job("cleanup", hook="sync-failed"),
    }
    before = len(b.proxy.writes())
    with pytest.raises(PermanentSyncError) as failure:
        await b.sync(files)

    assert failure.value.message.startswith(
        f"pre-sync hook failed: Job {b.ns}/migrate: DeadlineExceeded"
    ), failure.value.message
    assert steps(failure.value.results) == [
        ("Job/migrate", "failed", "pre-sync"),
        ("Job/cleanup", "created", "sync-failed"),
    ]
    assert failure.value.results[0].error == "DeadlineExceeded"
    written = {(w.resource, w.name) for w in b.writes(before)}
    assert written == {("jobs", "migrate"), ("jobs", "cleanup")}
    assert await b.k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/settings") is None
    assert await b.k8s.get(f"/apis/apps/v1/namespaces/{b.ns}/deployments/app") is None
    assert _complete(await _job(b, "cleanup"))


async def test_a_changed_hook_job_runs_again_despite_its_immutable_spec(
    engine_bench: EngineBench,
) -> None:
    b = engine_bench
    await create_namespace(b.k8s, b.ns)
    first = await b.sync(
        {"migrate.yaml": job("migrate", hook="pre-sync"), "a.yaml": configmap("a")}
    )
    assert steps(first.objects)[0] == ("Job/migrate", "created", "pre-sync")
    old = await _job(b, "migrate")
    assert old is not None

    # A new image: the Job's pod template is immutable, so only a new Job can run it.
    second = await b.sync(
        {
            "migrate.yaml": job("migrate", hook="pre-sync", image="busybox:1.37"),
            "a.yaml": configmap("a", v="2"),
        }
    )
    assert steps(second.objects) == [
        ("Job/migrate", "created", "pre-sync"),
        ("ConfigMap/a", "configured", "sync"),
    ]
    new = await _job(b, "migrate")
    assert new is not None and _complete(new)
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    assert new["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.37"

    # The same commit again, nothing to write: the migration does not run again.
    writes = len(b.proxy.writes())
    files = {
        "migrate.yaml": job("migrate", hook="pre-sync", image="busybox:1.37"),
        "a.yaml": configmap("a", v="2"),
    }
    applied = (await b.inventory()).commit
    assert applied == second.commit
    again = await b.sync(files, commit=applied)
    assert steps(again.objects) == [("ConfigMap/a", "unchanged", "sync")]
    assert b.writes(writes) == []
    assert (await _job(b, "migrate") or {}).get("metadata", {}).get("uid") == new["metadata"]["uid"]


async def test_delete_policies_remove_the_hook_after_success_or_failure(
    engine_bench: EngineBench,
) -> None:
    b = engine_bench
    await create_namespace(b.k8s, b.ns)
    await b.sync(
        {
            "done.yaml": job("done", hook="pre-sync", policy="hook-succeeded"),
            "kept.yaml": job("kept", hook="post-sync"),
            "a.yaml": configmap("a"),
        }
    )
    assert await _job(b, "done") is None
    assert _complete(await _job(b, "kept"))

    with pytest.raises(PermanentSyncError):
        await b.sync(
            {
                "broken.yaml": job(
                    "broken", hook="pre-sync", policy="hook-failed,hook-succeeded", fails=True
                ),
                "a.yaml": configmap("a", v="2"),
            }
        )
    assert await _job(b, "broken") is None


async def test_hooks_are_never_pruned_as_app_objects(engine_bench: EngineBench) -> None:
    b = engine_bench
    await create_namespace(b.k8s, b.ns)
    await b.sync({"migrate.yaml": job("migrate", hook="pre-sync"), "a.yaml": configmap("a")})
    result = await b.sync({"b.yaml": configmap("b")})

    assert steps(result.objects) == [
        ("ConfigMap/b", "created", "sync"),
        ("ConfigMap/a", "pruned", "sync"),
    ]
    assert _complete(await _job(b, "migrate"))
