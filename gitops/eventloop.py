"""The event loop every serving process runs on: uvloop when it is installed.

The receiver, the syncers and the emulator spend most of their CPU in the event loop,
transports and HTTP parsing; uvloop does that work in C. Measured on 2 cores:
`bench/receiver_load.py` 640 -> 430 us of receiver CPU per signed push (1,050 -> 2,000
pushes/s); `bench/apply.py` emulator CPU per 1,000-object sync 0.45 -> 0.42 s. Only the
processes that serve ask for it (the composition root in `gitops/cli.py`); tests keep
the loop pytest gives them, and asyncio's own loop works everywhere uvloop does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None (asyncio's default loop)."""
    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]  # optional: asyncio works
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
