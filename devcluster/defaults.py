"""Server-side defaulting: the fields a live object carries that nobody applied.

Only defaults a client can observe in ordinary use are set (the real defaulters set many
more). Defaulted fields belong to no manager, exactly as on a real cluster, so server-side
apply never removes them and never reports conflicts on them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

JsonObj = dict[str, Any]


def _ports(ports: Any) -> None:
    for port in ports or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def _pod_spec(spec: Any) -> None:
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if not isinstance(container, dict):
            continue
        _ports(container.get("ports"))
        image = str(container.get("image", ""))
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})


def _template(spec: JsonObj) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        _pod_spec(template.get("spec"))


def _deployment(obj: JsonObj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    # kubectl create deployment sends "strategy": {}; an empty type is defaulted as well.
    strategy = spec.setdefault("strategy", {})
    if isinstance(strategy, dict):
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            if isinstance(rolling, dict):
                rolling.setdefault("maxUnavailable", "25%")
                rolling.setdefault("maxSurge", "25%")
    _template(spec)


def _statefulset(obj: JsonObj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    _template(spec)


def _daemonset(obj: JsonObj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault(
        "updateStrategy",
        {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
    )
    _template(spec)


def _job(obj: JsonObj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("manualSelector", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    _template(spec)


def _job_selector(obj: JsonObj) -> None:
    """The selector a Job gets from its uid unless it asks for a manual one, and the pod
    template labels that match it; a Job without labels of its own takes the template's."""
    spec, metadata = obj.get("spec"), obj["metadata"]
    if not isinstance(spec, dict) or spec.get("manualSelector") is True:
        return
    uid, name = metadata["uid"], metadata.get("name", "")
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    template = spec.setdefault("template", {})
    if not isinstance(template, dict):
        return
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    labels.update(
        {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
    )
    if not metadata.get("labels"):
        metadata["labels"] = dict(labels)


def _cluster_ip(obj: JsonObj) -> str:
    """A stable address in 10.96.0.0/16 derived from namespace/name (no allocator state)."""
    metadata = obj.get("metadata") or {}
    digest = hashlib.sha256(f"{metadata.get('namespace')}/{metadata.get('name')}".encode()).digest()
    return f"10.96.{digest[0]}.{max(digest[1], 1)}"


def _service(obj: JsonObj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    if spec["type"] != "ExternalName":
        spec.setdefault("clusterIP", _cluster_ip(obj))
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("ipFamilies", ["IPv4"])
    _ports(spec.get("ports"))
    for port in spec.get("ports") or []:
        # kubectl's JSON carries "targetPort": 0 for "the same as port", as the real
        # server reads it.
        if isinstance(port, dict) and port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    obj.setdefault("status", {"loadBalancer": {}})


def _secret(obj: JsonObj) -> None:
    obj.setdefault("type", "Opaque")


def _namespace(obj: JsonObj) -> None:
    name = (obj.get("metadata") or {}).get("name")
    labels = obj.setdefault("metadata", {}).setdefault("labels", {})
    if name:
        labels["kubernetes.io/metadata.name"] = name
    obj.setdefault("spec", {"finalizers": ["kubernetes"]})
    obj.setdefault("status", {"phase": "Active"})


def _pvc(obj: JsonObj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("volumeMode", "Filesystem")
    obj.setdefault("status", {"phase": "Pending"})


_DEFAULTERS: dict[str, Callable[[JsonObj], None]] = {
    "Deployment": _deployment,
    "ReplicaSet": _deployment,
    "StatefulSet": _statefulset,
    "DaemonSet": _daemonset,
    "Job": _job,
    "Service": _service,
    "Secret": _secret,
    "Namespace": _namespace,
    "PersistentVolumeClaim": _pvc,
}


_GENERATORS: dict[str, Callable[[JsonObj], None]] = {"Job": _job_selector}


def generate_on_create(kind: str, obj: JsonObj, custom: bool) -> None:
    """What the server derives from a new object's uid (set before this runs)."""
    generator = None if custom else _GENERATORS.get(kind)
    if generator is not None:
        generator(obj)


def apply_defaults(kind: str, obj: JsonObj, custom: bool) -> None:
    """Fill defaults in place (built-in kinds only; custom resources have none here)."""
    if custom:
        return
    defaulter = _DEFAULTERS.get(kind)
    if defaulter is not None:
        defaulter(obj)
