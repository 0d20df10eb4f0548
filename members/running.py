"""A member's process: one composition root, one poll loop, and the signals that end it.

`Member` is the skeleton `syncer.service.Syncer` and `notifier.service.Notifier` share:
`start()` builds every part into one `AsyncExitStack` (`_build`, the composition root)
and closes what was built when that fails; the built member runs its poll loop in
`_loop_task`; `stop()` ends the loop and closes the parts in reverse order, safe to call
twice. `run_until_signalled` is the body of `gitops syncer` and `gitops notifier`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self


def default_member_id() -> str:
    """Host and process: unique among the members of a group, and telling where one runs."""
    return f"{socket.gethostname()}-{os.getpid()}"


class Member:
    """An async context manager around the parts `_build` puts on its exit stack."""

    def __init__(self) -> None:
        self._stack: AsyncExitStack | None = None
        self._loop_task: asyncio.Task[None] | None = None
        """The poll loop `_build` starts last."""
        self._stopping = asyncio.Event()

    async def _build(self, stack: AsyncExitStack) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        if self._stack is not None:
            return
        stack = AsyncExitStack()
        self._stack = stack
        try:
            await self._build(stack)
        except BaseException:
            await self.stop()
            raise

    async def wait(self) -> None:
        """Until the poll loop ends: `stop()` was called, or it failed (re-raised here)."""
        if self._loop_task is not None:
            await self._loop_task

    async def stop(self) -> None:
        """Leave the group cleanly and close everything; safe to call twice."""
        self._stopping.set()
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

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


async def run_until_signalled(
    member: Member, *, name: str, started: Callable[[], None] | None = None
) -> None:
    """Run `member` until SIGTERM/SIGINT, then leave the group and close cleanly.

    `started` runs once the member is built (the syncer settles its heap there); a poll
    loop that fails ends the run with its error.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with member:
            if started is not None:
                started()
            waiter = asyncio.create_task(stop.wait(), name=f"{name}-signal")
            runner = asyncio.create_task(member.wait(), name=f"{name}-run")
            done, pending = await asyncio.wait(
                {waiter, runner}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            for task in done:
                task.result()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
