"""The apply engine against the bed's real kube-apiserver, without Kafka or git.

`engine_bench` renders YAML given as strings exactly as a commit's files would be,
plans it against the real server and runs `Reconciler.reconcile`, through the
recording proxy so a test can read the order of the writes that reached the cluster.
Each test has its own namespace and inventory namespace.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes_asyncio.client import ApiClient, Configuration

from schemas import AppConfig, ClusterConfig
from schemas.types import CommitSha
from syncer.desired import planned
from syncer.inventory import Inventory, InventoryStore
from syncer.kube import Cluster
from syncer.manifests import render
from syncer.reconcile import ReconcileOptions, Reconciler, ReconcileResult
from tests.support.apiproxy import ApiProxy, Seen
from tests.support.bed import RealCluster, unique_name
from tests.support.k8s import K8s

_commits = itertools.count(1)


@dataclass
class EngineBench:
    """One app on the real cluster: sync YAML files, read what reached the server."""

    proxy: ApiProxy
    cluster: Cluster
    reconciler: Reconciler
    k8s: K8s
    ns: str
    app_name: str

    def app(self, **settings: object) -> AppConfig:
        return AppConfig.model_validate(
            {"repo": "r", "cluster": "c", "namespace": self.ns, **settings}
        )

    async def inventory(self) -> Inventory:
        return await self.reconciler.inventory(self.app_name)

    async def sync(
        self,
        files: dict[str, str],
        *,
        health_timeout: float = 30.0,
        app: AppConfig | None = None,
        commit: CommitSha | None = None,
    ) -> ReconcileResult:
        """Render, plan and reconcile `files` as one new commit (or as `commit` again);
        raises what a sync raises."""
        spec = app or self.app()
        manifests = render({path: text.encode() for path, text in files.items()})
        commit = commit or CommitSha(f"{next(_commits):040x}")
        desired = await planned(self.cluster, spec, commit, manifests)
        inventory = await self.inventory()
        options = ReconcileOptions(health_timeout=health_timeout)
        return await self.reconciler.reconcile(self.app_name, spec, desired, inventory, options)

    def writes(self, since: int = 0) -> list[Seen]:
        """Writes that reached the server (no dry runs, no inventory), oldest first."""
        return [w for w in self.proxy.writes()[since:] if not _bookkeeping(w)]


def _bookkeeping(write: Seen) -> bool:
    """The inventory's own ConfigMap and namespace."""
    return write.name.startswith("gitops-inventory-") or (
        write.resource == "namespaces" and write.name.startswith("inv-")
    )


@pytest.fixture
async def engine_bench(real_cluster: RealCluster, tmp_path: Path) -> AsyncIterator[EngineBench]:
    async with ApiProxy(real_cluster.kubeconfig) as proxy:
        kubeconfig = proxy.write_kubeconfig(tmp_path / "kubeconfig")
        settings = ClusterConfig(kubeconfig=str(kubeconfig))
        async with (
            await Cluster.connect("bed", settings) as cluster,
            ApiClient(Configuration(host=proxy.url)) as api,
        ):
            store = InventoryStore(cluster, unique_name("inv"))
            yield EngineBench(
                proxy,
                cluster,
                Reconciler(cluster, store),
                K8s(api),
                unique_name("ns"),
                unique_name("app"),
            )
