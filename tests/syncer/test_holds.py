"""`gitops suspend`, `resume` and `rollback` against the real bed, across syncer restarts.

A suspended app applies nothing for webhooks, polls or drift repair (each answered
`skipped`, `suspended: <why>`); `gitops sync` refuses it unless `--force`; a rollback
applies an older commit and holds the app there until `gitops resume`, which returns it
to the branch head. The hold is kept beside the app's inventory in the cluster, so a
syncer started afterwards (a restart, or a new owner after a rebalance) keeps it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syncer.service import Syncer
from tests.syncer.conftest import K8s, configmap, namespace_yaml
from tests.syncer.trail import answer, gitops, statuses, write_config

MakeBench = Callable[..., Any]


async def test_suspend_rollback_and_resume_hold_across_restarts(
    bench: MakeBench, k8s: K8s, tmp_path: Path
) -> None:
    b = await bench()
    cm = f"/api/v1/namespaces/{b.ns}/configmaps/settings"
    first = b.repo.commit_and_push(
        {"apps/web/ns.yaml": namespace_yaml(b.ns), "apps/web/cm.yaml": configmap("settings", v="1")}
    )
    second = b.repo.commit_and_push({"apps/web/cm.yaml": configmap("settings", v="2")})
    config = ("--config", str(write_config(b.config, tmp_path / "gitops.yaml")))

    async def value() -> str:
        found = await k8s.get(cm)
        assert found is not None
        return str(found["data"]["v"])

    async with Syncer(b.config, syncer_id="s1", group_id=b.config.syncer.group_id):
        (request,) = await b.request(reason="webhook")
        assert (await answer(b, request)).type == "gitops.sync.succeeded"
        assert await value() == "2"

        code, out, err = await gitops("suspend", "web", "--reason", "freeze for the audit", *config)
        assert code == 0, err
        assert "skipped" in out and "suspended: freeze for the audit" in out, out

        third = b.repo.commit_and_push({"apps/web/cm.yaml": configmap("settings", v="3")})
        for reason in ("webhook", "poll", "drift"):
            (request,) = await b.request("web", third, reason=reason)
            outcome = await answer(b, request)
            assert outcome.type == "gitops.sync.skipped", outcome
            assert outcome.data.error == "suspended: freeze for the audit", outcome
        assert await value() == "2"

    # A new syncer process (a restart, or the next owner) reads the hold from the cluster.
    async with Syncer(b.config, syncer_id="s2", group_id=b.config.syncer.group_id):
        (request,) = await b.request(reason="webhook")
        outcome = await answer(b, request)
        assert outcome.type == "gitops.sync.skipped", outcome
        assert outcome.data.error == "suspended: freeze for the audit"
        assert await value() == "2"

        code, out, err = await gitops("apps", "--json", *config)
        assert code == 0, err
        (row,) = json.loads(out)
        assert row["state"] == "suspended: freeze for the audit", row

        code, out, err = await gitops("sync", "web", "--wait", *config)
        assert code == 2, (out, err)
        assert "app 'web' is suspended (freeze for the audit" in err, err
        assert "gitops resume web" in err and "--force" in err, err
        code, out, err = await gitops("sync", "web", "--wait", "--force", *config)
        assert code == 0, err
        assert "succeeded" in out and third[:7] in out, out
        assert await value() == "3"

        code, out, err = await gitops("rollback", "web", "--to", first, *config)
        assert code == 0, err
        assert "succeeded" in out and first[:7] in out, out
        assert await value() == "1"
        commit, _ = await k8s.inventory("web")
        assert commit == first

        (request,) = await b.request(reason="poll")
        outcome = await answer(b, request)
        assert outcome.data.error == f"suspended: rollback to {first[:12]}", outcome

    async with Syncer(b.config, syncer_id="s3", group_id=b.config.syncer.group_id):
        for reason in ("webhook", "poll", "drift"):
            (request,) = await b.request("web", third, reason=reason)
            outcome = await answer(b, request)
            assert outcome.type == "gitops.sync.skipped", outcome
            assert outcome.data.error == f"suspended: rollback to {first[:12]}", outcome
        assert await value() == "1"
        status = (await statuses(b))["web"].data
        assert status.hold is not None and status.hold.commit == first
        assert status.commit == first and status.ready
        code, out, err = await gitops("apps", *config)
        assert code == 0, err
        assert out.splitlines()[1].endswith(f"suspended: rollback to {first[:12]}"), out

        code, out, err = await gitops("resume", "web", *config)
        assert code == 0, err
        assert "succeeded" in out and third[:7] in out, out
        assert await value() == "3"
        status = (await statuses(b))["web"].data
        assert status.hold is None and status.commit == third and status.ready

        # Outside a rollback the ancestor guard holds: an older commit is never applied.
        (request,) = await b.request("web", second, reason="manual")
        outcome = await answer(b, request)
        assert outcome.type == "gitops.sync.skipped", outcome
        assert outcome.data.error is not None and "older than applied" in outcome.data.error
        assert await value() == "3"


async def test_an_app_suspended_before_its_first_sync_applies_nothing_until_resumed(
    bench: MakeBench, k8s: K8s, tmp_path: Path
) -> None:
    b = await bench()
    head = b.repo.commit_and_push(
        {"apps/web/ns.yaml": namespace_yaml(b.ns), "apps/web/cm.yaml": configmap("settings")}
    )
    config = ("--config", str(write_config(b.config, tmp_path / "gitops.yaml")))
    async with Syncer(b.config, syncer_id="s1"):
        # Nothing exists yet, not even the inventory namespace: the hold creates both.
        code, out, err = await gitops("suspend", "web", *config)
        assert code == 0, err
        assert "suspended: no reason given" in out, out
        (request,) = await b.request("web", head, reason="webhook")
        outcome = await answer(b, request)
        assert outcome.type == "gitops.sync.skipped", outcome
        assert await k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/settings") is None
        code, out, err = await gitops("resume", "web", *config)
        assert code == 0, err
        assert "succeeded" in out and head[:7] in out, out
    assert await k8s.get(f"/api/v1/namespaces/{b.ns}/configmaps/settings") is not None
    commit, _ = await k8s.inventory("web")
    assert commit == head
