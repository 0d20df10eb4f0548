"""The ``scale`` subresource: an ``autoscaling/v1`` Scale view of ``spec.replicas``.

``kubectl scale`` and HorizontalPodAutoscalers read and write replicas through it rather
than the whole object; a write here is a write of the parent's ``spec.replicas``.
"""

from __future__ import annotations

from typing import Any

from devcluster import patching, status
from devcluster.operations import Api, WriteOptions
from devcluster.resources import ResourceType

JsonObj = dict[str, Any]


def _selector(obj: JsonObj) -> str:
    match = (((obj.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
    return ",".join(f"{k}={v}" for k, v in sorted(match.items()))


def to_scale(obj: JsonObj) -> JsonObj:
    """The Scale object of a workload."""
    metadata = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            key: metadata[key]
            for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if key in metadata
        },
        "spec": {"replicas": int((obj.get("spec") or {}).get("replicas", 1))},
        "status": {
            "replicas": int((obj.get("status") or {}).get("replicas", 0)),
            "selector": _selector(obj),
        },
    }


def write_scale(
    api: Api,
    rt: ResourceType,
    namespace: str,
    name: str,
    content_type: str | None,
    body: Any,
    opts: WriteOptions,
) -> JsonObj:
    """Apply a PUT (``content_type`` None) or PATCH of the Scale to the parent object."""
    current = to_scale(api.get(rt, namespace, name).obj)
    if content_type is None:
        new = body
    elif content_type == "application/json-patch+json":
        new = patching.json_patch(current, body)
    elif content_type in (
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    ):
        new = patching.json_merge_patch(current, body)
    else:
        raise status.unsupported_media_type(content_type)
    replicas = ((new or {}).get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise status.invalid(
            "autoscaling",
            "Scale",
            name,
            [
                (
                    "spec.replicas",
                    "FieldValueInvalid",
                    f"Invalid value: {replicas}: must be greater than or equal to 0",
                )
            ],
        )
    wanted_rv = ((new or {}).get("metadata") or {}).get("resourceVersion")
    patch: JsonObj = {"spec": {"replicas": replicas}}
    if wanted_rv:
        patch["metadata"] = {"resourceVersion": wanted_rv}
    # A write of the parent, recorded in managedFields as made through /scale.
    main = WriteOptions(manager=opts.manager, dry_run=opts.dry_run, subresource="scale")
    _, obj = api.patch(rt, namespace, name, "application/merge-patch+json", patch, main)
    return to_scale(obj)
