"""Sync slots: at most `syncer.concurrency` syncs work at once, and a sync that waits on
the cluster gives its slot back for the wait.

Most of a sync's time after its writes is spent waiting for controllers: a Deployment to
roll out, a hook's Job to complete, a CRD to be established. Those waits cost the syncer
a GET every few hundred milliseconds. Holding a slot through them let a few slow
rollouts (or a burst of a thousand apps, each waiting a second for its Deployment's
status) starve every other app of the syncer; with the slot given back, the slots bound
the work that costs CPU and API requests, and the waits overlap.

A slot is taken per sync by the dispatcher (`held`); code deep in a sync marks a wait
with `waiting()`, which finds the sync's slot through the task's context, so callers
outside the dispatcher (tests, `gitops diff`) wait without any slot to give back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar

Waiting = Callable[[], AbstractAsyncContextManager[None]]
"""Marks a wait on the cluster: `Slots.waiting`, or `no_slot` outside a dispatcher."""


class _Held:
    """One sync's slot: whether it holds it now, and how many of its waits are open."""

    __slots__ = ("holding", "waits")

    def __init__(self) -> None:
        self.holding = True
        self.waits = 0


class Slots:
    """The slots of one syncer's dispatcher."""

    def __init__(self, count: int) -> None:
        self._free = asyncio.Semaphore(count)
        self._current: ContextVar[_Held | None] = ContextVar("sync_slot", default=None)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Take a slot for one sync (and everything it starts), for as long as it runs."""
        await self._free.acquire()
        held = _Held()
        token = self._current.set(held)
        try:
            yield
        finally:
            self._current.reset(token)
            if held.holding:
                self._free.release()

    @contextlib.asynccontextmanager
    async def waiting(self) -> AsyncIterator[None]:
        """Give this sync's slot back while it waits; take one again before it goes on.

        Waits of one sync may overlap (hooks of one wave): the slot goes back with the
        first and is taken again when the last ends.
        """
        held = self._current.get()
        if held is None:
            yield
            return
        held.waits += 1
        if held.waits == 1 and held.holding:
            held.holding = False
            self._free.release()
        try:
            yield
        finally:
            held.waits -= 1
            if held.waits == 0 and not held.holding:
                await self._free.acquire()  # cancelled here: nothing held, nothing to return
                held.holding = True


@contextlib.asynccontextmanager
async def no_slot() -> AsyncIterator[None]:
    """`waiting()` for code run without a dispatcher: there is no slot to give back."""
    yield
