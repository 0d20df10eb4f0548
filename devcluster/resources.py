"""The registry of resource types the emulator serves.

One :class:`ResourceType` per (group, version, plural), as discovery announces them. The
built-in table mirrors what kube-apiserver 1.3x serves for the kinds a GitOps repository
uses; a :class:`Registry` instance adds and removes custom resources as CRDs become
Established or go away, so each emulated cluster has its own set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True, slots=True)
class ResourceType:
    """What discovery says about one resource, and how the server treats its objects."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # The real strategies set metadata.generation only where a spec is reconciled.
    has_generation: bool = False
    # Custom resources: returned on DELETE and require resourceVersion on PUT.
    custom: bool = False
    # Per-version OpenAPI v3 schema of a custom resource, served under /openapi.
    schema: dict[str, object] | None = field(default=None, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        """``apps/v1`` or ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> tuple[str, str]:
        return (self.group, self.version)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


def _rt(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool,
    short: tuple[str, ...] = (),
    sub: tuple[str, ...] = (),
    gen: bool = False,
    verbs: tuple[str, ...] = ALL_VERBS,
    categories: tuple[str, ...] = (),
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        namespaced=namespaced,
        singular=kind.lower(),
        short_names=short,
        subresources=sub,
        has_generation=gen,
        verbs=verbs,
        categories=categories,
    )


ALL = ("all",)
STATUS = ("status",)
SCALE_STATUS = ("scale", "status")

BUILTINS: tuple[ResourceType, ...] = (
    _rt(
        "",
        "v1",
        "Namespace",
        "namespaces",
        False,
        ("ns",),
        STATUS,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _rt("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    _rt("", "v1", "Secret", "secrets", True),
    _rt(
        "",
        "v1",
        "Service",
        "services",
        True,
        ("svc",),
        STATUS,
        categories=ALL,
        verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
    ),
    _rt("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    _rt("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",), STATUS),
    _rt("", "v1", "Pod", "pods", True, ("po",), STATUS, categories=ALL),
    _rt("", "v1", "Event", "events", True, ("ev",)),
    _rt("", "v1", "ResourceQuota", "resourcequotas", True, ("quota",), STATUS),
    _rt("", "v1", "LimitRange", "limitranges", True, ("limits",)),
    _rt("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",), STATUS),
    _rt(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        True,
        ("deploy",),
        SCALE_STATUS,
        True,
        categories=ALL,
    ),
    _rt(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        True,
        ("sts",),
        SCALE_STATUS,
        True,
        categories=ALL,
    ),
    _rt("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), STATUS, True, categories=ALL),
    _rt(
        "apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), SCALE_STATUS, True, categories=ALL
    ),
    _rt("batch", "v1", "Job", "jobs", True, (), STATUS, True, categories=ALL),
    _rt("batch", "v1", "CronJob", "cronjobs", True, ("cj",), STATUS, True, categories=ALL),
    _rt("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",), STATUS, True),
    _rt("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",), gen=True),
    _rt("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    _rt("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",)),
    _rt("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",)),
    _rt("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    _rt("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    _rt("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _rt("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _rt(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        True,
        ("hpa",),
        STATUS,
        categories=ALL,
    ),
    _rt(
        "policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",), STATUS, True
    ),
    _rt(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        ("crd", "crds"),
        STATUS,
        True,
    ),
)

# Group preference order as the real server lists /apis (core first, then these).
GROUP_ORDER = (
    "apps",
    "batch",
    "autoscaling",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
)


class Registry:
    """The resource types one cluster serves right now (built-ins plus established CRDs)."""

    def __init__(self) -> None:
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        for rt in BUILTINS:
            self.add(rt)

    def add(self, rt: ResourceType) -> None:
        self._by_path[(rt.group, rt.version, rt.plural)] = rt

    def remove(self, group: str, plural: str) -> None:
        """Forget every version of a resource (its CRD was deleted)."""
        for key in [k for k in self._by_path if k[0] == group and k[2] == plural]:
            del self._by_path[key]

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceType | None:
        for rt in self._by_path.values():
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        return None

    def all(self) -> list[ResourceType]:
        return list(self._by_path.values())

    def group_versions(self) -> dict[str, list[str]]:
        """Group name → served versions, preferred (first declared) version first."""
        out: dict[str, list[str]] = {}
        for rt in self._by_path.values():
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self._by_path.values() if rt.group == group and rt.version == version]

    def versions_of(self, group: str, plural: str) -> list[ResourceType]:
        return [rt for rt in self._by_path.values() if rt.group == group and rt.plural == plural]
