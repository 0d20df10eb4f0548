"""Our processes as users run them: `gitops receiver` and `gitops syncer` with a config file,
JSON logs on stderr captured to a file the secrets tests read."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from gitops.broker import free_port


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """JSON is YAML: the loader reads it as users' files."""
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


@asynccontextmanager
async def gitops_process(
    *args: str, log: Path, env: dict[str, str] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m gitops <args>` with stderr to `log`; SIGTERM (then SIGKILL) on exit."""
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gitops",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            env={**os.environ, **(env or {})},
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(15):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


@asynccontextmanager
async def receiver_process(
    config: Path, log: Path, env: dict[str, str] | None = None
) -> AsyncIterator[str]:
    """A `gitops receiver` on a free port; yields its base URL once /readyz says ready."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with gitops_process(
        "receiver", "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
        log=log, env=env,
    ) as process:  # fmt: skip
        await _until_ready(f"{url}/readyz", process, log)
        yield url


async def _until_ready(url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    async with aiohttp.ClientSession() as http:
        while asyncio.get_running_loop().time() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"the receiver exited: {log.read_text()[-2000:]}")
            try:
                async with http.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"the receiver did not become ready: {log.read_text()[-2000:]}")
