"""Who each app's requests act as, for every app served now: configured or generated.

`syncer.tenancy` decides an app's ServiceAccount (its own, or its cluster's default);
these mappings build the impersonating client (and reconciler) of an app when it is
first asked for, from the live app mapping, so an app an app set generated after the
syncer started impersonates its account exactly like a configured app. Views are
cached per app and account; a view holds no connection of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from schemas import GitopsConfig
from syncer.kube import Cluster
from syncer.reconcile import Reconciler
from syncer.tenancy import service_account


class ActingClusters(Mapping[str, Cluster]):
    """App name -> the impersonating client of an app with a ServiceAccount."""

    def __init__(self, config: GitopsConfig, clusters: Mapping[str, Cluster]) -> None:
        self._config = config
        self._clusters = clusters
        self._views: dict[tuple[str, str], Cluster] = {}

    def __getitem__(self, app: str) -> Cluster:
        spec = self._config.apps.get(app)
        if spec is None:
            raise KeyError(app)
        cluster = self._clusters.get(spec.cluster)
        account = service_account(spec, self._config.clusters.get(spec.cluster))
        if cluster is None or account is None:
            raise KeyError(app)
        key = (app, account.username)
        view = self._views.get(key)
        if view is None:
            view = self._views[key] = cluster.impersonating(account.username)
        return view

    def cluster_of(self, app: str) -> str:
        return self._config.apps[app].cluster

    def __iter__(self) -> Iterator[str]:
        return iter([name for name in list(self._config.apps) if name in self])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:
        """Always true: empty now, an app generated later may impersonate (callers write
        `app_clusters or {}`)."""
        return True

    def __contains__(self, app: object) -> bool:
        try:
            self[str(app)]
        except KeyError:
            return False
        return True


class ActingReconcilers(Mapping[str, Reconciler]):
    """App name -> a reconciler through the app's impersonating client (the inventory
    stays the syncer's own)."""

    def __init__(self, acting: ActingClusters, reconcilers: Mapping[str, Reconciler]) -> None:
        self._acting = acting
        self._reconcilers = reconcilers
        self._built: dict[tuple[str, int], Reconciler] = {}

    def __getitem__(self, app: str) -> Reconciler:
        view = self._acting[app]
        key = (app, id(view))
        found = self._built.get(key)
        if found is None:
            base = self._reconcilers[self._acting.cluster_of(app)]
            found = self._built[key] = Reconciler(view, base.inventories)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._acting)

    def __len__(self) -> int:
        return len(self._acting)

    def __bool__(self) -> bool:
        return True
