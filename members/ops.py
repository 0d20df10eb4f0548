"""A member's own HTTP endpoints: `/healthz`, `/readyz` and `/metrics`.

Kubernetes probes and Prometheus need them even though a syncer or a notifier serves no
webhooks: `/healthz` says the event loop answers; `/readyz` says the member is in its
consumer group and consuming (its `ready` callable says why not), so a rollout waits for
real readiness.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

Readiness = Callable[[], tuple[bool, str]]
"""Whether the member is ready, and why (or why not), for `/readyz`."""


class Metrics(Protocol):
    """A member's Prometheus registry, rendered in the text exposition format."""

    def render(self) -> bytes: ...


class OpsServer:
    """A tiny aiohttp server; `port=0` picks a free one (see `.port` once started).

    With `free_port_if_busy`, a port another process holds is not an error: several
    members on one machine (`gitops up`, tests) cannot share one, and a busy port must not
    stop the member, so it serves on a free port and logs which.
    """

    def __init__(
        self,
        metrics: Metrics,
        ready: Readiness,
        *,
        name: str,
        port: int,
        host: str = "0.0.0.0",  # noqa: S104 - probes reach the pod's address
        free_port_if_busy: bool = False,
    ) -> None:
        self._metrics = metrics
        self._ready = ready
        self._name = name
        self.host = host
        self.port = port
        self._free_port_if_busy = free_port_if_busy
        self._runner: web.AppRunner | None = None

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _: web.Request) -> web.Response:
        ready, reason = self._ready()
        body = {"status": "ready" if ready else "not ready", "reason": reason}
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics_page(self, _: web.Request) -> web.Response:
        response = web.Response(body=self._metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_page)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            if not self._free_port_if_busy:
                await self.stop()
                raise
            log.warning(
                "%s HTTP port %s unavailable (%s); using a free port", self._name, self.port, exc
            )
            site = web.TCPSite(runner, self.host, 0)
            await site.start()
        for address in runner.addresses:  # the bound socket tells the real port when 0 was asked
            self.port = int(address[1])
            break
        log.info("%s HTTP endpoints on %s:%s", self._name, self.host, self.port)

    async def stop(self) -> None:
        """Stop serving; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            with contextlib.suppress(Exception):
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
