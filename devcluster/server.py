"""The emulated cluster as a running HTTP server: :class:`DevCluster`.

One composition root builds the registry, store, verbs, controllers and fault rules of a
cluster and passes them by keyword to the handlers, which a short ordered route table
serves over aiohttp (one catch-all route; the table keeps kube-apiserver's fall-through to
a 404 ``Status``). ``DevCluster`` is an async context manager; ``stop()`` is safe to repeat
and ends watch streams, controller tasks, keep-alive connections and the listening socket,
so tests leave nothing behind.

aiohttp owns the protocol: keep-alive, pipelining (answered in order), chunked bodies,
``Expect: 100-continue``, HTTP/1.0. Requests it cannot parse (a malformed request line,
a head line over :data:`MAX_LINE_BYTES`) get its plain-text 400 and a close, as Go's
net/http answers them for kube-apiserver; everything a handler refuses is a ``Status``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from devcluster import discovery
from devcluster.controllers import Controllers, ControllerSettings
from devcluster.faults import Faults
from devcluster.openapi import V3_PREFIX, OpenApi
from devcluster.operations import Api, WriteOptions
from devcluster.resources import Registry
from devcluster.routes import (
    MAX_BODY_BYTES,
    ResourceHandler,
    error_response,
    json_response,
    read_body,
)
from devcluster.status import ApiError
from devcluster.store import Store, clone

JsonObj = dict[str, Any]
log = logging.getLogger(__name__)
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_GET = frozenset({"GET", "HEAD"})
MAX_LINE_BYTES = 64 * 1024
"""The longest request line or header line taken (aiohttp's default is 8 KiB; long label
and field selectors, and long tokens, fit in this)."""
LINGER_SECONDS = 1.0
"""How long a connection keeps reading the rest of a body it refused (a 413) before it
closes: long enough that a client which sends the body still reads the answer."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = tuple[frozenset[str] | None, str, bool, Handler]


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
        self._routes: list[Route] = []

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
        self._routes = self._build_routes()
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=1.0,
            # A handler is cancelled when its client hangs up: a quiet watch then drops
            # its subscription at once instead of holding it until timeoutSeconds.
            handler_cancellation=True,
            max_line_size=MAX_LINE_BYTES,
            max_field_size=MAX_LINE_BYTES,
            lingering_time=LINGER_SECONDS,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = int(runner.addresses[0][1])
        self._runner = runner

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

    # --------------------------------------------------------------- routing
    def _build_routes(self) -> list[Route]:
        """(methods or None for any, path, is a prefix, handler), tried in order; a path
        that matches with another method falls through, in the end to a 404 Status."""
        resources = ResourceHandler(self.api, self.faults, self._closing, self._bookmark_interval)
        openapi = OpenApi(self.registry)
        # The resource API first: it carries nearly every request.
        return [
            (None, "/api", False, resources.handle),
            (None, "/api/", True, resources.handle),
            (None, "/apis", False, resources.handle),
            (None, "/apis/", True, resources.handle),
            (_GET, "/version", False, self._version),
            (_GET, "/version/", False, self._version),
            (_GET, "/healthz", False, self._ok),
            (_GET, "/readyz", False, self._ok),
            (_GET, "/livez", False, self._ok),
            (_GET, "/openapi/v2", False, openapi.v2),
            (_GET, "/openapi/v3", False, openapi.v3_index),
            (_GET, V3_PREFIX, True, openapi.v3_group),
            (_GET, "/_devcluster/faults", False, self._faults_list),
            (frozenset({"POST"}), "/_devcluster/faults", False, self._faults_add),
            (frozenset({"DELETE"}), "/_devcluster/faults", False, self._faults_clear),
            (_GET, "/_devcluster/controllers", False, self._controllers_get),
            (frozenset({"PUT"}), "/_devcluster/controllers", False, self._controllers_put),
        ]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path, method = request.path, request.method
        handler = next(
            (
                handler
                for methods, route, prefix, handler in self._routes
                if (path.startswith(route) if prefix else path == route)
                and (methods is None or method in methods)
            ),
            self._not_found,
        )
        try:
            return await handler(request)
        except ApiError as error:
            return error_response(error)
        except Exception as exc:
            # A bug of ours, answered as the apiserver answers its own: 500 InternalError
            # (aiohttp's own answer would be plain text, and close the connection).
            log.exception("%s %s failed", request.method, request.path)
            message = f"Internal error occurred: {type(exc).__name__}: {exc}"
            return error_response(ApiError(500, "InternalError", message))

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
            body = json.loads(await read_body(request))
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
            body = json.loads(await read_body(request))
            if "ready_delay" in body:
                self.settings.ready_delay = float(body["ready_delay"])
            if "never_ready" in body:
                self.settings.never_ready = {
                    (str(k), str(ns), str(n)) for k, ns, n in body["never_ready"]
                }
        except (ValueError, TypeError, KeyError) as exc:
            return error_response(ApiError(400, "BadRequest", str(exc)))
        return await self._controllers_get(request)
