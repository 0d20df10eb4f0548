"""Apps generated from a monorepo's directories live like configured ones: created when a
push adds a directory, deleted when one removes it, from the webhook and from the poll."""

from __future__ import annotations

import json

from schemas.events import AppSetFailed, SyncFailed, SyncSucceeded
from tests.appsets.conftest import MakeMonorepo, eventually, service
from tests.support.kafka import read_topic
from tests.syncer.trail import gitops


def actions(event: SyncSucceeded) -> dict[str, str]:
    return {f"{o.kind}/{o.name}": o.action for o in event.data.objects}


async def test_each_matching_directory_is_an_app_that_syncs_and_the_cli_names_its_set(
    monorepo: MakeMonorepo,
) -> None:
    world = await monorepo(services=["a", "b", "_template"])
    async with world.syncers():
        for name in ("a", "b"):
            outcome = await world.outcome(f"svc-{name}")
            assert isinstance(outcome, SyncSucceeded), outcome.data.error
            assert actions(outcome) == {f"ConfigMap/{name}-settings": "created"}
        assert set(await world.configmaps()) >= {"a-settings", "b-settings"}
        assert "_template-settings" not in await world.configmaps()

        records = await read_topic(world.bootstrap, world.topics.generated_apps, timeout=5)
        assert sorted(r.key or b"" for r in records) == [b"svc-a", b"svc-b"]

        # The commands run beside the syncers in this event loop: awaited, never blocking it.
        config = ("--config", str(world.config_path))
        code, out, err = await gitops("apps", "--json", *config)
        assert code == 0, err
        rows = {row["app"]: row for row in json.loads(out)}
        assert rows["svc-a"]["set"] == "svc"
        assert rows["svc-a"]["path"] == "services/a"
        assert rows["svc-b"]["last_outcome"] == "succeeded"

        code, out, err = await gitops("sync", "svc-a", "--wait", *config)
        assert code == 0, out + err
        requested, result = out.splitlines()
        assert requested.startswith("requested sync of svc-a (branch head), id "), out
        assert result.split()[1:4] == ["svc-a", world.repo.head()[:7], "succeeded"], out


async def test_a_webhook_adding_a_directory_creates_and_syncs_its_app(
    monorepo: MakeMonorepo,
) -> None:
    world = await monorepo()
    async with world.syncers(), world.receiver() as receiver:
        await world.outcome("svc-b")
        before = world.repo.head()
        after = world.push(service("c"), "add c")
        answer = await world.webhook(receiver, before, after)
        assert answer["apps"] == []  # nobody knew svc-c yet: its set's owner creates it
        outcome = await world.outcome("svc-c", commit=after, timeout=30)
        assert isinstance(outcome, SyncSucceeded), outcome.data.error
        assert outcome.data.reason == "webhook"
        assert outcome.data.delivery_id is not None
        assert "c-settings" in await world.configmaps()

        # The receiver learned the new app from what the syncers published: a change
        # under services/c now names it like any configured app.
        changed = world.push(service("c", s="changed"), "change c")

        async def routed() -> dict[str, object] | None:
            answer = await world.webhook(receiver, after, changed)
            return answer if answer["apps"] == ["svc-c"] else None

        await eventually(routed, timeout=10)
        changed_outcome = await world.outcome("svc-c", commit=changed)
        assert isinstance(changed_outcome, SyncSucceeded)
        assert (await world.configmaps())["c-settings"] == {"s": "changed"}


async def test_a_webhook_removing_a_directory_prunes_its_app_and_inventory(
    monorepo: MakeMonorepo,
) -> None:
    world = await monorepo()
    async with world.syncers(), world.receiver() as receiver:
        await world.outcome("svc-b")
        assert await world.inventory_exists("svc-b")
        before = world.repo.head()
        after = world.push({"services/b/settings.yaml": None}, "remove b")
        await world.webhook(receiver, before, after)

        async def pruned() -> SyncSucceeded | None:
            for event in await world.events():
                if (
                    isinstance(event, SyncSucceeded)
                    and event.data.app == "svc-b"
                    and event.data.reason == "removed"
                ):
                    return event
            return None

        removal = await eventually(pruned, timeout=30)
        assert actions(removal) == {"ConfigMap/b-settings": "pruned"}
        assert "b-settings" not in await world.configmaps()
        assert not await world.inventory_exists("svc-b")
        assert "a-settings" in await world.configmaps()
        # The receiver's own request for svc-b (the push touched its path) is not a failure.
        failures = [e for e in await world.events() if isinstance(e, SyncFailed)]
        assert failures == []
        records = await read_topic(world.bootstrap, world.topics.generated_apps, timeout=5)
        removed = [r for r in records if r.key == b"svc-b"][-1]
        assert b'"gitops.app.removed"' in removed.value


async def test_without_prune_the_poll_removes_the_app_and_reports_its_objects_orphaned(
    monorepo: MakeMonorepo,
) -> None:
    world = await monorepo(app_set={"prune": False, "interval": "1s"})
    async with world.syncers():
        await world.outcome("svc-b")
        world.push({"services/b/settings.yaml": None}, "remove b")

        async def removed() -> SyncSucceeded | None:
            for event in await world.events():
                if isinstance(event, SyncSucceeded) and event.data.reason == "removed":
                    return event
            return None

        removal = await eventually(removed, timeout=30)
        assert removal.data.app == "svc-b"
        assert actions(removal) == {"ConfigMap/b-settings": "orphaned"}
        assert "orphaned" in (removal.data.error or "")
        assert "b-settings" in await world.configmaps(), "left in place"
        assert not await world.inventory_exists("svc-b"), "and owned by nobody"


async def test_a_renamed_directory_is_a_removal_and_an_addition_that_keeps_the_objects(
    monorepo: MakeMonorepo,
) -> None:
    world = await monorepo(app_set={"interval": "1s"})
    async with world.syncers():
        await world.outcome("svc-b")
        after = world.rename("services/b", "services/bee")
        created = await world.outcome("svc-bee", commit=after, timeout=30)
        assert isinstance(created, SyncSucceeded), created.data.error
        assert not await world.inventory_exists("svc-b")
        events = await world.events()
        removal = next(
            e for e in events if isinstance(e, SyncSucceeded) and e.data.reason == "removed"
        )
        assert removal.data.app == "svc-b"
        assert removal.time < created.time, "removed before the new app ran"
        # The ConfigMap moved from the old app to the new one: pruned, then created again.
        assert "b-settings" in await world.configmaps()
        _, owned = await world.k8s.inventory("svc-bee")
        assert owned == {("ConfigMap", world.ns, "b-settings")}


async def test_a_name_clash_with_a_configured_app_is_reported_naming_both(
    monorepo: MakeMonorepo,
) -> None:
    configured = {"repo": "mono", "path": "services/a", "cluster": "dev", "namespace": "default"}
    world = await monorepo(apps={"svc-a": configured})
    async with world.syncers() as [syncer]:
        await world.outcome("svc-b")

        async def reported() -> AppSetFailed | None:
            found = [e for e in await world.events() if isinstance(e, AppSetFailed)]
            return found[0] if found else None

        problem = await eventually(reported, timeout=30)
        assert "app 'svc-a' generated by app_sets.svc from services/a" in problem.data.error
        assert "clashes with apps.svc-a" in problem.data.error
        assert syncer.catalog is not None
        assert syncer.catalog.apps["svc-a"] == world.config.apps["svc-a"]
        assert syncer.catalog.origin("svc-a") is None
        records = await read_topic(world.bootstrap, world.topics.generated_apps, timeout=5)
        assert b"svc-a" not in {r.key for r in records}


async def test_a_name_clash_between_two_sets_is_reported_naming_both(
    monorepo: MakeMonorepo, namespace: str
) -> None:
    template = {"cluster": "dev", "namespace": namespace, "interval": "1h"}
    sets = {
        "svc": {"repo": "mono", "directories": {"include": ["services/*"]}, "template": template},
        "more": {
            "repo": "mono",
            "directories": {"include": ["more/*"]},
            "template": {**template, "name": "svc-{{ basename }}"},
        },
    }
    world = await monorepo(app_sets=sets, files={"more/a/x.yaml": "apiVersion: v1\n"})
    async with world.syncers():

        async def reported() -> AppSetFailed | None:
            found = [e for e in await world.events() if isinstance(e, AppSetFailed)]
            return found[0] if found else None

        problem = await eventually(reported, timeout=30)
        error = problem.data.error
        assert "app 'svc-a'" in error
        assert "app_sets.svc" in error and "app_sets.more" in error
        assert "services/a" in error and "more/a" in error


async def test_a_template_error_in_a_generated_file_is_reported_with_the_file_and_key(
    monorepo: MakeMonorepo, namespace: str
) -> None:
    files_set = {
        "repo": "mono",
        "files": {"include": ["teams/*/app.yaml"]},
        "template": {
            "cluster": "dev",
            "namespace": namespace,
            "path": "services/{{ service }}",
            "name": "team-{{ basename }}",
        },
    }
    world = await monorepo(
        app_sets={"teams": files_set},
        files={"teams/red/app.yaml": "service: a\n", "teams/blue/app.yaml": "owner: blue\n"},
    )
    async with world.syncers():
        outcome = await world.outcome("team-red")
        assert isinstance(outcome, SyncSucceeded), outcome.data.error
        assert actions(outcome) == {"ConfigMap/a-settings": "created"}

        async def reported() -> AppSetFailed | None:
            found = [e for e in await world.events() if isinstance(e, AppSetFailed)]
            return found[0] if found else None

        problem = await eventually(reported, timeout=30)
        assert "app_sets.teams.template.path" in problem.data.error
        assert "'service' is undefined" in problem.data.error
        assert "teams/blue/app.yaml" in problem.data.error


async def test_every_syncer_serves_the_same_generated_apps(monorepo: MakeMonorepo) -> None:
    world = await monorepo(app_set={"interval": "1s"})
    async with world.syncers(2) as members:
        await world.outcome("svc-b")
        after = world.push(service("c"), "add c")
        await world.outcome("svc-c", commit=after)

        def served(member: object) -> dict[str, tuple[str, str]] | None:
            catalog = getattr(member, "catalog", None)
            if catalog is None:
                return None
            return {n: (d.source, d.settings.path) for n, d in catalog.generated.items()}

        async def agreed() -> bool:
            views = [served(m) for m in members]
            return views[0] == views[1] and set(views[0] or {}) == {"svc-a", "svc-b", "svc-c"}

        assert await eventually(agreed, timeout=20)
        for member in members:
            assert member.catalog is not None
            assert set(member.catalog.apps) == {"svc-a", "svc-b", "svc-c"}

        async def one_owner() -> bool:
            owners = [m for m in members if m.generator and m.generator.generator.generated_at]
            return len(owners) == 1

        assert await eventually(one_owner, timeout=20), "one member generates the set"
        records = await read_topic(world.bootstrap, world.topics.generated_apps, timeout=5)
        generated = [r for r in records if b'"gitops.app.generated"' in r.value]
        assert len(generated) == 3, "each app defined once, by the set's owner"
