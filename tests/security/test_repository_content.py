"""Hostile repository content through the real syncer: it fails the sync and names why.

Anyone with push rights writes the syncer's input. Whatever a commit holds (a YAML
bomb, ten thousand documents, objects the app may not manage, links out of the
repository), the outcome is a `gitops.sync.failed` event naming the file or object and
the rule it broke, and the cluster is not touched: not one write reaches the API server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo as DulwichRepo
from kubernetes_asyncio.client import CoreV1Api

from gitops.gitserver import GitHttpServer
from schemas.events import SyncFailed, SyncSucceeded
from syncer.service import Syncer
from tests.security.figures import record
from tests.support.apiproxy import ApiProxy
from tests.support.bed import unique_name
from tests.syncer.conftest import Bench, K8s, configmap

MakeBench = Callable[..., Any]


def apps(namespace: str) -> dict[str, Any]:
    """App `web`, confined to `namespace`; another app's namespace exists beside it."""
    return {
        "web": {
            "repo": "platform",
            "path": "apps/web",
            "cluster": "dev",
            "namespace": namespace,
            "allowed_namespaces": [namespace],
            "allow_cluster_scoped": False,
            "denied_kinds": ["Secret", "ClusterRoleBinding"],
        }
    }


BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def alias_bomb(b: Bench, other: str) -> None:
    body = BOMB.replace("\n", "\n  ")
    b.repo.commit_and_push(
        {"apps/web/laughs.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: lol}}\n"
         f"data:\n  {body}"}
    )  # fmt: skip


def ten_thousand_documents(b: Bench, other: str) -> None:
    """10,000 ConfigMaps in one file; the 7,777th tries to land in another app's namespace."""
    docs = [configmap(f"cm-{i}", namespace=other if i == 7777 else None) for i in range(10_000)]
    b.repo.commit_and_push({"apps/web/many.yaml": "---\n".join(docs)})


def denied_kind(b: Bench, other: str) -> None:
    b.repo.commit_and_push(
        {"apps/web/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: db-password}\n"
         "stringData: {password: hunter2}\n"}
    )  # fmt: skip


def cluster_scoped(b: Bench, other: str) -> None:
    b.repo.commit_and_push(
        {"apps/web/role.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
         "metadata: {name: escalate}\nrules:\n- {apiGroups: ['*'], resources: ['*'], "
         "verbs: ['*']}\n"}
    )  # fmt: skip


def other_apps_namespace(b: Bench, other: str) -> None:
    b.repo.commit_and_push({"apps/web/steal.yaml": configmap("takeover", namespace=other)})


def symlink_absolute(b: Bench, other: str) -> None:
    (b.repo.path / "apps" / "web").mkdir(parents=True, exist_ok=True)
    os.symlink("/etc/passwd", b.repo.path / "apps" / "web" / "passwd.yaml")
    b.repo.commit_and_push({})


def symlink_directory_out(b: Bench, other: str) -> None:
    (b.repo.path / "apps" / "web").mkdir(parents=True, exist_ok=True)
    os.symlink("../../../..", b.repo.path / "apps" / "web" / "up")
    b.repo.commit_and_push({})


CASES = [
    pytest.param(alias_bomb, ["apps/web/laughs.yaml", "YAML bomb"], id="alias-bomb"),
    pytest.param(
        ten_thousand_documents, ["cm-7777", "{other}", "allowed_namespaces"], id="10k-documents"
    ),
    pytest.param(denied_kind, ["Secret", "db-password", "denied_kinds"], id="denied-kind"),
    pytest.param(
        cluster_scoped, ["ClusterRole", "escalate", "allow_cluster_scoped"], id="cluster-scoped"
    ),
    pytest.param(
        other_apps_namespace, ["takeover", "{other}", "allowed_namespaces"], id="other-namespace"
    ),
    pytest.param(
        symlink_absolute, ["apps/web/passwd.yaml", "outside the repository"], id="symlink-absolute"
    ),
    pytest.param(
        symlink_directory_out, ["apps/web/up", "outside the repository"], id="symlink-directory"
    ),
]


def described(failed: SyncFailed) -> str:
    """Everything the failed event tells a user: the error and each object's verdict."""
    objects = [
        f"{o.kind} {o.namespace}/{o.name} {o.action}: {o.error or ''}" for o in failed.data.objects
    ]
    return "\n".join([failed.data.error or "", *objects])


async def make_namespaces(k8s: K8s, *names: str) -> None:
    core = CoreV1Api(k8s.api)
    for name in names:
        await core.create_namespace({"metadata": {"name": name}})


async def ours(k8s: K8s, namespace: str) -> list[str]:
    """ConfigMaps in `namespace` but the CA bundle the controller-manager puts in every one."""
    return [n for n in await k8s.names(f"/api/v1/namespaces/{namespace}/configmaps")
            if n != "kube-root-ca.crt"]  # fmt: skip


@pytest.mark.parametrize(("make_bad", "named"), CASES)
async def test_hostile_commit_fails_naming_the_file_or_object_and_rule_and_the_cluster_is_unchanged(
    bench: MakeBench,
    cluster: ApiProxy,
    k8s: K8s,
    make_bad: Callable[[Bench, str], None],
    named: list[str],
    namespace: str,
) -> None:
    other = unique_name("payments")
    b = await bench(apps=apps(namespace))
    await make_namespaces(k8s, b.ns, other)
    b.repo.commit_and_push({"apps/web/ok.yaml": configmap("ok")})
    async with Syncer(b.config, syncer_id="s1"):
        await b.request("web")
        good = (await b.outcomes(1))[0]
        assert isinstance(good, SyncSucceeded), good
        before = len(cluster.writes())
        assert before, "the good sync's writes went through the proxy"

        make_bad(b, other)
        started = time.monotonic()
        await b.request("web")
        failed = (await b.outcomes(2))[1]
        took = time.monotonic() - started

    assert isinstance(failed, SyncFailed), failed
    text = described(failed)
    for words in named:
        assert words.format(other=other) in text, text[:2000]
    assert cluster.writes()[before:] == []  # not one write reached the cluster
    assert await ours(k8s, b.ns) == ["ok"]
    assert await ours(k8s, other) == []
    record(
        f"hostile commit: {make_bad.__name__.replace('_', ' ')}",
        "the sync fails naming the file or object and the rule; the cluster is unchanged",
        tried=1,
        accepted=0,
        notes=f"failed in {took:.1f}s: {text.splitlines()[0][:160]}",
    )


def commit_with_dotdot_entry(server: GitHttpServer, repo_name: str, branch: str = "main") -> None:
    """A tree entry named `..` (git refuses to create one; a hostile client can push it)."""
    repo = DulwichRepo(str(server.root / f"{repo_name}.git"))
    try:
        head = repo.refs[f"refs/heads/{branch}".encode()]
        parent = repo[head]
        assert isinstance(parent, Commit)
        blob = Blob.from_string(configmap("smuggled").encode())
        inner = Tree()
        inner.add(b"smuggled.yaml", 0o100644, blob.id)
        root = repo[parent.tree]
        assert isinstance(root, Tree)
        apps = repo[root[b"apps"][1]]
        web = repo[apps[b"web"][1]]  # type: ignore[index]
        assert isinstance(apps, Tree) and isinstance(web, Tree)
        web.add(b"..", 0o040000, inner.id)
        apps.add(b"web", 0o040000, web.id)
        root.add(b"apps", 0o040000, apps.id)
        commit = Commit()
        commit.tree, commit.parents = root.id, [head]
        commit.author = commit.committer = b"Mallory <m@example.com>"
        commit.author_time = commit.commit_time = int(time.time())
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = b"smuggle a .. entry\n"
        for obj in (blob, inner, web, apps, root, commit):
            repo.object_store.add_object(obj)
        repo.refs[f"refs/heads/{branch}".encode()] = commit.id
    finally:
        repo.close()


async def test_a_tree_entry_named_dotdot_fails_the_sync_and_the_cluster_is_unchanged(
    bench: MakeBench, cluster: ApiProxy, k8s: K8s, git_server: GitHttpServer, namespace: str
) -> None:
    b = await bench(apps=apps(namespace))
    await make_namespaces(k8s, b.ns)
    b.repo.commit_and_push({"apps/web/ok.yaml": configmap("ok")})
    async with Syncer(b.config, syncer_id="s1"):
        await b.request("web")
        assert isinstance((await b.outcomes(1))[0], SyncSucceeded)
        before = len(cluster.writes())
        assert before, "the good sync's writes went through the proxy"
        commit_with_dotdot_entry(git_server, b.repo.remote_url.rsplit("/", 1)[1][: -len(".git")])
        await b.request("web")
        failed = (await b.outcomes(2))[1]
    assert isinstance(failed, SyncFailed), failed
    assert "'apps/web/..'" in described(failed), described(failed)
    assert "not a valid file name" in described(failed)
    assert cluster.writes()[before:] == []
    assert await ours(k8s, b.ns) == ["ok"]
