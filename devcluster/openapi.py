"""OpenAPI documents, enough for kubectl's validation and ``explain`` to find its way.

kubectl 1.3x first reads ``/openapi/v3`` (an index of group-version documents) and asks
whether the PATCH operation of a kind takes the ``fieldValidation`` query parameter; when
it does, kubectl leaves validation to the server (``fieldValidation=Strict``) instead of
validating against downloaded schemas. So each group-version document lists, per
resource, its paths with the operations and the ``x-kubernetes-group-version-kind``
extension kubectl matches on, and a schema per kind (open objects for built-ins, the
CRD's own ``openAPIV3Schema`` for custom resources). ``/openapi/v2`` carries the same
definitions in Swagger 2.0 form for older clients.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from devcluster.resources import Registry, ResourceType
from devcluster.store import encode

JsonObj = dict[str, Any]
V3_PREFIX = "/openapi/v3/"
_QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _definition_name(rt: ResourceType) -> str:
    if not rt.group:
        return f"io.k8s.api.core.{rt.version}.{rt.kind}"
    if rt.custom:
        reversed_group = ".".join(reversed(rt.group.split(".")))
        return f"{reversed_group}.{rt.version}.{rt.kind}"
    short = rt.group.split(".")[0]
    return f"io.k8s.api.{short}.{rt.version}.{rt.kind}"


def _gvk(rt: ResourceType) -> list[JsonObj]:
    return [{"group": rt.group, "version": rt.version, "kind": rt.kind}]


def _schema(rt: ResourceType) -> JsonObj:
    base: JsonObj = (
        dict(rt.schema)
        if rt.schema
        else {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
        }
    )
    base.setdefault("description", f"{rt.kind} ({rt.api_version}) served by devcluster.")
    base["x-kubernetes-group-version-kind"] = _gvk(rt)
    return base


def _operation(rt: ResourceType, verb: str, v3: bool) -> JsonObj:
    params = [
        {"name": name, "in": "query", "schema": {"type": "string"}}
        if v3
        else {"name": name, "in": "query", "type": "string"}
        for name in _QUERY_PARAMS
    ]
    return {
        "operationId": f"{verb}{rt.kind}",
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": _gvk(rt)[0],
    }


def _paths(types: list[ResourceType], v3: bool) -> JsonObj:
    paths: JsonObj = {}
    for rt in types:
        prefix = "/" + _gv_path(rt.group, rt.version)
        scope = f"{prefix}/namespaces/{{namespace}}" if rt.namespaced else prefix
        paths[f"{scope}/{rt.plural}"] = {
            "get": _operation(rt, "list", v3),
            "post": _operation(rt, "post", v3),
        }
        paths[f"{scope}/{rt.plural}/{{name}}"] = {
            "get": _operation(rt, "get", v3),
            "put": _operation(rt, "put", v3),
            "patch": _operation(rt, "patch", v3),
            "delete": _operation(rt, "delete", v3),
        }
    return paths


class OpenApi:
    """Serves the OpenAPI documents of one cluster's current registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def group_version_doc(self, group: str, version: str) -> JsonObj | None:
        types = self.registry.in_group_version(group, version)
        if not types:
            return None
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.34.0"},
            "paths": _paths(types, v3=True),
            "components": {"schemas": {_definition_name(rt): _schema(rt) for rt in types}},
        }

    async def v3_index(self, request: web.Request) -> web.Response:
        paths: JsonObj = {}
        for group, versions in self.registry.group_versions().items():
            for version in versions:
                doc = self.group_version_doc(group, version)
                digest = hashlib.sha256(encode(doc)).hexdigest()[:32].upper()
                path = _gv_path(group, version)
                paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
        return web.Response(body=encode({"paths": paths}), content_type="application/json")

    async def v3_group(self, request: web.Request) -> web.Response:
        parts = request.path.removeprefix(V3_PREFIX).strip("/").split("/")
        doc = None
        if len(parts) == 2 and parts[0] == "api":
            doc = self.group_version_doc("", parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            doc = self.group_version_doc(parts[1], parts[2])
        if doc is None:
            return web.Response(text="404: Not Found", status=404)
        return web.Response(body=encode(doc), content_type="application/json")

    async def v2(self, request: web.Request) -> web.Response:
        types = self.registry.all()
        doc = {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.34.0"},
            "paths": _paths(types, v3=False),
            "definitions": {_definition_name(rt): _schema(rt) for rt in types},
        }
        return web.Response(body=encode(doc), content_type="application/json")
