"""``python -m devcluster [--host H] [--port P] [--kubeconfig PATH]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable

from devcluster.cli import serve


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed: the emulator's CPU goes mostly to the loop and HTTP."""
    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]  # optional
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devcluster")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6443)
    parser.add_argument("--kubeconfig", default=None)
    args = parser.parse_args()
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=_loop_factory()) as runner,
    ):
        runner.run(serve(args.host, args.port, args.kubeconfig))


if __name__ == "__main__":
    main()
