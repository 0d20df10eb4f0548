"""The syncer's own HTTP endpoints: `/healthz`, `/readyz` and `/metrics`.

Kubernetes probes and Prometheus need them even though a syncer serves no webhooks:
`/healthz` says the event loop answers; `/readyz` says the member is in its consumer
group and its producer can publish, so a rollout waits for real readiness.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from types import TracebackType

from aiohttp import web

from syncer.metrics import CONTENT_TYPE, SyncerMetrics

log = logging.getLogger(__name__)


class OpsServer:
    """A tiny aiohttp server; `port=0` picks a free one (see `.port`)."""

    def __init__(
        self,
        metrics: SyncerMetrics,
        ready: Callable[[], tuple[bool, str]],
        *,
        host: str = "0.0.0.0",  # noqa: S104 - probes reach the pod's address
        port: int = 8081,
    ) -> None:
        self._metrics = metrics
        self._ready = ready
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _: web.Request) -> web.Response:
        ready, reason = self._ready()
        body = json.dumps({"status": "ready" if ready else "not ready", "reason": reason})
        return web.Response(
            status=200 if ready else 503, text=body, content_type="application/json"
        )

    async def _metrics_page(self, _: web.Request) -> web.Response:
        response = web.Response(body=self._metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_page)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            # Several syncers on one machine (`gitops up`, tests) cannot share a port: a busy
            # one must not stop the syncer, so it serves on a free port and says which.
            log.warning("syncer HTTP port %s unavailable (%s); using a free port", self.port, exc)
            site = web.TCPSite(self._runner, self.host, 0)
            await site.start()
        server = site._server  # the bound socket tells the real port when 0 was asked
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("syncer HTTP endpoints on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            with contextlib.suppress(Exception):
                await runner.cleanup()

    async def __aenter__(self) -> OpsServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
