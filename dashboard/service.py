"""`gitops ui`: the dashboard's composition root.

Builds the board from the configuration, starts following the topics, connects clusters
on demand and serves the pages; `async with Dashboard(...)` does all of it and undoes it
in reverse (live streams end first, so the HTTP server's shutdown does not wait on them).
"""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

from aiohttp import web

from dashboard.auth import check_binding
from dashboard.board import Board
from dashboard.live import LiveReader
from dashboard.server import build_app
from dashboard.trail import Trail
from schemas import GitopsConfig
from syncer.catalog import AppCatalog


class Dashboard:
    """The running dashboard: `url` is where it answers (port 0 picks a free port)."""

    def __init__(
        self, config: GitopsConfig, *, host: str, port: int, source: str = "config"
    ) -> None:
        token = config.ui.token.resolve().get_secret_value() if config.ui.token else None
        check_binding(host, token, source=source)
        self._config = config
        self._host = host
        self._port = port
        self._stack = AsyncExitStack()
        self.trail = Trail(config.kafka, Board(config), max_events=config.ui.max_events)
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}/"

    async def __aenter__(self) -> Self:
        try:
            if self._config.app_sets:
                # Generated apps get their pages like configured ones (`syncer.catalog`).
                catalog = await self._stack.enter_async_context(
                    AppCatalog(self._config, client_id=f"{self._config.kafka.client_id}-ui")
                )
                self._config = self._config.model_copy(update={"apps": catalog.apps})
            live = await self._stack.enter_async_context(LiveReader(self._config))
            app = build_app(config=self._config, trail=self.trail, live=live)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
            await runner.setup()
            self._stack.push_async_callback(runner.cleanup)
            await self._stack.enter_async_context(self.trail)
            await web.TCPSite(runner, self._host, self._port).start()
            self.port = int(runner.addresses[0][1])
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()


async def run_ui(config: GitopsConfig, *, host: str, port: int, source: str) -> None:
    """Serve until SIGTERM or Ctrl-C."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    if main is not None:
        loop.add_signal_handler(signal.SIGTERM, main.cancel)
    async with Dashboard(config, host=host, port=port, source=source) as ui:
        print(f"dashboard        {ui.url}", flush=True)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return
