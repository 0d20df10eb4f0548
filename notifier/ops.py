"""The notifier's HTTP endpoints for probes and Prometheus: `/healthz`, `/readyz`, `/metrics`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from notifier.metrics import NotifierMetrics

log = logging.getLogger(__name__)


class NotifierEndpoints:
    """`port=0` picks a free port (see `.port` once started)."""

    def __init__(
        self,
        metrics: NotifierMetrics,
        ready: Callable[[], tuple[bool, str]],
        *,
        host: str = "0.0.0.0",  # noqa: S104 - probes reach the pod's address
        port: int = 8082,
    ) -> None:
        self._metrics = metrics
        self._ready = ready
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readiness(self, _: web.Request) -> web.Response:
        ready, reason = self._ready()
        body = {"status": "ready" if ready else "not ready", "reason": reason}
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics_page(self, _: web.Request) -> web.Response:
        response = web.Response(body=self._metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def __aenter__(self) -> NotifierEndpoints:
        app = web.Application()
        app.add_routes(
            [
                web.get("/healthz", self._health),
                web.get("/readyz", self._readiness),
                web.get("/metrics", self._metrics_page),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            for address in self._runner.addresses:
                self.port = int(address[1])
                break
        log.info("notifier HTTP endpoints on %s:%s", self.host, self.port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
