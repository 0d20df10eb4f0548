"""Serve one aiohttp handler for every path on 127.0.0.1, over TLS when given a key pair:
the shape of every fake host at the network boundary."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve(
    handler: Handler, port: int, *, tls: tuple[Path, Path] | None = None
) -> web.AppRunner:
    """Start serving; the caller cleans the returned runner up."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = None
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    return runner
