"""HTTP front of the resource API: URL parsing, query parameters, bodies, responses.

Every ``/api/...`` and ``/apis/...`` request lands in :meth:`ResourceHandler.handle`,
which maps (method, URL shape) to a verb as kube-apiserver does
(api-concepts.md#standard-api-terminology), runs the fault rules, and renders results and
:class:`~devcluster.status.ApiError` alike as JSON. Discovery documents are served here
too because their paths share the same prefixes. Bodies arrive as JSON, YAML (apply) or
Kubernetes protobuf (:mod:`devcluster.protobuf`, what kubectl's ``create`` sends); answers
are always JSON, which every client lists in its ``Accept``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from aiohttp import web

from devcluster import discovery, protobuf, status
from devcluster.faults import Faults
from devcluster.operations import Api, WriteOptions
from devcluster.resources import ResourceType
from devcluster.scale import to_scale, write_scale
from devcluster.selectors import FieldSelector, LabelSelector
from devcluster.status import ApiError
from devcluster.store import Stored, clone, encode
from devcluster.tables import table
from devcluster.watching import WatchRequest, WatchStream

JsonObj = dict[str, Any]
_AGGREGATED = "as=APIGroupDiscoveryList"
_JSON_TYPES = frozenset(
    {
        "application/json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/json-patch+json",
    }
)
_TRUE = ("true", "1", "True")
MAX_BODY_BYTES = 16 * 1024 * 1024

try:
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _YamlLoader = yaml.SafeLoader


@dataclass(frozen=True, slots=True)
class Target:
    """What a URL names: resource type, namespace, name and subresource."""

    rt: ResourceType
    namespace: str | None
    name: str
    subresource: str


def json_response(
    body: Any, code: int = 200, pretty: bool = False, headers: dict[str, str] | None = None
) -> web.Response:
    raw = json.dumps(body, indent=2).encode() if pretty else encode(body)
    return web.Response(body=raw, status=code, content_type="application/json", headers=headers)


def raw_response(raw: bytes, code: int = 200) -> web.Response:
    return web.Response(body=raw, status=code, content_type="application/json")


def error_response(error: ApiError) -> web.Response:
    response = json_response(error.to_status(), error.code, headers=error.headers)
    if error.code == 413:
        # The refused body may still be on its way: say that the connection ends here.
        response.force_close()
    return response


async def read_body(request: web.Request) -> bytes:
    """The whole request body, at most :data:`MAX_BODY_BYTES`; a larger one is a 413
    Status, refused before it is read when its Content-Length already says so."""
    limit = request.client_max_size
    length = request.content_length
    if length is not None and length > limit:
        raise status.too_large(limit)
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise status.too_large(limit) from exc


def _manager_from(request: web.Request) -> str:
    """The field manager of a non-apply write: ``fieldManager`` or the User-Agent's product
    token (what the real server derives for clients that do not name one)."""
    manager = request.query.get("fieldManager")
    if manager:
        return manager
    agent = request.headers.get("User-Agent", "unknown")
    return agent.split("/", 1)[0][:128] or "unknown"


_OPTIONS = {
    "create": "CreateOptions",
    "update": "UpdateOptions",
    "patch": "PatchOptions",
    "delete": "DeleteOptions",
    "deletecollection": "DeleteOptions",
}
"""The options kind whose validation names a write's bad query parameter."""


class ResourceHandler:
    """Serves the API surface of one cluster."""

    def __init__(
        self, api: Api, faults: Faults, closing: asyncio.Event, bookmark_interval: float
    ) -> None:
        self.api = api
        self.faults = faults
        self.closing = closing
        self.bookmark_interval = bookmark_interval

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except ApiError as error:
            return error_response(error)

    # ------------------------------------------------------------ routing
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts[0] == "api":
            if len(parts) == 1:
                return self._discovery(request, core=True)
            if parts[1] != "v1":
                raise status.path_not_found()
            group, version, rest = "", "v1", parts[2:]
        else:
            if len(parts) == 1:
                return self._discovery(request, core=False)
            if len(parts) == 2:
                doc = discovery.api_group(self.api.registry, parts[1])
                if doc is None:
                    raise status.path_not_found()
                return json_response(doc)
            group, version, rest = parts[1], parts[2], parts[3:]
        if not rest:
            doc = discovery.api_resource_list(self.api.registry, group, version)
            if doc is None:
                raise status.path_not_found()
            return json_response(doc)
        target = self._target(group, version, rest)
        return await self._verb(request, target)

    def _discovery(self, request: web.Request, core: bool) -> web.Response:
        if _AGGREGATED in request.headers.get("Accept", ""):
            doc = discovery.aggregated(self.api.registry, core)
            return web.Response(
                body=encode(doc),
                headers={
                    "Content-Type": "application/json;g=apidiscovery.k8s.io;v=v2;"
                    "as=APIGroupDiscoveryList"
                },
            )
        if core:
            return json_response(discovery.api_versions())
        return json_response(discovery.api_group_list(self.api.registry))

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        lookup = self.api.registry.lookup
        if rest[0] == "namespaces" and len(rest) >= 3:
            rt = lookup(group, version, rest[2])
            if rt is not None and rt.namespaced and len(rest) <= 5:
                return Target(
                    rt, rest[1], rest[3] if len(rest) > 3 else "", rest[4] if len(rest) > 4 else ""
                )
        rt = lookup(group, version, rest[0])
        if rt is None or len(rest) > 3:
            raise status.path_not_found()
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        return Target(rt, None, name, sub)

    # -------------------------------------------------------------- verbs
    async def _verb(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt, method, query = target.rt, request.method, request.query
        if target.subresource and target.subresource not in rt.subresources:
            raise status.path_not_found()
        if rt.namespaced and target.namespace is None and target.name:
            raise status.path_not_found()
        if not rt.namespaced and target.namespace is not None:
            raise status.path_not_found()
        namespace = target.namespace or ""
        name = target.name
        verb = self._verb_name(method, bool(name), query.get("watch", "") in _TRUE)
        if verb not in rt.verbs or (target.subresource and verb not in ("get", "update", "patch")):
            raise status.method_not_allowed()
        fault = self.faults.take(verb, rt.plural, namespace, name)
        if fault is not None:
            if fault.delay > 0:
                await asyncio.sleep(fault.delay)
            fault.fire()
        return await self._serve(request, target, verb)

    async def _serve(self, request: web.Request, target: Target, verb: str) -> web.StreamResponse:
        rt, query = target.rt, request.query
        namespace = target.namespace or ""
        name = target.name
        pretty = query.get("pretty", "") in _TRUE
        if verb in ("get", "list", "watch") and target.subresource != "scale":
            return await self._read(request, target, verb, pretty)
        raw = await read_body(request)
        options_kind = _OPTIONS.get(verb, "GetOptions")
        dry_run = self._dry_run(request, options_kind)
        opts = WriteOptions(
            manager=(
                query.get("fieldManager", "")
                if verb == "patch" and request.content_type == "application/apply-patch+yaml"
                else _manager_from(request)
            ),
            dry_run=dry_run,
            force=query.get("force", "") in _TRUE,
            subresource=target.subresource,
        )
        if len(opts.manager) > 128:
            raise status.invalid_options(
                options_kind,
                "fieldManager",
                "FieldValueTooLong",
                "Too long: may not be more than 128 bytes",
            )
        if target.subresource == "scale":
            if verb == "get":
                return json_response(to_scale(self.api.get(rt, namespace, name).obj))
            content_type = None if verb == "update" else request.content_type
            scaled = write_scale(
                self.api, rt, namespace, name, content_type, self._body(request, raw), opts
            )
            return json_response(scaled, 200, pretty)
        if verb == "create":
            body = self._body(request, raw)
            obj = self.api.create(rt, namespace, body, opts, owned=True)
            return json_response(obj, 201, pretty)
        if verb == "update":
            obj = self.api.update(rt, namespace, name, self._body(request, raw), opts, owned=True)
            return json_response(obj, 200, pretty)
        if verb == "patch":
            body = self._body(request, raw)
            code, obj = self.api.patch(
                rt, namespace, name, request.content_type, body, opts, owned=True
            )
            return self._written(rt, namespace, name, obj, code, pretty)
        options = self._delete_options(request, raw)
        dry_run = dry_run or "All" in (options.get("dryRun") or [])
        if verb == "delete":
            return json_response(
                self.api.delete(rt, namespace, name, options, dry_run), 200, pretty
            )
        labels = LabelSelector(query.get("labelSelector"))
        fields = FieldSelector(query.get("fieldSelector"))
        items = self.api.delete_collection(rt, target.namespace, labels, fields, options, dry_run)
        return json_response(
            {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": {}, "items": items},
            200,
            pretty,
        )

    def _written(
        self, rt: ResourceType, namespace: str, name: str, obj: JsonObj, code: int, pretty: bool
    ) -> web.Response:
        """The answer to a write: the stored encoding when ``obj`` is what got stored (a
        real write or a no-op), so the object is not encoded a second time."""
        stored = self.api.store.get((rt.group, rt.plural), namespace, name)
        if not pretty and stored is not None and stored.obj is obj:
            return raw_response(self._raw_for(rt, stored), code)
        return json_response(obj, code, pretty)

    @staticmethod
    def _verb_name(method: str, named: bool, watch: bool) -> str:
        if method == "GET":
            if watch:
                return "watch"
            return "get" if named else "list"
        table = {
            ("POST", False): "create",
            ("PUT", True): "update",
            ("PATCH", True): "patch",
            ("DELETE", True): "delete",
            ("DELETE", False): "deletecollection",
        }
        verb = table.get((method, named))
        if verb is None:
            raise status.method_not_allowed()
        return verb

    @staticmethod
    def _dry_run(request: web.Request, options_kind: str) -> bool:
        values = request.query.getall("dryRun", [])
        if any(value != "All" for value in values):
            listed = json.dumps(values, separators=(",", ":"))
            raise status.invalid_options(
                options_kind,
                "dryRun",
                "FieldValueNotSupported",
                f'Unsupported value: {listed}: supported values: "All"',
            )
        return bool(values)

    @staticmethod
    def _body(request: web.Request, raw: bytes) -> Any:
        """The parsed body, private to this request and free of shared parts (YAML aliases
        are copied apart), so the verbs may keep it without copying."""
        if not raw:
            raise status.bad_request("the request body is empty")
        ctype = request.content_type
        if ctype == protobuf.MEDIA_TYPE and request.method in ("POST", "PUT"):
            return protobuf.decode(raw, request.headers.get("Kubectl-Command"))
        if ctype in _JSON_TYPES:
            try:
                return orjson.loads(raw)
            except ValueError as exc:
                raise status.bad_request(f"error decoding JSON: {exc}") from exc
        if ctype in ("application/apply-patch+yaml", "application/yaml"):
            try:
                return orjson.loads(raw)
            except ValueError:
                pass
            try:
                return clone(yaml.load(raw, Loader=_YamlLoader))  # noqa: S506 - a safe loader
            except yaml.YAMLError as exc:
                raise status.bad_request(f"error decoding YAML: {exc}") from exc
        raise status.unsupported_media_type(ctype)

    @staticmethod
    def _delete_options(request: web.Request, raw: bytes) -> JsonObj:
        options: JsonObj = {}
        if raw.strip():
            try:
                loaded = json.loads(raw)
            except ValueError as exc:
                raise status.bad_request(f"error decoding DeleteOptions: {exc}") from exc
            if isinstance(loaded, dict):
                options = loaded
        for key in ("propagationPolicy", "gracePeriodSeconds"):
            if key in request.query:
                options[key] = request.query[key]
        policy = options.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise status.bad_request(f"unsupported propagationPolicy {policy!r}")
        return options

    async def _read(
        self, request: web.Request, target: Target, verb: str, pretty: bool
    ) -> web.StreamResponse:
        rt, query = target.rt, request.query
        wants_table = "as=Table" in request.headers.get("Accept", "")
        if verb == "get":
            stored = self.api.get(rt, target.namespace or "", target.name)
            if wants_table:
                return json_response(
                    table(
                        rt,
                        [stored],
                        self.api.store.resource_version,
                        query.get("includeObject", ""),
                    )
                )
            return self._object_response(rt, stored, pretty)
        labels = LabelSelector(query.get("labelSelector"))
        fields = FieldSelector(query.get("fieldSelector"))
        if verb == "watch":
            timeout = float(query.get("timeoutSeconds") or 1800)
            initial = query.get("sendInitialEvents")
            req = WatchRequest(
                rt=rt,
                namespace=target.namespace,
                labels=labels,
                fields=fields,
                resource_version=query.get("resourceVersion", ""),
                timeout=timeout,
                bookmarks=query.get("allowWatchBookmarks", "") in _TRUE,
                initial_events=None if initial is None else initial in _TRUE,
            )
            stream = WatchStream(self.api.store, req, self.bookmark_interval)
            return await stream.run(request, self.closing)
        try:
            limit = int(query.get("limit") or 0)
        except ValueError as exc:
            raise status.bad_request("limit must be an integer") from exc
        result = self.api.list_objects(
            rt, target.namespace, labels, fields, limit, query.get("continue", "")
        )
        if wants_table:
            return json_response(
                table(rt, result.items, result.resource_version, query.get("includeObject", ""))
            )
        metadata: JsonObj = {"resourceVersion": str(result.resource_version)}
        if result.continue_token:
            metadata["continue"] = result.continue_token
            metadata["remainingItemCount"] = result.remaining
        head = encode({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": metadata})
        items = [self._raw_for(rt, s) for s in result.items]
        raw = head[:-1] + b',"items":[' + b",".join(items) + b"]}"
        if pretty:
            return json_response(json.loads(raw), 200, pretty=True)
        return raw_response(raw)

    @staticmethod
    def _raw_for(rt: ResourceType, stored: Stored) -> bytes:
        if stored.obj.get("apiVersion") == rt.api_version:
            return stored.raw
        return encode({**stored.obj, "apiVersion": rt.api_version})

    def _object_response(self, rt: ResourceType, stored: Stored, pretty: bool) -> web.Response:
        if pretty:
            return json_response(json.loads(self._raw_for(rt, stored)), 200, pretty=True)
        return raw_response(self._raw_for(rt, stored))
