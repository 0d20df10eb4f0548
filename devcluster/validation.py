"""Validation and defaulting of objects before they are stored.

The real apiserver rejects a bad object with ``422 Invalid`` and one cause per field
(api-conventions.md#validation). This module checks what a GitOps user gets wrong and
the syncer must report: names (DNS-1123 rules per kind), labels, required workload
fields, selector/template agreement, and the fields the real server makes immutable. It
also applies the defaults a live object visibly carries (Service ``type``/``clusterIP``,
port ``protocol``, Deployment ``replicas``...), since a drift check compares against them.
"""

from __future__ import annotations

import re
from typing import Any

from devcluster.resources import ResourceType
from devcluster.status import invalid

JsonObj = dict[str, Any]
Cause = tuple[str, str, str]

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
    "with an alphabetic character, and end with an alphanumeric character"
)
# Kinds whose names are DNS labels rather than subdomains.
_LABEL_NAMED = frozenset({"Namespace"})
_DNS1035_NAMED = frozenset({"Service"})
# RBAC names are path segments: anything but '/', '%', '.' and '..'.
_PATH_SEGMENT_NAMED = frozenset({"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"})
_WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})


def _fmt(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def _invalid_value(field: str, value: Any, why: str) -> Cause:
    return (field, "FieldValueInvalid", f"Invalid value: {_fmt(value)}: {why}")


def _required(field: str) -> Cause:
    return (field, "FieldValueRequired", "Required value")


def check_name(kind: str, name: str, field: str = "metadata.name") -> list[Cause]:
    if not name:
        return [(field, "FieldValueRequired", "Required value: name or generateName is required")]
    if kind in _PATH_SEGMENT_NAMED:
        if name in (".", "..") or "/" in name or "%" in name:
            return [_invalid_value(field, name, "may not contain '/' or '%'")]
        return []
    if kind in _DNS1035_NAMED:
        if len(name) > 63 or not _DNS1035.match(name):
            return [_invalid_value(field, name, _DNS1035_MSG)]
        return []
    if kind in _LABEL_NAMED:
        if len(name) > 63 or not _LABEL.match(name):
            return [_invalid_value(field, name, _LABEL_MSG)]
        return []
    if len(name) > 253 or not _SUBDOMAIN.match(name):
        return [_invalid_value(field, name, _SUBDOMAIN_MSG)]
    return []


def _check_labels(labels: Any, field: str) -> list[Cause]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [_invalid_value(field, labels, "must be a map of strings")]
    causes = []
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if (prefix and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix))) or (
            not name or len(name) > 63 or not _QUALIFIED.match(name)
        ):
            causes.append(
                _invalid_value(
                    field, key, "name part must consist of alphanumeric characters, '-', '_' or '.'"
                )
            )
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                _invalid_value(
                    f"{field}",
                    value,
                    "a valid label must be an empty "
                    "string or consist of alphanumeric characters, '-', "
                    "'_' or '.'",
                )
            )
    return causes


def _check_pod_template(template: Any, field: str) -> list[Cause]:
    if not isinstance(template, dict):
        return [_required(field)]
    spec = template.get("spec")
    if not isinstance(spec, dict):
        return [_required(f"{field}.spec")]
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [_required(f"{field}.spec.containers")]
    causes: list[Cause] = []
    for n, container in enumerate(containers):
        path = f"{field}.spec.containers[{n}]"
        if not isinstance(container, dict):
            causes.append(_invalid_value(path, container, "must be an object"))
            continue
        name = container.get("name")
        if not name:
            causes.append(_required(f"{path}.name"))
        elif not isinstance(name, str) or len(name) > 63 or not _LABEL.match(name):
            causes.append(_invalid_value(f"{path}.name", name, _LABEL_MSG))
        if not container.get("image"):
            causes.append(_required(f"{path}.image"))
    return causes


def _selector_matches(selector: Any, labels: Any) -> bool:
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if (op == "In" and labels.get(key) not in values) or (
            op == "NotIn" and labels.get(key) in values
        ):
            return False
        if (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


def _check_workload(kind: str, spec: Any) -> list[Cause]:
    if not isinstance(spec, dict):
        return [_required("spec")]
    causes: list[Cause] = []
    template = spec.get("template")
    if kind in _WORKLOADS:
        selector = spec.get("selector")
        if not isinstance(selector, dict) or not (
            selector.get("matchLabels") or selector.get("matchExpressions")
        ):
            causes.append(_required("spec.selector"))
        elif isinstance(template, dict) and not _selector_matches(
            selector, (template.get("metadata") or {}).get("labels")
        ):
            labels = (template.get("metadata") or {}).get("labels")
            causes.append(
                _invalid_value(
                    "spec.template.metadata.labels",
                    labels,
                    "`selector` does not match template `labels`",
                )
            )
    if kind == "CronJob":
        if not spec.get("schedule"):
            causes.append(_required("spec.schedule"))
        job_template = (spec.get("jobTemplate") or {}).get("spec") or {}
        causes += _check_pod_template(
            job_template.get("template"), "spec.jobTemplate.spec.template"
        )
        return causes
    causes += _check_pod_template(template, "spec.template")
    if kind == "Job" and isinstance(template, dict):
        policy = (template.get("spec") or {}).get("restartPolicy")
        if policy not in ("Never", "OnFailure"):
            causes.append(
                (
                    "spec.template.spec.restartPolicy",
                    "FieldValueNotSupported",
                    f'Unsupported value: {_fmt(policy)}: supported values: "OnFailure", "Never"',
                )
            )
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
        causes.append(
            _invalid_value("spec.replicas", replicas, "must be greater than or equal to 0")
        )
    return causes


def _check_kind_specific(kind: str, obj: JsonObj) -> list[Cause]:
    spec = obj.get("spec")
    if kind in _WORKLOADS or kind in ("Job", "CronJob"):
        return _check_workload(kind, spec)
    if kind == "Service":
        spec = spec if isinstance(spec, dict) else {}
        if (
            spec.get("type", "ClusterIP") != "ExternalName"
            and spec.get("clusterIP") != "None"
            and not spec.get("ports")
        ):
            return [_required("spec.ports")]
        causes = []
        for n, port in enumerate(spec.get("ports") or []):
            value = port.get("port") if isinstance(port, dict) else None
            if not isinstance(value, int) or not 0 < value < 65536:
                causes.append(
                    _invalid_value(
                        f"spec.ports[{n}].port", value, "must be between 1 and 65535, inclusive"
                    )
                )
        return causes
    if kind in ("ConfigMap", "Secret"):
        causes = []
        for section in ("data", "binaryData", "stringData"):
            for key in obj.get(section) or {}:
                if not re.match(r"^[-._a-zA-Z0-9]+$", key):
                    causes.append(
                        _invalid_value(
                            f"{section}[{key}]",
                            key,
                            "a valid config key must consist of "
                            "alphanumeric characters, '-', '_' or '.'",
                        )
                    )
        return causes
    if kind in ("RoleBinding", "ClusterRoleBinding") and not obj.get("roleRef"):
        return [_required("roleRef")]
    return []


def validate(rt: ResourceType, obj: JsonObj, old: JsonObj | None) -> None:
    """Raise 422 Invalid listing every problem with ``obj`` (``old`` is the live object
    on update, for immutability checks)."""
    metadata = obj.get("metadata") or {}
    name = metadata.get("name") or ""
    causes = check_name(rt.kind, name)
    causes += _check_labels(metadata.get("labels"), "metadata.labels")
    annotations = metadata.get("annotations")
    if annotations is not None and not all(isinstance(v, str) for v in annotations.values()):
        causes.append(_invalid_value("metadata.annotations", annotations, "values must be strings"))
    if not rt.custom:
        causes += _check_kind_specific(rt.kind, obj)
    if old is not None:
        causes += _check_immutable(rt.kind, old, obj)
    if causes:
        raise invalid(rt.group, rt.kind, name, causes)


def _check_immutable(kind: str, old: JsonObj, new: JsonObj) -> list[Cause]:
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    msg = "field is immutable"
    if (
        kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
        and old_spec.get("selector") != new_spec.get("selector")
        and "selector" in new_spec
    ):
        return [_invalid_value("spec.selector", new_spec.get("selector"), msg)]
    if kind == "Job" and old_spec.get("template") != new_spec.get("template"):
        return [_invalid_value("spec.template", new_spec.get("template"), msg)]
    if (
        kind == "Service"
        and old_spec.get("clusterIP")
        and new_spec.get("clusterIP")
        and old_spec["clusterIP"] != new_spec["clusterIP"]
    ):
        return [_invalid_value("spec.clusterIP", new_spec["clusterIP"], msg)]
    if kind in ("ConfigMap", "Secret") and old.get("immutable") is True:
        for field in ("data", "binaryData"):
            if old.get(field) != new.get(field):
                return [
                    (
                        "data",
                        "FieldValueForbidden",
                        "Forbidden: field is immutable when `immutable` is set",
                    )
                ]
    if kind == "CustomResourceDefinition" and (
        old_spec.get("group") != new_spec.get("group")
        or (old_spec.get("names") or {}).get("plural")
        != (new_spec.get("names") or {}).get("plural")
    ):
        return [_invalid_value("spec.group", new_spec.get("group"), msg)]
    return []
