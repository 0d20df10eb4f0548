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

from schemas import AppConfig, ClusterConfig, GitopsConfig
from syncer.kube import Cluster


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


def acting_clusters(config: GitopsConfig, clusters: Mapping[str, Cluster]) -> dict[str, Cluster]:
    """App name -> the client its requests go through, for the apps that impersonate.

    Apps without an account are left out: they use their cluster's client as it is."""
    acting: dict[str, Cluster] = {}
    for name, app in config.apps.items():
        cluster = clusters.get(app.cluster)
        account = service_account(app, config.clusters.get(app.cluster))
        if cluster is not None and account is not None:
            acting[name] = cluster.impersonating(account.username)
    return acting
