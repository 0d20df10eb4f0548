"""Each app acts as its own ServiceAccount: the real API server's RBAC bounds a commit.

Two teams, two namespaces, one syncer on the bed's kube-apiserver (RBAC authorization).
The syncer's kubeconfig is the bed's admin, which may impersonate; what each app may do
is only what its account's RoleBinding grants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.events import Refusal, SyncFailed, SyncSucceeded
from syncer.service import Syncer
from tests.support.bed import unique_name
from tests.support.k8s import create, create_namespace
from tests.syncer.conftest import K8s, configmap, deployment

MakeBench = Callable[..., Any]

CLUSTER_ROLE = """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {name}
rules:
  - apiGroups: ["*"]
    resources: ["*"]
    verbs: ["*"]
"""


async def team(k8s: K8s, namespace: str, rules: list[dict[str, Any]] | None = None) -> str:
    """A namespace with a ServiceAccount `deployer` bound to `edit` there (or to `rules`);
    returns the account's user name."""
    await create_namespace(k8s, namespace)
    return await deployer(k8s, namespace, rules)


async def deployer(k8s: K8s, namespace: str, rules: list[dict[str, Any]] | None = None) -> str:
    """The ServiceAccount `deployer` of an existing namespace, bound to `edit` (or `rules`)."""
    base = f"/api/v1/namespaces/{namespace}"
    await create(
        k8s, f"{base}/serviceaccounts", {"metadata": {"name": "deployer"}, "kind": "ServiceAccount"}
    )
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"}
    if rules is not None:
        await create(k8s, f"{rbac}/roles", {"metadata": {"name": "deployer"}, "rules": rules})
        role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"}
    await create(
        k8s,
        f"{rbac}/rolebindings",
        {
            "metadata": {"name": "deployer"},
            "roleRef": role_ref,
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": namespace}],
        },
    )
    return f"system:serviceaccount:{namespace}:deployer"


def app(path: str, namespace: str, **settings: Any) -> dict[str, Any]:
    """An app of the bench's repository and cluster, as the config writes it."""
    return {"repo": "platform", "path": path, "cluster": "dev", "namespace": namespace, **settings}


def by_name(event: Any) -> dict[str, Any]:
    return {f"{o.kind}/{o.name}": o for o in event.data.objects}


async def test_a_team_cannot_write_into_another_teams_namespace_or_the_cluster_scope(
    bench: MakeBench, k8s: K8s
) -> None:
    ns_a, ns_b = unique_name("team-a"), unique_name("team-b")
    account_a = await team(k8s, ns_a)
    await team(k8s, ns_b)
    role = unique_name("team-a-admin")
    apps = {
        "team-a": app("apps/a", ns_a, service_account="deployer"),
        "team-b": app("apps/b", ns_b, service_account=f"{ns_b}/deployer"),
    }
    b = await bench(apps=apps)
    b.repo.commit_and_push(
        {
            "apps/a/own.yaml": configmap("a-own"),
            "apps/a/intrusion.yaml": configmap("a-in-b", ns_b),
            "apps/b/own.yaml": configmap("b-own"),
        }
    )
    async with Syncer(b.config, syncer_id="s1"):
        await b.request("team-a")
        await b.request("team-b")
        first = {e.data.app: e for e in await b.outcomes(2)}
        b.repo.commit_and_push(
            {"apps/a/intrusion.yaml": None, "apps/a/role.yaml": CLUSTER_ROLE.format(name=role)}
        )
        await b.request("team-a")
        second = (await b.outcomes(3))[2]
        b.repo.commit_and_push({"apps/a/role.yaml": None})
        await b.request("team-a")
        third = (await b.outcomes(4))[3]

    refused = first["team-a"]
    assert isinstance(refused, SyncFailed), refused
    (intrusion,) = refused.data.objects
    assert (intrusion.kind, intrusion.namespace, intrusion.name) == ("ConfigMap", ns_b, "a-in-b")
    assert intrusion.refused == Refusal(
        account=account_a, verb="patch", resource="configmaps", namespace=ns_b
    )
    assert intrusion.error == f"forbidden: {account_a} may not patch configmaps in namespace {ns_b}"
    assert f"ConfigMap {ns_b}/a-in-b: forbidden: {account_a}" in (refused.data.error or "")
    assert isinstance(first["team-b"], SyncSucceeded), first["team-b"]
    assert by_name(first["team-b"])["ConfigMap/b-own"].action == "created"

    assert isinstance(second, SyncFailed), second
    (cluster_role,) = second.data.objects
    assert cluster_role.kind == "ClusterRole"
    assert cluster_role.refused == Refusal(
        account=account_a,
        verb="patch",
        resource="clusterroles.rbac.authorization.k8s.io",
        namespace=None,
    )
    assert cluster_role.error == (
        f"forbidden: {account_a} may not patch clusterroles.rbac.authorization.k8s.io "
        "at the cluster scope"
    )
    # The refused commits changed nothing, not even team A's own ConfigMap.
    assert await k8s.get(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}") is None

    assert isinstance(third, SyncSucceeded), third
    assert by_name(third)["ConfigMap/a-own"].action == "created"
    assert "a-own" in await k8s.names(f"/api/v1/namespaces/{ns_a}/configmaps")
    assert "a-in-b" not in await k8s.names(f"/api/v1/namespaces/{ns_b}/configmaps")
    assert "b-own" in await k8s.names(f"/api/v1/namespaces/{ns_b}/configmaps")
    # The inventory is the syncer's own bookkeeping, written with its own rights.
    _, owned = await k8s.inventory("team-a")
    assert owned == {("ConfigMap", ns_a, "a-own")}


async def test_refused_commit_writes_nothing_even_where_the_account_may_write(
    bench: MakeBench, k8s: K8s, cluster: Any
) -> None:
    ns_a, ns_b = unique_name("team-a"), unique_name("team-b")
    await team(k8s, ns_a)
    await team(k8s, ns_b)
    apps = {"team-a": app("apps/a", ns_a, service_account="deployer")}
    b = await bench(apps=apps)
    files: dict[str, str | bytes | None] = {
        f"apps/a/cm{i}.yaml": configmap(f"cm{i}") for i in range(5)
    }
    files["apps/a/intrusion.yaml"] = configmap("a-in-b", ns_b)
    b.repo.commit_and_push(files)
    async with Syncer(b.config, syncer_id="s1"):
        await b.request("team-a")
        (event,) = await b.outcomes(1)

    assert isinstance(event, SyncFailed), event
    assert [o.name for o in event.data.objects] == ["a-in-b"]
    assert not any(
        s.resource == "configmaps" and s.namespace in (ns_a, ns_b) for s in cluster.writes()
    )
    assert not {f"cm{i}" for i in range(5)} & set(
        await k8s.names(f"/api/v1/namespaces/{ns_a}/configmaps")
    )


async def test_prune_and_health_obey_the_accounts_rights(bench: MakeBench, k8s: K8s) -> None:
    ns = unique_name("team-a")
    account = await team(
        k8s,
        ns,
        rules=[
            # No delete on ConfigMaps; Deployments may be written but not read back.
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "verbs": ["get", "list", "create", "patch"],
            },
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create", "patch"]},
        ],
    )
    apps = {"team-a": app("apps/a", ns, service_account="deployer")}
    b = await bench(apps=apps)
    b.repo.commit_and_push(
        {
            "apps/a/keep.yaml": configmap("keep"),
            "apps/a/leaving.yaml": configmap("leaving"),
            "apps/a/api.yaml": deployment("api"),
        }
    )
    async with Syncer(b.config, syncer_id="s1"):
        await b.request("team-a")
        (first,) = await b.outcomes(1)
        b.repo.commit_and_push({"apps/a/leaving.yaml": None})
        await b.request("team-a")
        second = (await b.outcomes(2))[1]

    assert isinstance(first, SyncSucceeded), first
    assert by_name(first)["Deployment/api"].action == "created"
    assert first.data.health == "degraded"
    assert first.data.error == (
        f"Deployment {ns}/api: health unknown, forbidden: {account} may not get "
        f"deployments.apps in namespace {ns}"
    )

    assert isinstance(second, SyncSucceeded), second
    leaving = by_name(second)["ConfigMap/leaving"]
    assert leaving.action == "failed"
    assert leaving.error == f"forbidden: {account} may not delete configmaps in namespace {ns}"
    assert leaving.refused == Refusal(
        account=account, verb="delete", resource="configmaps", namespace=ns
    )
    assert "leaving" in await k8s.names(f"/api/v1/namespaces/{ns}/configmaps")
    _, owned = await k8s.inventory("team-a")
    assert ("ConfigMap", ns, "leaving") in owned
