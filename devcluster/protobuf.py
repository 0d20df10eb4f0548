"""Kubernetes protobuf request bodies, read as the JSON object the same request would carry.

kubectl creates built-in kinds imperatively (``kubectl create namespace|configmap|secret|
deployment|job|cronjob|service|serviceaccount|role|rolebinding|ingress|quota|...``, every
``kubectl create`` subcommand but ``token``) through client-go's
typed clients, and those send ``application/vnd.kubernetes.protobuf`` (while listing JSON
in ``Accept``, so every answer stays JSON). ``kubectl run``, ``apply``, ``edit`` and
``delete`` send JSON.

The body is the magic ``k8s\\x00`` and a ``runtime.Unknown`` message (typeMeta
{apiVersion=1, kind=2} = 1, raw = 2, contentEncoding = 3, contentType = 4); ``raw`` is
the object's own message. Those messages are proto2 written by gogo-protobuf: a Go
field that is not a pointer is always written, zero or not, and a pointer only when set.
So a zero scalar is dropped, as the JSON encoding's ``omitempty`` would have dropped it,
except for fields marked as pointers (``?``), where a present zero means what it says
(``--replicas=0``); a message is always kept, even empty, as encoding/json never omits a
struct (``"resources": {}``). Status is never read on create or update, so it is skipped.

:data:`MESSAGES` is the table of field numbers, one entry per message type we read,
taken from the ``generated.proto`` files of k8s.io/api and k8s.io/apimachinery v0.37.2.
A field missing from the table is harmless while it holds a zero value; with anything in
it the request is refused with a 415 that names the field and says how to send JSON,
rather than stored without it. The wire format itself (varints, length-delimited fields)
is read by the few lines below: PyPI ``protobuf`` only exposes its decoder through
generated or descriptor-built message classes, which would add a dependency and a second
copy of this table for nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from devcluster import status
from devcluster.status import ApiError

JsonObj = dict[str, Any]
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

# Field types: "string", "int" (any varint integer), "bool", "bytes" (base64 in JSON);
# "Time", "Quantity", "IntOrString" (messages that are scalars in JSON); a message name
# from this table; "[T]" repeated T; "{T}" map<string, T>; a trailing "?" marks a Go
# pointer (a present zero is kept); "-" is skipped (status).
Table = dict[int, tuple[str, str]]

_META: dict[str, Table] = {
    "ObjectMeta": {
        1: ("name", "string"),
        2: ("generateName", "string"),
        3: ("namespace", "string"),
        4: ("selfLink", "string"),
        5: ("uid", "string"),
        6: ("resourceVersion", "string"),
        7: ("generation", "int"),
        8: ("creationTimestamp", "Time"),
        9: ("deletionTimestamp", "Time"),
        10: ("deletionGracePeriodSeconds", "int?"),
        11: ("labels", "{string}"),
        12: ("annotations", "{string}"),
        13: ("ownerReferences", "[OwnerReference]"),
        14: ("finalizers", "[string]"),
    },
    "OwnerReference": {
        1: ("kind", "string"),
        3: ("name", "string"),
        4: ("uid", "string"),
        5: ("apiVersion", "string"),
        6: ("controller", "bool?"),
        7: ("blockOwnerDeletion", "bool?"),
    },
    "LabelSelector": {
        1: ("matchLabels", "{string}"),
        2: ("matchExpressions", "[LabelSelectorRequirement]"),
    },
    "LabelSelectorRequirement": {
        1: ("key", "string"),
        2: ("operator", "string"),
        3: ("values", "[string]"),
    },
}

_CORE: dict[str, Table] = {
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec"), 3: ("status", "-")},
    "NamespaceSpec": {1: ("finalizers", "[string]")},
    "ConfigMap": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "{string}"),
        3: ("binaryData", "{bytes}"),
        4: ("immutable", "bool?"),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "{bytes}"),
        3: ("type", "string"),
        4: ("stringData", "{string}"),
        5: ("immutable", "bool?"),
    },
    "ServiceAccount": {
        1: ("metadata", "ObjectMeta"),
        2: ("secrets", "[ObjectReference]"),
        3: ("imagePullSecrets", "[LocalObjectReference]"),
        4: ("automountServiceAccountToken", "bool?"),
    },
    "ObjectReference": {
        1: ("kind", "string"),
        2: ("namespace", "string"),
        3: ("name", "string"),
        4: ("uid", "string"),
        5: ("apiVersion", "string"),
        6: ("resourceVersion", "string"),
        7: ("fieldPath", "string"),
    },
    "LocalObjectReference": {1: ("name", "string")},
    "Pod": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec"), 3: ("status", "-")},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec")},
    "PodSpec": {
        2: ("containers", "[Container]"),
        3: ("restartPolicy", "string"),
        4: ("terminationGracePeriodSeconds", "int?"),
        5: ("activeDeadlineSeconds", "int?"),
        6: ("dnsPolicy", "string"),
        7: ("nodeSelector", "{string}"),
        8: ("serviceAccountName", "string"),
        9: ("serviceAccount", "string"),
        10: ("nodeName", "string"),
        11: ("hostNetwork", "bool"),
        12: ("hostPID", "bool"),
        13: ("hostIPC", "bool"),
        15: ("imagePullSecrets", "[LocalObjectReference]"),
        16: ("hostname", "string"),
        17: ("subdomain", "string"),
        19: ("schedulerName", "string"),
        20: ("initContainers", "[Container]"),
        21: ("automountServiceAccountToken", "bool?"),
        22: ("tolerations", "[Toleration]"),
        23: ("hostAliases", "[HostAlias]"),
        24: ("priorityClassName", "string"),
        25: ("priority", "int?"),
        27: ("shareProcessNamespace", "bool?"),
        29: ("runtimeClassName", "string?"),
        30: ("enableServiceLinks", "bool?"),
        31: ("preemptionPolicy", "string?"),
        32: ("overhead", "{Quantity}"),
        35: ("setHostnameAsFQDN", "bool?"),
        37: ("hostUsers", "bool?"),
        38: ("schedulingGates", "[PodSchedulingGate]"),
        40: ("resources", "ResourceRequirements?"),
        41: ("hostnameOverride", "string?"),
    },
    "Container": {
        1: ("name", "string"),
        2: ("image", "string"),
        3: ("command", "[string]"),
        4: ("args", "[string]"),
        5: ("workingDir", "string"),
        6: ("ports", "[ContainerPort]"),
        7: ("env", "[EnvVar]"),
        8: ("resources", "ResourceRequirements"),
        9: ("volumeMounts", "[VolumeMount]"),
        13: ("terminationMessagePath", "string"),
        14: ("imagePullPolicy", "string"),
        15: ("securityContext", "SecurityContext?"),
        16: ("stdin", "bool"),
        17: ("stdinOnce", "bool"),
        18: ("tty", "bool"),
        19: ("envFrom", "[EnvFromSource]"),
        20: ("terminationMessagePolicy", "string"),
        24: ("restartPolicy", "string?"),
    },
    "ContainerPort": {
        1: ("name", "string"),
        2: ("hostPort", "int"),
        3: ("containerPort", "int"),
        4: ("protocol", "string"),
        5: ("hostIP", "string"),
    },
    "EnvVar": {1: ("name", "string"), 2: ("value", "string"), 3: ("valueFrom", "EnvVarSource?")},
    "EnvVarSource": {
        1: ("fieldRef", "ObjectFieldSelector?"),
        2: ("resourceFieldRef", "ResourceFieldSelector?"),
        3: ("configMapKeyRef", "KeySelector?"),
        4: ("secretKeyRef", "KeySelector?"),
    },
    "ObjectFieldSelector": {1: ("apiVersion", "string"), 2: ("fieldPath", "string")},
    "ResourceFieldSelector": {
        1: ("containerName", "string"),
        2: ("resource", "string"),
        3: ("divisor", "Quantity"),
    },
    # ConfigMapKeySelector and SecretKeySelector: the same fields; the reference's name
    # is inlined in JSON (field 1 is the embedded LocalObjectReference).
    "KeySelector": {
        1: ("", "LocalObjectReference"),
        2: ("key", "string"),
        3: ("optional", "bool?"),
    },
    "EnvFromSource": {
        1: ("prefix", "string"),
        2: ("configMapRef", "EnvSource?"),
        3: ("secretRef", "EnvSource?"),
    },
    "EnvSource": {1: ("", "LocalObjectReference"), 2: ("optional", "bool?")},
    "ResourceRequirements": {1: ("limits", "{Quantity}"), 2: ("requests", "{Quantity}")},
    "VolumeMount": {
        1: ("name", "string"),
        2: ("readOnly", "bool"),
        3: ("mountPath", "string"),
        4: ("subPath", "string"),
        5: ("mountPropagation", "string?"),
        6: ("subPathExpr", "string"),
        7: ("recursiveReadOnly", "string?"),
    },
    "SecurityContext": {
        1: ("capabilities", "Capabilities?"),
        2: ("privileged", "bool?"),
        4: ("runAsUser", "int?"),
        5: ("runAsNonRoot", "bool?"),
        6: ("readOnlyRootFilesystem", "bool?"),
        7: ("allowPrivilegeEscalation", "bool?"),
        8: ("runAsGroup", "int?"),
        9: ("procMount", "string?"),
    },
    "Capabilities": {1: ("add", "[string]"), 2: ("drop", "[string]")},
    "Toleration": {
        1: ("key", "string"),
        2: ("operator", "string"),
        3: ("value", "string"),
        4: ("effect", "string"),
        5: ("tolerationSeconds", "int?"),
    },
    "HostAlias": {1: ("ip", "string"), 2: ("hostnames", "[string]")},
    "PodSchedulingGate": {1: ("name", "string")},
    "Service": {1: ("metadata", "ObjectMeta"), 2: ("spec", "ServiceSpec"), 3: ("status", "-")},
    "ServiceSpec": {
        1: ("ports", "[ServicePort]"),
        2: ("selector", "{string}"),
        3: ("clusterIP", "string"),
        4: ("type", "string"),
        5: ("externalIPs", "[string]"),
        7: ("sessionAffinity", "string"),
        8: ("loadBalancerIP", "string"),
        9: ("loadBalancerSourceRanges", "[string]"),
        10: ("externalName", "string"),
        11: ("externalTrafficPolicy", "string"),
        12: ("healthCheckNodePort", "int"),
        13: ("publishNotReadyAddresses", "bool"),
        17: ("ipFamilyPolicy", "string?"),
        18: ("clusterIPs", "[string]"),
        19: ("ipFamilies", "[string]"),
        20: ("allocateLoadBalancerNodePorts", "bool?"),
        21: ("loadBalancerClass", "string?"),
        22: ("internalTrafficPolicy", "string?"),
        23: ("trafficDistribution", "string?"),
    },
    "ServicePort": {
        1: ("name", "string"),
        2: ("protocol", "string"),
        3: ("port", "int"),
        4: ("targetPort", "IntOrString"),
        5: ("nodePort", "int"),
        6: ("appProtocol", "string?"),
    },
}

_APPS_BATCH_RBAC: dict[str, Table] = {
    "Deployment": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "DeploymentSpec"),
        3: ("status", "-"),
    },
    "DeploymentSpec": {
        1: ("replicas", "int?"),
        2: ("selector", "LabelSelector?"),
        3: ("template", "PodTemplateSpec"),
        4: ("strategy", "DeploymentStrategy"),
        5: ("minReadySeconds", "int"),
        6: ("revisionHistoryLimit", "int?"),
        7: ("paused", "bool"),
        9: ("progressDeadlineSeconds", "int?"),
    },
    "DeploymentStrategy": {1: ("type", "string"), 2: ("rollingUpdate", "RollingUpdate?")},
    "RollingUpdate": {1: ("maxUnavailable", "IntOrString?"), 2: ("maxSurge", "IntOrString?")},
    "Job": {1: ("metadata", "ObjectMeta"), 2: ("spec", "JobSpec"), 3: ("status", "-")},
    "JobSpec": {
        1: ("parallelism", "int?"),
        2: ("completions", "int?"),
        3: ("activeDeadlineSeconds", "int?"),
        4: ("selector", "LabelSelector?"),
        5: ("manualSelector", "bool?"),
        6: ("template", "PodTemplateSpec"),
        7: ("backoffLimit", "int?"),
        8: ("ttlSecondsAfterFinished", "int?"),
        9: ("completionMode", "string?"),
        10: ("suspend", "bool?"),
        12: ("backoffLimitPerIndex", "int?"),
        13: ("maxFailedIndexes", "int?"),
        14: ("podReplacementPolicy", "string?"),
        15: ("managedBy", "string?"),
    },
    "CronJob": {1: ("metadata", "ObjectMeta"), 2: ("spec", "CronJobSpec"), 3: ("status", "-")},
    "CronJobSpec": {
        1: ("schedule", "string"),
        2: ("startingDeadlineSeconds", "int?"),
        3: ("concurrencyPolicy", "string"),
        4: ("suspend", "bool?"),
        5: ("jobTemplate", "JobTemplateSpec"),
        6: ("successfulJobsHistoryLimit", "int?"),
        7: ("failedJobsHistoryLimit", "int?"),
        8: ("timeZone", "string?"),
    },
    "JobTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "JobSpec")},
    "Role": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[PolicyRule]")},
    "ClusterRole": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[PolicyRule]")},
    "PolicyRule": {
        1: ("verbs", "[string]"),
        2: ("apiGroups", "[string]"),
        3: ("resources", "[string]"),
        4: ("resourceNames", "[string]"),
        5: ("nonResourceURLs", "[string]"),
    },
    "RoleBinding": {
        1: ("metadata", "ObjectMeta"),
        2: ("subjects", "[Subject]"),
        3: ("roleRef", "RoleRef"),
    },
    "ClusterRoleBinding": {
        1: ("metadata", "ObjectMeta"),
        2: ("subjects", "[Subject]"),
        3: ("roleRef", "RoleRef"),
    },
    "Subject": {
        1: ("kind", "string"),
        2: ("apiGroup", "string"),
        3: ("name", "string"),
        4: ("namespace", "string"),
    },
    "RoleRef": {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")},
}

_POLICY_NETWORKING_SCHEDULING: dict[str, Table] = {
    "PodDisruptionBudget": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "PodDisruptionBudgetSpec"),
        3: ("status", "-"),
    },
    "PodDisruptionBudgetSpec": {
        1: ("minAvailable", "IntOrString?"),
        2: ("selector", "LabelSelector"),
        3: ("maxUnavailable", "IntOrString?"),
        4: ("unhealthyPodEvictionPolicy", "string?"),
    },
    "Ingress": {1: ("metadata", "ObjectMeta"), 2: ("spec", "IngressSpec"), 3: ("status", "-")},
    "IngressSpec": {
        1: ("defaultBackend", "IngressBackend"),
        2: ("tls", "[IngressTLS]"),
        3: ("rules", "[IngressRule]"),
        4: ("ingressClassName", "string?"),
    },
    "IngressTLS": {1: ("hosts", "[string]"), 2: ("secretName", "string")},
    # The rule's value (field 2, IngressRuleValue) is inlined in JSON.
    "IngressRule": {1: ("host", "string"), 2: ("", "IngressRuleValue")},
    "IngressRuleValue": {1: ("http", "HTTPIngressRuleValue")},
    "HTTPIngressRuleValue": {1: ("paths", "[HTTPIngressPath]")},
    "HTTPIngressPath": {
        1: ("path", "string"),
        2: ("backend", "IngressBackend"),
        3: ("pathType", "string?"),
    },
    "IngressBackend": {
        3: ("resource", "TypedLocalObjectReference"),
        4: ("service", "IngressServiceBackend"),
    },
    "IngressServiceBackend": {1: ("name", "string"), 2: ("port", "ServiceBackendPort")},
    "ServiceBackendPort": {1: ("name", "string"), 2: ("number", "int")},
    "TypedLocalObjectReference": {
        1: ("apiGroup", "string?"),
        2: ("kind", "string"),
        3: ("name", "string"),
    },
    "ResourceQuota": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "ResourceQuotaSpec"),
        3: ("status", "-"),
    },
    "ResourceQuotaSpec": {
        1: ("hard", "{Quantity}"),
        2: ("scopes", "[string]"),
        3: ("scopeSelector", "ScopeSelector"),
    },
    "ScopeSelector": {1: ("matchExpressions", "[ScopedResourceSelectorRequirement]")},
    "ScopedResourceSelectorRequirement": {
        1: ("scopeName", "string"),
        2: ("operator", "string"),
        3: ("values", "[string]"),
    },
    "PriorityClass": {
        1: ("metadata", "ObjectMeta"),
        # Not a pointer, but JSON has no omitempty on it: a zero value is a value.
        2: ("value", "int?"),
        3: ("globalDefault", "bool"),
        4: ("description", "string"),
        5: ("preemptionPolicy", "string?"),
    },
}

MESSAGES: dict[str, Table] = {
    **_META,
    **_CORE,
    **_APPS_BATCH_RBAC,
    **_POLICY_NETWORKING_SCHEDULING,
}

KINDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("v1", "Namespace"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "ServiceAccount"),
        ("v1", "Pod"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("policy/v1", "PodDisruptionBudget"),
        ("networking.k8s.io/v1", "Ingress"),
        ("v1", "ResourceQuota"),
        ("scheduling.k8s.io/v1", "PriorityClass"),
    }
)
"""(apiVersion, kind) of each top-level object read from protobuf; its message is the
kind's entry in :data:`MESSAGES`."""

_SCALARS = frozenset({"string", "int", "bool", "bytes", "Time", "Quantity", "IntOrString"})
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
_MAX_DEPTH = 32


class _Malformed(ValueError):
    """The bytes are not a well-formed protobuf message."""


class _Unread(Exception):
    """A field with content that :data:`MESSAGES` does not list."""

    def __init__(self, message_type: str, number: int, path: str) -> None:
        super().__init__(f"field {number} of {message_type} at {path or 'the top'}")
        self.message_type = message_type
        self.number = number
        self.path = path


def decode(raw: bytes, command: str | None = None) -> JsonObj:
    """The JSON object a protobuf body carries; ``command`` is kubectl's
    ``Kubectl-Command`` header, named in the advice of a 415."""
    if not raw.startswith(MAGIC):
        raise status.bad_request(
            f"the body is not Kubernetes protobuf: it does not start with {MAGIC!r}"
        )
    try:
        api_version, kind, body = _envelope(raw[len(MAGIC) :])
        if (api_version, kind) not in KINDS:
            raise _refuse(f"kind {kind!r} ({api_version or 'no apiVersion'})", command)
        try:
            obj = _message(kind, body, "")
        except _Unread as unread:
            where = f" at {unread.path}" if unread.path else ""
            raise _refuse(
                f"protobuf field {unread.number} of {unread.message_type}{where} in a {kind}",
                command,
                partly=True,
            ) from None
    except (_Malformed, UnicodeDecodeError) as exc:
        raise status.bad_request(f"error decoding protobuf: {exc}") from exc
    return {"apiVersion": api_version, "kind": kind, **obj}


def _refuse(what: str, command: str | None, partly: bool = False) -> ApiError:
    """415 that names what could not be read and how to send the same thing as JSON."""
    if partly:
        reads = "reads only the protobuf fields that kubectl's create commands set"
    else:
        kinds = ", ".join(sorted(kind for _, kind in KINDS))
        reads = f"reads protobuf request bodies only for {kinds}"
    if command and command.startswith("kubectl "):
        advice = (
            f'"{command}" sends protobuf; have it print the object and apply that, '
            f"which sends JSON: {command} ... --dry-run=client -o yaml | kubectl apply -f -"
        )
    else:
        advice = "send the object as JSON (Content-Type: application/json)"
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"devcluster (the Kubernetes API emulator of gitops up) {reads}; this request "
        f"carries {what}. {advice}",
    )


def _envelope(data: bytes) -> tuple[str, str, bytes]:
    """(apiVersion, kind, raw) of a ``runtime.Unknown``."""
    api_version = kind = ""
    raw = b""
    for number, wire, value in _fields(data):
        if number == 1:
            for inner, inner_wire, inner_value in _fields(_expect(wire, _BYTES, value)):
                if inner == 1:
                    api_version = _expect(inner_wire, _BYTES, inner_value).decode()
                elif inner == 2:
                    kind = _expect(inner_wire, _BYTES, inner_value).decode()
        elif number == 2:
            raw = _expect(wire, _BYTES, value)
        elif number == 3 and (encoding := _expect(wire, _BYTES, value)):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"protobuf contentEncoding {encoding.decode(errors='replace')!r} is not supported",
            )
    return api_version, kind, raw


def _message(name: str, data: bytes, path: str) -> JsonObj:
    table = MESSAGES[name]
    out: JsonObj = {}
    for number, wire, value in _fields(data):
        field = table.get(number)
        if field is None:
            if not _is_zero(wire, value):
                raise _Unread(name, number, path)
            continue
        key, kind = field
        if kind == "-":
            continue
        where = f"{path}.{key}" if path else key
        if kind.startswith("["):
            element = kind[1:-1]
            if wire == _BYTES and element in ("int", "bool"):  # packed
                items = [_value(element, _VARINT, v, where) for v in _packed(value)]
            else:
                items = [_value(element, wire, value, where)]
            out.setdefault(key, []).extend(items)
        elif kind.startswith("{"):
            entry_key, entry_value = _entry(kind[1:-1], _expect(wire, _BYTES, value), where)
            out.setdefault(key, {})[entry_key] = entry_value
        else:
            base = kind.rstrip("?")
            decoded = _value(base, wire, value, where)
            if key == "":  # an embedded struct whose fields JSON inlines
                out.update(decoded)
            elif base in MESSAGES or kind.endswith("?") or decoded not in ("", 0, False, None):
                out[key] = decoded
    return out


def _value(kind: str, wire: int, value: int | bytes, path: str) -> Any:
    if kind == "int":
        number = _expect(wire, _VARINT, value)
        return number - (1 << 64) if number >= 1 << 63 else number
    if kind == "bool":
        return bool(_expect(wire, _VARINT, value))
    data = _expect(wire, _BYTES, value)
    if kind == "string":
        return data.decode()
    if kind == "bytes":
        return base64.b64encode(data).decode()
    if kind not in ("Quantity", "Time", "IntOrString"):
        return _message(kind, data, path)
    parts = {n: (w, v) for n, w, v in _fields(data)}
    if kind == "Quantity":  # {string = 1}
        return _value("string", *parts.get(1, (_BYTES, b"")), path)
    if kind == "Time":  # {seconds = 1, nanos = 2}; JSON carries whole seconds, zero is null
        seconds = _value("int", *parts.get(1, (_VARINT, 0)), path)
        if not seconds:
            return None
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # IntOrString: {type = 1 (0 int, 1 string), intVal = 2, strVal = 3}
    if _value("int", *parts.get(1, (_VARINT, 0)), path) == 1:
        return _value("string", *parts.get(3, (_BYTES, b"")), path)
    return _value("int", *parts.get(2, (_VARINT, 0)), path)


def _entry(kind: str, data: bytes, path: str) -> tuple[str, Any]:
    """One map entry: key = 1, value = 2 (every map we read has length-delimited values;
    either may be absent when empty)."""
    key, value = "", _value(kind, _BYTES, b"", path)
    for number, wire, raw in _fields(data):
        if number == 1:
            key = _value("string", wire, raw, path)
        elif number == 2:
            value = _value(kind, wire, raw, f"{path}.{key}")
    return key, value


def _is_zero(wire: int, value: int | bytes, depth: int = 0) -> bool:
    """True for a field with nothing in it: 0, empty, or a message of such fields only
    (gogo writes every non-pointer field, so unread messages arrive full of zeros). A
    non-empty string is no message of zeros; nesting deeper than any real object is not
    taken for one either."""
    if isinstance(value, int):
        return value == 0
    if not value:
        return True
    if depth >= _MAX_DEPTH:
        return False
    try:
        return all(_is_zero(w, v, depth + 1) for _, w, v in _fields(value))
    except _Malformed:
        return False


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of a message, in order."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed("field number 0")
        value: int | bytes
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        elif wire == _BYTES:
            length, pos = _varint(data, pos)
            if pos + length > end:
                raise _Malformed("a length-delimited field runs past the end")
            value, pos = data[pos : pos + length], pos + length
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            if pos + size > end:
                raise _Malformed("a fixed-size field runs past the end")
            value, pos = int.from_bytes(data[pos : pos + size], "little"), pos + size
        else:
            raise _Malformed(f"unsupported wire type {wire}")
        yield number, wire, value


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    for index in range(pos, min(pos + 10, len(data))):
        byte = data[index]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, index + 1
        shift += 7
    raise _Malformed("a truncated or over-long varint")


def _packed(data: int | bytes) -> Iterator[int]:
    raw: bytes = _expect(_BYTES, _BYTES, data)
    pos = 0
    while pos < len(raw):
        value, pos = _varint(raw, pos)
        yield value


def _expect(wire: int, expected: int, value: int | bytes) -> Any:
    """``value``, when its wire type is the ``expected`` one."""
    if wire != expected or (expected == _BYTES) != isinstance(value, bytes):
        raise _Malformed(f"wire type {wire} where {expected} was expected")
    return value


def message_types() -> set[str]:
    """Every type name :data:`MESSAGES` refers to that is a message (for a test that each
    has an entry)."""
    names = set()
    for table in MESSAGES.values():
        for _, kind in table.values():
            base = kind.strip("[]{}").rstrip("?")
            if base not in _SCALARS and base != "-":
                names.add(base)
    return names
