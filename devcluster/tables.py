"""``meta.k8s.io/v1`` Table responses, which ``kubectl get`` asks for to print columns.

kubectl sends ``Accept: application/json;as=Table;g=meta.k8s.io;v=v1`` and prints the
server's columns. We give every kind NAME and AGE, and workloads the READY-style columns
their real printers have, so ``kubectl get`` output looks familiar.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from devcluster.resources import ResourceType
from devcluster.store import Stored

JsonObj = dict[str, Any]


def _age(created: str | None) -> str:
    if not created:
        return "<unknown>"
    then = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - then).total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _deployment(obj: JsonObj) -> list[Any]:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    return [
        f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
    ]


def _statefulset(obj: JsonObj) -> list[Any]:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    return [f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 1)}"]


def _job(obj: JsonObj) -> list[Any]:
    st = obj.get("status") or {}
    complete = any(
        c.get("type") == "Complete" and c.get("status") == "True"
        for c in st.get("conditions") or []
    )
    completions = (obj.get("spec") or {}).get("completions", 1)
    return ["Complete" if complete else "Running", f"{st.get('succeeded', 0)}/{completions}"]


def _namespace(obj: JsonObj) -> list[Any]:
    return [(obj.get("status") or {}).get("phase", "Active")]


_EXTRA: dict[str, tuple[list[str], Callable[[JsonObj], list[Any]]]] = {
    "Deployment": (["Ready", "Up-to-date", "Available"], _deployment),
    "StatefulSet": (["Ready"], _statefulset),
    "Job": (["Status", "Completions"], _job),
    "Namespace": (["Status"], _namespace),
}


def _column(name: str, fmt: str = "") -> JsonObj:
    return {"name": name, "type": "string", "format": fmt, "description": name, "priority": 0}


def table(rt: ResourceType, items: list[Stored], rv: int, include: str) -> JsonObj:
    """A Table of ``items``; ``includeObject`` None/Metadata/Object as kubectl requests."""
    names, extract = _EXTRA.get(rt.kind, ([], lambda _obj: []))
    columns = [_column("Name", "name"), *(_column(n) for n in names), _column("Age")]
    rows = []
    for stored in items:
        obj = stored.obj
        metadata = obj["metadata"]
        row: JsonObj = {
            "cells": [metadata["name"], *extract(obj), _age(metadata.get("creationTimestamp"))]
        }
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": {k: v for k, v in metadata.items() if k != "managedFields"},
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": str(rv)},
        "columnDefinitions": columns,
        "rows": rows,
    }
