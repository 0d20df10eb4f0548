"""Run an async server on its own event loop in a background thread.

Tests drive real blocking clients (the git CLI, dulwich's synchronous porcelain) from the
test's event loop; a server on that same loop would deadlock them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import TypeVar

T = TypeVar("T")


@contextmanager
def in_thread(server: AbstractAsyncContextManager[T], timeout: float = 10.0) -> Iterator[T]:
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()
    result: dict[str, object] = {}

    async def main() -> None:
        try:
            async with server as value:
                result["value"] = value
                started.set()
                await stop.wait()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            result["error"] = exc
            started.set()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(timeout)
    try:
        if "error" in result:
            raise RuntimeError("server failed to start") from result["error"]  # type: ignore[arg-type]
        yield result["value"]  # type: ignore[misc]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        loop.close()
