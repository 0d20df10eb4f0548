"""The issue's scenario end to end: a push, the syncer through Kafka, the real cluster.

One commit carries a migration Job (pre-sync), a CRD and its operator Deployment (wave
-1), and a custom resource with the app's Deployment (wave 0). It syncs in that order,
every step is in the outcome event, in `gitops events tail` and in `gitops apps`; a
commit whose migration fails writes nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gitops.operate import events_tail, list_apps
from schemas.events import SyncFailed, SyncSucceeded
from syncer.service import Syncer
from tests.engine.manifests import crd, custom, deployment, job, namespace
from tests.support.apiproxy import ApiProxy
from tests.support.bed import unique_name
from tests.support.k8s import K8s, create_namespace

MakeBench = Callable[..., Any]


def _release(ns: str, group: str, *, migration_fails: bool = False) -> dict[str, str | None]:
    return {
        "apps/web/ns.yaml": namespace(ns),
        "apps/web/migrate.yaml": job("migrate", hook="pre-sync", fails=migration_fails),
        "apps/web/crd.yaml": crd(group, "Widget", "widgets", wave=-1),
        "apps/web/operator.yaml": deployment("operator", wave=-1),
        "apps/web/widget.yaml": custom(group, "Widget", "shop"),
        "apps/web/app.yaml": deployment("app"),
    }


async def test_migration_then_crd_and_operator_then_custom_resource_and_app(
    bench: MakeBench, k8s: K8s, cluster: ApiProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    b = await bench(syncer={"health_timeout": "60s"})
    group = f"{unique_name('g')}.example.com"
    sha = b.repo.commit_and_push(_release(b.ns, group))
    async with Syncer(b.config, syncer_id="s1"):
        await b.request("web")
        (event,) = await b.outcomes(1, timeout=120)

    assert isinstance(event, SyncSucceeded), event
    assert event.data.commit == sha
    assert [(f"{o.kind}/{o.name}", o.action, o.phase, o.wave) for o in event.data.objects] == [
        (f"Namespace/{b.ns}", "created", "sync", -1),
        ("Job/migrate", "created", "pre-sync", 0),
        (f"CustomResourceDefinition/widgets.{group}", "created", "sync", -1),
        ("Deployment/operator", "created", "sync", -1),
        ("Deployment/app", "created", "sync", 0),
        ("Widget/shop", "created", "sync", 0),
    ]
    assert event.data.health == "healthy"
    # What reached the server, in order: migration, CRD, operator, then the wave-0 objects.
    order = [(w.resource, w.name) for w in cluster.writes() if w.verb == "patch"]
    position = {item: i for i, item in enumerate(order)}
    assert (
        position[("jobs", "migrate")] < position[("customresourcedefinitions", f"widgets.{group}")]
    )
    assert (
        position[("customresourcedefinitions", f"widgets.{group}")]
        < position[("deployments", "operator")]
    )
    assert position[("deployments", "operator")] < position[("deployments", "app")]
    assert position[("deployments", "operator")] < position[("widgets", "shop")]
    migrate = await k8s.get(f"/apis/batch/v1/namespaces/{b.ns}/jobs/migrate")
    assert migrate is not None and migrate["status"].get("succeeded") == 1

    capsys.readouterr()
    await events_tail(b.config, app="web", type_=None, since=None, follow=False, as_json=False)
    tail = capsys.readouterr().out
    assert "[pre-sync Job/migrate created; wave -1 created 3; wave 0 created 2]" in tail, tail
    await list_apps(b.config, as_json=False)
    table = capsys.readouterr().out
    assert "pre-sync, wave -1, wave 0" in table.splitlines()[1], table


async def test_a_failing_migration_fails_the_sync_with_its_reason_and_writes_nothing_else(
    bench: MakeBench, k8s: K8s, cluster: ApiProxy
) -> None:
    b = await bench(syncer={"health_timeout": "60s"})
    group = f"{unique_name('g')}.example.com"
    await create_namespace(k8s, b.ns)
    release = _release(b.ns, group, migration_fails=True)
    del release["apps/web/ns.yaml"]  # the namespace exists: the commit has nothing else to do
    b.repo.commit_and_push(release)
    async with Syncer(b.config, syncer_id="s1"):
        await b.request("web")
        (event,) = await b.outcomes(1, timeout=120)

    assert isinstance(event, SyncFailed), event
    assert event.data.error == f"pre-sync hook failed: Job {b.ns}/migrate: DeadlineExceeded"
    assert [(f"{o.kind}/{o.name}", o.action, o.phase) for o in event.data.objects] == [
        ("Job/migrate", "failed", "pre-sync"),
    ]
    app_writes = {
        (w.resource, w.name)
        for w in cluster.writes()
        if not w.name.startswith("gitops-inventory-") and w.resource != "namespaces"
    }
    assert app_writes == {("jobs", "migrate")}
    assert (
        await k8s.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}")
        is None
    )
    assert await k8s.get(f"/apis/apps/v1/namespaces/{b.ns}/deployments/operator") is None
