"""The verbs: create, get, list, update, patch (incl. server-side apply), delete.

Independent of HTTP: every method takes parsed parameters and returns objects or raises
:class:`~devcluster.status.ApiError`. One write path (:meth:`Api._commit`) does what the
apiserver does for every write, in its order: status/spec reset per subresource, defaults,
validation, server-set metadata (uid, generation, creationTimestamp), managedFields, no-op
detection, dry run, then storage under a new resourceVersion.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devcluster import apply as ssa
from devcluster import nodeports, patching, status
from devcluster.defaults import apply_defaults, generate_on_create
from devcluster.resources import Registry, ResourceType
from devcluster.selectors import FieldSelector, LabelSelector
from devcluster.store import Store, Stored, clone
from devcluster.validation import validate

JsonObj = dict[str, Any]
NAMESPACES = ("", "namespaces")
NAMESPACE_CLEANUP_DELAY = 0.1  # seconds between a namespace delete and its content removal
_SERVER_METADATA = (
    "uid",
    "creationTimestamp",
    "generation",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
)


def now_rfc3339() -> str:
    """Now, to the second, as the API server writes timestamps (formatted once a second:
    every write asks twice)."""
    return _rfc3339(int(time.time()))


@functools.lru_cache(maxsize=4)
def _rfc3339(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


@dataclass(frozen=True, slots=True)
class WriteOptions:
    """Query parameters shared by the mutating verbs."""

    manager: str
    dry_run: bool = False
    force: bool = False
    subresource: str = ""


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[Stored]
    resource_version: int
    continue_token: str
    remaining: int | None


def _spec_part(obj: JsonObj) -> JsonObj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Api:
    """The emulated apiserver's object semantics for one cluster."""

    def __init__(self, registry: Registry, store: Store) -> None:
        self.registry = registry
        self.store = store
        # Called after a write is stored (controllers, CRD establishment).
        self.on_write: list[Callable[[ResourceType, Stored | None, JsonObj | None], None]] = []

    # ----------------------------------------------------------------- reads
    def get(self, rt: ResourceType, namespace: str, name: str) -> Stored:
        found = self.store.get((rt.group, rt.plural), namespace, name)
        if found is None:
            raise status.not_found(rt.group, rt.plural, name)
        return found

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        limit: int = 0,
        continue_token: str = "",
    ) -> ListResult:
        items = self.store.objects((rt.group, rt.plural), namespace)
        rv = self.store.resource_version
        if continue_token:
            try:
                token = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                start = (token["ns"], token["name"])
                rv = int(token["rv"])
            except (ValueError, KeyError, TypeError) as exc:
                raise status.bad_request("continue key is not valid") from exc
            items = [s for s in items if (s.namespace, s.name) > start]
        if not labels.empty or not fields.empty:
            items = [
                s
                for s in items
                if labels.matches(s.obj["metadata"].get("labels"))
                and fields.matches(s.obj["metadata"])
            ]
        if limit > 0 and len(items) > limit:
            last = items[limit - 1]
            token_obj = {"rv": rv, "ns": last.namespace, "name": last.name}
            token_text = base64.urlsafe_b64encode(json.dumps(token_obj).encode()).decode()
            return ListResult(items[:limit], rv, token_text, len(items) - limit)
        return ListResult(items, rv, "", None)

    # ---------------------------------------------------------------- writes
    def create(
        self,
        rt: ResourceType,
        namespace: str,
        body: Any,
        opts: WriteOptions,
        *,
        owned: bool = False,
    ) -> JsonObj:
        """``owned``: the caller hands ``body`` over (a freshly parsed request), so it is
        kept rather than copied; the same for :meth:`update` and :meth:`patch`."""
        obj = self._check_body(rt, namespace, body, None, owned=owned)
        metadata = obj["metadata"]
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = metadata["generateName"] + uuid.uuid4().hex[:5]
        name = metadata.get("name") or ""
        if name and self.store.get((rt.group, rt.plural), namespace, name) is not None:
            raise status.already_exists(rt.group, rt.plural, name)
        for key in _SERVER_METADATA:
            metadata.pop(key, None)
        return self._commit(rt, None, obj, opts, "Update")

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        opts: WriteOptions,
        *,
        owned: bool = False,
    ) -> JsonObj:
        obj = self._check_body(
            rt, namespace, body, name, status_only=opts.subresource == "status", owned=owned
        )
        old = self.get(rt, namespace, name).obj
        wanted = obj["metadata"].get("resourceVersion")
        if wanted:
            if wanted != old["metadata"]["resourceVersion"]:
                raise status.conflict(
                    rt.group,
                    rt.plural,
                    name,
                    "the object has been modified; please apply your changes to the latest "
                    "version and try again",
                )
        elif rt.custom:
            raise status.invalid(
                rt.group,
                rt.kind,
                name,
                [
                    (
                        "metadata.resourceVersion",
                        "FieldValueInvalid",
                        "Invalid value: 0x0: must be specified for an update",
                    )
                ],
            )
        return self._commit(rt, old, obj, opts, "Update")

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        opts: WriteOptions,
        *,
        owned: bool = False,
    ) -> tuple[int, JsonObj]:
        if content_type == "application/apply-patch+yaml":
            return self._apply(rt, namespace, name, body, opts, owned)
        old = self.get(rt, namespace, name).obj
        if content_type == "application/merge-patch+json":
            if not isinstance(body, dict):
                raise status.bad_request("merge patch body must be a JSON object")
            new = patching.json_merge_patch(old, body)
        elif content_type == "application/strategic-merge-patch+json":
            if rt.custom:
                raise status.unsupported_media_type(content_type)
            if not isinstance(body, dict):
                raise status.bad_request("strategic merge patch body must be a JSON object")
            new = patching.strategic_merge_patch(old, body)
        elif content_type == "application/json-patch+json":
            new = patching.json_patch(old, body)
        else:
            raise status.unsupported_media_type(content_type)
        new = clone(new)
        wanted = (new.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise status.conflict(
                rt.group,
                rt.plural,
                name,
                "the object has been modified; "
                "please apply your changes to the latest version and try again",
            )
        self._check_identity(rt, namespace, name, new)
        return 200, self._commit(rt, old, new, opts, "Update")

    def _apply(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        opts: WriteOptions,
        owned: bool,
    ) -> tuple[int, JsonObj]:
        if not opts.manager:
            raise status.invalid_options(
                "PatchOptions",
                "fieldManager",
                "FieldValueRequired",
                "Required value: is required for apply patch",
            )
        if not isinstance(body, dict):
            raise status.bad_request("apply body must be an object")
        if body.get("apiVersion") != rt.api_version or body.get("kind") != rt.kind:
            raise status.bad_request(
                f"the API version in the data ({body.get('apiVersion')}) and kind "
                f"({body.get('kind')}) do not match the request ({rt.api_version}, {rt.kind})"
            )
        applied = body if owned else clone(body)
        self._check_identity(rt, namespace, name, applied)
        if rt.subresources and "status" in rt.subresources and opts.subresource != "status":
            applied.pop("status", None)
        found = self.store.get((rt.group, rt.plural), namespace, name)
        live = found.obj if found else None
        if live is None:
            self._check_namespace(rt, namespace, name)
        merged, conflicts = ssa.apply(
            live,
            applied,
            manager=opts.manager,
            force=opts.force,
            now=now_rfc3339(),
            subresource=opts.subresource,
        )
        if conflicts:
            raise status.apply_conflict(
                [(c.owner_key(), c.owner(), ssa.dotted(c.path)) for c in conflicts]
            )
        merged["apiVersion"], merged["kind"] = rt.api_version, rt.kind
        merged["metadata"]["name"] = name
        if rt.namespaced:
            merged["metadata"]["namespace"] = namespace
        if live is None:
            for key in _SERVER_METADATA:
                if key != "managedFields":
                    merged["metadata"].pop(key, None)
        code = 201 if live is None else 200
        return code, self._commit(rt, live, merged, opts, "Apply")

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        options: JsonObj,
        dry_run: bool,
    ) -> JsonObj:
        """Delete now, or mark for deletion while finalizers remain."""
        current = self.get(rt, namespace, name).obj
        preconditions = options.get("preconditions") or {}
        for key in ("uid", "resourceVersion"):
            wanted = preconditions.get(key)
            if wanted and wanted != current["metadata"].get(key):
                raise status.conflict(
                    rt.group,
                    rt.plural,
                    name,
                    f"Precondition failed: {key} in precondition: {wanted}, "
                    f"{key} in object meta: {current['metadata'].get(key)}",
                )
        finalizers = current["metadata"].get("finalizers") or []
        if rt.kind == "Namespace" and not rt.group:
            return self._delete_namespace(rt, current, dry_run)
        if finalizers:
            if current["metadata"].get("deletionTimestamp"):
                return current
            marked = clone(current)
            marked["metadata"]["deletionTimestamp"] = now_rfc3339()
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            if dry_run:
                return marked
            return self._store(rt, marked, current).obj
        if dry_run:
            return current if rt.custom else _success(rt, current)
        removed = self._remove(rt, current)
        return removed.obj if rt.custom else _success(rt, removed.obj)

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        options: JsonObj,
        dry_run: bool,
    ) -> list[JsonObj]:
        result = self.list_objects(rt, namespace, labels, fields)
        return [self.delete(rt, s.namespace, s.name, options, dry_run) for s in result.items]

    # ----------------------------------------------------------- internals
    def _delete_namespace(self, rt: ResourceType, current: JsonObj, dry_run: bool) -> JsonObj:
        marked = clone(current)
        marked["metadata"].setdefault("deletionTimestamp", now_rfc3339())
        marked["metadata"].setdefault("deletionGracePeriodSeconds", 0)
        marked["status"] = {"phase": "Terminating"}
        if dry_run:
            return marked
        if current["metadata"].get("deletionTimestamp") is None:
            current = self._store(rt, marked, current).obj
        self._schedule_namespace(current["metadata"]["name"])
        return current

    def _schedule_namespace(self, name: str) -> None:
        """Run the namespace controller shortly, as the real one runs asynchronously: a
        client deleting a namespace and then its contents sees them still present."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.finish_namespace(name)
            return
        loop.call_later(NAMESPACE_CLEANUP_DELAY, self.finish_namespace, name)

    def finish_namespace(self, name: str) -> None:
        """The namespace controller: delete every object in a terminating namespace, then
        the namespace itself once nothing (e.g. an object held by a finalizer) is left."""
        found = self.store.get(NAMESPACES, "", name)
        if found is None or not found.obj["metadata"].get("deletionTimestamp"):
            return
        left = 0
        for rt in self.registry.all():
            if not rt.namespaced:
                continue
            for stored in self.store.objects((rt.group, rt.plural), name):
                if stored.obj["apiVersion"] != rt.api_version and rt.custom:
                    continue
                if not stored.obj["metadata"].get("deletionTimestamp"):
                    self.delete(rt, name, stored.name, {}, dry_run=False)
                if self.store.get((rt.group, rt.plural), name, stored.name) is not None:
                    left += 1
        if left == 0:
            ns_rt = self.registry.lookup("", "v1", "namespaces")
            assert ns_rt is not None  # noqa: S101 - built-in
            self._remove(ns_rt, found.obj)

    def _remove(self, rt: ResourceType, obj: JsonObj) -> Stored:
        removed = self.store.remove((rt.group, rt.plural), obj)
        for hook in self.on_write:
            hook(rt, None, obj)
        namespace = obj["metadata"].get("namespace")
        if namespace:
            found = self.store.get(NAMESPACES, "", namespace)
            if found is not None and found.obj["metadata"].get("deletionTimestamp"):
                self._schedule_namespace(namespace)
        return removed

    def _store(self, rt: ResourceType, obj: JsonObj, old: JsonObj | None) -> Stored:
        stored = self.store.put((rt.group, rt.plural), obj, old)
        for hook in self.on_write:
            hook(rt, stored, old)
        return stored

    def _check_body(
        self,
        rt: ResourceType,
        namespace: str,
        body: Any,
        name: str | None,
        status_only: bool = False,
        owned: bool = False,
    ) -> JsonObj:
        """A private, checked copy of a write's body. A status write keeps only the body's
        status (and metadata for the checks), so only those are copied."""
        if not isinstance(body, dict):
            raise status.bad_request("the body of the request must be a JSON object")
        if owned:
            obj = body
        elif status_only:
            obj = {k: v for k, v in body.items() if k != "status"}
            obj["metadata"] = dict(body.get("metadata") or {})  # read for the checks only
            if "status" in body:
                obj["status"] = clone(body["status"])
        else:
            obj = clone(body)
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if (kind and kind != rt.kind) or (api_version and api_version != rt.api_version):
            raise status.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
                if api_version != rt.api_version
                else f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        metadata = obj.get("metadata")
        if not isinstance(metadata, dict):
            metadata = obj["metadata"] = {}
        if name is not None:
            self._check_identity(rt, namespace, name, obj)
        elif rt.namespaced:
            if metadata.get("namespace") and metadata["namespace"] != namespace:
                raise status.bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            metadata["namespace"] = namespace
        return obj

    def _check_identity(self, rt: ResourceType, namespace: str, name: str, obj: JsonObj) -> None:
        metadata = obj.setdefault("metadata", {})
        if metadata.get("name") and metadata["name"] != name:
            raise status.bad_request(
                f"the name of the object ({metadata['name']}) does not match the name on the "
                f"URL ({name})"
            )
        metadata["name"] = name
        if rt.namespaced:
            if metadata.get("namespace") and metadata["namespace"] != namespace:
                raise status.bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            metadata["namespace"] = namespace

    def _check_namespace(self, rt: ResourceType, namespace: str, name: str) -> None:
        if not rt.namespaced:
            return
        ns = self.store.get(NAMESPACES, "", namespace)
        if ns is None:
            raise status.not_found("", "namespaces", namespace)
        if ns.obj["metadata"].get("deletionTimestamp"):
            raise status.forbidden(
                rt.group,
                rt.plural,
                name,
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
            )

    def _commit(
        self,
        rt: ResourceType,
        old: JsonObj | None,
        new: JsonObj,
        opts: WriteOptions,
        operation: str,
    ) -> JsonObj:
        metadata = new["metadata"]
        name = metadata.get("name") or ""
        if not rt.namespaced:
            # kube-apiserver drops a namespace sent for a cluster-scoped kind, silently.
            metadata.pop("namespace", None)
        if old is None:
            self._check_namespace(rt, metadata.get("namespace", ""), name)
        has_status = "status" in rt.subresources
        if opts.subresource == "status":
            assert old is not None  # noqa: S101 - status writes need the object
            # Stored objects are never mutated: share all but metadata and status.
            candidate = {**old, "metadata": dict(old["metadata"])}
            if "status" in new:
                candidate["status"] = new["status"]
            else:
                candidate.pop("status", None)
            if operation == "Apply":
                candidate["metadata"]["managedFields"] = metadata.get("managedFields", [])
            new = candidate
            metadata = new["metadata"]
        elif has_status:
            if old is not None and "status" in old:
                new["status"] = clone(old["status"])
            elif old is None:
                new.pop("status", None)
        apply_defaults(rt.kind, new, rt.custom)
        validate(rt, new, old)
        if rt.kind == "Service" and not rt.custom and opts.subresource != "status":
            nodeports.allocate(self.store, new, old)
        if old is None:
            metadata["uid"] = str(uuid.uuid4())
            metadata["creationTimestamp"] = now_rfc3339()
            if rt.has_generation:
                metadata["generation"] = 1
            generate_on_create(rt.kind, new, rt.custom)
        else:
            for key in (
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "resourceVersion",
            ):
                if key in old["metadata"]:
                    metadata[key] = old["metadata"][key]
                else:
                    metadata.pop(key, None)
            if rt.has_generation and _spec_part(old) != _spec_part(new):
                metadata["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if operation != "Apply":
            ssa.record_update(
                old,
                new,
                manager=opts.manager,
                api_version=rt.api_version,
                now=now_rfc3339(),
                subresource=opts.subresource,
            )
        if old is None:
            metadata.pop("resourceVersion", None)
        if old is not None and new == old:
            return old
        if opts.dry_run:
            return new
        if old is not None and metadata.get("deletionTimestamp") and not metadata.get("finalizers"):
            return self._remove(rt, new).obj
        return self._store(rt, new, old).obj


def _success(rt: ResourceType, obj: JsonObj) -> JsonObj:
    details: JsonObj = {
        "name": obj["metadata"]["name"],
        "kind": rt.plural,
        "uid": obj["metadata"].get("uid", ""),
    }
    if rt.group:
        details["group"] = rt.group
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }
