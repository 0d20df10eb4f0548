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
from schemas.types import CommitSha
from syncer.errors import PermanentSyncError
from syncer.inventory import InventoryStore
from syncer.kube import Cluster, Forbidden
from syncer.manifests import render as render_manifests
from syncer.reconcile import ReconcileOptions, Reconciler
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
        for obj in objects:
            if obj["kind"].startswith("Cluster"):
                await kubectl.run("delete", obj["kind"], obj["metadata"]["name"])
        for ns in (release_ns, state_ns, team_ns):
            await kubectl.run("delete", "namespace", ns, "--wait=false")


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
    await kubectl.ok("create", "serviceaccount", "deployer", f"--namespace={team_ns}")
    await kubectl.ok(
        "create",
        "rolebinding",
        "deployer",
        "--clusterrole=edit",
        f"--serviceaccount={team_ns}:deployer",
        f"--namespace={team_ns}",
    )
    account = rendered.one("ServiceAccount", "syncer")["metadata"]["name"]
    token = (await kubectl.ok("create", "token", account, f"--namespace={release_ns}")).strip()
    # The syncer's kubeconfig: its own token, as in the pod (no client certificate).
    admin = yaml.safe_load(real_cluster.kubeconfig.read_text())
    own = tmp_path / "syncer.kubeconfig"
    own.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": admin["clusters"],
                "users": [{"name": "syncer", "user": {"token": token}}],
                "contexts": [
                    {
                        "name": "syncer",
                        "context": {"cluster": admin["clusters"][0]["name"], "user": "syncer"},
                    }
                ],
                "current-context": "syncer",
            }
        )
    )
    app = AppConfig.model_validate(
        {"repo": "r", "cluster": "here", "namespace": team_ns, "service_account": "deployer"}
    )
    try:
        async with await Cluster.connect("here", ClusterConfig(kubeconfig=str(own))) as cluster:
            account_of_app = service_account(app, None)
            assert account_of_app is not None
            acting = cluster.impersonating(account_of_app.username)
            reconciler = Reconciler(acting, InventoryStore(cluster, state_ns))
            own_cm = render_manifests(
                {"a.yaml": CONFIGMAP.format(name="mine", ns=team_ns).encode()}
            )
            result = await reconciler.reconcile(
                "web", app, CommitSha("a" * 40), own_cm, ReconcileOptions(health_timeout=0)
            )
            intruding = render_manifests(
                {"a.yaml": CONFIGMAP.format(name="theirs", ns=other_ns).encode()}
            )
            with pytest.raises(PermanentSyncError) as refused:
                await reconciler.reconcile(
                    "web", app, CommitSha("b" * 40), intruding, ReconcileOptions(health_timeout=0)
                )
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
        assert error.refusal is not None
        assert (error.refusal.account, error.refusal.verb, error.refusal.namespace) == (
            f"system:serviceaccount:{team_ns}:deployer",
            "patch",
            other_ns,
        )
        inventory = await kubectl.ok(
            "get", "configmap", "gitops-inventory-web", f"--namespace={state_ns}", "-o", "yaml"
        )
        assert '"n":"mine"' in inventory
    finally:
        for obj in objects:
            if obj["kind"].startswith("Cluster"):
                await kubectl.run("delete", obj["kind"], obj["metadata"]["name"])
        for ns in (release_ns, state_ns, team_ns, other_ns):
            await kubectl.run("delete", "namespace", ns, "--wait=false")
