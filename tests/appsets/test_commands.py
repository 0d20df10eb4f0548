"""The operator's commands on a generated app answer as they do for a configured one:
`gitops sync --wait`, `suspend`, `rollback`, `resume` print the owner's outcome for the
app's commits, and `gitops diff` compares the app's live objects with Git."""

from __future__ import annotations

import json

from schemas.events import SyncSucceeded
from tests.appsets.conftest import MakeMonorepo, service
from tests.drift.conftest import edit
from tests.syncer.trail import gitops


async def test_sync_suspend_rollback_and_resume_of_a_generated_app(
    monorepo: MakeMonorepo,
) -> None:
    world = await monorepo(services=["a"])
    config = ("--config", str(world.config_path))
    first = world.repo.head()

    async def setting() -> str:
        return (await world.configmaps())["a-settings"]["s"]

    async with world.syncers():
        outcome = await world.outcome("svc-a", commit=first)
        assert isinstance(outcome, SyncSucceeded), outcome.data.error
        # The set polls hourly: only the command brings the new commit in.
        second = world.push(service("a", s="two"), "change a")

        code, out, err = await gitops("sync", "svc-a", "--wait", *config)
        assert code == 0, out + err
        assert out.splitlines()[1].split()[1:5] == ["svc-a", second[:7], "succeeded", "configured"]
        assert await setting() == "two"

        code, out, err = await gitops("rollback", "svc-a", "--to", first, *config)
        assert code == 0, out + err
        assert out.splitlines()[0].startswith(f"requested rollback of svc-a to {first[:7]}"), out
        assert out.splitlines()[1].split()[1:4] == ["svc-a", first[:7], "succeeded"], out
        assert await setting() == "a"

        code, out, err = await gitops("sync", "svc-a", "--wait", *config)
        assert code == 2, out + err
        assert f"app 'svc-a' is suspended (rollback to {first[:12]}" in err, err

        code, out, err = await gitops("apps", "--json", *config)
        assert code == 0, err
        (row,) = json.loads(out)
        assert (row["app"], row["set"]) == ("svc-a", "svc"), row
        assert row["state"] == f"suspended: rollback to {first[:12]}", row

        code, out, err = await gitops("resume", "svc-a", *config)
        assert code == 0, out + err
        assert out.splitlines()[1].split()[1:4] == ["svc-a", second[:7], "succeeded"], out
        assert await setting() == "two"

        code, out, err = await gitops("suspend", "svc-a", "--reason", "audit", *config)
        assert code == 0, out + err
        assert out.splitlines()[1].split()[1:2] == ["svc-a"], out
        assert "skipped" in out and "suspended: audit" in out, out
        third = world.push(service("a", s="three"), "change a again")
        code, out, err = await gitops("sync", "svc-a", "--wait", "--force", *config)
        assert code == 0, out + err
        assert out.splitlines()[1].split()[1:4] == ["svc-a", third[:7], "succeeded"], out
        assert await setting() == "three"


async def test_diff_of_a_generated_app_names_its_drifted_field(monorepo: MakeMonorepo) -> None:
    world = await monorepo(services=["a"])
    config = ("--config", str(world.config_path))
    head = world.repo.head()
    async with world.syncers():
        outcome = await world.outcome("svc-a", commit=head)
        assert isinstance(outcome, SyncSucceeded), outcome.data.error

    code, out, err = await gitops("diff", "svc-a", *config)
    assert (code, err) == (0, ""), out
    assert out.splitlines()[0] == f"app svc-a: cluster dev, commit {head[:12]} (last applied)"
    assert "no drift: 1 objects match Git" in out, out

    path = f"/api/v1/namespaces/{world.ns}/configmaps/a-settings"
    await edit(world.k8s, path, {"data": {"s": "edited"}})
    code, out, err = await gitops("diff", "svc-a", *config)
    assert code == 1, out + err
    assert f"ConfigMap {world.ns}/a-settings: changed data.s" in out, out
    assert "1 of 1 objects differ from Git" in out, out
