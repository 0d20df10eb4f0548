"""Tenancy: each app acts with the rights of its own ServiceAccount, not the syncer's.

An app's `service_account` (or its cluster's `default_service_account`) names the
account; every request of that app's sync — discovery aside, which answers the same for
everyone — goes through a view of the cluster client that impersonates it (Kubernetes
`Impersonate-User`), so the API server's RBAC decides what a commit may change. The
syncer's own identity then needs only the right to impersonate those accounts.

What stays with the syncer's own identity is its bookkeeping: the inventory ConfigMaps
and the decryption keys. A tenant's account never needs rights in the syncer's
namespace, and one tenant cannot edit another's inventory to make the syncer prune
the other's objects.

The policy fences of an app (`allowed_namespaces`, `allow_cluster_scoped`,
`denied_kinds`, `syncer.planning.policy_violation`) still run first, before any request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from schemas import AppConfig, ClusterConfig
from syncer.kube import Cluster
from syncer.reconcile import Reconciler


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A ServiceAccount by namespace and name."""

    namespace: str
    name: str

    @property
    def username(self) -> str:
        """The user name Kubernetes gives the account's tokens, and impersonation takes."""
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @classmethod
    def parse(cls, text: str, *, default_namespace: str) -> ServiceAccount:
        """`NAME` (in `default_namespace`) or `NAMESPACE/NAME`, as the config writes it."""
        namespace, _, name = text.rpartition("/")
        return cls(namespace or default_namespace, name)


def service_account(app: AppConfig, cluster: ClusterConfig | None) -> ServiceAccount | None:
    """The account `app` acts as: its own, else its cluster's default, else None."""
    text = app.service_account or (cluster.default_service_account if cluster else None)
    if text is None:
        return None
    return ServiceAccount.parse(text, default_namespace=app.namespace)


class Tenants:
    """The client each app acts through, from the app's settings as they are now.

    Built once by the composition root over the clusters' own clients; a view is made
    on first use and shared by the apps acting as the same account. Looking the account
    up at each use (not once at start) keeps generated apps (`app_sets`), whose settings
    arrive while the syncer runs, from ever acting with the syncer's rights."""

    def __init__(
        self, clusters: Mapping[str, Cluster], settings: Mapping[str, ClusterConfig]
    ) -> None:
        self._clusters = clusters
        self._settings = settings
        self._views: dict[tuple[str, str], Cluster] = {}
        self._reconcilers: dict[tuple[str, str], Reconciler] = {}

    def client(self, app: AppConfig) -> Cluster | None:
        """The app's client: impersonating its account, or its cluster's own client when
        it has none; None when its cluster is not connected."""
        base = self._clusters.get(app.cluster)
        account = service_account(app, self._settings.get(app.cluster))
        if base is None or account is None:
            return base
        key = (app.cluster, account.username)
        view = self._views.get(key)
        if view is None:
            view = self._views[key] = base.impersonating(account.username)
        return view

    def reconciler(self, app: AppConfig, own: Reconciler) -> Reconciler:
        """`own` (the cluster's reconciler) acting as the app's account, inventory kept."""
        account = service_account(app, self._settings.get(app.cluster))
        if account is None:
            return own
        key = (app.cluster, account.username)
        found = self._reconcilers.get(key)
        if found is None or found.inventories is not own.inventories:
            client = self.client(app)
            assert client is not None  # noqa: S101 - `own` is a client of this cluster
            found = self._reconcilers[key] = Reconciler(client, own.inventories)
        return found
