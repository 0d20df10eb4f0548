"""The emulated cluster as a running HTTP server: :class:`DevCluster`.

One composition root builds the registry, store, verbs, controllers and fault rules of a
cluster and passes them to the aiohttp application by keyword. ``DevCluster`` is an
async context manager; ``stop()`` is safe to repeat and ends watch streams, controller
tasks and the listening socket, so tests leave nothing behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from devcluster import discovery
from devcluster.controllers import Controllers, ControllerSettings
from devcluster.faults import Faults
from devcluster.openapi import OpenApi
from devcluster.operations import Api, WriteOptions
from devcluster.resources import Registry
from devcluster.routes import ResourceHandler, error_response, json_response
from devcluster.status import ApiError
from devcluster.store import Store, clone

JsonObj = dict[str, Any]
log = logging.getLogger(__name__)
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class DevCluster:
    """A Kubernetes API emulator listening on ``host:port`` (port 0 picks a free one).

    >>> async with DevCluster() as cluster:          # doctest: +SKIP
    ...     cluster.write_kubeconfig(tmp / "kubeconfig")
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ready_delay: float = 0.5,
        watch_history: int = 10_000,
        bookmark_interval: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.registry = Registry()
        self.store = Store(history=watch_history)
        self.api = Api(self.registry, self.store)
        self.faults = Faults()
        self.settings = ControllerSettings(ready_delay=ready_delay)
        self.controllers: Controllers | None = None
        self._bookmark_interval = bookmark_interval
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Seed the initial namespaces and start listening."""
        if self._runner is not None:
            return
        self.controllers = Controllers(self.api, self.settings)
        ns_rt = self.registry.lookup("", "v1", "namespaces")
        assert ns_rt is not None  # noqa: S101 - built-in
        for name in INITIAL_NAMESPACES:
            if self.store.get(("", "namespaces"), "", name) is None:
                self.api.create(
                    ns_rt, "", {"metadata": {"name": name}}, WriteOptions(manager="kube-apiserver")
                )
        self._runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.port)
        await self._site.start()
        server = self._site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop serving; safe to call more than once."""
        self._closing.set()
        if self.controllers is not None:
            await self.controllers.stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------ kubeconfig
    def kubeconfig_dict(self, context: str = "devcluster", namespace: str = "default") -> JsonObj:
        """A kubeconfig for this cluster (plain HTTP, no credentials needed)."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": "devcluster"}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": context, "user": context, "namespace": namespace},
                }
            ],
            "current-context": context,
            "preferences": {},
        }

    def write_kubeconfig(self, path: str | Path, context: str = "devcluster") -> Path:
        """Write :meth:`kubeconfig_dict` as JSON (valid YAML) to ``path``."""
        target = Path(path)
        target.write_text(json.dumps(self.kubeconfig_dict(context), indent=2))
        return target

    # ------------------------------------------------------------------ app
    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        resources = ResourceHandler(self.api, self.faults, self._closing, self._bookmark_interval)
        openapi = OpenApi(self.registry)
        # The resource API first: the router tries routes in order, and these carry
        # nearly every request.
        app.router.add_route("*", "/api", resources.handle)
        app.router.add_route("*", "/api/{tail:.*}", resources.handle)
        app.router.add_route("*", "/apis", resources.handle)
        app.router.add_route("*", "/apis/{tail:.*}", resources.handle)
        app.router.add_get("/version", self._version)
        app.router.add_get("/version/", self._version)
        app.router.add_get("/healthz", self._ok)
        app.router.add_get("/readyz", self._ok)
        app.router.add_get("/livez", self._ok)
        app.router.add_get("/openapi/v2", openapi.v2)
        app.router.add_get("/openapi/v3", openapi.v3_index)
        app.router.add_get("/openapi/v3/{path:.*}", openapi.v3_group)
        app.router.add_get("/_devcluster/faults", self._faults_list)
        app.router.add_post("/_devcluster/faults", self._faults_add)
        app.router.add_delete("/_devcluster/faults", self._faults_clear)
        app.router.add_get("/_devcluster/controllers", self._controllers_get)
        app.router.add_put("/_devcluster/controllers", self._controllers_put)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    async def _not_found(self, request: web.Request) -> web.Response:
        return error_response(
            ApiError(404, "NotFound", "the server could not find the requested resource")
        )

    async def _version(self, request: web.Request) -> web.Response:
        return json_response(clone(discovery.VERSION_INFO))

    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _faults_list(self, request: web.Request) -> web.Response:
        return json_response({"faults": self.faults.pending()})

    async def _faults_add(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            fault = self.faults.add_json(body if isinstance(body, dict) else {})
        except (ValueError, TypeError) as exc:
            return error_response(ApiError(400, "BadRequest", str(exc)))
        return json_response(
            {"added": fault.verb, "resource": fault.resource, "count": fault.count}, 201
        )

    async def _faults_clear(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return json_response({"faults": []})

    async def _controllers_get(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "ready_delay": self.settings.ready_delay,
                "never_ready": sorted(list(k) for k in self.settings.never_ready),
            }
        )

    async def _controllers_put(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if "ready_delay" in body:
                self.settings.ready_delay = float(body["ready_delay"])
            if "never_ready" in body:
                self.settings.never_ready = {
                    (str(k), str(ns), str(n)) for k, ns, n in body["never_ready"]
                }
        except (ValueError, TypeError, KeyError) as exc:
            return error_response(ApiError(400, "BadRequest", str(exc)))
        return await self._controllers_get(request)
