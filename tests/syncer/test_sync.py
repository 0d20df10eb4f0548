"""A push becomes objects in the cluster, and the sync is reported on Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from schemas.events import SyncFailed, SyncSkipped, SyncSucceeded
from syncer.service import Syncer
from tests.support.k8s import create_namespace
from tests.syncer.conftest import K8s, configmap, deployment, namespace_yaml

MakeBench = Callable[..., Any]


def actions(event: Any) -> dict[str, str]:
    return {f"{o.kind}/{o.name}": o.action for o in event.data.objects}


async def test_pushed_objects_exist_with_our_field_manager_and_success_lists_them(
    bench: MakeBench, k8s: K8s
) -> None:
    b = await bench()
    sha = b.repo.commit_and_push(
        {
            "apps/web/ns.yaml": namespace_yaml(b.ns),
            "apps/web/config.yaml": configmap("settings", mode="prod"),
            "apps/web/deploy.yaml": deployment("api"),
            "README.md": "not a manifest",
        }
    )
    async with Syncer(b.config, syncer_id="s1"):
        (request,) = await b.request("web")
        (event,) = await b.outcomes(1)

    assert isinstance(event, SyncSucceeded), event
    assert event.data.commit == sha
    assert event.data.request_id == request.id
    assert event.data.health == "healthy"
    assert actions(event) == {
        f"Namespace/{b.ns}": "created",
        "ConfigMap/settings": "created",
        "Deployment/api": "created",
    }
    cm = await k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/settings")
    assert cm is not None
    assert cm["data"] == {"mode": "prod"}
    managers = {m["manager"] for m in cm["metadata"]["managedFields"]}
    assert "gitops-pipeline" in managers


async def test_change_and_delete_report_configured_pruned_unchanged_across_restarts(
    bench: MakeBench, k8s: K8s
) -> None:
    b = await bench()
    b.repo.commit_and_push(
        {
            "apps/web/ns.yaml": namespace_yaml(b.ns),
            "apps/web/a.yaml": configmap("a", x="1"),
            "apps/web/b.yaml": configmap("b", x="1"),
            "apps/web/c.yaml": configmap("c", x="1"),
        }
    )
    async with Syncer(b.config, syncer_id="first"):
        await b.request("web")
        await b.outcomes(1)
    # A different syncer process: only the inventory in the cluster remembers ownership.
    sha = b.repo.commit_and_push(
        {"apps/web/a.yaml": configmap("a", x="2"), "apps/web/b.yaml": None}
    )
    async with Syncer(b.config, syncer_id="second"):
        await b.request("web")
        events = await b.outcomes(2)

    second = events[1]
    assert isinstance(second, SyncSucceeded), second
    assert second.data.commit == sha
    assert actions(second) == {
        f"Namespace/{b.ns}": "unchanged",
        "ConfigMap/a": "configured",
        "ConfigMap/b": "pruned",
        "ConfigMap/c": "unchanged",
    }
    names = await k8s.names(f"/api/v1/namespaces/{b.ns}/configmaps")
    assert "b" not in names
    assert {"a", "c"} <= set(names)


async def test_one_invalid_object_among_ten_fails_naming_it_and_writes_nothing(
    bench: MakeBench, k8s: K8s
) -> None:
    b = await bench()
    files: dict[str, str | bytes | None] = {"apps/web/ns.yaml": namespace_yaml(b.ns)}
    for i in range(9):
        files[f"apps/web/cm{i}.yaml"] = configmap(f"cm{i}")
    files["apps/web/broken.yaml"] = deployment("broken").replace("replicas: 1", "replicas: -3")
    b.repo.commit_and_push(files)
    await create_namespace(k8s, b.ns)
    async with Syncer(b.config, syncer_id="s1"):
        await b.request("web")
        (event,) = await b.outcomes(1)

    assert isinstance(event, SyncFailed), event
    assert event.data.error is not None
    assert f"Deployment {b.ns}/broken" in event.data.error
    assert actions(event) == {"Deployment/broken": "failed"}
    assert await k8s.names(f"/api/v1/namespaces/{b.ns}/configmaps") == ["kube-root-ca.crt"] or (
        await k8s.names(f"/api/v1/namespaces/{b.ns}/configmaps") == []
    )


async def test_burst_of_twenty_applies_only_the_newest_and_older_commit_is_skipped(
    bench: MakeBench, k8s: K8s
) -> None:
    b = await bench()
    first = b.repo.commit_and_push(
        {"apps/web/ns.yaml": namespace_yaml(b.ns), "apps/web/a.yaml": configmap("a", v="0")}
    )
    shas = [first]
    for i in range(1, 20):
        shas.append(b.repo.commit_and_push({"apps/web/a.yaml": configmap("a", v=str(i))}))
    for sha in shas:
        await b.request("web", sha)
    async with Syncer(b.config, syncer_id="s1"):
        events = await b.outcomes(20)
        await b.request("web", shas[3])
        events = await b.outcomes(21)

    succeeded = [e for e in events[:20] if isinstance(e, SyncSucceeded)]
    assert [e.data.commit for e in succeeded] == [shas[-1]]
    skipped = [e for e in events[:20] if isinstance(e, SyncSkipped)]
    assert len(skipped) == 19
    assert all("superseded by newer request" in (e.data.error or "") for e in skipped)
    late = events[20]
    assert isinstance(late, SyncSkipped), late
    assert late.data.error == f"commit {shas[3][:12]} is older than applied {shas[-1][:12]}"
    cm = await k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/a")
    assert cm is not None and cm["data"] == {"v": "19"}


async def test_push_that_changes_nothing_under_the_path_is_skipped(bench: MakeBench) -> None:
    b = await bench()
    before = b.repo.commit_and_push(
        {"apps/web/ns.yaml": namespace_yaml(b.ns), "apps/web/a.yaml": configmap("a")}
    )
    async with Syncer(b.config, syncer_id="s1"):
        await b.request("web", before)
        (applied,) = await b.outcomes(1)
        assert isinstance(applied, SyncSucceeded), applied
        after = b.repo.commit_and_push({"docs/readme.md": "hello"})
        await b.request("web", after, before=before)
        events = await b.outcomes(2)
    assert isinstance(events[1], SyncSkipped), events[1]
    assert events[1].data.error == "no change under apps/web"
    await asyncio.sleep(0)
