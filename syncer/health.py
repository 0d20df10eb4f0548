"""Health after an apply: wait, bounded, for workloads to report ready or complete.

Only the status the controllers publish is read (as `kubectl rollout status` does):
Deployments, StatefulSets and DaemonSets are ready when they observed the latest
generation and every replica is updated and ready; Jobs when `Complete`. A failed Job
or a Deployment past its progress deadline is `degraded`; anything still waiting when
`syncer.health_timeout` runs out is `progressing`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from syncer.kube import Cluster, Forbidden, ResourceInfo

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job"})
FIRST_POLL_INTERVAL = 0.2
LAST_POLL_INTERVAL = 2.0
State = Literal["ready", "waiting", "failed"]
JsonObj = dict[str, Any]


def poll_intervals() -> Iterator[float]:
    """The waits between reads of a workload's status: 0.2 s doubling to 2 s.

    A rollout that is done in a moment is seen in a moment; one that takes minutes is
    read every 2 s. With a thousand syncs waiting at once (a push touching every app),
    a fixed 0.2 s was 5,000 GETs a second: load on the API server that slowed the very
    controllers being waited for.
    """
    interval = FIRST_POLL_INTERVAL
    while True:
        yield interval
        interval = min(interval * 2, LAST_POLL_INTERVAL)


@dataclass(frozen=True, slots=True)
class Workload:
    info: ResourceInfo
    namespace: str | None
    name: str


@dataclass(frozen=True, slots=True)
class HealthReport:
    health: Literal["healthy", "progressing", "degraded"]
    problems: list[str]
    """One line per workload that is not ready, e.g. `Job ns/x: BackoffLimitExceeded`."""


async def wait_healthy(
    cluster: Cluster, workloads: list[Workload], *, timeout: float
) -> HealthReport:
    """Poll the workloads' status until all are ready, one failed, or `timeout` passes."""
    pending = list(workloads)
    deadline = time.monotonic() + timeout
    problems: dict[Workload, str] = {}
    intervals = poll_intervals()
    while pending:
        objects = await asyncio.gather(*(_read(cluster, w) for w in pending))
        still: list[Workload] = []
        failed: list[str] = []
        for workload, obj in zip(pending, objects, strict=True):
            label = f"{workload.info.kind} {_where(workload)}"
            if isinstance(obj, Forbidden):
                failed.append(f"{label}: health unknown, {obj.message}")
                continue
            if obj is None:
                problems[workload] = f"{label}: not found"
                still.append(workload)
                continue
            state, why = assess(obj)
            if state == "failed":
                failed.append(f"{label}: {why}")
            elif state == "waiting":
                problems[workload] = f"{label}: {why}"
                still.append(workload)
        if failed:
            return HealthReport("degraded", failed)
        pending = still
        if not pending:
            return HealthReport("healthy", [])
        if time.monotonic() >= deadline:
            return HealthReport("progressing", [problems[w] for w in pending])
        await asyncio.sleep(min(next(intervals), max(0.0, deadline - time.monotonic())))
    return HealthReport("healthy", [])


async def _read(cluster: Cluster, workload: Workload) -> JsonObj | Forbidden | None:
    """The workload as the app's account sees it; its refusal when it may not read it."""
    try:
        return await cluster.get(workload.info, workload.namespace, workload.name)
    except Forbidden as exc:
        return exc


def _where(workload: Workload) -> str:
    return f"{workload.namespace}/{workload.name}" if workload.namespace else workload.name


def _condition(status: JsonObj, kind: str) -> JsonObj | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            found: JsonObj = cond
            return found
    return None


def assess(obj: JsonObj) -> tuple[State, str]:
    """The readiness of one workload from its status, with a reason when not ready."""
    kind = obj.get("kind", "")
    status: JsonObj = obj.get("status") or {}
    spec: JsonObj = obj.get("spec") or {}
    generation = int(obj.get("metadata", {}).get("generation") or 0)
    if kind == "Job":
        failed = _condition(status, "Failed")
        if failed and failed.get("status") == "True":
            return "failed", str(failed.get("reason") or "job failed")
        complete = _condition(status, "Complete")
        if complete and complete.get("status") == "True":
            return "ready", ""
        return "waiting", "not complete yet"
    if int(status.get("observedGeneration") or 0) < generation:
        return "waiting", "rollout not observed yet"
    if kind == "Deployment":
        progressing = _condition(status, "Progressing")
        if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
            return "failed", str(progressing.get("message") or "progress deadline exceeded")
        want = int(spec.get("replicas", 1))
        updated = int(status.get("updatedReplicas") or 0)
        available = int(status.get("availableReplicas") or 0)
        if updated >= want and available >= want:
            return "ready", ""
        return "waiting", f"{available}/{want} replicas available"
    if kind == "StatefulSet":
        want = int(spec.get("replicas", 1))
        ready = int(status.get("readyReplicas") or 0)
        updated = int(status.get("updatedReplicas") or 0)
        if ready >= want and updated >= want:
            return "ready", ""
        return "waiting", f"{ready}/{want} replicas ready"
    if kind == "DaemonSet":
        want = int(status.get("desiredNumberScheduled") or 0)
        ready = int(status.get("numberReady") or 0)
        updated = int(status.get("updatedNumberScheduled") or 0)
        if ready >= want and updated >= want:
            return "ready", ""
        return "waiting", f"{ready}/{want} pods ready"
    return "ready", ""
