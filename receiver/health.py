"""Liveness, readiness and metrics endpoints for orchestrators and Prometheus.

`/healthz` says the process serves HTTP; `/readyz` says a webhook would be published now
(the producer is connected and the broker answers), so a load balancer stops sending
deliveries to a receiver that could only answer 503, and sends them again once the
broker is back.
"""

from __future__ import annotations

from aiohttp import web

from receiver.metrics import CONTENT_TYPE, ReceiverMetrics
from receiver.publishing import Publisher


def routes(publisher: Publisher, metrics: ReceiverMetrics) -> list[web.RouteDef]:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        if publisher.ready:
            return web.json_response({"status": "ready"})
        return web.json_response(
            {"status": "not ready", "reason": "the event broker is not connected or not answering"},
            status=503,
        )

    async def prometheus(_request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    return [
        web.get("/healthz", healthz),
        web.get("/readyz", readyz),
        web.get("/metrics", prometheus),
    ]
