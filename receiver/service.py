"""The receiver process: serve webhooks on a host and port until SIGTERM or SIGINT.

`Receiver` is the async context manager tests and `gitops up` use (port 0 picks a free
port; `.url` tells which); `run_receiver` is what `gitops receiver` runs. Shutdown
order: stop accepting connections, let in-flight requests and their publishes finish,
then flush and close the producer. Topics are created by the caller (the CLI's
composition root), not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from types import TracebackType

from aiohttp import web

from receiver.app import STATE, build_app
from receiver.publishing import ProducerFactory, Publisher, default_producer
from schemas.config import GitopsConfig

log = logging.getLogger("receiver")

GC_YOUNG_THRESHOLD = 10_000
"""Net new container objects between young-generation collections in `gitops receiver`."""


class Receiver:
    """A running receiver bound to `host:port`; `async with Receiver(config) as r: r.url`."""

    def __init__(
        self,
        config: GitopsConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        producer_factory: ProducerFactory = default_producer,
        probe_interval: float = 1.0,
        shutdown_timeout: float = 10.0,
    ) -> None:
        self.app = build_app(
            config, producer_factory=producer_factory, probe_interval=probe_interval
        )
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._shutdown_timeout = shutdown_timeout
        self._bound_port: int | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:41234`; only valid while started."""
        if self._bound_port is None:
            raise RuntimeError("the receiver is not started")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._bound_port}"

    @property
    def publisher(self) -> Publisher:
        return self.app[STATE].publisher

    async def start(self) -> None:
        if self._runner is not None:
            return
        # aiohttp closes a connection whose request is not complete within keepalive_timeout
        # of its start (or of the previous response): that is our header read timeout.
        # After an answer that left the body unread (408, 413) it keeps reading and
        # discarding for lingering_time so the sender sees the answer; keep that short.
        header_timeout = self.app[STATE].settings.header_timeout.total_seconds()
        runner = web.AppRunner(
            self.app,
            access_log=None,
            shutdown_timeout=self._shutdown_timeout,
            keepalive_timeout=header_timeout,
            lingering_time=min(1.0, header_timeout),
        )
        await runner.setup()
        self._runner = runner
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await self.close()
            raise
        address = runner.addresses[0]
        self._bound_port = int(address[1])

    async def close(self) -> None:
        """Stop accepting, finish in-flight work, close the producer; safe to repeat."""
        runner, self._runner = self._runner, None
        self._bound_port = None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Receiver:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def run_receiver(config: GitopsConfig, *, host: str, port: int) -> None:
    """Serve webhooks until SIGTERM/SIGINT, then shut down cleanly (the `gitops receiver` body).

    Raises `IdempotenceRefused` (after closing) when the broker refuses the producer the
    configuration asks for: a receiver that can never become ready should not keep serving.

    Logging is set up by the process's composition root (`gitops receiver`), which also
    scrubs every configured secret from the lines.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with Receiver(config, host=host, port=port) as receiver:
            # Everything built so far lives as long as the process: keep it out of the
            # collector's full passes, which otherwise pause every request they meet.
            gc.freeze()
            # Nearly every object a webhook allocates (its parsed payload: hundreds of
            # dicts and lists) is freed by reference counting when the request ends; the
            # default young-generation threshold (700) still ran a collection every few
            # requests over the in-flight ones, ~10% of the CPU per webhook. At 10,000 the
            # bench sees a few dozen collections per run, each pausing ~3 ms.
            gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
            log.info("receiver listening", extra={"url": receiver.url})
            signalled = asyncio.create_task(stop.wait(), name="receiver-signal")
            refused = asyncio.create_task(receiver.publisher.wait(), name="receiver-refused")
            done, pending = await asyncio.wait(
                {signalled, refused}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for task in done:
                task.result()
            log.info("receiver stopping")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.info("receiver stopped")
