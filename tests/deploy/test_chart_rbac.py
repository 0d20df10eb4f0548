"""The chart's impersonation mode grants the syncer the right to impersonate ServiceAccounts
and its own bookkeeping, and nothing more: installed on the bed's kube-apiserver (RBAC
authorization) and asked with `kubectl auth can-i --as`, as an auditor would.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas import AppConfig, ClusterConfig
from schemas.events import Refusal
from schemas.types import CommitSha
from syncer.desired import planned
from syncer.errors import PermanentSyncError
from syncer.inventory import InventoryStore
from syncer.kube import Cluster, Forbidden
from syncer.manifests import render as render_manifests
from syncer.reconcile import ReconcileOptions, Reconciler, ReconcileResult
from syncer.tenancy import service_account
from tests.deploy.rendering import NOTIFYING, Obj, render
from tests.support.bed import RealCluster, unique_name

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


class Kubectl:
    """kubectl 1.37 as the bed's admin, in a HOME of the test's own."""

    def __init__(self, kubeconfig: Path, home: Path) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home)}

    async def run(self, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            "kubectl",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else b""), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def ok(self, *args: str, stdin: str | None = None) -> str:
        code, out, err = await self.run(*args, stdin=stdin)
        assert code == 0, f"kubectl {' '.join(args)}: {err}"
        return out

    async def install(self, objects: list[Obj], namespace: str) -> None:
        """Apply the chart's objects as `helm install -n NAMESPACE` would place them."""
        for obj in objects:
            if not obj["kind"].startswith("Cluster"):
                obj["metadata"].setdefault("namespace", namespace)
        await self.ok("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(objects))

    async def can(self, user: str, verb: str, resource: str, namespace: str | None) -> bool:
        where = [f"--namespace={namespace}"] if namespace else []
        code, out, err = await self.run("auth", "can-i", verb, resource, *where, f"--as={user}")
        assert code in (0, 1), err
        return out.strip() == "yes"

    async def rights(self, user: str, namespace: str) -> set[tuple[str, str, str]]:
        """(resource, resource names, verbs) rows of `kubectl auth can-i --list`."""
        out = await self.ok("auth", "can-i", "--list", f"--namespace={namespace}", f"--as={user}")
        header, *lines = out.splitlines()
        # Columns: Resources, Non-Resource URLs, Resource Names, Verbs, aligned by the header.
        names_at, verbs_at = header.index("Resource Names"), header.index("Verbs")
        rows = set()
        for line in lines:
            resource = line[: header.index("Non-Resource URLs")].strip()
            if resource:
                rows.add((resource, line[names_at:verbs_at].strip(), line[verbs_at:].strip()))
        return rows


@dataclass
class Installed:
    """The chart's RBAC objects installed on the bed, in namespaces of the test's own."""

    kubectl: Kubectl
    release_ns: str
    state_ns: str
    """`config.syncer.inventory_namespace`."""
    team_ns: str
    other_ns: str
    syncer: str
    """The syncer's user name, `system:serviceaccount:<release_ns>:<name>`."""
    syncer_name: str


@pytest.fixture
async def install(
    real_cluster: RealCluster, tmp_path: Path
) -> AsyncIterator[Callable[[dict[str, Any]], Awaitable[Installed]]]:
    """`await install(rbac_values)`: the chart rendered with them and its RBAC applied."""
    kubectl = Kubectl(real_cluster.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path)
    release = unique_name("rel")
    namespaces = [unique_name(p) for p in ("gitops", "state", "team", "other")]
    objects: list[Obj] = []

    async def make(rbac: dict[str, Any]) -> Installed:
        release_ns, state_ns, team_ns, other_ns = namespaces
        for ns in namespaces:
            await kubectl.ok("create", "namespace", ns)
        values = {
            "rbac": {"mode": "impersonate", **rbac},
            "config": {"syncer": {"inventory_namespace": state_ns}},
        }
        rendered = render(
            json.loads(json.dumps(values).replace("TEAM_NS", team_ns)),
            release=release,
            namespace=release_ns,
        )
        objects.extend(o for o in rendered.objects if o["kind"] in RBAC_KINDS)
        await kubectl.install(objects, release_ns)
        name = rendered.one("ServiceAccount", "syncer")["metadata"]["name"]
        return Installed(
            kubectl,
            release_ns,
            state_ns,
            team_ns,
            other_ns,
            f"system:serviceaccount:{release_ns}:{name}",
            name,
        )

    yield make
    for obj in objects:
        if obj["kind"].startswith("Cluster"):
            await kubectl.run("delete", obj["kind"], obj["metadata"]["name"])
    for ns in namespaces:
        await kubectl.run("delete", "namespace", ns, "--wait=false")


async def test_impersonation_mode_lets_the_syncer_impersonate_and_nothing_more(
    install: Callable[[dict[str, Any]], Awaitable[Installed]],
) -> None:
    chart = await install({"decryptionSecrets": ["sops-keys"]})
    kubectl, state_ns, team_ns = chart.kubectl, chart.state_ns, chart.team_ns
    # A ServiceAccount bound to nothing: what every authenticated identity may do anyway.
    await kubectl.ok("create", "serviceaccount", "nobody", f"--namespace={chart.release_ns}")
    nobody = f"system:serviceaccount:{chart.release_ns}:nobody"
    allowed = {
        ("impersonate", "serviceaccounts", team_ns),
        ("impersonate", "serviceaccounts/deployer", team_ns),
        ("get", "configmaps/gitops-inventory-web", state_ns),
        ("create", "configmaps", state_ns),
        ("patch", "configmaps", state_ns),
        ("delete", "configmaps", state_ns),  # the inventory of an app an app set removed
        ("get", "secrets/sops-keys", state_ns),
    }
    refused = {
        ("impersonate", "users", None),
        ("impersonate", "groups", None),
        ("impersonate", "userextras/scopes", None),
        ("impersonate", "uids", None),
        ("create", "deployments.apps", team_ns),
        ("patch", "configmaps", team_ns),
        ("get", "secrets", team_ns),
        ("get", "secrets/other", state_ns),
        ("list", "secrets", state_ns),
        ("delete", "configmaps", team_ns),
        ("create", "pods", state_ns),
        ("create", "clusterroles.rbac.authorization.k8s.io", None),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io", None),
        ("bind", "clusterroles.rbac.authorization.k8s.io", None),
        ("escalate", "roles.rbac.authorization.k8s.io", state_ns),
        ("create", "serviceaccounts/token", team_ns),
        ("delete", "namespaces", None),
        ("list", "nodes", None),
        ("*", "*", None),
    }
    answers = {
        check: await kubectl.can(chart.syncer, *check)
        for check in sorted(allowed | refused, key=str)
    }
    assert {c for c, yes in answers.items() if yes} == allowed

    # Beyond what any identity may do, exactly the impersonation right in a team's
    # namespace, and the bookkeeping in the syncer's own.
    baseline = await kubectl.rights(nobody, team_ns)
    assert await kubectl.rights(chart.syncer, team_ns) - baseline == {
        ("serviceaccounts", "[]", "[impersonate]")
    }
    assert await kubectl.rights(chart.syncer, state_ns) - baseline == {
        ("serviceaccounts", "[]", "[impersonate]"),
        ("configmaps", "[]", "[get create patch delete]"),
        ("secrets", "[sops-keys]", "[get]"),
    }


async def deployer(kubectl: Kubectl, namespace: str) -> None:
    """A team's ServiceAccount `deployer`, bound to the built-in `edit` in its namespace."""
    await kubectl.ok("create", "serviceaccount", "deployer", f"--namespace={namespace}")
    await kubectl.ok(
        "create",
        "rolebinding",
        "deployer",
        "--clusterrole=edit",
        f"--serviceaccount={namespace}:deployer",
        f"--namespace={namespace}",
    )


async def connect_as_syncer(chart: Installed, real_cluster: RealCluster, path: Path) -> Cluster:
    """A client with the syncer's own ServiceAccount token, as in the pod."""
    token = await chart.kubectl.ok(
        "create", "token", chart.syncer_name, f"--namespace={chart.release_ns}"
    )
    admin = yaml.safe_load(real_cluster.kubeconfig.read_text())
    cluster = admin["clusters"][0]["name"]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": admin["clusters"],
                "users": [{"name": "syncer", "user": {"token": token.strip()}}],
                "contexts": [{"name": "syncer", "context": {"cluster": cluster, "user": "syncer"}}],
                "current-context": "syncer",
            }
        )
    )
    return await Cluster.connect("here", ClusterConfig(kubeconfig=str(path)))


async def sync(
    cluster: Cluster, state_ns: str, app_ns: str, target_ns: str, name: str
) -> ReconcileResult:
    """One ConfigMap in `target_ns`, synced by an app acting as `<app_ns>/deployer`."""
    app = AppConfig.model_validate(
        {"repo": "r", "cluster": "here", "namespace": app_ns, "service_account": "deployer"}
    )
    acting_as = service_account(app, None)
    assert acting_as is not None
    reconciler = Reconciler(
        cluster.impersonating(acting_as.username), InventoryStore(cluster, state_ns)
    )
    manifests = render_manifests({"a.yaml": CONFIGMAP.format(name=name, ns=target_ns).encode()})
    desired = await planned(reconciler.cluster, app, CommitSha("a" * 40), manifests)
    inventory = await reconciler.inventory(f"app-{name}")
    return await reconciler.reconcile(
        f"app-{name}", app, desired, inventory, ReconcileOptions(health_timeout=0)
    )


async def test_with_only_the_charts_rights_the_syncer_applies_as_each_teams_account(
    install: Callable[[dict[str, Any]], Awaitable[Installed]],
    real_cluster: RealCluster,
    tmp_path: Path,
) -> None:
    chart = await install({})
    await deployer(chart.kubectl, chart.team_ns)
    async with await connect_as_syncer(chart, real_cluster, tmp_path / "own") as cluster:
        result = await sync(cluster, chart.state_ns, chart.team_ns, chart.team_ns, "mine")
        with pytest.raises(PermanentSyncError) as refused:
            await sync(cluster, chart.state_ns, chart.team_ns, chart.other_ns, "theirs")
        # Without impersonation the syncer itself may write nothing in a team's namespace.
        with pytest.raises(Forbidden):
            await cluster.apply(
                await cluster.resource("v1", "ConfigMap"),
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "x", "namespace": chart.team_ns},
                },
                dry_run=True,
            )

    assert [(o.kind, o.name, o.action) for o in result.objects] == [
        ("ConfigMap", "mine", "created")
    ]
    (error,) = refused.value.objects
    assert error.refusal == Refusal(
        account=f"system:serviceaccount:{chart.team_ns}:deployer",
        verb="patch",
        resource="configmaps",
        namespace=chart.other_ns,
    )
    inventory = await chart.kubectl.ok(
        "get",
        "configmap",
        "gitops-inventory-app-mine",
        f"--namespace={chart.state_ns}",
        "-o",
        "yaml",
    )
    assert '"n":"mine"' in inventory


async def test_impersonation_limited_to_listed_namespaces_refuses_the_others_per_object(
    install: Callable[[dict[str, Any]], Awaitable[Installed]],
    real_cluster: RealCluster,
    tmp_path: Path,
) -> None:
    chart = await install({"impersonation": {"namespaces": ["TEAM_NS"]}})
    for ns in (chart.team_ns, chart.other_ns):
        await deployer(chart.kubectl, ns)
    async with await connect_as_syncer(chart, real_cluster, tmp_path / "own") as cluster:
        allowed = await sync(cluster, chart.state_ns, chart.team_ns, chart.team_ns, "listed")
        with pytest.raises(PermanentSyncError) as refused:
            await sync(cluster, chart.state_ns, chart.other_ns, chart.other_ns, "unlisted")

    assert [o.action for o in allowed.objects] == ["created"]
    (error,) = refused.value.objects
    assert error.refusal == Refusal(
        account=chart.syncer,
        verb="impersonate",
        resource="serviceaccounts",
        namespace=chart.other_ns,
    )
    assert error.message == (
        f"forbidden: {chart.syncer} may not impersonate serviceaccounts in namespace "
        f"{chart.other_ns} (the syncer needs the impersonate right, see docs/tenancy.md)"
    )


async def test_the_notifier_and_receiver_accounts_have_no_rights_in_the_cluster(
    real_cluster: RealCluster, tmp_path: Path
) -> None:
    """The default (`cluster`) mode with notifications: the syncer holds the broad rights,
    the notifier's and receiver's ServiceAccounts exactly what any identity holds."""
    kubectl = Kubectl(real_cluster.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path)
    release, release_ns, other_ns = unique_name("rel"), unique_name("gitops"), unique_name("other")
    rendered = render(NOTIFYING, release=release, namespace=release_ns)
    objects = [o for o in rendered.objects if o["kind"] in RBAC_KINDS]
    try:
        for ns in (release_ns, other_ns):
            await kubectl.ok("create", "namespace", ns)
        await kubectl.install(objects, release_ns)
        await kubectl.ok("create", "serviceaccount", "nobody", f"--namespace={release_ns}")
        nobody = f"system:serviceaccount:{release_ns}:nobody"
        users = {
            component: "system:serviceaccount:{}:{}".format(
                release_ns, rendered.one("ServiceAccount", component)["metadata"]["name"]
            )
            for component in ("receiver", "syncer", "notifier")
        }
        for ns in (release_ns, other_ns):
            baseline = await kubectl.rights(nobody, ns)
            for component in ("receiver", "notifier"):
                assert await kubectl.rights(users[component], ns) == baseline, component
        for check in (("get", "secrets", release_ns), ("list", "nodes", None)):
            assert not await kubectl.can(users["notifier"], *check)
            assert await kubectl.can(users["syncer"], *check), "the check can say yes"
    finally:
        for obj in objects:
            if obj["kind"].startswith("Cluster"):
                await kubectl.run("delete", obj["kind"], obj["metadata"]["name"])
        for ns in (release_ns, other_ns):
            await kubectl.run("delete", "namespace", ns, "--wait=false")
