"""The chart's impersonation mode grants the syncer the right to impersonate ServiceAccounts
and its own bookkeeping, and nothing more: installed on the bed's kube-apiserver (RBAC
authorization) and asked with `kubectl auth can-i --as`, as an auditor would.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

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
from tests.deploy.rendering import Obj, render
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


async def test_impersonation_mode_lets_the_syncer_impersonate_and_nothing_more(
    real_cluster: RealCluster, tmp_path: Path
) -> None:
    kubectl = Kubectl(real_cluster.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path)
    release = unique_name("rel")
    release_ns, state_ns, team_ns = (unique_name(p) for p in ("gitops", "state", "team"))
    for ns in (release_ns, state_ns, team_ns):
        await kubectl.ok("create", "namespace", ns)
    rendered = render(
        {
            "rbac": {"mode": "impersonate", "decryptionSecrets": ["sops-keys"]},
            "config": {"syncer": {"inventory_namespace": state_ns}},
        },
        release=release,
        namespace=release_ns,
    )
    objects: list[Obj] = [o for o in rendered.objects if o["kind"] in RBAC_KINDS]
    await kubectl.install(objects, release_ns)
    # A ServiceAccount bound to nothing: what every authenticated identity may do anyway.
    await kubectl.ok("create", "serviceaccount", "nobody", f"--namespace={release_ns}")
    syncer = (
        f"system:serviceaccount:{release_ns}:"
        + rendered.one("ServiceAccount", "syncer")["metadata"]["name"]
    )
    nobody = f"system:serviceaccount:{release_ns}:nobody"
    try:
        allowed = {
            ("impersonate", "serviceaccounts", team_ns),
            ("impersonate", "serviceaccounts/deployer", team_ns),
            ("get", "configmaps/gitops-inventory-web", state_ns),
            ("create", "configmaps", state_ns),
            ("patch", "configmaps", state_ns),
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
            ("delete", "configmaps", state_ns),
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
            check: await kubectl.can(syncer, *check) for check in sorted(allowed | refused, key=str)
        }
        assert {c for c, yes in answers.items() if yes} == allowed

        # Beyond what any identity may do, exactly the impersonation right in a team's
        # namespace, and the bookkeeping in the syncer's own.
        baseline = await kubectl.rights(nobody, team_ns)
        assert await kubectl.rights(syncer, team_ns) - baseline == {
            ("serviceaccounts", "[]", "[impersonate]")
        }
        assert await kubectl.rights(syncer, state_ns) - baseline == {
            ("serviceaccounts", "[]", "[impersonate]"),
            ("configmaps", "[]", "[get create patch]"),
            ("secrets", "[sops-keys]", "[get]"),
        }
    finally:
        await uninstall(kubectl, objects, (release_ns, state_ns, team_ns))


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


async def syncer_kubeconfig(
    kubectl: Kubectl, real_cluster: RealCluster, account: str, namespace: str, path: Path
) -> Path:
    """The syncer's kubeconfig: its own ServiceAccount token, as in the pod."""
    token = (await kubectl.ok("create", "token", account, f"--namespace={namespace}")).strip()
    admin = yaml.safe_load(real_cluster.kubeconfig.read_text())
    cluster = admin["clusters"][0]["name"]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": admin["clusters"],
                "users": [{"name": "syncer", "user": {"token": token}}],
                "contexts": [{"name": "syncer", "context": {"cluster": cluster, "user": "syncer"}}],
                "current-context": "syncer",
            }
        )
    )
    return path


async def sync(
    cluster: Cluster, state_ns: str, app_ns: str, account: str, target_ns: str, name: str
) -> ReconcileResult:
    """One ConfigMap in `target_ns`, synced by an app acting as `account` (NAME or NS/NAME)."""
    app = AppConfig.model_validate(
        {"repo": "r", "cluster": "here", "namespace": app_ns, "service_account": account}
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
    real_cluster: RealCluster, tmp_path: Path
) -> None:
    kubectl = Kubectl(real_cluster.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path)
    release = unique_name("rel")
    release_ns, state_ns, team_ns, other_ns = (
        unique_name(p) for p in ("gitops", "state", "team", "other")
    )
    for ns in (release_ns, state_ns, team_ns, other_ns):
        await kubectl.ok("create", "namespace", ns)
    rendered = render(
        {"rbac": {"mode": "impersonate"}, "config": {"syncer": {"inventory_namespace": state_ns}}},
        release=release,
        namespace=release_ns,
    )
    objects = [o for o in rendered.objects if o["kind"] in RBAC_KINDS]
    await kubectl.install(objects, release_ns)
    await deployer(kubectl, team_ns)
    syncer = rendered.one("ServiceAccount", "syncer")["metadata"]["name"]
    own = await syncer_kubeconfig(kubectl, real_cluster, syncer, release_ns, tmp_path / "own")
    try:
        async with await Cluster.connect("here", ClusterConfig(kubeconfig=str(own))) as cluster:
            result = await sync(cluster, state_ns, team_ns, "deployer", team_ns, "mine")
            with pytest.raises(PermanentSyncError) as refused:
                await sync(cluster, state_ns, team_ns, "deployer", other_ns, "theirs")
            # Without impersonation the syncer itself may write nothing in a team's namespace.
            with pytest.raises(Forbidden):
                await cluster.apply(
                    await cluster.resource("v1", "ConfigMap"),
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "x", "namespace": team_ns},
                    },
                    dry_run=True,
                )
        assert [(o.kind, o.name, o.action) for o in result.objects] == [
            ("ConfigMap", "mine", "created")
        ]
        (error,) = refused.value.objects
        assert error.refusal == Refusal(
            account=f"system:serviceaccount:{team_ns}:deployer",
            verb="patch",
            resource="configmaps",
            namespace=other_ns,
        )
        inventory = await kubectl.ok(
            "get", "configmap", "gitops-inventory-app-mine", f"--namespace={state_ns}", "-o", "yaml"
        )
        assert '"n":"mine"' in inventory
    finally:
        await uninstall(kubectl, objects, (release_ns, state_ns, team_ns, other_ns))


async def test_impersonation_limited_to_listed_namespaces_refuses_the_others_per_object(
    real_cluster: RealCluster, tmp_path: Path
) -> None:
    kubectl = Kubectl(real_cluster.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path)
    release = unique_name("rel")
    release_ns, state_ns, team_ns, other_ns = (
        unique_name(p) for p in ("gitops", "state", "team", "other")
    )
    for ns in (release_ns, state_ns, team_ns, other_ns):
        await kubectl.ok("create", "namespace", ns)
    rendered = render(
        {
            "rbac": {"mode": "impersonate", "impersonation": {"namespaces": [team_ns]}},
            "config": {"syncer": {"inventory_namespace": state_ns}},
        },
        release=release,
        namespace=release_ns,
    )
    objects = [o for o in rendered.objects if o["kind"] in RBAC_KINDS]
    await kubectl.install(objects, release_ns)
    for ns in (team_ns, other_ns):
        await deployer(kubectl, ns)
    syncer = rendered.one("ServiceAccount", "syncer")["metadata"]["name"]
    own = await syncer_kubeconfig(kubectl, real_cluster, syncer, release_ns, tmp_path / "own")
    try:
        async with await Cluster.connect("here", ClusterConfig(kubeconfig=str(own))) as cluster:
            allowed = await sync(cluster, state_ns, team_ns, "deployer", team_ns, "listed")
            with pytest.raises(PermanentSyncError) as refused:
                await sync(cluster, state_ns, other_ns, "deployer", other_ns, "unlisted")
        assert [o.action for o in allowed.objects] == ["created"]
        (error,) = refused.value.objects
        assert error.refusal == Refusal(
            account=f"system:serviceaccount:{release_ns}:{syncer}",
            verb="impersonate",
            resource="serviceaccounts",
            namespace=other_ns,
        )
        assert error.message == (
            f"forbidden: system:serviceaccount:{release_ns}:{syncer} may not impersonate "
            f"serviceaccounts in namespace {other_ns} (the syncer needs the impersonate right, "
            "see docs/tenancy.md)"
        )
    finally:
        await uninstall(kubectl, objects, (release_ns, state_ns, team_ns, other_ns))


async def uninstall(kubectl: Kubectl, objects: list[Obj], namespaces: tuple[str, ...]) -> None:
    for obj in objects:
        if obj["kind"].startswith("Cluster"):
            await kubectl.run("delete", obj["kind"], obj["metadata"]["name"])
    for ns in namespaces:
        await kubectl.run("delete", "namespace", ns, "--wait=false")
