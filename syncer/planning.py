"""Plan: resolve each rendered manifest to its API resource, default its namespace, and
check it against the app's policy, before anything talks to the cluster for real.

Kinds defined by a CRD of the same commit are resolved from that CRD's manifest
(group, plural, scope), because discovery cannot know them until the CRD is applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas import AppConfig
from schemas.events import Refusal
from syncer.errors import ObjectError
from syncer.inventory import Entry, ObjectKey, digest
from syncer.jsoncodec import compact_json
from syncer.kube import Cluster, ResourceInfo, UnknownKind
from syncer.manifests import Manifest
from syncer.ordering import Hook, OrderingError, hook_of, wave_of

CRD_GROUP = "apiextensions.k8s.io"
JsonObj = dict[str, Any]


@dataclass(slots=True)
class Planned:
    """One object of the commit, ready to validate and apply."""

    info: ResourceInfo
    body: JsonObj
    source: str
    digest: str
    from_commit_crd: bool = False
    """Its kind comes from a CRD of this commit that the cluster may not serve yet."""
    encoded: bytes = b""
    """`body` as JSON, encoded once for its dry run and its apply."""
    wave: int = 0
    """`gitops.dev/sync-wave`: lower waves are applied, and healthy, first."""
    hook: Hook | None = None
    """`gitops.dev/hook`: run around the sync instead of being applied with the app."""
    # Read thousands of times per sync: computed once from `body`, which never changes.
    namespace: str | None = field(init=False)
    name: str = field(init=False)
    key: ObjectKey = field(init=False)

    def __post_init__(self) -> None:
        meta = self.body["metadata"]
        self.namespace = str(meta["namespace"]) if meta.get("namespace") else None
        self.name = str(meta["name"])
        self.key = (self.info.group, self.info.kind, self.namespace or "", self.name)

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def stage(self) -> int:
        """0: Namespaces and CRDs, applied first; 1: everything else."""
        return 0 if is_stage_zero(self.info) else 1

    def entry(self, live: str = "") -> Entry:
        return Entry(
            self.info.api_version, self.kind, self.namespace or "", self.name, self.digest, live
        )

    def error(self, message: str, refusal: Refusal | None = None) -> ObjectError:
        return ObjectError(
            self.info.api_version, self.kind, self.namespace, self.name, message, refusal
        )


def is_stage_zero(info: ResourceInfo) -> bool:
    return (info.group, info.kind) in (("", "Namespace"), (CRD_GROUP, "CustomResourceDefinition"))


def _commit_crds(manifests: list[Manifest]) -> dict[tuple[str, str], ResourceInfo]:
    """Kinds the commit's own CRDs define: (apiVersion, kind) -> resource."""
    found: dict[tuple[str, str], ResourceInfo] = {}
    for m in manifests:
        if m.kind != "CustomResourceDefinition" or m.group != CRD_GROUP:
            continue
        spec = m.body.get("spec") or {}
        names = spec.get("names") or {}
        group, kind, plural = spec.get("group"), names.get("kind"), names.get("plural")
        if not (isinstance(group, str) and isinstance(kind, str) and isinstance(plural, str)):
            continue
        for version in spec.get("versions") or []:
            if isinstance(version, dict) and isinstance(version.get("name"), str):
                info = ResourceInfo(
                    group, version["name"], kind, plural, spec.get("scope") == "Namespaced"
                )
                found[(info.api_version, kind)] = info
    return found


async def plan(
    cluster: Cluster, app: AppConfig, manifests: list[Manifest]
) -> tuple[list[Planned], list[ObjectError]]:
    """Resolve, default and police every manifest; return the plan and every problem."""
    crds = _commit_crds(manifests)
    planned: list[Planned] = []
    errors: list[ObjectError] = []
    seen: dict[ObjectKey, str] = {}
    for m in manifests:
        from_crd = False
        try:
            info = await cluster.resource(m.api_version, m.kind)
        except UnknownKind as exc:
            if (m.api_version, m.kind) not in crds:
                errors.append(ObjectError(m.api_version, m.kind, m.namespace, m.name, exc.message))
                continue
            info, from_crd = crds[(m.api_version, m.kind)], True
        # Only the metadata is changed here; the rest stays shared with the render cache,
        # which nobody writes to.
        meta = dict(m.body["metadata"])
        body = {**m.body, "metadata": meta}
        if info.namespaced:
            meta["namespace"] = meta.get("namespace") or app.namespace
        else:
            meta.pop("namespace", None)  # as kubectl does: cluster-scoped kinds ignore it
        encoded = compact_json(body)
        try:
            wave, hook = wave_of(body), hook_of(body)
        except OrderingError as exc:
            problem = f"{exc} (at {m.source})"
            errors.append(ObjectError(m.api_version, m.kind, m.namespace, m.name, problem))
            continue
        item = Planned(info, body, m.source, digest(body), from_crd, encoded, wave, hook)
        if item.key in seen:
            errors.append(item.error(f"declared twice ({seen[item.key]} and {m.source})"))
            continue
        seen[item.key] = m.source
        violation = policy_violation(app, item)
        if violation:
            errors.append(item.error(violation))
            continue
        planned.append(item)
    return planned, errors


def summary(what: str, errors: list[ObjectError]) -> str:
    """`3 objects failed server-side validation: A; B; C`, at most five named."""
    shown = "; ".join(str(e) for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    noun = "object" if len(errors) == 1 else "objects"
    return f"{len(errors)} {noun} {what}: {shown}{more}"


def policy_violation(app: AppConfig, item: Planned) -> str | None:
    """Why the app may not manage this object, naming the rule; None when it may."""
    if item.kind in app.denied_kinds:
        return f"kind {item.kind} is denied for this app (denied_kinds)"
    if not item.info.namespaced and not app.allow_cluster_scoped:
        return (
            f"cluster-scoped {item.kind} is not allowed for this app (allow_cluster_scoped: false)"
        )
    if (
        item.info.namespaced
        and app.allowed_namespaces is not None
        and item.namespace not in app.allowed_namespaces
    ):
        allowed = ", ".join(app.allowed_namespaces) or "none"
        return f"namespace {item.namespace} is not allowed (allowed_namespaces: {allowed})"
    return None
