"""Run a DevCluster until cancelled or SIGTERM/SIGINT: the body of ``gitops devcluster``."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from devcluster.server import DevCluster


async def serve(host: str, port: int, kubeconfig_path: str | None) -> None:
    """Serve the emulator on ``host:port`` (0 = any free port), write a kubeconfig when a
    path is given, and run until the task is cancelled or the process gets SIGTERM/SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with DevCluster(host=host, port=port) as cluster:
            if kubeconfig_path:
                cluster.write_kubeconfig(kubeconfig_path)
            print(f"devcluster serving {cluster.url}", flush=True)
            await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
