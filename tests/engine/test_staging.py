"""The staged apply engine on the real API server: CRD staging, waves, partial failure."""

from __future__ import annotations

import pytest

from schemas.events import ObjectResult
from syncer.errors import PermanentSyncError
from tests.engine.conftest import EngineBench
from tests.engine.manifests import configmap, crd, custom, deployment, namespace
from tests.support.bed import unique_name


def actions(objects: list[ObjectResult]) -> list[tuple[str, str, str | None, int | None]]:
    return [(f"{o.kind}/{o.name}", o.action, o.phase, o.wave) for o in objects]


async def test_crd_and_its_resources_in_a_new_namespace_apply_in_one_sync(
    engine_bench: EngineBench,
) -> None:
    b = engine_bench
    group = f"{unique_name('g')}.example.com"
    files = {
        "ns.yaml": namespace(b.ns),
        "crd.yaml": crd(group, "Widget", "widgets"),
        "widget.yaml": custom(group, "Widget", "w1", size=3),
        "cm.yaml": configmap("settings"),
    }
    result = await b.sync(files)

    assert actions(result.objects) == [
        (f"Namespace/{b.ns}", "created", "sync", 0),
        ("CustomResourceDefinition/widgets." + group, "created", "sync", 0),
        ("ConfigMap/settings", "created", "sync", 0),
        ("Widget/w1", "created", "sync", 0),
    ]
    widget = await b.k8s.get(f"/apis/{group}/v1/namespaces/{b.ns}/widgets/w1")
    assert widget is not None and widget["spec"] == {"size": 3}
    # The Namespace, then the CRD, then the rest: each stage after the one it needs.
    order = [w.resource for w in b.writes()]
    assert order.index("namespaces") < order.index("customresourcedefinitions")
    assert order.index("customresourcedefinitions") < order.index("widgets")

    before = len(b.proxy.writes())
    again = await b.sync(files)
    assert {o.action for o in again.objects} == {"unchanged"}
    assert b.writes(before) == []


async def test_a_custom_resource_refused_once_its_crd_exists_fails_and_keeps_the_old_commit(
    engine_bench: EngineBench,
) -> None:
    b = engine_bench
    group = f"{unique_name('g')}.example.com"
    first = await b.sync({"ns.yaml": namespace(b.ns), "cm.yaml": configmap("a")})
    applied = (await b.inventory()).commit
    assert applied == first.commit

    files = {
        "ns.yaml": namespace(b.ns),
        "cm.yaml": configmap("a"),
        "crd.yaml": crd(group, "Widget", "widgets"),
        "widget.yaml": custom(group, "Widget", "bad", size='"not a number"'),
    }
    with pytest.raises(PermanentSyncError) as failure:
        await b.sync(files)

    assert "Widget" in failure.value.message and "bad" in failure.value.message
    results = {f"{o.kind}/{o.name}": o.action for o in failure.value.results}
    assert results["Widget/bad"] == "failed"
    assert results[f"CustomResourceDefinition/widgets.{group}"] == "created"
    assert (await b.inventory()).commit == applied  # the failed commit is not recorded
    assert await b.k8s.get(f"/apis/{group}/v1/namespaces/{b.ns}/widgets/bad") is None


async def test_waves_apply_in_order_each_healthy_before_the_next(
    engine_bench: EngineBench,
) -> None:
    b = engine_bench
    files = {
        "ns.yaml": namespace(b.ns),
        "late.yaml": configmap("late", wave=5),
        "operator.yaml": deployment("operator", wave=-1),
        "app.yaml": deployment("app"),
        "first.yaml": configmap("first", wave=-1),
    }
    result = await b.sync(files)

    assert actions(result.objects) == [
        (f"Namespace/{b.ns}", "created", "sync", -1),
        ("ConfigMap/first", "created", "sync", -1),
        ("Deployment/operator", "created", "sync", -1),
        ("Deployment/app", "created", "sync", 0),
        ("ConfigMap/late", "created", "sync", 5),
    ]
    assert result.health == "healthy"
    names = [w.name for w in b.writes() if w.resource in ("deployments", "configmaps")]
    assert names.index("operator") < names.index("app") < names.index("late")
    assert names.index("first") < names.index("app")
    # The operator was ready before the app's wave was written.
    operator = await b.k8s.get(f"/apis/apps/v1/namespaces/{b.ns}/deployments/operator")
    app = await b.k8s.get(f"/apis/apps/v1/namespaces/{b.ns}/deployments/app")
    assert operator is not None and app is not None
    assert operator["metadata"]["creationTimestamp"] <= app["metadata"]["creationTimestamp"]


async def test_a_wave_that_never_becomes_healthy_stops_later_waves(
    engine_bench: EngineBench,
) -> None:
    b = engine_bench
    files = {
        "ns.yaml": namespace(b.ns),
        "operator.yaml": deployment("operator", wave=-1, schedulable=False),
        "app.yaml": deployment("app"),
        "after.yaml": configmap("after", wave=1),
    }
    with pytest.raises(PermanentSyncError) as failure:
        await b.sync(files, health_timeout=3)

    message = failure.value.message
    assert message.startswith("wave -1 is progressing, later waves were not applied"), message
    assert f"Deployment {b.ns}/operator" in message
    written = {w.name for w in b.writes()}
    assert "operator" in written
    assert "app" not in written and "after" not in written
    assert await b.k8s.get(f"/apis/apps/v1/namespaces/{b.ns}/deployments/app") is None
    assert (await b.inventory()).commit is None


QUOTA = """apiVersion: v1
kind: ResourceQuota
metadata:
  name: no-configmaps
spec:
  hard: {count/configmaps: "0"}
"""


async def test_a_write_refused_in_a_later_wave_fails_listing_what_was_done(
    engine_bench: EngineBench,
) -> None:
    """The ConfigMap passes the dry run (no quota yet) but wave 0's quota refuses its write.

    The API server's quota admission learns of a new quota through its informer (a dry run
    just before left it a cached "no quota here"), so wave 0 also holds a Deployment whose
    health wave 1 waits for: time for the informer, as a real wave 0 would give it.
    """
    b = engine_bench
    gate = deployment("gate").replace("replicas: 1", "replicas: 0")
    files = {
        "ns.yaml": namespace(b.ns),
        "quota.yaml": QUOTA,
        "gate.yaml": gate,
        "cm.yaml": configmap("cm", wave=1),
    }
    with pytest.raises(PermanentSyncError) as failure:
        await b.sync(files)

    assert failure.value.message.startswith(f"1 object could not be applied: ConfigMap {b.ns}/cm")
    assert actions(failure.value.results) == [
        (f"Namespace/{b.ns}", "created", "sync", 0),
        ("Deployment/gate", "created", "sync", 0),
        ("ResourceQuota/no-configmaps", "created", "sync", 0),
        ("ConfigMap/cm", "failed", "sync", 1),
    ]
    assert (await b.inventory()).commit is None
    # What was written is owned all the same: removing it from Git prunes it.
    await b.sync({"ns.yaml": namespace(b.ns)})
    assert await b.k8s.get(f"/api/v1/namespaces/{b.ns}/resourcequotas/no-configmaps") is None


async def test_a_bad_wave_annotation_is_refused_naming_the_object_and_file(
    engine_bench: EngineBench,
) -> None:
    b = engine_bench
    from syncer.manifests import render
    from syncer.planning import plan

    text = configmap("cm", namespace=b.ns).replace(
        "metadata:", 'metadata:\n  annotations: {gitops.dev/sync-wave: "soon"}'
    )
    _, errors = await plan(b.cluster, b.app(), render({"apps/cm.yaml": text.encode()}))
    assert [str(e) for e in errors] == [
        f"ConfigMap {b.ns}/cm: annotation gitops.dev/sync-wave must be an integer such as "
        '"-1" or "2", got \'soon\' (at apps/cm.yaml#0 (line 1))'
    ]
