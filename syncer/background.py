"""A part of the syncer whose work is one background task.

The lifecycle's dependency wake-ups, the poller's schedule and the topic readers each
run one task for as long as the syncer does. `Background` is how every such part starts
it (once, named), notices its unexpected end (logged under the part's own module, since
nobody awaits the task until shutdown), and stops it (cancelled and awaited, safe to
repeat), as an async context manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import ClassVar, Self


class Background:
    """Base of a part that runs `_run()` in a task from `start()` until `stop()`."""

    task_name: ClassVar[str]
    """The task's name, as `asyncio` debugging and task dumps show it."""
    failure: ClassVar[str]
    """What the log says when the task ends with an error."""

    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        raise NotImplementedError

    @property
    def log(self) -> logging.Logger:
        """The logger of the part's own module, where its readers look for it."""
        return logging.getLogger(type(self).__module__)

    @property
    def running(self) -> bool:
        """Started and not stopped (the task may have ended on its own meanwhile)."""
        return self._task is not None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.task_name)
            self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logging.getLogger(type(self).__module__).error(self.failure, exc_info=task.exception())

    async def stop(self) -> None:
        """Cancel the task and wait for it to end; safe to call twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

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
