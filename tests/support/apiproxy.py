"""A fault-injecting proxy in front of the real kube-apiserver, at the network boundary.

A real API server fails only when it wants to; tests of retries, timeouts and kills need
one that fails exactly when asked. The proxy serves plain HTTP on 127.0.0.1, forwards each
request over TLS with the bed's admin certificate, and consults the same fault rules the
emulator takes (`proxy.faults.add("patch", "configmaps", count=2, code=503)`), so a test
reads the same against either. It also records every request it forwarded, which lets a
test assert what reached the cluster (e.g. that no write did).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import aiohttp
import yaml
from aiohttp import web

from devcluster.faults import Faults
from devcluster.status import ApiError

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade"}
_WRITES = {"create", "update", "patch", "delete", "deletecollection"}


@dataclass(frozen=True)
class Seen:
    """One request the proxy forwarded."""

    verb: str
    resource: str
    namespace: str
    name: str
    dry_run: bool
    status: int
    at: float = field(default_factory=time.monotonic)
    """When the server's answer came back (monotonic clock)."""

    @property
    def write(self) -> bool:
        return self.verb in _WRITES and not self.dry_run


@dataclass
class _Upstream:
    server: str
    ssl: ssl.SSLContext
    headers: dict[str, str]


def _upstream(kubeconfig: Path) -> _Upstream:
    """The server and identity to forward as: a client certificate, or a bearer token."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    context = ssl.create_default_context(cafile=cluster["certificate-authority"])
    if "token" in user:
        return _Upstream(cluster["server"], context, {"Authorization": f"Bearer {user['token']}"})
    context.load_cert_chain(user["client-certificate"], user["client-key"])
    return _Upstream(cluster["server"], context, {})


def classify(method: str, path: str, query: dict[str, str]) -> tuple[str, str, str, str]:
    """(verb, resource, namespace, name) of a Kubernetes API path, as RBAC names them."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
    else:
        return method.lower(), "", "", ""
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    if resource == "namespaces" and name and not namespace:
        namespace = name
    verb = {
        "GET": "get" if name else ("watch" if query.get("watch") in ("1", "true") else "list"),
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }.get(method, method.lower())
    return verb, resource, namespace, name


@dataclass
class ApiProxy:
    """`async with ApiProxy(kubeconfig) as proxy:` then point clients at `proxy.url`."""

    kubeconfig: Path
    faults: Faults = field(default_factory=Faults)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    _identity: dict[str, str] = field(default_factory=dict)

    async def __aenter__(self) -> Self:
        upstream = _upstream(self.kubeconfig)
        self._identity = upstream.headers
        self._session = aiohttp.ClientSession(
            base_url=upstream.server,
            connector=aiohttp.TCPConnector(ssl=upstream.ssl, limit=200),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig for the proxy: plain HTTP, no credentials (the proxy adds them)."""
        config: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "proxy", "cluster": {"server": self.url}}],
            "users": [{"name": "proxy", "user": {}}],
            "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": "proxy"}}],
            "current-context": "proxy",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def writes(self) -> list[Seen]:
        """Requests that changed the cluster (dry runs excluded)."""
        return [s for s in self.seen if s.write and s.status < 400]

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        query = dict(request.query)
        verb, resource, namespace, name = classify(request.method, request.path, query)
        fault = self.faults.take(verb, resource, namespace, name)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            try:
                fault.fire()
            except ApiError as error:
                return web.json_response(
                    error.to_status(), status=error.code, headers=error.headers
                )
        try:
            body = await request.read()
        except ConnectionError:  # the client went away (a killed syncer): nothing to forward
            return web.Response(status=499)
        if request.transport is None or request.transport.is_closing():
            return web.Response(status=499)  # it went away while a delay fault held it
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        headers.update(self._identity)
        async with self._session.request(
            request.method, request.path_qs, data=body or None, headers=headers
        ) as upstream:
            self.seen.append(
                Seen(verb, resource, namespace, name, "dryRun" in query, upstream.status)
            )
            response = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in _HOP},
            )
            try:
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except ConnectionError:
                pass  # the client hung up mid-answer, e.g. a watch it stopped
            return response
