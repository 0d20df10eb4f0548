"""Stand-ins for the controllers a real cluster runs, so health checks have something to see.

* Workloads (Deployment, StatefulSet, DaemonSet, ReplicaSet): on every new generation the
  status first shows the rollout in progress (``observedGeneration`` caught up, replicas not
  ready), then after ``ready_delay`` seconds all replicas ready with the conditions
  ``kubectl rollout status``/``kubectl wait`` look for.
* Jobs complete (``Complete`` and ``SuccessCriteriaMet`` conditions) after the delay, or
  fail when annotated ``devcluster.gitops.dev/fail: "true"``.
* Every new namespace gets what kube-controller-manager gives it: the ``default``
  ServiceAccount and the ``kube-root-ca.crt`` ConfigMap (its ``ca.crt`` empty: the
  emulator serves plain HTTP, there is no CA to publish).
* CustomResourceDefinitions report ``NamesAccepted``/``Established`` and their resources
  become servable; deleting the CRD removes the resources and their objects.

A workload never becomes ready when annotated ``devcluster.gitops.dev/never-ready: "true"``
or listed in :attr:`ControllerSettings.never_ready`, to test health timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from devcluster.operations import Api, WriteOptions, now_rfc3339
from devcluster.resources import ResourceType
from devcluster.status import ApiError
from devcluster.store import Stored

JsonObj = dict[str, Any]
NEVER_READY = "devcluster.gitops.dev/never-ready"
FAIL = "devcluster.gitops.dev/fail"
MANAGER = "kube-controller-manager"
_WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})
ROOT_CA = "kube-root-ca.crt"
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)
log = logging.getLogger(__name__)


@dataclass(slots=True)
class ControllerSettings:
    """Knobs tests turn: how long until workloads are ready, and which never are."""

    ready_delay: float = 0.5
    """Seconds from a new generation to all replicas ready (or a Job completing)."""
    never_ready: set[tuple[str, str, str]] = field(default_factory=set)
    """(kind, namespace, name) of workloads that stay unready forever."""


def _condition(
    kind: str, status: str, reason: str, message: str, now: str, update: bool = False
) -> JsonObj:
    cond = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
    }
    if update:
        cond["lastUpdateTime"] = now
    return cond


def _progress_status(kind: str, obj: JsonObj, gen: int, now: str) -> JsonObj:
    spec = obj.get("spec") or {}
    old = obj.get("status") or {}
    replicas = int(spec.get("replicas", 1))
    name = obj["metadata"]["name"]
    if kind == "Deployment":
        return {
            "observedGeneration": gen,
            "replicas": replicas,
            "updatedReplicas": 0,
            "unavailableReplicas": replicas,
            "conditions": [
                _condition(
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                    now,
                    True,
                ),
                _condition(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    f'ReplicaSet "{name}-5d9c8b7f6d" is progressing.',
                    now,
                    True,
                ),
            ],
        }
    if kind in ("StatefulSet", "ReplicaSet"):
        return {"observedGeneration": gen, "replicas": replicas, "availableReplicas": 0}
    if kind == "DaemonSet":
        return {
            "observedGeneration": gen,
            "desiredNumberScheduled": 1,
            "currentNumberScheduled": 1,
            "numberReady": 0,
            "numberUnavailable": 1,
            "numberMisscheduled": 0,
            "updatedNumberScheduled": 0,
        }
    return {"startTime": old.get("startTime", now), "active": 1, "ready": 0, "terminating": 0}


def _done_status(kind: str, obj: JsonObj, gen: int, now: str) -> JsonObj:
    spec = obj.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    name = obj["metadata"]["name"]
    if kind == "Deployment":
        return {
            "observedGeneration": gen,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                _condition(
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                    now,
                    True,
                ),
                _condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{name}-5d9c8b7f6d" has successfully progressed.',
                    now,
                    True,
                ),
            ],
        }
    if kind == "StatefulSet":
        revision = f"{name}-5d9c8b7f6d"
        return {
            "observedGeneration": gen,
            "replicas": replicas,
            "readyReplicas": replicas,
            "currentReplicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }
    if kind == "ReplicaSet":
        return {
            "observedGeneration": gen,
            "replicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "fullyLabeledReplicas": replicas,
        }
    if kind == "DaemonSet":
        return {
            "observedGeneration": gen,
            "desiredNumberScheduled": 1,
            "currentNumberScheduled": 1,
            "numberReady": 1,
            "numberAvailable": 1,
            "numberMisscheduled": 0,
            "updatedNumberScheduled": 1,
        }
    started = (obj.get("status") or {}).get("startTime", now)
    if (obj["metadata"].get("annotations") or {}).get(FAIL) == "true":
        return {
            "startTime": started,
            "failed": 1,
            "ready": 0,
            "terminating": 0,
            "conditions": [
                _condition(
                    "FailureTarget",
                    "True",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    now,
                ),
                _condition(
                    "Failed",
                    "True",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    now,
                ),
            ],
        }
    return {
        "startTime": started,
        "completionTime": now,
        "succeeded": int(spec.get("completions", 1)),
        "ready": 0,
        "terminating": 0,
        "conditions": [
            _condition(
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            ),
            _condition(
                "Complete",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            ),
        ],
    }


class Controllers:
    """Reacts to writes (via :attr:`Api.on_write`) with status updates of its own."""

    def __init__(self, api: Api, settings: ControllerSettings) -> None:
        self.api = api
        self.settings = settings
        self._tasks: dict[tuple[str, str, str], tuple[int, asyncio.Task[None]]] = {}
        self._done: dict[tuple[str, str, str], int] = {}
        api.on_write.append(self._on_write)

    async def stop(self) -> None:
        """Cancel and await every pending reconcile; safe to call twice."""
        tasks = [task for _, task in self._tasks.values()]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_write(self, rt: ResourceType, stored: Stored | None, old: JsonObj | None) -> None:
        if rt.group == "apiextensions.k8s.io" and rt.kind == "CustomResourceDefinition":
            self._crd(stored, old)
        elif rt.kind in _WORKLOADS and not rt.custom and rt.group in ("apps", "batch"):
            self._workload(rt, stored, old)
        elif rt.kind == "Namespace" and not rt.group and stored is not None and old is None:
            self._namespace_defaults(stored.name)

    # -------------------------------------------------------------- namespaces
    def _namespace_defaults(self, namespace: str) -> None:
        """What the service-account and root-CA publisher controllers add (at once here:
        the real ones take a moment, which clients must not rely on either way)."""
        registry = self.api.registry
        for plural, body in (
            ("serviceaccounts", {"metadata": {"name": "default"}}),
            (
                "configmaps",
                {
                    "metadata": {
                        "name": ROOT_CA,
                        "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION},
                    },
                    "data": {"ca.crt": ""},
                },
            ),
        ):
            rt = registry.lookup("", "v1", plural)
            assert rt is not None  # noqa: S101 - built-in
            try:
                self.api.create(rt, namespace, body, WriteOptions(manager=MANAGER))
            except ApiError:
                log.warning("devcluster could not add %s to namespace %s", plural, namespace)

    # --------------------------------------------------------------- workloads
    def _workload(self, rt: ResourceType, stored: Stored | None, old: JsonObj | None) -> None:
        source = stored.obj if stored else old
        assert source is not None  # noqa: S101 - a write always has one side
        key = (rt.kind, source["metadata"].get("namespace", ""), source["metadata"]["name"])
        if stored is None:
            self._cancel(key)
            self._done.pop(key, None)
            return
        gen = int(stored.obj["metadata"].get("generation", 1))
        if self._done.get(key) == gen or stored.obj["metadata"].get("deletionTimestamp"):
            return
        running = self._tasks.get(key)
        if running is not None and running[0] == gen:
            return
        self._cancel(key)
        task = asyncio.get_running_loop().create_task(
            self._rollout(rt, key, gen), name=f"devcluster-rollout-{'/'.join(key)}"
        )
        self._tasks[key] = (gen, task)

    def _cancel(self, key: tuple[str, str, str]) -> None:
        running = self._tasks.pop(key, None)
        if running is not None:
            running[1].cancel()

    def _never_ready(self, key: tuple[str, str, str], obj: JsonObj) -> bool:
        annotations = obj["metadata"].get("annotations") or {}
        return key in self.settings.never_ready or annotations.get(NEVER_READY) == "true"

    async def _rollout(self, rt: ResourceType, key: tuple[str, str, str], gen: int) -> None:
        try:
            await asyncio.sleep(0)
            if not self._write_status(rt, key, gen, _progress_status):
                return
            await asyncio.sleep(self.settings.ready_delay)
            found = self.api.store.get((rt.group, rt.plural), key[1], key[2])
            if found is None or self._never_ready(key, found.obj):
                return
            self._done[key] = gen
            self._write_status(rt, key, gen, _done_status)
        except ApiError:
            log.warning("devcluster controller could not update %s", "/".join(key))
        finally:
            current = self._tasks.get(key)
            if current is not None and current[0] == gen and current[1] is asyncio.current_task():
                del self._tasks[key]

    def _write_status(
        self, rt: ResourceType, key: tuple[str, str, str], gen: int, build: Any
    ) -> bool:
        found = self.api.store.get((rt.group, rt.plural), key[1], key[2])
        if found is None or int(found.obj["metadata"].get("generation", 1)) != gen:
            return False
        body = {**found.obj, "status": build(rt.kind, found.obj, gen, now_rfc3339())}
        self.api.update(
            rt, key[1], key[2], body, WriteOptions(manager=MANAGER, subresource="status")
        )
        return True

    # -------------------------------------------------------------------- CRDs
    def _crd(self, stored: Stored | None, old: JsonObj | None) -> None:
        if stored is None:
            assert old is not None  # noqa: S101 - a deletion has the old object
            spec = old.get("spec") or {}
            group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
            self.api.registry.remove(group, plural)
            self.api.store.drop_resource((group, plural))
            return
        conditions = (stored.obj.get("status") or {}).get("conditions") or []
        established = any(
            c.get("type") == "Established" and c.get("status") == "True" for c in conditions
        )
        if established and old is not None and old.get("spec") == stored.obj.get("spec"):
            return
        name = stored.obj["metadata"]["name"]
        asyncio.get_running_loop().call_soon(self._establish, name)

    def _establish(self, name: str) -> None:
        crd_rt = self.api.registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert crd_rt is not None  # noqa: S101 - built-in
        found = self.api.store.get(("apiextensions.k8s.io", "customresourcedefinitions"), "", name)
        if found is None:
            return
        spec = found.obj.get("spec") or {}
        names = spec.get("names") or {}
        group = spec.get("group", "")
        plural = names.get("plural", "")
        self.api.registry.remove(group, plural)
        storage = ""
        for version in spec.get("versions") or []:
            if version.get("storage"):
                storage = version.get("name", "")
            if not version.get("served", True):
                continue
            subresources = version.get("subresources") or {}
            self.api.registry.add(
                ResourceType(
                    group=group,
                    version=version["name"],
                    kind=names.get("kind", ""),
                    plural=plural,
                    namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                    singular=names.get("singular") or names.get("kind", "").lower(),
                    short_names=tuple(names.get("shortNames") or ()),
                    categories=tuple(names.get("categories") or ()),
                    subresources=tuple(s for s in ("scale", "status") if s in subresources),
                    has_generation=True,
                    custom=True,
                    schema=(version.get("schema") or {}).get("openAPIV3Schema"),
                )
            )
        now = now_rfc3339()
        accepted = dict(names)
        accepted.setdefault("singular", names.get("kind", "").lower())
        accepted.setdefault("listKind", names.get("kind", "") + "List")
        status = {
            "conditions": [
                _condition("NamesAccepted", "True", "NoConflicts", "no conflicts found", now),
                _condition(
                    "Established",
                    "True",
                    "InitialNamesAccepted",
                    "the initial names have been accepted",
                    now,
                ),
            ],
            "acceptedNames": accepted,
            "storedVersions": [storage] if storage else [],
        }
        try:
            self.api.update(
                crd_rt,
                "",
                name,
                {**found.obj, "status": status},
                WriteOptions(manager="kube-apiserver", subresource="status"),
            )
        except ApiError:
            log.warning("devcluster could not establish CRD %s", name)
